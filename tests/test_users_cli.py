"""``coldgate cloud users``, end to end as an operator runs it: a subprocess on a cloud TOML, on both
dialects, with the password typed twice (on stdin) or read from --password-file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")
pytest.importorskip("pwdlib", reason="password hashing needs the [cloud] extra")

from tests.rig.commands import run_ok

PASSWORD = "a long enough password"


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "cloud.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n')
    return path


def users(config: Path, *args: str | Path) -> str:
    return run_ok(sys.executable, "-m", "coldgate", "cloud", "users", *args, "--config", config)


def refused(config: Path, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "coldgate", "cloud", "users", *args, "--config", str(config)],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0, done.stdout
    return done.stderr


def listed(config: Path) -> dict[str, list[str]]:
    lines = users(config, "list").splitlines()
    assert lines[0] == "login\tid\tprinted_name\temail\troles\tstate"
    return {row[0]: row[1:] for row in (line.split("\t") for line in lines[1:-1])}


def test_users_end_to_end(config: Path, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    out = users(config, "add", "root", "--name", "Root Admin", "--email", "root@example.com", "--admin",
                "--password-file", secret)  # fmt: skip
    assert out.startswith("added root (u-") and "role(s) admin" in out
    typed = subprocess.run(
        [sys.executable, "-m", "coldgate", "cloud", "users", "add", "Alice", "--name", "Alice Example",
         "--email", "alice@example.com", "--phone", "+41 44 000 00 00", "--role", "qa", "--role", "viewer",
         "--config", str(config)],
        input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    assert PASSWORD not in typed.stdout
    rows = listed(config)
    assert rows["root"][1:] == ["Root Admin", "root@example.com", "admin", "active"]
    assert rows["alice"][1:] == ["Alice Example", "alice@example.com", "qa,viewer", "active"]

    assert users(config, "roles", "alice", "--role", "qa_manager") == "alice: role(s) now qa_manager\n"
    assert listed(config)["alice"][3] == "qa_manager"
    other = tmp_path / "other"
    other.write_text("another long password\r\n")
    assert "new password set for alice" in users(config, "reset-password", "alice", "--password-file", other)
    assert "not locked" in refused(config, "unlock", "alice")
    assert users(config, "disable", "alice") == "disabled alice\n"
    assert listed(config)["alice"][4] == "disabled"
    assert "is taken (logins are never reused" in refused(
        config, "add", "alice", "--name", "A", "--email", "a@example.com", "--password-file", str(secret)
    )
    # add, add, roles, reset-password, disable: one entry each, none for what was refused
    verified = run_ok(sys.executable, "-m", "coldgate", "cloud", "audit", "verify", config)
    assert "audit trail intact: 5 entries verified" in verified


def test_refusals_name_the_field(config: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("too short\n")
    add = ("add", "bob", "--name", "Bob", "--email", "bob@example.com")
    assert "password: is 9 characters; at least 12 are needed" in refused(
        config, *add, "--password-file", str(short)
    )
    assert "login: must be 1-64" in refused(
        config, "add", "bad login", "--name", "B", "--email", "b@example.com"
    )
    assert "email: is not an e-mail address" in refused(
        config, "add", "bob", "--name", "Bob", "--email", "nope", "--password-file", str(short)
    )
    mismatch = refused(config, *add, stdin=f"{PASSWORD}\nsomething else entirely\n")
    assert "Aborted" in mismatch or "do not match" in mismatch
    assert "'root' is not one of" in refused(config, "roles", "bob", "--role", "root")
    assert "no user 'ghost'" in refused(config, "disable", "ghost")
    assert listed(config) == {}


def test_the_password_policy_comes_from_the_cloud_config(tmp_path: Path) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "cloud.sqlite3"}"\n[identity]\npassword_min_length = 20\n'
    )
    secret = tmp_path / "pw"
    secret.write_text("sixteen-chars-ok\n")  # 16: enough for the default, not for this site's 20
    done = subprocess.run(
        [sys.executable, "-m", "coldgate", "cloud", "users", "add", "anna", "--name", "Anna Berg",
         "--email", "anna@example.com", "--password-file", str(secret), "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "at least 20" in done.stderr, done.stderr
