"""The shipped gateway unit asks systemd for what the gateway does: notify, watchdog, restart."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "coldgate-gateway.service"


def service_section() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_unit_waits_for_ready_and_restarts_a_gateway_that_stops_petting() -> None:
    service = service_section()
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "main"
    assert service["WatchdogSec"] == "30"
    assert service["Restart"] in ("always", "on-failure", "on-watchdog")
    assert int(service["TimeoutStartSec"]) >= 30


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` knows every key (the binary path is this test's Python)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze here")
    text = UNIT.read_text().replace("/usr/local/bin/coldgate", f"{sys.executable} -m coldgate")
    unit = tmp_path / "coldgate-gateway.service"
    unit.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "coldgate-gateway" in line]
    assert problems == [], problems
