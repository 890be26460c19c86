"""The dock's decisions: discrepancies accepted with a reason, unbound items assigned by hand; and where
a put-away scan was made.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

``discrepancy_acceptances`` and ``item_assignments`` are records of people's decisions (who, when, why:
21 CFR Part 11), so triggers refuse UPDATE and DELETE on both dialects and on PostgreSQL the service's
role may only read and add to them.  An item is assigned once (unique item key): an assignment is what
binds it from then on, re-runs included (``cloud/documents/binding_store.py``).

``bindings.location`` is derived like the rest of ``bindings``: the location a put-away scan's scanner
was placed at when it scanned, which custody needs and the scan itself does not say.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("discrepancy_acceptances", "item_assignments")


def upgrade() -> None:
    with op.batch_alter_table("bindings") as batch:
        batch.add_column(sa.Column("location", ID))
    op.create_table(
        "discrepancy_acceptances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document", ID, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_by", sa.Text, nullable=False),
        sa.Column("accepted_by_id", ID),
    )
    op.create_index("ix_discrepancy_acceptances_document", "discrepancy_acceptances", ["document", "key"])
    op.create_table(
        "item_assignments",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("document", ID, nullable=False),
        sa.Column("line", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.Text, nullable=False),
        sa.Column("assigned_by_id", ID),
    )
    op.create_index("ix_item_assignments_document", "item_assignments", ["document"])
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
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
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT USAGE, SELECT ON SEQUENCE discrepancy_acceptances_id_seq TO coldgate_app;
                END IF;
            END $$
            """
        )
    else:
        for table in TABLES:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {event} refused'); END"
                )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("bindings") as batch:
        batch.drop_column("location")
