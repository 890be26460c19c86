"""``coldgate sim modbus`` as an operator runs it: prints where loggers are, serves, stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.framer import FramerType

from tests.rig.ports import wait_port_closed

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[1]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "coldgate", "sim", "modbus", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _endpoints(process: subprocess.Popen[str], expected: int) -> list[str]:
    assert process.stdout is not None
    found: list[str] = []
    for line in process.stdout:
        if match := re.match(r"serving (\S+)", line):
            found.append(match.group(1))
            if len(found) == expected:
                return found
    raise AssertionError(f"command ended before printing {expected} endpoints: {process.stderr.read()}")


def test_serves_tcp_and_rtu_and_stops_on_sigterm():
    process = _start("--loggers", "2", "--tcp", "127.0.0.1:0", "--rtu", "--speed", "60", "--duration", "30")
    try:
        tcp, rtu = _endpoints(process, 2)
        host, port = re.fullmatch(r"tcp://(.+):(\d+)", tcp).groups()
        device = rtu.removeprefix("rtu://")
        tcp_client = ModbusTcpClient(host, port=int(port), timeout=1, retries=0)
        assert tcp_client.connect()
        assert not tcp_client.read_input_registers(1, count=2, device_id=1).isError()
        assert not tcp_client.read_holding_registers(0, count=2, device_id=2).isError()
        tcp_client.close()
        rtu_client = ModbusSerialClient(device, framer=FramerType.RTU, timeout=1, retries=0)
        assert rtu_client.connect()
        assert not rtu_client.read_input_registers(1, count=2, device_id=1).isError()
        rtu_client.close()
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in err
    wait_port_closed(host, int(port), timeout=5)


def test_duration_stops_by_itself_and_lists_every_logger(tmp_path):
    farm_file = tmp_path / "farm.toml"
    farm_file.write_text(
        '[[logger]]\nunit = 5\nmap = "rs485-th-holding"\nscenario = "door_open"\nroom = "freezer"\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coldgate",
            "sim",
            "modbus",
            "--config",
            str(farm_file),
            "--tcp",
            "127.0.0.1:0",
            "--duration",
            "0.5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"unit +5 +rs485-th-holding +door_open +FC03 @0x0000 x2", result.stdout)


def test_a_bad_farm_file_is_reported_with_its_key(tmp_path):
    farm_file = tmp_path / "farm.toml"
    farm_file.write_text("[[logger]]\nunit = 300\n")
    result = subprocess.run(
        [sys.executable, "-m", "coldgate", "sim", "modbus", "--config", str(farm_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "logger[0].unit: 300 is outside" in result.stderr


def test_sim_scanner_plays_every_code_once_on_a_pty() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "coldgate", "sim", "scanner", "--interval", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "scanner on /dev/pts/" in result.stdout
    assert result.stdout.count("sent ") == 8
    assert result.stdout.rstrip().endswith("stopped after 8 codes")
