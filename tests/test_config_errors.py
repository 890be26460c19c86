"""Every config mistake in tests/testcases/config/<case>/ gives exactly its expected message.

A case is a folder named after the mistake it reproduces (the case-folder
convention of tests/rig/cases.py), holding the input (``gateway.toml`` or
``cloud.toml``: the message names the file) and ``expected.txt`` (one line,
the whole message).  A new bug report becomes a new folder, not a new test.  The
loader is run from inside the folder so the message names the file as a user
would type it (``gateway.toml: ...``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coldgate.cloud.config import load_cloud_config
from coldgate.configfile import ConfigError
from coldgate.gateway.config_load import load_gateway_config
from tests.rig.cases import case_dirs, each_case, family_dir, input_file, read_expected

LOADERS = {"gateway.toml": load_gateway_config, "cloud.toml": load_cloud_config}
CASES_DIR = family_dir("config")
CASES = case_dirs("config", inputs=list(LOADERS))


@each_case("config", inputs=list(LOADERS))
def test_case_gives_expected_error(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = input_file(case, list(LOADERS)).name
    expected = read_expected(case)
    monkeypatch.chdir(case)
    with pytest.raises(ConfigError) as info:
        LOADERS[name](name)
    assert str(info.value) == expected
    assert info.value.file == name


def test_issue_example_is_reproduced_exactly() -> None:
    messages = {read_expected(c).strip() for c in CASES}
    assert 'gateway.toml: sensors[2].unit: expected an integer 1..247, got "three"' in messages


def test_enough_kinds_of_mistakes_are_covered() -> None:
    # The issue asks for at least 10 kinds; the folder names say which.
    assert len(CASES) >= 12


def test_issue_example_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES_DIR / "sensor_unit_not_an_integer")
    with pytest.raises(ConfigError) as info:
        load_gateway_config("gateway.toml")
    err = info.value
    assert (err.file, err.key, err.expected, err.found) == (
        "gateway.toml",
        "sensors[2].unit",
        "an integer 1..247",
        '"three"',
    )


def test_syntax_error_carries_line_and_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES_DIR / "toml_syntax_missing_equals")
    with pytest.raises(ConfigError) as info:
        load_gateway_config("gateway.toml")
    assert (info.value.line, info.value.column, info.value.key) == (3, 6, "")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert str(info.value) == f"{path}: cannot read the file: No such file or directory"
    assert info.value.key == ""


def test_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_cloud_config(tmp_path)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'[gateway]\nid = "pi-01"\nsite = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_gateway_config(path)
    assert str(info.value) == f"{path}: line 3: not UTF-8 text (byte 0xe9)"


def test_windows_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_bytes(b'\xef\xbb\xbf[gateway]\r\nid = "pi-01"\r\nsite = "dock-1"\r\n')
    assert load_gateway_config(path).gateway.id == "pi-01"


def test_password_in_url_is_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "cloud.toml"
    path.write_text('[database]\nurl = "postgresql://app:hunter2@db/coldgate"\n')
    with pytest.raises(ConfigError) as info:
        load_cloud_config(path)
    assert "hunter2" not in str(info.value)
    assert '"postgresql://app:***@db/coldgate"' in str(info.value)
