"""Inventory documents (receiving notes, dispatch orders, transfers), versioned, and their lines.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

Both tables are records (``cloud/documents/documents.py``): a change adds the
document's next version with its lines, so triggers refuse UPDATE and DELETE
on both dialects, and on PostgreSQL the service's role may only read and add
to them.  A reference is unique per site and kind among first versions (the
only version that sets it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ID = sa.String(64)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = ("document_versions", "document_lines")


def upgrade() -> None:
    op.create_table(
        "document_versions",
        sa.Column("id", ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("site", ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reference", ID, nullable=False),
        sa.Column("party", sa.Text),
        sa.Column("door", ID),
        sa.Column("opened_at", sa.BigInteger),
        sa.Column("closed_at", sa.BigInteger),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("changed_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", "version"),
    )
    op.create_index(
        "ux_document_reference", "document_versions", ["site", "kind", "reference"], unique=True,
        postgresql_where=sa.text("version = 1"), sqlite_where=sa.text("version = 1"),
    )  # fmt: skip
    op.create_index("ix_document_versions_door", "document_versions", ["site", "door"])
    op.create_table(
        "document_lines",
        sa.Column("document", ID, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("number", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("product", ID, nullable=False),
        sa.Column("lot", ID),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("ssccs", JSON, nullable=False),
        sa.Column("serials", JSON, nullable=False),
        sa.PrimaryKeyConstraint("document", "version", "number"),
    )
    op.create_index("ix_document_lines_product", "document_lines", ["product", "lot"])
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
