"""Dead letters keep a prefix of garbage: the whole payload's size and SHA-256, and whether it was cut.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Rows stored before keep their whole payload: ``payload_size`` and
``payload_sha256`` stay null for them (the size is the stored payload's) and
``truncated`` is false.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("payload_size", sa.BigInteger))
    op.add_column("dead_letters", sa.Column("payload_sha256", sa.String(64)))
    op.add_column(
        "dead_letters", sa.Column("truncated", sa.Boolean, nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("truncated")
        batch.drop_column("payload_sha256")
        batch.drop_column("payload_size")
