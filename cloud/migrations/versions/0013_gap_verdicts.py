"""Verdicts on the cloud's "gateway unheard" gaps: delayed data or monitoring interrupted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

A record of its own referring to the gap (``cloud/alerts/gap_verdicts.py``),
append-only like the gaps themselves: triggers refuse UPDATE and DELETE on
both dialects, and on PostgreSQL the service's role may only read and add.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLE = "gap_verdicts"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("gap_stream", sa.String(64), primary_key=True),
        sa.Column("gap_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("gap_end", sa.BigInteger, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_refuse_change()"
        )
        op.execute(
            f"""
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT SELECT, INSERT ON {TABLE} TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON {TABLE} TO coldgate_readonly;
                END IF;
            END $$
            """
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only: {event} refused'); END"
            )


def downgrade() -> None:
    op.drop_table(TABLE)
