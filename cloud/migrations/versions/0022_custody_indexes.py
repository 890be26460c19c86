"""Custody's reads: a pallet's rows by SSCC, a serialised case's by product and serial.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

A lot's custody chain reads its own rows (``ix_bindings_lot``) and then the rows of its pallets, found
by SSCC; a unit's chain reads one pallet's or one case's rows.  Without these two indexes each of those
reads would scan every binding (a million movements at a busy site), which is what issue 15's 200 ms
for a lot of 10,000 units forbids (``cloud/documents/custody_store.py``).
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_bindings_sscc", "bindings", ["sscc"])
    op.create_index("ix_bindings_serial", "bindings", ["product", "serial"])


def downgrade() -> None:
    op.drop_index("ix_bindings_serial", table_name="bindings")
    op.drop_index("ix_bindings_sscc", table_name="bindings")
