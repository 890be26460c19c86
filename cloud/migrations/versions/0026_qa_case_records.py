"""What a QA case holds besides its alerts and steps: the stock it found in the room, its evidence, and
people's notes.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

* ``qa_case_stock``: the lots and units whose custody was at the excursion's location during its
  interval (``cloud/documents/location_stock.py``), as derived when the case took them, each with the
  lot's status before the case quarantined it; numbered per case (a later derivation, once the
  excursion ended, adds lines with a higher ``derivation``).
* ``qa_case_evidence``: snapshots of what the case is judged on (the limits and calibration in force,
  the excursion's start, end, peak, duration, MKT and time out of range), as the canonical JSON text they
  were taken as, numbered per case: the newest is the case's evidence, the older ones stay.
* ``qa_case_notes``: comments, attachment references (name, SHA-256, where kept), root cause, corrective
  and preventive action, each by a person at a time, numbered per case.

All three are records: append-only on both dialects (``make_append_only``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

ID = sa.String(64)
TABLES = ("qa_case_stock", "qa_case_evidence", "qa_case_notes")


def upgrade() -> None:
    op.create_table(
        "qa_case_stock",
        sa.Column("case_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("derivation", sa.Integer, nullable=False),
        sa.Column("site", ID, nullable=False),
        sa.Column("location", ID, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("product", ID),
        sa.Column("gtin", sa.String(14)),
        sa.Column("lot", ID),
        sa.Column("unit", sa.String(200)),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("first_in", sa.BigInteger, nullable=False),
        sa.Column("last_out", sa.BigInteger),
        sa.Column("status_before", sa.String(16)),
        sa.Column("derived_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qa_case_stock_lot", "qa_case_stock", ["product", "lot"])
    op.create_table(
        "qa_case_evidence",
        sa.Column("case_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "qa_case_notes",
        sa.Column("case_id", ID, primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("ref", sa.Text),
        sa.Column("by_name", sa.Text, nullable=False),
        sa.Column("by_id", ID),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    make_append_only(TABLES)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
