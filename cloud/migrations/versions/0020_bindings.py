"""Bindings: where each stored movement and scan landed (document and line, or unbound at its door).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

Derived data (DESIGN.md principle 9): computed by ``cloud/documents/binding_store.py`` from the
stored items, the documents' versions and the catalog, and recomputed with the same result after a
correction, so on PostgreSQL the service may update and delete its rows (a re-run); the reporting
role may read them.  The items themselves stay untouched in ``edge_items``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

ID = sa.String(64)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bindings",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("site", ID, nullable=False),
        sa.Column("door", ID),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("document", ID),
        sa.Column("line", sa.Integer),
        sa.Column("how", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("product", ID),
        sa.Column("lot", ID),
        sa.Column("serial", ID),
        sa.Column("sscc", sa.String(18)),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unresolved", JSON, nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bindings_document", "bindings", ["document", "line"])
    op.create_index("ix_bindings_door", "bindings", ["site", "door", "time"])
    op.create_index("ix_bindings_lot", "bindings", ["product", "lot"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT SELECT, INSERT, UPDATE, DELETE ON bindings TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON bindings TO coldgate_readonly;
                END IF;
            END $$
            """
        )


def downgrade() -> None:
    op.drop_table("bindings")
