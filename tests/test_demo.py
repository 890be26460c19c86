"""``coldgate demo`` from a newcomer's point of view: it starts, shows the site, stops by itself."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.timeout(60)
def test_demo_shows_every_logger_over_both_transports_and_stops() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "coldgate", "demo", "--duration", "2", "--speed", "600", "--interval", "0.5"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"Modbus TCP loggers on 127\.0\.0\.1:\d+, RTU loggers on /dev/pts/\d+", out)
    first_table = out.split("scenario time", 2)[1]
    rows = re.findall(r"unit +(\d+) (tcp|rtu) ", first_table)
    assert [int(unit) for unit, _ in rows] == list(range(1, 11))
    assert {transport for _, transport in rows} == {"tcp", "rtu"}
    # Steady loggers in a 2-8 °C room read back as plausible values over both transports.
    values = re.findall(r"(tcp|rtu) .*steady +(-?\d+\.\d) °C +(\d+\.\d) %RH", first_table)
    assert {transport for transport, _, _ in values} == {"tcp", "rtu"}
    assert all(2.0 < float(t) < 8.0 and 30.0 < float(h) < 60.0 for _, t, h in values)
    assert ">>>>>" not in out + result.stderr  # no pymodbus hex dumps on screen
    assert out.rstrip().endswith("stopped")
