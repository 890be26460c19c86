"""Dead-letter replay: the batch an item-level dead letter came in, and an append-only replay log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("dead_letters", sa.Column("batch", JSON_DOC))
    op.create_table(
        "dead_letter_replays",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dead_letter_id", sa.Integer, sa.ForeignKey("dead_letters.id"), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("new_items", sa.Integer, nullable=False, server_default="0"),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_dead_letter_replays_dead_letter_id", "dead_letter_replays", ["dead_letter_id"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_replays_dead_letter_id", table_name="dead_letter_replays")
    op.drop_table("dead_letter_replays")
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("batch")
