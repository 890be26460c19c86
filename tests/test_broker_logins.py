"""Gateways' broker logins written the way Mosquitto's own tool writes them."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from coldgate.cloud.cli import cloud
from coldgate.cloud.identity.broker_logins import mosquitto_hash, with_login, without_login
from tests.rig.commands import run_ok


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs Mosquitto's mosquitto_passwd")
def test_the_hash_is_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    run_ok("mosquitto_passwd", "-c", "-b", passwd, "gw01", "s3cret-Pa55")
    _, hashed = passwd.read_text().strip().split(":", 1)
    _, _, iterations, salt, _ = hashed.split("$")
    assert mosquitto_hash("s3cret-Pa55", salt=base64.b64decode(salt), iterations=int(iterations)) == hashed
    assert mosquitto_hash("s3cret-Pa55x", salt=base64.b64decode(salt), iterations=int(iterations)) != hashed


def test_a_login_is_replaced_or_added_and_the_others_kept() -> None:
    text = "gw01:$7$a\ngw02:$7$b\n"
    assert with_login(text, "gw02", "$7$c") == ("gw01:$7$a\ngw02:$7$c\n", True)
    assert with_login(text, "gw03", "$7$d") == ("gw01:$7$a\ngw02:$7$b\ngw03:$7$d\n", False)
    assert with_login("", "gw01", "$7$e") == ("gw01:$7$e\n", False)
    assert without_login(text, "gw01") == ("gw02:$7$b\n", True)
    assert without_login(text, "gw09") == (text, False)
    assert without_login("gw01:$7$a\n", "gw01") == ("", True)
    assert without_login(text, "gw0") == (text, False), "a prefix of a username is not the username"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["enroll", "gw 01", "--site", "s1"], "is not an id"),
        (["enroll", "gw01", "--site", "s/1"], "is not an id"),
        (["revoke", "gw01"], "no such file"),
    ],
)
def test_bad_input_is_refused_with_what_and_why(tmp_path: Path, args: list[str], words: str) -> None:
    where = ["--passwd-file", str(tmp_path / "passwd"), "--config", str(tmp_path / "cloud.toml")]
    result = CliRunner().invoke(cloud, ["gateways", *args, *where])
    assert result.exit_code != 0 and words in result.output
    assert not (tmp_path / "passwd").exists()


def test_the_password_file_keeps_its_mode(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("gw01:$7$a\n")
    passwd.chmod(0o640)
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "cloud.sqlite3"}"\n')
    where = ["--passwd-file", str(passwd), "--config", str(config)]
    args = ["gateways", "enroll", "gw02", "--site", "s1", *where]
    result = CliRunner().invoke(cloud, args)
    assert result.exit_code == 0, result.output
    assert passwd.stat().st_mode & 0o777 == 0o640
    assert [line.split(":")[0] for line in passwd.read_text().splitlines()] == ["gw01", "gw02"]
