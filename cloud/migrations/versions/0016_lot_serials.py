"""Serials of a lot (``lot_serials``): single serials or numeric ranges, each tied to one lot of a product.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

An SGTIN tag carries GTIN and serial but no lot; these rows tie it to its lot.
Append-only like the rest of the catalog: triggers refuse UPDATE and DELETE on
both dialects; on PostgreSQL the service's role may only read and add.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLE = "lot_serials"
ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("product", ID, nullable=False),
        sa.Column("first", ID, nullable=False),
        sa.Column("last", ID, nullable=False),
        sa.Column("lot", ID, nullable=False),
        sa.Column("numeric", sa.Boolean, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.Text, nullable=False),
        sa.Column("added_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("product", "first"),
    )
    op.create_index("ix_lot_serials_lookup", TABLE, ["product", "numeric", "width", "first"])
    op.create_index("ix_lot_serials_lot", TABLE, ["product", "lot"])
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
