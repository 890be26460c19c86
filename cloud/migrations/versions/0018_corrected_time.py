"""Readings are selected by their clock-corrected time where one exists: an index for it, and the
hourly summaries keyed by that time.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

The API selects a sensor's readings by ``coalesce(ts_corrected, ts)``: a Pi
that booted without NTP stamps its readings 1970 until it syncs, and an
auditor asking for last Tuesday must get them.  The partial index covers
the few corrected readings, so the corrected half of a range query is an
index probe.  Summaries written before this were keyed by the gateway's
``ts``; where any reading was corrected they are recomputed once, with the
sums of ``reading_hours.rebuild`` written out here so the migration does not
change when that module does.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

HOUR_MS = 3_600_000
DH_R_K = 10_000.0
KELVIN = 273.15
MIN_KELVIN = 50.0

_TIME = "coalesce(ts_corrected, ts)"


def _summaries(time: str) -> str:
    return f"""
        INSERT INTO reading_hours (gateway, sensor, quantity, hour, count, ok_count, min, max, sum, arrhenius)
        SELECT gateway, sensor, quantity, hour, count(*), sum(ok), min(ok_value), max(ok_value),
               coalesce(sum(ok_value), 0),
               CASE WHEN sum(ok) = 0 OR sum(ok) > count(term) THEN NULL ELSE sum(term) END
        FROM (
            SELECT gateway, sensor, quantity, (t / {HOUR_MS}) * {HOUR_MS} AS hour,
                   CASE WHEN quality = 'ok' AND value IS NOT NULL THEN 1 ELSE 0 END AS ok,
                   CASE WHEN quality = 'ok' THEN value END AS ok_value,
                   CASE WHEN quality = 'ok' AND quantity = 'temperature' AND k >= {MIN_KELVIN}
                        THEN exp(-{DH_R_K} / k) END AS term
            FROM (
                SELECT gateway, sensor, quantity, {time} AS t, quality, value,
                       CASE unit WHEN 'CEL' THEN value + {KELVIN}
                                 WHEN 'FAH' THEN (value - 32.0) * 5.0 / 9.0 + {KELVIN}
                                 WHEN 'KEL' THEN value END AS k
                FROM readings
            ) AS r
        ) AS s
        GROUP BY gateway, sensor, quantity, hour
    """


def _rebuild(time: str) -> None:
    """Every summary again, only where a corrected reading makes the two keyings differ."""
    probe = sa.text("SELECT 1 FROM readings WHERE ts_corrected IS NOT NULL LIMIT 1")
    if op.get_bind().execute(probe).first() is None:
        return
    op.execute("DELETE FROM reading_hours")
    op.execute(_summaries(time))


def upgrade() -> None:
    op.create_index(
        "ix_readings_corrected",
        "readings",
        ["gateway", "sensor", "ts_corrected"],
        postgresql_where=sa.text("ts_corrected IS NOT NULL"),
        sqlite_where=sa.text("ts_corrected IS NOT NULL"),
    )
    _rebuild(_TIME)


def downgrade() -> None:
    _rebuild("ts")
    op.drop_index("ix_readings_corrected", table_name="readings")
