"""What an operator meets first when starting a gateway (issue 19): a second gateway on the same outbox
says so in one line, and a gateway says at start what it polls, where it keeps it and where it sends it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldgate.gateway.app import start_summary
from coldgate.gateway.config_load import load_gateway_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"

#: Port 1 on loopback: nothing listens there, so the uplink retries and the gateway runs on offline.
CONFIG = """\
[gateway]
id = "pi-op-01"
site = "op-site"
data_dir = "{data}"

[[modbus_lines]]
id = "net"
transport = "tcp"
host = "127.0.0.1"
port = 1

[[sensors]]
source = "modbus"
id = "room-t1"
line = "net"
unit = 1
profile = "xy-md02"
interval_s = 30

[uplink]
broker = "mqtt://127.0.0.1:1"
"""


def _gateway(config: Path, stderr: Path) -> subprocess.Popen[bytes]:
    with stderr.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "coldgate", "gateway", "run", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = path.read_text() if path.exists() else ""
        if text in seen:
            return seen
        assert proc.poll() is None, f"the gateway exited early ({proc.returncode}): {seen}"
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path} within {timeout_s} s: {path.read_text()}")


@pytest.fixture
def running_gateway(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes], str]]:
    data = tmp_path / "data"
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(data=data))
    first_log = tmp_path / "first.log"
    first = _gateway(config, first_log)
    try:
        # The start summary is logged once the outbox is open, i.e. once the lock is held.
        seen = _wait_for(first_log, "INFO coldgate.gateway.service: gateway pi-op-01", first)
        yield config, data / "outbox.sqlite3", first, seen
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(30)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()


def test_a_second_gateway_on_the_same_outbox_prints_one_line(
    running_gateway: tuple[Path, Path, subprocess.Popen[bytes], str],
) -> None:
    config, outbox, first, _ = running_gateway
    second = subprocess.run(
        [sys.executable, "-m", "coldgate", "gateway", "run", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert second.returncode != 0
    assert "Traceback" not in second.stderr
    assert second.stderr == (
        f"Error: {outbox}: in use by another process (pid {first.pid}); one gateway per outbox\n"
    )
    assert first.poll() is None, "the first gateway keeps running"
    assert (Path(f"{outbox}.lock").read_text().strip()) == str(first.pid), "and keeps its lock"


def test_a_gateway_logs_what_it_polls_at_start(
    running_gateway: tuple[Path, Path, subprocess.Popen[bytes], str],
) -> None:
    _, outbox, _, seen = running_gateway
    summary = [line for line in seen.splitlines() if "INFO coldgate.gateway.service: gateway" in line]
    assert len(summary) == 1, seen
    assert summary[0].endswith(
        "gateway pi-op-01 at site op-site: modbus line net (tcp 127.0.0.1:1): 1 sensor(s) every 30 s "
        f"(room-t1); outbox {outbox}; broker mqtt://127.0.0.1:1"
    )


def test_the_summary_names_every_kind_of_source() -> None:
    cold_room = start_summary(load_gateway_config(EXAMPLES / "gateway-cold-room.toml"))
    config = load_gateway_config(EXAMPLES / "gateway-cold-room.toml")
    for line in config.modbus_lines:
        if any(getattr(s, "line", None) == line.id for s in config.sensors):
            assert f"modbus line {line.id} (" in cold_room
    assert "serial loggers: " in cold_room and "pharm-fridge" in cold_room
    assert f"outbox {config.outbox.path}" in cold_room and f"broker {config.uplink.broker}" in cold_room
    assert "\n" not in cold_room

    dock = start_summary(load_gateway_config(EXAMPLES / "gateway-dock.toml"))
    assert "readers: dock2-r1 (door dock2, 10.0.4.21:5084)" in dock
    assert "scanners: dock2-s1 (door dock2, /dev/coldgate/scanner-dock-1)" in dock
    assert "dock2-s2 (door dock2, socket://10.0.4.17:4001)" in dock


def test_the_summary_stays_one_short_line_with_many_sensors(tmp_path: Path) -> None:
    sensors = "".join(
        f'[[sensors]]\nsource = "modbus"\nid = "t{n}"\nline = "bus"\nunit = {n}\nprofile = "xy-md02"\n'
        f"interval_s = {10 if n == 1 else 60}\n\n"
        for n in range(1, 51)
    )
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "pi"\nsite = "s"\n\n[[modbus_lines]]\nid = "bus"\ntransport = "rtu"\n'
        f'port = "/dev/ttyUSB0"\n\n{sensors}'
    )
    summary = start_summary(load_gateway_config(path))
    assert "modbus line bus (rtu /dev/ttyUSB0): 1 sensor(s) every 10 s (t1); " in summary
    assert "49 sensor(s) every 60 s (t2, t3, t4, t5 +45 more)" in summary
    assert len(summary) < 300


def test_a_gateway_with_nothing_to_poll_says_so(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\nid = "pi"\nsite = "s"\n')
    assert "pi at site s: polls nothing (no sensors, readers or scanners configured)" in start_summary(
        load_gateway_config(path)
    )


def test_the_lock_holder_is_this_process_only_while_it_runs(tmp_path: Path) -> None:
    """The pid the one line names is the live holder's: a stale lock file from a dead gateway does not
    refuse the next one (flock dies with its process)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "outbox.sqlite3.lock").write_text("999999\n")
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(data=data))
    log = tmp_path / "gw.log"
    proc = _gateway(config, log)
    try:
        _wait_for(log, "INFO coldgate.gateway.service: gateway pi-op-01", proc)
        assert (data / "outbox.sqlite3.lock").read_text().strip() == str(proc.pid)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    """A mistyped or unwritable data_dir is the operator's to fix: the path and why, not a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(data=blocker / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "coldgate", "gateway", "run", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode != 0
    assert result.stderr == (
        f"Error: {blocker / 'data' / 'outbox.sqlite3'}: cannot be created or locked "
        f"(Not a directory: {blocker / 'data'})\n"
    )
