"""Electronic signatures (21 CFR Part 11 §11.50, §11.70, §11.100, §11.200): one row per signature given.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

A signature names its signer (user id, login and printed name), when (UTC), its meaning, the reason
given, and what it signs: the record (``record_type``, ``record_id``), the record's step it was given on
(``record_seq``), the move it signs (``action``, ``detail``: a case's target state and disposition),
and the SHA-256 of the canonical JSON (RFC 8785) of the record as it stood with this signature's own
fields in it (``content_sha256``, computed as ``content_version`` says).  The hash ties the signature
to that record and its content: copied to another record, or the record changed after signing, the
hash recomputed no longer matches, and every page showing it says so.  ``session_sha256`` is the
browser session it was given in (the first signing of a session asks login and password, later ones the
password: §11.200(a)(1)).  Append-only on both dialects.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "e_signatures",
        sa.Column("id", ID, primary_key=True),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("record_seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(64)),
        sa.Column("meaning", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("signer_id", ID, nullable=False),
        sa.Column("signer_login", ID, nullable=False),
        sa.Column("signer_name", sa.Text, nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("content_version", sa.SmallInteger, nullable=False),
        sa.Column("session_sha256", sa.String(64)),
        sa.Column("client", sa.String(64)),
    )
    op.create_index("ix_e_signatures_record", "e_signatures", ["record_type", "record_id", "record_seq"])
    op.create_index("ix_e_signatures_session", "e_signatures", ["session_sha256", "signer_id"])
    make_append_only(["e_signatures"])


def downgrade() -> None:
    op.drop_table("e_signatures")
