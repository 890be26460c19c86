"""Recall runs: a recall opened for lots or serials, and what was done about it until its signed closing.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07

* ``recalls``: the recall as opened (class I, II or III, reason, when it was decided and when opened,
  by whom).
* ``recall_items``: what it recalls, one row per lot or serial as asked, with the catalog's product,
  GTIN and lot, and the lot's status before the recall moved it.
* ``recall_events``: everything recorded afterwards, numbered per recall: a customer notified (how),
  a customer's acknowledgement, a return (quantity of a lot), the closing (``detail``: why it closes without a
  customer's acknowledgement, when it does).  The recall's state, each
  customer's notification and acknowledgement times and the response times are derived from these
  rows (``cloud/reports/recall.py``); the closing's e-signature is in ``e_signatures``.

All three are records: append-only on both dialects (``make_append_only``).  The customer list itself
is not stored: it is derived from the custody chain whenever asked (DESIGN.md principle 9).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("recalls", "recall_items", "recall_events")


def upgrade() -> None:
    op.create_table(
        "recalls",
        sa.Column("id", ID, primary_key=True),
        sa.Column("recall_class", sa.String(3), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("initiated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_name", sa.Text, nullable=False),
        sa.Column("by_id", ID),
    )
    op.create_index("ix_recalls_opened", "recalls", ["opened_at"])
    op.create_table(
        "recall_items",
        sa.Column("recall_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("asked", sa.Text, nullable=False),
        sa.Column("product", ID, nullable=False),
        sa.Column("gtin", sa.String(14)),
        sa.Column("lot", ID),
        sa.Column("serial", ID),
        sa.Column("status_before", sa.String(16)),
    )
    op.create_index("ix_recall_items_lot", "recall_items", ["product", "lot"])
    op.create_table(
        "recall_events",
        sa.Column("recall_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer", sa.Text),
        sa.Column("product", ID),
        sa.Column("lot", ID),
        sa.Column("quantity", sa.Integer),
        sa.Column("channel", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("detail", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_name", sa.Text, nullable=False),
        sa.Column("by_id", ID),
    )
    make_append_only(TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
