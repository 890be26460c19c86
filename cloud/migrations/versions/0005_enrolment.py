"""Enrolled gateways, unknown gateways counted, and a dead-letter budget per source.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Every gateway already in ``gateways`` is enrolled for its site with
credential "before-enrolment", so that an upgraded cloud keeps taking data
from the gateways it served before (deploy/README.md, "Upgrading").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "gateway_enrolments",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("site", ID, nullable=False),
        sa.Column("enrolled_at", moment, nullable=False),
        sa.Column("credential", sa.String(32), nullable=False),
        sa.Column("revoked_at", moment),
    )
    op.execute(
        "INSERT INTO gateway_enrolments (gateway, site, enrolled_at, credential) "
        "SELECT id, site, first_seen, 'before-enrolment' FROM gateways"
    )
    op.create_table(
        "unknown_gateways",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("site", ID, nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("first_seen", moment, nullable=False),
        sa.Column("last_seen", moment, nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("payload_bytes", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dead_letter_budgets",
        sa.Column("source", ID, primary_key=True),
        sa.Column("window_start", moment, nullable=False),
        sa.Column("kept", sa.Integer, nullable=False),
        sa.Column("kept_bytes", sa.BigInteger, nullable=False),
        sa.Column("dropped", sa.Integer, nullable=False),
        sa.Column("dropped_bytes", sa.BigInteger, nullable=False),
        sa.Column("dropped_total", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dead_letter_budgets")
    op.drop_table("unknown_gateways")
    op.drop_table("gateway_enrolments")
