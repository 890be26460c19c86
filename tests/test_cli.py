"""The ``coldgate`` command as an operator meets it: groups, config checks, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "deploy" / "examples"


def coldgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldgate", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_help_lists_the_four_groups() -> None:
    result = coldgate("--help")
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split("Commands:", 1)[1].split()
    for group in ("gateway", "cloud", "sim", "demo"):
        assert group in commands


@pytest.mark.parametrize(
    ("group", "shows"),
    [("gateway", "check-config"), ("cloud", "check-config"), ("sim", "modbus"), ("demo", "--loggers")],
)
def test_each_group_is_loaded_from_its_package(group: str, shows: str) -> None:
    result = coldgate(group, "--help")
    assert result.returncode == 0, result.stderr
    assert f"Usage: python -m coldgate {group}" in result.stdout
    assert shows in result.stdout, "the group's own commands/options, not a stand-in"


def test_a_missing_extra_is_named_whatever_the_arguments() -> None:
    # Block pymodbus as if the [gateway] extra were not installed.
    code = (
        "import sys; sys.modules['pymodbus'] = None;"
        "sys.argv = ['coldgate', 'sim', 'modbus', '--loggers', '3'];"
        "from coldgate.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert result.returncode == 1
    assert "'sim' needs the [gateway] extra (missing module 'pymodbus')" in result.stderr


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_check_config_accepts_every_example(example: Path) -> None:
    group = "cloud" if example.name.startswith("cloud") else "gateway"
    # --offline: the examples name /etc/coldgate files (and the cloud's a database) this machine does not
    # have (tests/test_operator_cloud.py and tests/test_gateway_check_config_files.py check them both ways).
    result = coldgate(group, "check-config", "--offline", str(example))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{example}: ok:")


def test_check_config_names_file_key_expected_and_found(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.toml"
    text = (EXAMPLES / "gateway-minimal.toml").read_text()
    bad.write_text(text.replace("unit = 1", 'unit = "three"', 1))
    assert bad.read_text() != text, "the example no longer has `unit = 1` to break"
    result = coldgate("gateway", "check-config", str(bad))
    assert result.returncode == 1
    assert f'{bad}: sensors[0].unit: expected an integer 1..247, got "three"' in result.stderr


def test_alarm_commands_say_when_no_gateway_runs(tmp_path: Path) -> None:
    result = coldgate("gateway", "alarm", "silence", "--data-dir", str(tmp_path), "--by", "qa.lee")
    assert result.returncode == 1
    assert f"no gateway is running with control socket {tmp_path}/control.sock" in result.stderr
