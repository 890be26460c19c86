"""Stored periodic reports: every GSP report generated (monthly record, excursion log, calibration status)
is kept as the file it was, with its hash.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07

* ``stored_reports``: one generated file (a PDF or a CSV) with what was asked (kind and parameters as
  canonical JSON), when, by whom, the SHA-256 of the bytes, the bytes and their content type.  An
  inspector is shown the very file that was generated then, and its hash proves it: regenerating adds a
  row, never replaces one.  A record, append-only on both dialects (``make_append_only``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "stored_reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("site", ID),
        sa.Column("location", ID),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.Text, nullable=False),
        sa.Column("generated_by_id", ID),
    )
    op.create_index("ix_stored_reports_kind", "stored_reports", ["kind", "generated_at"])
    op.create_index("ix_stored_reports_generated", "stored_reports", ["generated_at"])
    make_append_only(["stored_reports"])


def downgrade() -> None:
    op.drop_table("stored_reports")
