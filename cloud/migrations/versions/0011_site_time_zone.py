"""Each site's time zone, so pages show a site's times as its people read them.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

An IANA name (``Europe/Berlin``); every site starts at ``UTC`` until an
admin sets it.  Stored instants stay epoch milliseconds: the zone is only
how they are shown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sites", sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"))


def downgrade() -> None:
    op.drop_column("sites", "time_zone")
