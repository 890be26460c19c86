"""Hourly summaries of the readings, for long charts and exact MKT over any run of hours.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Kept by ingest from now on (``cloud/db/reading_hours.py``); this migration
fills them once from the readings already stored, with the same sums as
``reading_hours.rebuild`` (written out here so the migration does not
change when that module does).  Derived data: on PostgreSQL the service may
also update and delete its rows (a rebuild); the reporting role may read them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

HOUR_MS = 3_600_000
DH_R_K = 10_000.0
KELVIN = 273.15
MIN_KELVIN = 50.0


def upgrade() -> None:
    op.create_table(
        "reading_hours",
        sa.Column("gateway", sa.String(64), primary_key=True),
        sa.Column("sensor", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.String(32), primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("ok_count", sa.Integer, nullable=False),
        sa.Column("min", sa.Double),
        sa.Column("max", sa.Double),
        sa.Column("sum", sa.Double, nullable=False),
        sa.Column("arrhenius", sa.Double),
    )
    op.execute(
        f"""
        INSERT INTO reading_hours (gateway, sensor, quantity, hour, count, ok_count, min, max, sum, arrhenius)
        SELECT gateway, sensor, quantity, hour, count(*), sum(ok), min(ok_value), max(ok_value),
               coalesce(sum(ok_value), 0),
               CASE WHEN sum(ok) = 0 OR sum(ok) > count(term) THEN NULL ELSE sum(term) END
        FROM (
            SELECT gateway, sensor, quantity, (ts / {HOUR_MS}) * {HOUR_MS} AS hour,
                   CASE WHEN quality = 'ok' AND value IS NOT NULL THEN 1 ELSE 0 END AS ok,
                   CASE WHEN quality = 'ok' THEN value END AS ok_value,
                   CASE WHEN quality = 'ok' AND quantity = 'temperature' AND k >= {MIN_KELVIN}
                        THEN exp(-{DH_R_K} / k) END AS term
            FROM (
                SELECT gateway, sensor, quantity, ts, quality, value,
                       CASE unit WHEN 'CEL' THEN value + {KELVIN}
                                 WHEN 'FAH' THEN (value - 32.0) * 5.0 / 9.0 + {KELVIN}
                                 WHEN 'KEL' THEN value END AS k
                FROM readings
            ) AS r
        ) AS s
        GROUP BY gateway, sensor, quantity, hour
        """
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            DO $$ BEGIN
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_app') THEN
                    GRANT SELECT, INSERT, UPDATE, DELETE ON reading_hours TO coldgate_app;
                END IF;
                IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldgate_readonly') THEN
                    GRANT SELECT ON reading_hours TO coldgate_readonly;
                END IF;
            END $$
            """
        )


def downgrade() -> None:
    op.drop_table("reading_hours")
