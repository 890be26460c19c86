"""PostgreSQL roles (migration 0009): the service's role cannot change what is recorded.

Set up as deploy/README.md "PostgreSQL roles" says: a superuser makes the
group roles and a schema owner without superuser rights, the owner migrates,
and the service and reporting log in as members of ``coldgate_app`` and
``coldgate_readonly``.  A grant's refusal ("permission denied for table") is
told from a trigger's ("append-only"): both carry SQLSTATE 42501, and the
point here is that the grants refuse on their own, before any trigger runs.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("psycopg", reason="PostgreSQL tests need the [cloud] extra")

import msgspec
import psycopg
from alembic import command
from sqlalchemy import Engine, create_engine, make_url, select, text

from coldgate.cloud.audit.log import SYSTEM, Actor, verify
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.migrate import alembic_config
from coldgate.cloud.db.models import DeadLetter, DeadLetterReplay, Reading
from coldgate.cloud.db.partitions import ensure_partitions, partition_name
from coldgate.cloud.identity.users import add_user, check_login, disable_user, set_roles
from coldgate.cloud.ingest.replay import replay_dead_letters
from coldgate.contract.codec import encode
from coldgate.contract.topics import batch_topic
from tests.rig.cloud_db import RECEIVED, count, ingest
from tests.rig.ingest import NOW_MS, SITE, batch, batch_message, enrol, reading, status_message
from tests.rig.pg_roles import APP, INGEST, READONLY, make_group_roles

if TYPE_CHECKING:
    from tests.rig.postgres import ThrowawayDatabase

GW = "gw01"
#: Recorded data: the service's role may neither UPDATE (beyond two sanctioned fill-ins) nor DELETE.
PROTECTED = (
    "audit_log", "readings", "gaps", "alerts", "edge_items", "item_keys", "dead_letters",
    "dead_letter_replays", "qa_cases", "qa_case_alerts", "qa_case_steps", "e_signatures",
    "qa_case_stock", "qa_case_evidence", "qa_case_notes", "notifications", "notification_attempts",
    "notify_link_keys", "stored_reports", "recalls", "recall_items", "recall_events",
    "reading_packs", "reading_archives", "reading_purges",
)  # fmt: skip
#: Live state the service changes.
LIVE = (
    "sites", "zones", "gateways", "gateway_enrolments", "unknown_gateways", "sensors", "stream_coverage",
    "batch_ranges", "boot_anchors", "dead_letter_budgets", "user_roles",
)  # fmt: skip
#: A column per table to set to itself: a statement that changes nothing yet needs the UPDATE grant.
SOME_COLUMN = {
    "qa_cases": "title", "qa_case_alerts": "message", "qa_case_steps": "reason", "e_signatures": "reason",
    "qa_case_stock": "lot", "qa_case_evidence": "body", "qa_case_notes": "text", "notifications": "subject",
    "notification_attempts": "error", "notify_link_keys": "secret_hex",
    "stored_reports": "title", "reading_packs": "count", "reading_archives": "readings",
    "reading_purges": "rule",
    "recalls": "reason", "recall_items": "asked", "recall_events": "note",
    "audit_log": "reason", "readings": "value", "gaps": "detail", "alerts": "message", "edge_items": "kind",
    "item_keys": "ts", "dead_letters": "reason", "dead_letter_replays": "detail", "sites": "name",
    "zones": "temperature_class", "gateways": "online", "gateway_enrolments": "revoked_at",
    "unknown_gateways": "why", "sensors": "zone", "stream_coverage": "covered", "batch_ranges": "last_seq",
    "boot_anchors": "source", "dead_letter_budgets": "kept", "user_roles": "role", "users": "email",
}  # fmt: skip
ADMIN = Actor("admin (test)", "u-admin")


@dataclass
class Cluster:
    """One database set up the documented way, and the logins the tests act as."""

    database: ThrowawayDatabase
    owner: str
    service: str
    report: str

    def url(self, login: str) -> str:
        return make_url(self.database.url).set(username=login).render_as_string(hide_password=False)

    def dsn(self, login: str | None = None, dbname: str | None = None) -> str:
        params = dict(part.split("=", 1) for part in self.database.dsn.split())
        if login is not None:
            params["user"] = login
        if dbname is not None:
            params["dbname"] = dbname
        return " ".join(f"{key}={value}" for key, value in params.items())


@pytest.fixture
def cluster(pg_database: ThrowawayDatabase) -> Iterator[Cluster]:
    """The database owned by a plain (non-superuser) owner that ran the migrations, gateways
    enrolled, and LOGIN roles for the service and for reporting; every role made here is
    dropped afterwards (the group roles are the cluster's and stay)."""
    tag = uuid.uuid4().hex[:10]
    setup = Cluster(pg_database, f"coldgate_t_{tag}_owner", f"coldgate_t_{tag}_svc", f"coldgate_t_{tag}_rep")
    # On the server's own database: dropping the test's database ends every session in it.
    superuser = psycopg.connect(setup.dsn(dbname="postgres"), autocommit=True)
    try:
        make_group_roles(superuser)
        superuser.execute(f"CREATE ROLE {setup.owner} LOGIN")
        superuser.execute(f"CREATE ROLE {setup.service} LOGIN IN ROLE {APP}")
        superuser.execute(f"CREATE ROLE {setup.report} LOGIN IN ROLE {READONLY}")
        superuser.execute(f'ALTER DATABASE "{pg_database.name}" OWNER TO {setup.owner}')
        migrate(setup.url(setup.owner))
        yield setup
    finally:
        pg_database.drop()  # first: the owner cannot be dropped while it owns the database
        for role in (setup.service, setup.report, setup.owner):
            superuser.execute(f"DROP ROLE IF EXISTS {role}")
        superuser.close()


@pytest.fixture
def app(cluster: Cluster) -> Iterator[Engine]:
    """The writer engine of the service, logged in as a member of coldgate_app."""
    engine = make_engine(cluster.url(cluster.service), writer=True)
    yield engine
    engine.dispose()


def _refusal(cluster: Cluster, login: str, statement: str) -> psycopg.Error:
    """Run ``statement`` as ``login`` and return the error it must raise."""
    with psycopg.connect(cluster.dsn(login), autocommit=True) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(statement)
    return raised.value


def _denied_by_grant(cluster: Cluster, login: str, statement: str) -> None:
    error = _refusal(cluster, login, statement)
    assert error.sqlstate == "42501", (statement, error)
    assert "permission denied" in str(error) and "append-only" not in str(error), (statement, error)


def _allowed(cluster: Cluster, login: str, statement: str) -> None:
    with psycopg.connect(cluster.dsn(login), autocommit=True) as conn:
        conn.execute(statement)


def _record_a_bit_of_everything(app: Engine) -> None:
    """Through the service's own write paths: readings (unsynced, then corrected by a later anchor),
    a status, a dead letter twice, a replay of it, users, their roles and the audit entries."""
    enrol(app, [GW])
    ingest(app, *batch_message(GW, [reading(s, synced=False, ts=1_000 + s) for s in (1, 2)]))
    ingest(app, *batch_message(GW, [reading(3)]))  # the anchor: readings 1 and 2 get ts_corrected
    ingest(app, *status_message(GW, ts=NOW_MS + 60_000, outbox_depth=3))
    bad = msgspec.json.decode(encode(batch(GW, [reading(4), reading(5)])))
    bad["items"][1]["value"] = "warm"
    for _ in range(2):  # the same refusal twice: the dead letter's repeats move
        ingest(app, batch_topic(SITE, GW), msgspec.json.encode(bad))
    replay_dead_letters(app, by="ops", now=RECEIVED)
    with app.begin() as conn:
        add_user(
            conn, login="anna", printed_name="Anna QA", email="anna@example.org", password="correct horse 1",
            by=ADMIN, now=RECEIVED, roles=["qa"],
        )  # fmt: skip
        set_roles(conn, "anna", ["qa", "viewer"], by=ADMIN, now=RECEIVED)
        check_login(conn, "anna", "wrong password!", now=RECEIVED)
        disable_user(conn, "anna", by=SYSTEM, now=RECEIVED)


def test_the_service_runs_its_write_paths_as_the_app_role(cluster: Cluster, app: Engine) -> None:
    migrate(app)  # the service's start-up check of a database already at head needs no DDL
    _record_a_bit_of_everything(app)
    with app.connect() as conn:
        corrected = conn.execute(select(Reading.seq, Reading.ts_corrected).order_by(Reading.seq)).all()
        assert [tuple(r) for r in corrected] == [(1, NOW_MS + 1000), (2, NOW_MS + 2000), (3, None), (4, None)]
        letter = conn.execute(select(DeadLetter)).one()
        assert letter.repeats == 1 and letter.batch is not None
        entries, broken = verify(conn)
        assert entries >= 4 and broken is None
    assert count(app, DeadLetterReplay) == 1


@pytest.mark.parametrize("table", PROTECTED)
def test_recorded_data_refuses_update_delete_truncate_by_grant(cluster: Cluster, table: str) -> None:
    column = SOME_COLUMN[table]
    for statement in (
        f"UPDATE {table} SET {column} = {column}",
        f"DELETE FROM {table}",
        f"TRUNCATE {table} CASCADE",
    ):
        _denied_by_grant(cluster, cluster.service, statement)
    _allowed(cluster, cluster.service, f"SELECT * FROM {table} LIMIT 1")


def test_grants_refuse_before_the_triggers_would(cluster: Cluster, app: Engine) -> None:
    """The owner meets the trigger, the service the missing grant: two walls, either enough."""
    _record_a_bit_of_everything(app)
    owner_refusal = _refusal(cluster, cluster.owner, "DELETE FROM audit_log")
    assert owner_refusal.sqlstate == "42501" and "append-only" in str(owner_refusal)
    _denied_by_grant(cluster, cluster.service, "DELETE FROM audit_log")
    # Nor may the service take the triggers away: only the owner alters a table.
    error = _refusal(cluster, cluster.service, "ALTER TABLE audit_log DISABLE TRIGGER ALL")
    assert error.sqlstate == "42501" and "must be owner" in str(error)
    _denied_by_grant(cluster, cluster.service, "CREATE TABLE sneaky (x int)")


def test_a_reading_s_ts_corrected_is_filled_once_and_dead_letters_count_repeats(
    cluster: Cluster, app: Engine
) -> None:
    enrol(app, [GW])
    ingest(app, *batch_message(GW, [reading(1)]))  # synced: no ts_corrected yet
    _allowed(cluster, cluster.service, "UPDATE readings SET ts_corrected = 42 WHERE seq = 1")
    # Granted, so the trigger decides: once filled, ts_corrected stays.
    again = _refusal(cluster, cluster.service, "UPDATE readings SET ts_corrected = 43 WHERE seq = 1")
    assert again.sqlstate == "42501" and "append-only" in str(again)
    _denied_by_grant(cluster, cluster.service, "UPDATE readings SET ts = ts, ts_corrected = 44 WHERE seq = 1")
    _allowed(
        cluster, cluster.service, "UPDATE dead_letters SET repeats = repeats + 1, last_received_at = now()"
    )
    _denied_by_grant(cluster, cluster.service, "UPDATE dead_letters SET payload = payload")


def test_live_state_can_be_changed_and_users_only_updated(cluster: Cluster, app: Engine) -> None:
    _record_a_bit_of_everything(app)
    for table in LIVE:
        column = SOME_COLUMN[table]
        _allowed(cluster, cluster.service, f"UPDATE {table} SET {column} = {column}")
        _allowed(cluster, cluster.service, f"DELETE FROM {table} WHERE false")
    _allowed(cluster, cluster.service, "UPDATE users SET email = email")
    _denied_by_grant(cluster, cluster.service, "DELETE FROM users WHERE false")
    _denied_by_grant(cluster, cluster.service, "TRUNCATE users CASCADE")
    _denied_by_grant(cluster, cluster.service, "UPDATE alembic_version SET version_num = version_num")


#: Tables only the schema owner writes: the schema's version, archived and purged months (``cloud archive``).
OWNER_WRITES = frozenset({"alembic_version", "reading_packs", "reading_archives", "reading_purges"})


def test_no_table_lets_the_app_truncate_and_reporting_only_reads(cluster: Cluster) -> None:
    """Over every table at head, also those of later migrations and the partitions."""
    with psycopg.connect(cluster.dsn()) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            )
        ]
        assert "readings_default" in tables and "audit_log" in tables

        def may(role: str, table: str, privilege: str) -> bool:
            query = "SELECT has_table_privilege(%s, %s, %s)"
            return bool(conn.execute(query, (role, table, privilege)).fetchone()[0])  # type: ignore[index]

        for table in tables:
            assert not may(APP, table, "TRUNCATE") and not may(APP, table, "TRIGGER"), table
            assert may(APP, table, "SELECT"), table
            assert may(APP, table, "INSERT") == (table not in OWNER_WRITES), table
            for privilege in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
                assert not may(READONLY, table, privilege), (table, privilege)
        for table in (*PROTECTED, *(t for t in tables if t.startswith("readings_"))):
            assert not may(APP, table, "UPDATE") and not may(APP, table, "DELETE"), table


def test_reporting_reads_but_never_writes_nor_sees_password_hashes(cluster: Cluster, app: Engine) -> None:
    _record_a_bit_of_everything(app)
    _denied_by_grant(cluster, cluster.report, "INSERT INTO sites (id, name) VALUES ('s9', 'nine')")
    _denied_by_grant(cluster, cluster.report, "UPDATE gateways SET online = online")
    _denied_by_grant(cluster, cluster.report, "SELECT password_hash FROM users")
    _denied_by_grant(cluster, cluster.report, "SELECT coldgate_ensure_readings_partition('2031-01-01')")
    with psycopg.connect(cluster.dsn(cluster.report)) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (4,)
        assert conn.execute("SELECT login, active FROM users").fetchall() == [("anna", False)]
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] >= 4  # type: ignore[index]


def test_partitions_made_later_by_the_service_belong_to_the_owner(cluster: Cluster, app: Engine) -> None:
    """The scheduler, running as the service, makes next months' partitions through the owner's
    function: they come out owned by the owner, as protected as the rest, and hold the rows."""
    may_2031 = datetime.date(2031, 5, 1)
    with app.begin() as conn:
        assert ensure_partitions(conn, may_2031, datetime.date(2031, 6, 30)) == [
            "readings_2031_05",
            "readings_2031_06",
        ]
    name = partition_name(may_2031)
    with psycopg.connect(cluster.dsn()) as conn:
        owner, bound = conn.execute(
            "SELECT pg_get_userbyid(relowner), pg_get_expr(relpartbound, oid) FROM pg_class "
            "WHERE relname = %s",
            (name,),
        ).fetchone()  # type: ignore[misc]
    low = int(datetime.datetime(2031, 5, 1, tzinfo=datetime.UTC).timestamp() * 1000)
    high = int(datetime.datetime(2031, 6, 1, tzinfo=datetime.UTC).timestamp() * 1000)
    assert owner == cluster.owner
    assert bound == f"FOR VALUES FROM ('{low}') TO ('{high}')", "the same bounds as cloud/db/partitions.py"
    enrol(app, [GW])
    ingest(app, *batch_message(GW, [reading(1, ts=low + 5)]))
    with app.connect() as conn:
        assert conn.execute(text("SELECT tableoid::regclass::text FROM readings")).scalar_one() == name
    for statement in (f"UPDATE {name} SET value = value", f"DELETE FROM {name}", f"TRUNCATE {name}"):
        _denied_by_grant(cluster, cluster.service, statement)
    with psycopg.connect(cluster.dsn(cluster.report)) as conn:
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone() == (1,)
    with app.begin() as conn:  # idempotent, as the daily job needs
        ensure_partitions(conn, may_2031, may_2031)


def test_the_downgrade_revokes_and_leaves_the_roles(cluster: Cluster) -> None:
    """The roles are the cluster's (other databases grant to them): only this database's grants go."""
    engine = create_engine(cluster.url(cluster.owner))
    try:
        with engine.begin() as conn:
            config = alembic_config(engine.url)
            config.attributes["connection"] = conn
            command.downgrade(config, "0008")
        with psycopg.connect(cluster.dsn()) as conn:
            granted = conn.execute(
                "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a "
                "WHERE a.grantee IN (SELECT oid FROM pg_roles WHERE rolname IN (%s, %s))",
                (APP, READONLY),
            ).fetchone()
            assert granted == (0,)
            assert conn.execute("SELECT count(*) FROM pg_default_acl").fetchone() == (0,)
            assert conn.execute(
                "SELECT to_regprocedure('coldgate_ensure_readings_partition(date)')"
            ).fetchone() == (None,)
            roles = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN (%s, %s)", (APP, READONLY))
            assert roles.fetchone() == (2,)
        _denied_by_grant(cluster, cluster.service, "INSERT INTO sites (id) VALUES ('s9')")
        migrate(engine)  # and up again
    finally:
        engine.dispose()
    _allowed(cluster, cluster.service, "INSERT INTO sites (id) VALUES ('s9')")


def test_a_database_can_be_closed_to_the_logins_of_other_databases(cluster: Cluster) -> None:
    """The group roles span the cluster, so 0009 grants no CONNECT: closing a database to all but
    its own logins (deploy/README.md) keeps another database's service out."""
    with psycopg.connect(cluster.dsn(dbname="postgres"), autocommit=True) as superuser:
        superuser.execute(f'REVOKE CONNECT ON DATABASE "{cluster.database.name}" FROM PUBLIC')
        superuser.execute(f'GRANT CONNECT ON DATABASE "{cluster.database.name}" TO {cluster.owner}')
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(cluster.dsn(cluster.service)).close()
    with psycopg.connect(cluster.dsn(dbname="postgres"), autocommit=True) as superuser:
        superuser.execute(f'GRANT CONNECT ON DATABASE "{cluster.database.name}" TO {cluster.service}')
    _allowed(cluster, cluster.service, "INSERT INTO sites (id) VALUES ('s9')")


#: What an ingest worker's role may insert into (migration 0033), all else it may only read.
INGEST_INSERTS = (
    "readings", "item_keys", "edge_items", "gaps", "alerts", "reading_hours", "dead_letters",
    "binding_queue", "stream_coverage", "batch_ranges", "boot_anchors", "dead_letter_budgets",
    "unknown_gateways", "gateways", "sites", "sensors",
)  # fmt: skip


@pytest.fixture
def ingest_engine(cluster: Cluster) -> Iterator[Engine]:
    """An ingest worker's engine, logged in as a member of coldgate_ingest only."""
    login = f"{cluster.owner[:-6]}_ing"
    with psycopg.connect(cluster.dsn(dbname="postgres"), autocommit=True) as superuser:
        superuser.execute(f"CREATE ROLE {login} LOGIN IN ROLE {INGEST}")
    engine = make_engine(cluster.url(login), writer=True)
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(cluster.dsn(dbname="postgres"), autocommit=True) as superuser:
            superuser.execute(f"DROP OWNED BY {login} CASCADE")
            superuser.execute(f"DROP ROLE {login}")


def test_an_ingest_worker_stores_every_kind_of_message_as_the_ingest_role(
    cluster: Cluster, app: Engine, ingest_engine: Engine
) -> None:
    """Readings (unsynced, then corrected by an anchor), every other kind of edge item, a status, a
    refused payload kept twice, a gateway nobody enrolled: all through the worker's own role."""
    from coldgate.contract import examples

    enrol(app, [GW])  # enrolment is the service's (an administrator's command), not ingest's
    ingest(ingest_engine, *batch_message(GW, [reading(s, synced=False, ts=1_000 + s) for s in (1, 2)]))
    ingest(ingest_engine, *batch_message(GW, [reading(3)]))
    others = [examples.GAP, examples.ALERT, examples.MOVEMENT, examples.SCAN, examples.EVENT]
    renumbered = [msgspec.structs.replace(item, seq=4 + n) for n, item in enumerate(others)]
    ingest(ingest_engine, *batch_message(GW, renumbered))
    ingest(ingest_engine, *status_message(GW, ts=NOW_MS + 60_000, outbox_depth=3))
    bad = msgspec.json.decode(encode(batch(GW, [reading(9), reading(10)])))
    bad["items"][1]["value"] = "warm"
    for _ in range(2):
        ingest(ingest_engine, batch_topic(SITE, GW), msgspec.json.encode(bad))
    ingest(ingest_engine, *batch_message("gw-nobody-enrolled", [reading(1)]))
    with app.connect() as conn:
        corrected = conn.execute(select(Reading.seq, Reading.ts_corrected).order_by(Reading.seq)).all()
        # Reading 9 is the good half of the refused batch, salvaged; 10 is the dead letter.
        assert [tuple(r) for r in corrected] == [(1, NOW_MS + 1000), (2, NOW_MS + 2000), (3, None), (9, None)]
        kinds = conn.execute(text("SELECT kind, count(*) FROM edge_items GROUP BY kind ORDER BY kind")).all()
        assert {kind for kind, _ in kinds} == {"movement", "scan", "event"}, kinds
        assert conn.execute(text("SELECT count(*) FROM gaps")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM alerts")).scalar() == 1
        # The refused payload kept once and repeated once; the unenrolled gateway's first message kept.
        assert sorted(conn.execute(select(DeadLetter.repeats)).scalars().all()) == [0, 1]
        assert conn.execute(text("SELECT count(*) FROM unknown_gateways")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM binding_queue")).scalar()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO users (id) VALUES ('u-x')",
        "SELECT password_hash FROM users",
        "SELECT * FROM api_tokens",
        "SELECT * FROM browser_sessions",
        "INSERT INTO e_signatures (id) VALUES (1)",
        "INSERT INTO qa_cases (id) VALUES (1)",
        "INSERT INTO audit_log (seq) VALUES (1)",
        "INSERT INTO products (id) VALUES ('p')",
        "INSERT INTO recalls (id) VALUES (1)",
        "INSERT INTO user_roles (user_id) VALUES ('u')",
        "UPDATE readings SET value = 1",
        "DELETE FROM readings",
        "DELETE FROM edge_items",
        "TRUNCATE readings_default",
        "UPDATE lots SET status = status",
        "DELETE FROM gateways",
        "DELETE FROM sensors",
        "DELETE FROM stream_coverage",
    ],
)
def test_the_ingest_role_touches_no_person_decision_or_master_data(
    cluster: Cluster, ingest_engine: Engine, statement: str
) -> None:
    login = ingest_engine.url.username
    assert login is not None
    _denied_by_grant(cluster, login, statement)


def test_the_ingest_role_inserts_only_into_what_messages_become(cluster: Cluster) -> None:
    with psycopg.connect(cluster.dsn()) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            )
        ]
        for table in tables:
            inserts = conn.execute("SELECT has_table_privilege(%s, %s, 'INSERT')", (INGEST, table)).fetchone()
            assert inserts == (table in INGEST_INSERTS,), table
