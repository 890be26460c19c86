"""The audit trail, and the database itself refusing to change what is recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``audit_log`` is append-only.  So are the recorded data: readings, gaps,
alerts, edge items, their keys, dead letters and their replays.  Triggers on
both dialects refuse UPDATE and DELETE on them (and TRUNCATE on PostgreSQL),
whoever asks, with two sanctioned exceptions that ingest needs:

- a reading's ``ts_corrected`` may be filled once (clock correction), nothing
  else of the reading changed;
- a dead letter's ``repeats`` and ``last_received_at`` move when the same
  refusal comes again, and its ``batch`` may be filled once.

Detaching a month's partition of ``readings`` (archiving) is DDL, not a
DELETE, and stays possible for the owner of the schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.String(64)

#: Tables whose rows are never changed or removed.
APPEND_ONLY = ("audit_log", "gaps", "alerts", "edge_items", "item_keys", "dead_letter_replays")
READING_FIXED = (
    "gateway", "stream", "seq", "ts", "boot", "mono", "synced", "sensor", "quantity", "value", "unit",
    "quality", "reason",
)  # fmt: skip
DEAD_LETTER_FIXED = (
    "id", "received_at", "topic", "payload", "reason", "gateway", "path", "fingerprint", "payload_size",
    "payload_sha256", "truncated",
)  # fmt: skip


def _same(columns: tuple[str, ...], postgresql: bool) -> str:
    compare = "IS NOT DISTINCT FROM" if postgresql else "IS"
    return " AND ".join(f"NEW.{c} {compare} OLD.{c}" for c in columns)


def _reading_ok(postgresql: bool) -> str:
    return f"OLD.ts_corrected IS NULL AND NEW.ts_corrected IS NOT NULL AND {_same(READING_FIXED, postgresql)}"


def _dead_letter_ok(postgresql: bool) -> str:
    batch = "NEW.batch IS NOT DISTINCT FROM OLD.batch" if postgresql else "NEW.batch IS OLD.batch"
    return f"({batch} OR OLD.batch IS NULL) AND {_same(DEAD_LETTER_FIXED, postgresql)}"


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", ID),
        sa.Column("actor_name", sa.Text, nullable=False),
        sa.Column("action", ID, nullable=False),
        sa.Column("entity_type", ID, nullable=False),
        sa.Column("entity_id", sa.Text, nullable=False),
        sa.Column("before", sa.Text),
        sa.Column("after", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("request_id", ID),
        sa.Column("client", sa.Text),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_up()
    else:
        _sqlite_up()


def _sqlite_up() -> None:
    def refuse(table: str, event: str, when: str = "") -> None:
        condition = f" WHEN NOT ({when})" if when else ""
        message = f"{table} is append-only: {event} refused"
        op.execute(
            f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table}{condition} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )

    for table in (*APPEND_ONLY, "readings", "dead_letters"):
        refuse(table, "DELETE")
    for table in APPEND_ONLY:
        refuse(table, "UPDATE")
    refuse("readings", "UPDATE", _reading_ok(False))
    refuse("dead_letters", "UPDATE", _dead_letter_ok(False))


def _postgresql_up() -> None:
    op.execute(
        """
        CREATE FUNCTION coldgate_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for name, ok in (("readings", _reading_ok(True)), ("dead_letters", _dead_letter_ok(True))):
        op.execute(
            f"""
            CREATE FUNCTION coldgate_{name}_update() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {ok} THEN RETURN NEW; END IF;
                RAISE EXCEPTION '{name} is append-only: UPDATE refused (only the sanctioned fill-ins)'
                    USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
    for table in (*APPEND_ONLY, "readings", "dead_letters"):
        events = "UPDATE OR DELETE" if table in APPEND_ONLY else "DELETE"
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_refuse_change()"
        )
    for table in ("readings", "dead_letters"):
        op.execute(
            f"CREATE TRIGGER {table}_sanctioned_update BEFORE UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION coldgate_{table}_update()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*APPEND_ONLY, "readings", "dead_letters"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_sanctioned_update ON {table}")
        for name in ("refuse_change", "readings_update", "dead_letters_update"):
            op.execute(f"DROP FUNCTION IF EXISTS coldgate_{name}()")
    else:
        for table in (*APPEND_ONLY, "readings", "dead_letters"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    op.drop_table("audit_log")
