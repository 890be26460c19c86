"""The sensors' newest readings (the overview's tiles) are the same whether the recent probe finds them or
the unbounded one does (``queries.sensors``: bounded by ``ts``, the partition key, since issue 18)."""

from __future__ import annotations

import datetime

import pytest

pytest.importorskip("sqlalchemy", reason="cloud database tests need the [cloud] extra")

from sqlalchemy import Engine

from coldgate.cloud.api import queries, queries_overview
from coldgate.cloud.db.partitions import ensure_partitions
from tests.rig.cloud_db import ingest
from tests.rig.ingest import NOW_MS, batch_message, reading, status_message

DAY = 86_400_000


def _date(ms: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).date()


@pytest.fixture
def stored(engine: Engine) -> Engine:
    """gw01: r-now read a minute ago (and once before, in another month), r-old last read 200 days ago,
    r-tie twice at the same ts on two streams, r-none registered by a reading on gw02 only; gw02: its
    own r-now, an hour ago."""
    with engine.begin() as conn:
        ensure_partitions(conn, _date(NOW_MS - 400 * DAY), _date(NOW_MS + 31 * DAY))
    ingest(engine, *status_message("gw01", ts=NOW_MS, last_seq=5))
    ingest(engine, *status_message("gw02", ts=NOW_MS, last_seq=2))
    gw01 = [
        reading(1, sensor="r-now", ts=NOW_MS - 40 * DAY, value=3.0),
        reading(2, sensor="r-old", ts=NOW_MS - 200 * DAY, value=4.0),
        reading(3, sensor="r-now", ts=NOW_MS - 60_000, value=5.0),
        reading(4, sensor="r-tie", ts=NOW_MS - 30 * DAY, value=6.0),
        reading(5, sensor="r-old", ts=NOW_MS - 300 * DAY, value=7.0),
    ]
    ingest(engine, *batch_message("gw01", gw01))
    ingest(engine, *batch_message("gw01", [reading(1, sensor="r-tie", ts=NOW_MS - 30 * DAY, value=6.5)],
                                  stream="f" * 32))  # fmt: skip
    gw02 = [reading(1, sensor="r-now", ts=NOW_MS - 3_600_000, value=8.0), reading(2, sensor="r-none")]
    ingest(engine, *batch_message("gw02", gw02))
    return engine


def _newest(entries: list[object]) -> list[tuple[str, str, int | None, float | None]]:
    return [
        (s.gateway, s.id, s.last_reading.ts if s.last_reading else None,  # type: ignore[attr-defined]
         s.last_reading.value if s.last_reading else None)  # type: ignore[attr-defined]
        for s in entries
    ]  # fmt: skip


def test_newest_reading_is_the_same_found_recent_or_not(stored: Engine) -> None:
    """From a ``now`` that finds every newest reading in the recent stretch, some, or none of them."""
    with stored.connect() as conn:
        unbounded = _newest(queries.sensors(conn, None, None, now_ms=NOW_MS + 10_000 * DAY))
        for now in (NOW_MS - 500 * DAY, NOW_MS - 250 * DAY, NOW_MS - 25 * DAY, NOW_MS, NOW_MS + 5 * DAY):
            assert _newest(queries.sensors(conn, None, None, now_ms=now)) == unbounded, now
        assert _newest(queries.sensors(conn, "gw01", None, now_ms=NOW_MS)) == unbounded[:3]
    r_now, r_old, r_tie = unbounded[:3]
    assert r_now == ("gw01", "r-now", NOW_MS - 60_000, 5.0)
    assert r_old == ("gw01", "r-old", NOW_MS - 200 * DAY, 4.0)
    assert r_tie == ("gw01", "r-tie", NOW_MS - 30 * DAY, 6.5)  # the later stream wins the tie
    assert unbounded[3:] == [
        ("gw02", "r-none", NOW_MS + 2000, 4.2),
        ("gw02", "r-now", NOW_MS - 3_600_000, 8.0),
    ]


def test_overview_tiles_carry_the_newest_reading(stored: Engine) -> None:
    """The tiles' last readings (value and time) whichever way ``now`` puts them."""
    with stored.connect() as conn:
        near = queries_overview.overview(conn, site=None, now_ms=NOW_MS)
        far = queries_overview.overview(conn, site=None, now_ms=NOW_MS + 400 * DAY)
    last = {(t.gateway, t.sensor): (t.last_ts, t.value) for t in near.tiles}
    assert last == {(t.gateway, t.sensor): (t.last_ts, t.value) for t in far.tiles}
    assert last[("gw01", "r-old")] == (NOW_MS - 200 * DAY, 4.0)
