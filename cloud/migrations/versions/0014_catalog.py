"""Master data, versioned: temperature classes, products (and the index of their identifiers), lots.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06

A change adds the next version of a record (``cloud/catalog/``), so the
history of every record is its rows and nothing is edited: triggers refuse
UPDATE and DELETE on the three tables on both dialects, and on PostgreSQL
the service's role may only read and add to them.  ``product_identifiers``
is an index the product writes replace, not a record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.String(64)
VERSIONED = ("temperature_classes", "products", "lots")


def _version_columns() -> list[sa.Column]:
    return [
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Text, nullable=False),
        sa.Column("changed_by_id", ID),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "temperature_classes",
        sa.Column("name", ID, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("spec", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("name", "version"),
    )
    op.create_table(
        "products",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("gtin", sa.String(14)),
        sa.Column("hibc_lic", sa.String(4)),
        sa.Column("hibc_pcn", sa.String(18)),
        sa.Column("hibc_uom", sa.Integer),
        sa.Column("ma_id", ID),
        sa.Column("temperature_class", ID, nullable=False),
        sa.Column("tor_budget_s", sa.Integer),
        sa.Column("serialised", sa.Boolean, nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("id", "version"),
    )
    op.create_table(
        "product_identifiers",
        sa.Column("scheme", sa.String(8), primary_key=True),
        sa.Column("value", ID, primary_key=True),
        sa.Column("product", ID, nullable=False),
    )
    op.create_table(
        "lots",
        sa.Column("product", ID, nullable=False),
        sa.Column("lot", ID, nullable=False),
        sa.Column("expiry", sa.Date),
        sa.Column("expiry_hour", sa.Integer),
        sa.Column("manufactured", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        *_version_columns(),
        sa.PrimaryKeyConstraint("product", "lot", "version"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in VERSIONED:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION coldgate_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION coldgate_refuse_change()"
            )
        grants = [(table, "SELECT, INSERT") for table in VERSIONED]
        grants.append(("product_identifiers", "SELECT, INSERT, DELETE"))
        for table, rights in grants:
            op.execute(
                f"""
                DO $$ BEGIN
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                        GRANT {rights} ON {table} TO coldgate_app;
                    END IF;
                    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                        GRANT SELECT ON {table} TO coldgate_readonly;
                    END IF;
                END $$
                """
            )
    else:
        for table in VERSIONED:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {event} refused'); END"
                )


def downgrade() -> None:
    for table in ("lots", "product_identifiers", "products", "temperature_classes"):
        op.drop_table(table)
