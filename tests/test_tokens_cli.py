"""``coldgate cloud tokens``, as an operator runs it: a person's token and a machine's, used against
the API, listed without secrets, and revoked; refusals are one plain line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.engine import make_engine
from tests.rig.commands import run_ok
from tests.rig.people import bearer, person


def tokens(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coldgate", "cloud", "tokens", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_tokens_end_to_end(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    run_ok(sys.executable, "-m", "coldgate", "cloud", "migrate", config)
    engine = make_engine(db_url)
    try:
        person(engine, "lena", ("viewer",))
        mine = tokens(config, "create", "--user", "Lena", "--label", "nightly export", "--days", "7")
        assert mine.returncode == 0, mine.stderr
        token = mine.stdout.strip()
        assert token.startswith("cg_t-") and "shown once" in mine.stderr
        machine = tokens(config, "create", "--machine", "ERP-Link", "--role", "viewer", "--label", "ERP")
        assert machine.returncode == 0, machine.stderr
        with TestClient(create_app(engine, ApiTokens(()))) as client:
            assert client.get("/auth/me", headers=bearer(token)).json()["login"] == "lena"
            me = client.get("/auth/me", headers=bearer(machine.stdout.strip())).json()
            assert me["name"] == "machine erp-link"
            listing = tokens(config, "list")
            assert listing.returncode == 0 and token not in listing.stdout
            rows = [line.split("\t") for line in listing.stdout.splitlines()[1:]]
            assert {row[1] for row in rows} >= {"lena", "machine erp-link (viewer)"}
            lenas = next(row[0] for row in rows if row[1] == "lena" and row[2] == "nightly export")
            assert tokens(config, "revoke", lenas).returncode == 0
            assert client.get("/auth/me", headers=bearer(token)).status_code == 401
        again = tokens(config, "revoke", lenas)
        assert again.returncode != 0 and "already revoked" in again.stderr
        for args, words in (
            (("create", "--label", "x"), "exactly one of"),
            (("create", "--user", "nobody", "--label", "x"), "no user 'nobody'"),
            (("create", "--user", "lena", "--role", "viewer", "--label", "x"), "--role is for machine"),
            (("create", "--machine", "erp", "--label", "x"), "roles: give at least one"),
            (("revoke", "t-zz"), "token_id: is not a token id"),
        ):
            done = tokens(config, *args)
            assert done.returncode != 0 and words in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr
    finally:
        engine.dispose()
