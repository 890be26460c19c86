"""How the batch history (``cloud/reports/batch_history.py``, pure) sorts time in a month whose readings
retention purged: purged where a placed sensor watched (and, when the hours it had readings in are known,
only those), unmonitored where no sensor was placed, where a sensor's gap is on record, and where it was
silent; never both.  No database: the stays and the purge are made up here."""

from __future__ import annotations

import datetime

from coldgate.cloud.db.selections import PurgedMonth
from coldgate.cloud.documents.custody import Unit
from coldgate.cloud.documents.custody_store import Event, Stay
from coldgate.cloud.reports import batch_history as bh
from coldgate.cloud.reports.spans import Span

HOUR = 3_600_000
DEC_1 = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp() * 1000)
JAN_1 = int(datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC).timestamp() * 1000)
DECEMBER = PurgedMonth(
    datetime.date(2026, 12, 1), DEC_1, JAN_1, "all", 1000, "ab" * 32,
    "the standard term: 5 years after 2026-12",
    datetime.date(2032, 1, 1), datetime.datetime(2032, 1, 1, 9, tzinfo=datetime.UTC), "Ola Operator",
)  # fmt: skip


def _stay(location: str, start: int, end: int, key: str) -> Stay:
    began = Event("put-away", start, "gw01", "s", 1, "scan", "site1", None)
    ended = Event("put-away", end, "gw01", "s", 2, "scan", "site1", None)
    return Stay(Unit(key, "VX10", "L1", serial=key), 1, "site1", location, None, start, end, began, ended)


def _history(
    cover: dict[tuple[str, str], list[Span]] | None, purged: tuple[PurgedMonth, ...], *, cr9: bool = True
) -> bh.History:
    """Two cases: one in CR1 (a sensor placed from 10:00, a gap 12:00-13:00), one in CR9 (no sensor),
    both from 08:00 to 16:00 on 1 December, with every reading of the month gone."""
    start, end = DEC_1 + 8 * HOUR, DEC_1 + 16 * HOUR
    watches = {("site1", "CR1"): [bh.Watch("gw01", "t-cr1", DEC_1 + 10 * HOUR, None)]}
    gaps = {("gw01", "t-cr1"): [Span(DEC_1 + 12 * HOUR, DEC_1 + 13 * HOUR)]}
    return bh.history(
        subject="lot L1", product="VX10", gtin=None, lot="L1", status="released", expiry=None,
        stays=[_stay("CR1", start, end, "c1"), *([_stay("CR9", start, end, "c2")] if cr9 else [])],
        suppliers={},
        watches=watches, temperature={}, humidity={}, gaps=gaps, excursions=[],
        limits=bh.Limits("2-8C", 2.0, 8.0), budget_s=None, as_of=JAN_1 + 24 * HOUR,
        purged=purged, purged_cover=cover,
    )  # fmt: skip


def _room(history: bh.History, location: str) -> bh.Segment:
    return next(s for s in history.segments if s.location == location)


def test_watched_time_of_a_purged_month_is_purged_and_the_rest_stays_unmonitored() -> None:
    history = _history(None, (DECEMBER,))
    cr1, cr9 = _room(history, "CR1"), _room(history, "CR9")
    h = DEC_1
    assert cr1.purged == (Span(h + 10 * HOUR, h + 12 * HOUR), Span(h + 13 * HOUR, h + 16 * HOUR))
    # Before the sensor was placed, and its gap on record: unmonitored, as they were.
    assert cr1.unmonitored == (Span(h + 8 * HOUR, h + 10 * HOUR), Span(h + 12 * HOUR, h + 13 * HOUR))
    assert cr9.purged == () and cr9.unmonitored == (Span(h + 8 * HOUR, h + 16 * HOUR),)
    # Over the custody a moment counts once, and the stricter word wins: CR9 was unwatched throughout.
    assert history.totals.unmonitored_ms == 8 * HOUR and history.totals.purged_ms == 0
    alone = _history(None, (DECEMBER,), cr9=False).totals
    assert (alone.purged_ms, alone.unmonitored_ms) == (5 * HOUR, 3 * HOUR)
    assert history.purged == (DECEMBER,)
    assert any("Readings of 2026-12 were purged by retention on 2032-01-01" in n for n in history.notes)


def test_only_the_hours_a_sensor_had_readings_in_are_purged_when_they_are_known() -> None:
    """The sensor's summaries hold readings from 10:00 to 14:00 only: silent after, with no gap on record,
    which is no monitoring (as the history said before the purge)."""
    cover = {("gw01", "t-cr1"): [Span(DEC_1 + 10 * HOUR, DEC_1 + 14 * HOUR)]}
    cr1 = _room(_history(cover, (DECEMBER,)), "CR1")
    assert cr1.purged == (
        Span(DEC_1 + 10 * HOUR, DEC_1 + 12 * HOUR),
        Span(DEC_1 + 13 * HOUR, DEC_1 + 14 * HOUR),
    )
    assert Span(DEC_1 + 14 * HOUR, DEC_1 + 16 * HOUR) in cr1.unmonitored


def test_without_a_purge_nothing_is_purged_and_no_month_is_named() -> None:
    history = _history(None, ())
    assert all(s.purged == () for s in history.segments) and history.totals.purged_ms == 0
    assert history.purged == () and not any("purged" in n for n in history.notes)
    assert _room(history, "CR1").unmonitored == (Span(DEC_1 + 8 * HOUR, DEC_1 + 16 * HOUR),)
