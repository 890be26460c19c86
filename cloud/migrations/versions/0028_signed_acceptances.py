"""A discrepancy's acceptance keeps what its e-signature signed: the document's version then and the
discrepancy's detail as it stood.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07

An acceptance is now signed (21 CFR Part 11; ``cloud/documents/acceptance_content.py``): the signature's
hash covers the document (id, reference, the version it stood at) and the discrepancy (key, kind, detail),
so a page checking it later must rebuild exactly that from the record.  The version moves on when the
document is completed and the detail is only in the reconciliation of that moment, so both are kept in
the acceptance.  Both are null in acceptances made before (they were not signed).

Plain ``ADD COLUMN`` on both dialects (no batch copy on SQLite), so the table keeps its append-only
triggers of migration 0021.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("discrepancy_acceptances", sa.Column("document_version", sa.Integer))
    op.add_column("discrepancy_acceptances", sa.Column("detail", sa.Text))


def downgrade() -> None:
    op.drop_column("discrepancy_acceptances", "detail")
    op.drop_column("discrepancy_acceptances", "document_version")
