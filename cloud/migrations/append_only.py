"""Making tables append-only, shared by the migrations that add records (readings, audit, cases,
signatures): the same triggers and grants every time, written once.

A record table refuses UPDATE and DELETE by triggers on both dialects (and TRUNCATE on PostgreSQL, whose
``coldgate_refuse_change()`` migration 0007 defines); on PostgreSQL the service's role may only read and
add to it and the reporting role only read it, when those roles exist (``deploy/``).  Migrations before
0025 spell the same statements out; they are history and stay as they ran.
"""

from __future__ import annotations

from collections.abc import Iterable

from alembic import op

__all__ = ["make_append_only"]


def make_append_only(tables: Iterable[str]) -> None:
    """Refuse UPDATE, DELETE (and TRUNCATE) on each of ``tables``, and grant the roles only what adds."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in tables:
        if not postgres:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {event} refused'); END"
                )
            continue
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.execute(
            f"""
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT SELECT, INSERT ON {table} TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON {table} TO coldgate_readonly;
                END IF;
            END $$
            """
        )
