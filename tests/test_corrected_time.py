"""Readings are selected by their clock-corrected time where the cloud has one (issue 14).

A Pi without a real-time clock boots in 1970 and stamps its readings so until
NTP answers; the cloud corrects them from the boot's first synchronised
anchor.  QA asking for last night's chart must get those readings, in their
real place, and the 1970 range must not hold them.  Both dialects; the
hourly summaries follow the readings (compared with a rebuild).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, select

from coldgate.cloud.api import queries
from coldgate.cloud.db import reading_hours
from coldgate.cloud.db.models import ReadingHour
from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.ingest.clock_correction import record_anchor
from tests.rig import items
from tests.rig.ingest import enrol

HOUR = reading_hours.HOUR_MS
T0 = 1_795_000_000_000 // HOUR * HOUR  # 2026-11-18, an hour's start
BOOTED_IN_1970 = 86_400_000  # 1970-01-02: where the unsynchronised clock says the readings are
BOOT = "c0ffee00c0ffee00c0ffee00c0ffee00"
NOW = datetime.datetime(2026, 11, 18, tzinfo=datetime.UTC)


def _summaries(engine: Engine, gateway: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        h = ReadingHour
        return [
            tuple(row)
            for row in conn.execute(
                select(h.sensor, h.quantity, h.hour, h.count, h.ok_count, h.min, h.max)
                .where(h.gateway == gateway)
                .order_by(h.sensor, h.quantity, h.hour)
            )
        ]


def _rebuilt(engine: Engine, gateway: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn, conn.begin() as tx:
        reading_hours.rebuild(conn, gateway)
        h = ReadingHour
        rows = conn.execute(
            select(h.sensor, h.quantity, h.hour, h.count, h.ok_count, h.min, h.max)
            .where(h.gateway == gateway)
            .order_by(h.sensor, h.quantity, h.hour)
        ).all()
        tx.rollback()
    return [tuple(row) for row in rows]


def _unsynced_then_synced(engine: Engine) -> str:
    """90 minutes of readings stamped in 1970 (unsynchronised), one reading per minute from mono 0;
    then, stored, 30 synchronised minutes at T0 + 90 min of the same boot."""
    gateway = f"gw-{uuid.uuid4().hex[:12]}"
    enrol(engine, [gateway])
    stream = uuid.uuid4().hex
    early = [
        items.reading(4.0 + n / 100, sensor="t1", ts=BOOTED_IN_1970 + n * 60_000, mono=n * 60_000,
                      boot=BOOT, synced=False, seq=n + 1)
        for n in range(90)
    ]  # fmt: skip
    with engine.begin() as conn:
        insert_new(conn, gateway, stream, early)
    late = [
        items.reading(5.0, sensor="t1", ts=T0 + n * 60_000, mono=n * 60_000, boot=BOOT, seq=n + 1)
        for n in range(90, 120)
    ]
    with engine.begin() as conn:
        record_anchor(conn, gateway, BOOT, (late[0].mono, late[0].ts), "item", NOW)
        insert_new(conn, gateway, stream, late)
    return gateway


def test_corrected_readings_are_found_at_their_real_time_not_in_1970(engine: Engine) -> None:
    gateway = _unsynced_then_synced(engine)
    with engine.connect() as conn:
        night = queries.reading_series(conn, gateway, "t1", T0, T0 + 2 * HOUR, 1000, None)
        in_1970 = queries.reading_series(conn, gateway, "t1", 0, 10 * 86_400_000, 1000, None)
        rows = list(queries.reading_rows(conn, gateway, "t1", T0, T0 + 2 * HOUR, None))
    assert night["count"] == 120 and in_1970["count"] == 0
    times = [p.ts_corrected if p.ts_corrected is not None else p.ts for p in night["points"]]
    assert times == [T0 + n * 60_000 for n in range(120)]  # in their real order, none twice
    assert [p.ts for p in night["points"][:2]] == [BOOTED_IN_1970, BOOTED_IN_1970 + 60_000]  # evidence kept
    assert [r.value for r in rows] == [p.value for p in night["points"]]


def test_a_range_edge_cuts_by_the_corrected_time(engine: Engine) -> None:
    """Half of the corrected stretch, both with raw points and with buckets from the readings."""
    gateway = _unsynced_then_synced(engine)
    start, end = T0 + 30 * 60_000, T0 + 60 * 60_000
    with engine.connect() as conn:
        raw = queries.reading_series(conn, gateway, "t1", start, end, 1000, None)
        buckets = queries.reading_series(conn, gateway, "t1", start, end, 3, None)
    assert raw["count"] == 30 and raw["points"][0].value == pytest.approx(4.30)
    assert buckets["mode"] == "buckets" and [b.count for b in buckets["buckets"]] == [10, 10, 10]


def test_the_hourly_summaries_follow_a_late_correction(engine: Engine) -> None:
    """Summed in 1970 at first, recomputed into their corrected hours when the anchor came."""
    gateway = _unsynced_then_synced(engine)
    kept = _summaries(engine, gateway)
    assert kept == _rebuilt(engine, gateway)
    assert {row[2] for row in kept} == {T0, T0 + HOUR}
    assert sum(row[3] for row in kept) == 120
    with engine.connect() as conn:
        year = queries.reading_series(conn, gateway, "t1", T0 - 300 * 24 * HOUR, T0 + 24 * HOUR, 100, None)
    assert year["mode"] == "buckets" and year["count"] == 120


def test_a_correction_known_at_storage_is_summed_in_its_corrected_hour(engine: Engine) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:12]}"
    enrol(engine, [gateway])
    reading = items.reading(4.0, sensor="t1", ts=BOOTED_IN_1970, mono=0, boot=BOOT, synced=False, seq=1)
    with engine.begin() as conn:
        insert_new(conn, gateway, uuid.uuid4().hex, [reading], {1: T0 + 5 * 60_000})
    assert [row[2] for row in _summaries(engine, gateway)] == [T0]
    assert _summaries(engine, gateway) == _rebuilt(engine, gateway)
