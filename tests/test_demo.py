"""``coldgate demo`` from a newcomer's point of view: the site runs, the alarm sounds, it stops by itself."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(90)
def test_demo_runs_the_gateway_on_the_simulated_site_and_sounds_the_siren(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "coldgate", "demo",
            "--duration", "15", "--speed", "600", "--interval", "1", "--data-dir", str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"Loggers: Modbus TCP 127\.0\.0\.1:\d+, RTU on /dev/pts/\d+", out)
    assert "cr-03: unit   3  xy-md02           compressor_failure" in out
    # The compressor failure becomes an excursion: raised as critical and the siren relay switched on.
    assert re.search(r"ALERT raised +critical temperature\.high: cr-03 above 8\.0 °C", out)
    assert "siren ON" in out
    assert "ALERT raised   critical temperature.high: cr-0" not in out.replace("cr-03", "")
    # Readings flow from both transports into the durable outbox.
    depths = [int(d) for d in re.findall(r"outbox depth (\d+)", out)]
    assert depths and depths[-1] > 100
    with sqlite3.connect(tmp_path / "outbox.sqlite3") as db:
        (count,) = db.execute("select count(*) from items").fetchone()
    assert count >= depths[-1]
    assert ">>>>>" not in out + result.stderr  # no pymodbus hex dumps on screen
    assert out.rstrip().endswith("stopped")
