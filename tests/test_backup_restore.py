"""Backups (deploy/README.md, "Backups and restore"): a ``pg_dump`` of the cloud's database restores into a
database whose audit trail verifies, whose records are the same row for row, and whose grants still keep
the service's role from changing what is recorded; a restore from before the last audit checkpoint is
told, by the entry that is gone, not taken for the whole trail.

Run with the machine's own ``pg_dump``/``pg_restore``, as the procedure says, against databases of the
shared server (``ThrowawayDatabase``): the roles are the cluster's, so the owner and the group roles of
the dumped database exist where it is restored, as on a standby cluster set up by the same procedure.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="PostgreSQL tests need the [cloud] extra")

import psycopg
from sqlalchemy import Engine, make_url, text

from coldgate.cloud.audit.checkpoint import load_private_key, write_checkpoint
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.identity.users import add_user
from tests.rig.audit_keys import checkpoint_key_file
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import batch_message, enrol, reading
from tests.rig.pg_roles import APP, READONLY, make_group_roles
from tests.rig.postgres import SERVER_DSN, ThrowawayDatabase, _pg_bin, server_available

pytestmark = pytest.mark.skipif(
    not server_available(), reason="needs the PostgreSQL server (.ci/run starts it)"
)

GW = "gw-backup"
ADMIN = Actor("admin (test)", "u-admin")
#: Recorded tables compared row for row between the database and its restore.
RECORDED = ("audit_log", "readings", "item_keys", "edge_items", "users", "user_roles")


class Owned:
    """A database owned by a plain (non-superuser) owner that migrated it, as deploy/README.md sets up."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.database = ThrowawayDatabase.on_server(SERVER_DSN)
        self.url = make_url(self.database.url).set(username=owner).render_as_string(hide_password=False)

    def dsn(self) -> str:
        return f"{self.database.dsn} user={self.owner}"


@pytest.fixture
def owner() -> Iterator[tuple[str, psycopg.Connection[tuple[object, ...]]]]:
    name = f"coldgate_t_{uuid.uuid4().hex[:10]}_owner"
    superuser = psycopg.connect(SERVER_DSN, autocommit=True)
    try:
        make_group_roles(superuser)
        superuser.execute(f"CREATE ROLE {name} LOGIN")
        yield name, superuser
    finally:
        superuser.execute(f"DROP ROLE IF EXISTS {name}")
        superuser.close()


def _owned(owner: str, superuser: psycopg.Connection[tuple[object, ...]], *, migrated: bool) -> Owned:
    db = Owned(owner)
    superuser.execute(f'ALTER DATABASE "{db.database.name}" OWNER TO {owner}')
    if migrated:
        migrate(db.url)
    return db


def _record(engine: Engine, seqs: range) -> None:
    """Readings through ingest and two people through the identity writer (each audited)."""
    ingest(engine, *batch_message(GW, [reading(seq) for seq in seqs]))
    with engine.begin() as conn:
        for who in (f"qa{seqs.start}", f"wh{seqs.start}"):
            add_user(
                conn, login=who, printed_name=who.upper(), email=f"{who}@example.org",
                password="correct horse 1", by=ADMIN, now=RECEIVED, roles=["qa"],
            )  # fmt: skip


def _fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Rows and a SHA-256 of each recorded table's rows in key order, as text."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = {}
            for table in RECORDED:
                rows = conn.execute(text(f"SELECT t::text FROM {table} t ORDER BY 1")).scalars().all()
                found[table] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
            return found
    finally:
        engine.dispose()


def _verify(
    url: str, tmp_path: Path, checkpoints: tuple[Path, Path] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / f"cloud-{uuid.uuid4().hex[:6]}.toml"
    body = f'[database]\nurl = "{url}"\n'
    if checkpoints is not None:
        points, key = checkpoints
        body += f'[audit]\ncheckpoint_file = "{points}"\ncheckpoint_key_file = "{key}"\n'
    config.write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "coldgate", "cloud", "audit", "verify", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _dump(db: Owned, path: Path) -> None:
    """The nightly dump of deploy/README.md: custom format, as the schema owner."""
    subprocess.run(
        [_pg_bin("pg_dump"), "--format=custom", f"--file={path}", db.dsn()], check=True, timeout=300
    )


def _restore(dump: Path, into: Owned) -> None:
    """The restore of deploy/README.md: into an empty database owned by the same owner, as the owner,
    stopping at the first error (a restore that half worked must not be taken for a restore)."""
    command = [_pg_bin("pg_restore"), "--exit-on-error", "--single-transaction", f"--dbname={into.dsn()}"]
    subprocess.run([*command, str(dump)], check=True, timeout=300)


def test_a_dump_restores_to_the_same_records_and_a_verified_audit_trail(
    owner: tuple[str, psycopg.Connection[tuple[object, ...]]], tmp_path: Path
) -> None:
    name, superuser = owner
    source = _owned(name, superuser, migrated=True)
    restored = _owned(name, superuser, migrated=False)
    try:
        engine = make_engine(source.url, writer=True)
        enrol(engine, [GW])
        _record(engine, range(1, 21))
        engine.dispose()
        dump = tmp_path / "coldgate.dump"
        _dump(source, dump)
        _restore(dump, restored)

        fingerprint = _fingerprint(source.url)
        assert _fingerprint(restored.url) == fingerprint
        assert fingerprint["readings"][0] == 20 and fingerprint["audit_log"][0] >= 2
        before, after = _verify(source.url, tmp_path), _verify(restored.url, tmp_path)
        assert before.returncode == 0 and after.returncode == 0, after.stderr
        entries = fingerprint["audit_log"][0]
        assert f"intact: {entries} entries verified" in before.stdout
        assert f"intact: {entries} entries verified" in after.stdout

        # The grants came back with the tables: the service's role still cannot change a record.
        service = f"coldgate_t_{uuid.uuid4().hex[:10]}_svc"
        superuser.execute(f"CREATE ROLE {service} LOGIN IN ROLE {APP}")
        try:
            with psycopg.connect(f"{restored.database.dsn} user={service}", autocommit=True) as conn:
                for statement in ("UPDATE readings SET value = 99", "DELETE FROM audit_log"):
                    with pytest.raises(psycopg.Error) as refused:
                        conn.execute(statement)
                    assert refused.value.sqlstate == "42501", statement
            with psycopg.connect(restored.database.dsn, autocommit=True) as conn:
                has = conn.execute(
                    "SELECT has_table_privilege(%s, 'readings', 'SELECT')", (READONLY,)
                ).fetchone()
                assert has == (True,)
        finally:
            superuser.execute(f"DROP ROLE IF EXISTS {service}")
    finally:
        source.database.drop()
        restored.database.drop()


def test_a_restore_from_before_the_last_checkpoint_names_the_entry_it_lost(
    owner: tuple[str, psycopg.Connection[tuple[object, ...]]], tmp_path: Path
) -> None:
    """A nightly dump restored after a crash lacks the day's entries; the chain alone cannot tell (a
    shorter chain is still a chain), the checkpoints kept off the database host do."""
    name, superuser = owner
    source = _owned(name, superuser, migrated=True)
    restored = _owned(name, superuser, migrated=False)
    key, points = checkpoint_key_file(tmp_path, "audit.key"), tmp_path / "audit.checkpoints"
    try:
        engine = make_engine(source.url, writer=True)
        enrol(engine, [GW])
        _record(engine, range(1, 11))
        dump = tmp_path / "coldgate.dump"
        _dump(source, dump)
        _record(engine, range(11, 21))  # the day goes on after the night's dump...
        with engine.connect() as conn:
            head = write_checkpoint(conn, points, RECEIVED, load_private_key(key))  # ...and is checkpointed
        engine.dispose()
        assert head is not None
        _restore(dump, restored)

        alone = _verify(restored.url, tmp_path)
        assert alone.returncode == 0, "the restored chain is whole in itself"
        held = _verify(restored.url, tmp_path, (points, key))
        assert held.returncode == 1
        assert f"BROKEN at entry {head.seq}" in held.stderr and "is gone" in held.stderr
        assert _verify(source.url, tmp_path, (points, key)).returncode == 0
    finally:
        source.database.drop()
        restored.database.drop()
