"""Ingest bookkeeping: stream coverage, pending batch ranges, boot anchors; registry columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.add_column("gateways", sa.Column("boot", ID))
    op.add_column("gateways", sa.Column("state_since", sa.DateTime(timezone=True)))
    op.add_column("dead_letters", sa.Column("gateway", ID))
    op.add_column("dead_letters", sa.Column("path", sa.Text))
    op.add_column("dead_letters", sa.Column("fingerprint", sa.String(64)))
    op.add_column("dead_letters", sa.Column("repeats", sa.Integer, nullable=False, server_default="0"))
    op.add_column("dead_letters", sa.Column("last_received_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("dead_letters") as batch:
        batch.create_unique_constraint("uq_dead_letters_fingerprint", ["fingerprint"])
    op.create_index(
        "ix_readings_unsynced",
        "readings",
        ["gateway", "boot"],
        postgresql_where=sa.text("NOT synced"),
        sqlite_where=sa.text("NOT synced"),
    )
    op.create_table(
        "stream_coverage",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("site", ID, nullable=False),
        sa.Column("covered", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("adopted", sa.BigInteger),
    )
    op.create_table(
        "batch_ranges",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("stream", ID, primary_key=True),
        sa.Column("first_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "boot_anchors",
        sa.Column("gateway", ID, primary_key=True),
        sa.Column("boot", ID, primary_key=True),
        sa.Column("mono", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("boot_anchors", "batch_ranges", "stream_coverage"):
        op.drop_table(table)
    op.drop_index("ix_readings_unsynced", table_name="readings")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_constraint("uq_dead_letters_fingerprint", type_="unique")
        batch.drop_column("last_received_at")
        batch.drop_column("repeats")
        batch.drop_column("fingerprint")
        batch.drop_column("path")
        batch.drop_column("gateway")
    with op.batch_alter_table("gateways") as batch:
        batch.drop_column("state_since")
        batch.drop_column("boot")
