"""The hourly summaries: what ingest keeps equals what the readings say, and long charts read them.

Both dialects.  The running sums (``reading_hours.add`` in the transaction
that stores readings) are compared with a rebuild from the readings
themselves, over random readings sent in random batches and re-sent; the
chart's hour buckets with the buckets computed from the readings; the MKT
from the summaries with the MKT of every reading; and migration 0012's
backfill with the running sums.
"""

from __future__ import annotations

import datetime
import math
import uuid
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from coldgate.cloud.api import queries
from coldgate.cloud.api.series_stats import series_stats
from coldgate.cloud.db import reading_hours
from coldgate.cloud.db.migrate import alembic_config
from coldgate.cloud.db.models import ReadingHour
from coldgate.cloud.db.writes import insert_new
from coldgate.contract.items import Quality
from coldgate.gateway.rules.mkt import mkt
from tests.rig import items
from tests.rig.ingest import enrol

HOUR = reading_hours.HOUR_MS
T0 = 1_795_000_000_000 // HOUR * HOUR  # an hour's start, 2026-11-18


def _summaries(engine: Engine, gateway: str) -> list[tuple[Any, ...]]:
    """The gateway's summary rows as ingest kept them."""
    with engine.connect() as conn, conn.begin() as tx:
        h = ReadingHour
        rows = conn.execute(
            select(h.sensor, h.quantity, h.hour, h.count, h.ok_count, h.min, h.max, h.sum, h.arrhenius)
            .where(h.gateway == gateway)
            .order_by(h.sensor, h.quantity, h.hour)
        ).all()
        tx.rollback()
    return [tuple(row) for row in rows]


def _same(kept: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Counts, min and max exactly; the sums to rounding (they are added up in another order)."""
    assert [row[:7] for row in kept] == [row[:7] for row in expected]
    for mine, theirs in zip(kept, expected, strict=True):
        assert mine[7] == pytest.approx(theirs[7], rel=1e-12, abs=1e-9)
        assert (mine[8] is None) == (theirs[8] is None)
        if mine[8] is not None:
            assert mine[8] == pytest.approx(theirs[8], rel=1e-12)


readings_drawn = st.lists(
    st.tuples(
        st.sampled_from(["t1", "t2"]),
        st.integers(0, 3 * HOUR - 1),  # three hours
        st.one_of(st.none(), st.floats(-300, 60, allow_nan=False).map(lambda v: round(v, 2))),
        st.sampled_from([Quality.OK, Quality.OK, Quality.SUSPECT]),
        st.sampled_from(["temperature", "temperature", "humidity"]),  # humidity has no MKT term
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=readings_drawn, cut=st.integers(1, 10), resend=st.integers(0, 40))
def test_the_running_sums_equal_a_rebuild_from_the_readings(
    engine: Engine, drawn: list[tuple[str, int, float | None, Quality, str]], cut: int, resend: int
) -> None:
    """Batches of any size, one of them sent again: every hour counts each stored reading once."""
    gateway = f"gw-{uuid.uuid4().hex[:12]}"  # a gateway of its own: readings are never deleted
    enrol(engine, [gateway])
    stream = uuid.uuid4().hex
    sent = [
        items.reading(value, sensor=sensor, ts=T0 + offset, seq=n + 1, quantity=quantity,
                      quality=quality if value is not None else Quality.ERROR)
        for n, (sensor, offset, value, quality, quantity) in enumerate(drawn)
    ]  # fmt: skip
    chunks = [sent[i : i + cut] for i in range(0, len(sent), cut)]
    chunks.insert(min(resend, len(chunks)), chunks[resend % len(chunks)])  # a batch delivered twice
    for chunk in chunks:
        with engine.begin() as conn:
            insert_new(conn, gateway, stream, chunk)
    kept = _summaries(engine, gateway)
    _same(kept, _rebuilt(engine, gateway))
    assert sum(row[3] for row in kept) == len(sent)


def _rebuilt(engine: Engine, gateway: str) -> list[tuple[Any, ...]]:
    """The gateway's summaries as ``reading_hours.rebuild`` computes them (rolled back after)."""
    with engine.connect() as conn, conn.begin() as tx:
        reading_hours.rebuild(conn, gateway)
        h = ReadingHour
        rows = conn.execute(
            select(h.sensor, h.quantity, h.hour, h.count, h.ok_count, h.min, h.max, h.sum, h.arrhenius)
            .where(h.gateway == gateway)
            .order_by(h.sensor, h.quantity, h.hour)
        ).all()
        tx.rollback()
    return [tuple(row) for row in rows]


def _store_days(engine: Engine, gateway: str, days: int, *, spike_at: int) -> list[float]:
    """``days`` of one-minute readings of sensor t1 from T0 (a 5-minute +12 °C spike at minute
    ``spike_at``, some suspect readings), through ingest's write; returns the ok values."""
    enrol(engine, [gateway])
    stream = uuid.uuid4().hex
    ok: list[float] = []
    minutes = days * 1440
    for first in range(0, minutes, 2000):
        batch = []
        for n in range(first, min(minutes, first + 2000)):
            value = 4.0 + (n % 1440) / 480 + (12 if spike_at <= n < spike_at + 5 else 0)
            suspect = n % 997 == 0
            batch.append(items.reading(value, sensor="t1", ts=T0 + n * 60_000, seq=n + 1,
                                       quality=Quality.SUSPECT if suspect else Quality.OK))  # fmt: skip
            if not suspect:
                ok.append(value)
        with engine.begin() as conn:
            insert_new(conn, gateway, stream, batch)
    return ok


def test_a_long_chart_reads_hour_buckets_equal_to_the_readings_own(engine: Engine) -> None:
    """Three weeks at 24 points: 21-hour buckets from the summaries, the same as computed from the
    readings over the same whole hours; the spike survives; the MKT is every reading's, exactly."""
    ok = _store_days(engine, "gw08", 21, spike_at=10 * 1440 + 7)
    start, end = T0 + 17 * 60_000, T0 + 21 * 1440 * 60_000 - 5 * 60_000  # not on hours
    with engine.connect() as conn:
        series = queries.reading_series(conn, "gw08", "t1", start, end, 24, "temperature")
        assert (series["from"], series["to"]) == (T0, T0 + 21 * 24 * HOUR)  # widened to whole hours
        assert series["bucket_ms"] == 21 * HOUR
        direct = queries.reading_buckets(conn, "gw08", "t1", T0, T0 + 21 * 24 * HOUR, 24, "temperature")
    assert direct["bucket_ms"] == series["bucket_ms"]
    assert [(b.start, b.count, b.not_ok, b.min, b.max) for b in series["buckets"]] == [
        (b.start, b.count, b.not_ok, b.min, b.max) for b in direct["buckets"]
    ]
    for mine, theirs in zip(series["buckets"], direct["buckets"], strict=True):
        assert mine.avg == pytest.approx(theirs.avg, rel=1e-12)
    assert max(b.max for b in series["buckets"]) >= 16  # the 5-minute spike, in a 21-hour bucket
    stats = series_stats(series, temperature=True)
    assert stats.exact and stats.count == len(ok)
    assert stats.mkt == pytest.approx(mkt(ok), abs=1e-9)
    assert stats.mean == pytest.approx(math.fsum(ok) / len(ok), abs=1e-9)
    from_means = series_stats(direct, temperature=True)
    assert not from_means.exact and from_means.mkt < stats.mkt  # convexity: means understate MKT


def test_short_ranges_still_read_the_readings(engine: Engine) -> None:
    """A bucket under an hour wide is computed from the readings: the range is not widened."""
    _store_days(engine, "gw09", 1, spike_at=600)
    start, end = T0 + 60_000 * 7, T0 + 60_000 * 1000
    with engine.connect() as conn:
        series = queries.reading_series(conn, "gw09", "t1", start, end, 100, "temperature")
    assert (series["from"], series["to"], series["bucket_ms"]) == (start, end, 595_800)
    assert all(b.arrhenius is None for b in series["buckets"])


def test_migration_0012_fills_the_summaries_from_the_readings_already_stored(
    engine: Engine, db_url: str
) -> None:
    _store_days(engine, "gw10", 2, spike_at=100)
    kept = _summaries(engine, "gw10")
    with engine.begin() as conn:
        config = alembic_config(engine.url)
        config.attributes["connection"] = conn
        command.downgrade(config, "0011")
        command.upgrade(config, "head")
    _same(_summaries(engine, "gw10"), kept)
    assert sum(row[3] for row in kept) == 2 * 1440


def test_the_hourly_summaries_are_not_rebuilt_once_a_month_is_archived(engine: Engine) -> None:
    """A rebuild recomputes from ``readings``: an archived (or purged) month's summaries would be lost."""
    from coldgate.cloud.db.models import ReadingArchive

    now = datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        reading_hours.rebuild(conn)  # nothing archived: allowed
        conn.execute(
            ReadingArchive.__table__.insert(),
            [{"month": datetime.date(2025, 1, 1), "partition": "readings_2025_01", "readings": 0, "packs": 0,
              "sha256": "0" * 64, "sha256_packed": "0" * 64, "bytes_before": 0, "bytes_after": 0,
              "archived_at": now, "archived_by": "t"}],
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"refused: 1 month\(s\) are archived"), engine.begin() as conn:
        reading_hours.rebuild(conn)
