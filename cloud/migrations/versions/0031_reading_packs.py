"""Archived months of readings, packed: a sensor's day in one row of arrays, read back as rows by a view.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07

* ``reading_packs`` (PostgreSQL): every reading of an archived month, whole (each column of ``readings``),
  one row per gateway, sensor, quantity and UTC day of the reading's time (the clock-corrected one where
  the cloud has it), its columns as arrays in time order; ``t_first``/``t_last`` bound the day's times so
  a query for a range reads only the packs that overlap it.  A row of about 1,440 readings is compressed
  by PostgreSQL's TOAST, which the ~100 B heap row and two index entries of each live reading are not.
* ``archived_readings``: the packs as rows of readings (a view: ``unnest`` of the arrays), with the pack's
  bounds, so the one selection of readings (``cloud/db/selections.py``) reads an archived month as it read
  the live one.  On SQLite, which has no partitions to archive, the same view is empty.
* ``reading_archives``: one row per archived month: how many readings and packs, the SHA-256 over the
  month's readings before they were packed and the same recomputed from the packs (they must match, or
  nothing is archived), the bytes before and after, when and by whom.
Packs and archives are records: append-only on both dialects.  The service's and the reporting roles only
read them: archiving is the schema owner's (``coldgate cloud archive``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from coldgate.cloud.migrations.append_only import make_append_only

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

ID = sa.String(64)
#: The columns of ``readings`` a pack keeps per reading, with their array element types.
PACKED = (
    ("ts", "bigint"), ("ts_corrected", "bigint"), ("stream", "text"), ("seq", "bigint"), ("boot", "text"),
    ("mono", "bigint"), ("synced", "boolean"), ("value", "double precision"), ("unit", "text"),
    ("quality", "text"), ("reason", "text"),
)  # fmt: skip
ELEMENT = {"bigint": sa.BigInteger, "text": sa.Text, "boolean": sa.Boolean, "double precision": sa.Double}
_ROW_COLUMNS = ", ".join(f"u.{name}" for name, _ in PACKED)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "reading_archives",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("partition", sa.Text, nullable=False),
        sa.Column("readings", sa.BigInteger, nullable=False),
        sa.Column("packs", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sha256_packed", sa.String(64), nullable=False),
        sa.Column("bytes_before", sa.BigInteger, nullable=False),
        sa.Column("bytes_after", sa.BigInteger, nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_by", sa.Text, nullable=False),
    )
    tables = ["reading_archives"]
    if postgres:
        op.create_table(
            "reading_packs",
            sa.Column("gateway", ID, nullable=False),
            sa.Column("sensor", ID, nullable=False),
            sa.Column("quantity", sa.String(32), nullable=False),
            sa.Column("day", sa.BigInteger, nullable=False),
            sa.Column("month", sa.Date, nullable=False),
            sa.Column("t_first", sa.BigInteger, nullable=False),
            sa.Column("t_last", sa.BigInteger, nullable=False),
            sa.Column("count", sa.Integer, nullable=False),
            *(sa.Column(name, postgresql.ARRAY(ELEMENT[kind]), nullable=False) for name, kind in PACKED),
            sa.PrimaryKeyConstraint("gateway", "sensor", "quantity", "day", "month"),
        )
        op.create_index("ix_reading_packs_range", "reading_packs", ["gateway", "sensor", "t_first"])
        op.execute(
            "CREATE VIEW archived_readings AS "
            f"SELECT p.gateway, p.sensor, p.quantity, p.t_first, p.t_last, {_ROW_COLUMNS} "
            "FROM reading_packs AS p CROSS JOIN LATERAL unnest("
            + ", ".join(f"p.{name}" for name, _ in PACKED)
            + ") AS u(" + ", ".join(name for name, _ in PACKED) + ")"
        )  # fmt: skip
        tables.append("reading_packs")
    else:
        op.execute(
            "CREATE VIEW archived_readings AS SELECT gateway, sensor, quantity, ts AS t_first, ts AS t_last, "
            + ", ".join(name for name, _ in PACKED) + " FROM readings WHERE 0"
        )  # fmt: skip
    make_append_only(tables)
    if postgres:
        # Packs are made by the schema owner only; everyone else reads.
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    REVOKE INSERT ON reading_packs, reading_archives FROM coldgate_app;
                    GRANT SELECT ON archived_readings TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON archived_readings TO coldgate_readonly;
                END IF;
            END $$
            """
        )


def downgrade() -> None:
    op.execute("DROP VIEW archived_readings")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("reading_packs")
    op.drop_table("reading_archives")
