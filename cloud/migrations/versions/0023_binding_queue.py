"""The binding queue: the stored movements and scans binding has not yet bound.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

Binding found its work by an anti-join of ``edge_items`` against ``bindings``: on PostgreSQL a hash
anti-join over both whole tables, about a second per run at a million stored items even with nothing
to bind, every 2 s (``python -m bench.binding``).  Ingest now adds each new movement's and scan's key
here in the transaction that stores it, and binding reads the queue and empties it as it binds, so a
run costs what it binds, not what was ever stored.  Derived like ``bindings`` (a re-run refills it),
so the service may add and delete rows.  Filled here with what is unbound now.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "binding_queue",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.execute(
        """
        INSERT INTO binding_queue (gateway, stream, seq)
        SELECT e.gateway, e.stream, e.seq FROM edge_items e
        WHERE e.kind IN ('movement', 'scan') AND NOT EXISTS (
            SELECT 1 FROM bindings b WHERE b.gateway = e.gateway AND b.stream = e.stream AND b.seq = e.seq
        )
        """
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT SELECT, INSERT, DELETE ON binding_queue TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON binding_queue TO coldgate_readonly;
                END IF;
            END $$
            """
        )


def downgrade() -> None:
    op.drop_table("binding_queue")
