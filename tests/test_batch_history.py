"""The batch history of a lot, a pallet and a case, joined from the custody chain, the placements, the
readings, the gaps and the excursions (``cloud/reports/``), on both dialects; and its pure parts, whose
figures are checked against a direct computation.
"""

from __future__ import annotations

import datetime
import itertools
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.reports import batch_history as bh
from coldgate.cloud.reports.history_store import lot_history, unit_history
from coldgate.cloud.reports.series_figures import OutOfRange
from coldgate.cloud.reports.spans import Span, subtract, total, union
from coldgate.gateway.rules.mkt import mkt, mkt_from_sums
from tests.rig.custody_world import GTIN, MIN, PALLET, at
from tests.rig.history_world import AS_OF, EXCURSION, history_world, room_value

# ---------------------------------------------------------------- spans and figures, pure

spans = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda p: Span(min(p), max(p))),
                 max_size=8)  # fmt: skip


def _cover(given_spans: list[Span]) -> set[int]:
    return {t for s in given_spans for t in range(s.start, s.end)}


@given(spans, spans)
def test_span_union_and_difference_cover_what_a_brute_force_covers(a: list[Span], b: list[Span]) -> None:
    assert _cover(union(a)) == _cover(a)
    assert total(a) == len(_cover(a))
    assert _cover(subtract(a, b)) == _cover(a) - _cover(b)
    merged = union(a)
    assert all(x.end < y.start for x, y in itertools.pairwise(merged))


def test_figures_hold_each_reading_until_the_next_one_at_most_ten_minutes() -> None:
    series = bh.Series([0, 60_000, 120_000, 1_320_000], [5.0, 9.0, 9.0, 1.0])
    got = bh.figures(series, 0, 1_700_000, 2.0, 8.0)
    assert got.count == 4 and (got.min, got.max) == (1.0, 9.0)
    assert got.mean == pytest.approx(6.0)
    assert got.mkt == pytest.approx(mkt([5.0, 9.0, 9.0, 1.0]))
    assert got.above_ms == 60_000 + 10 * MIN  # the second 9.0 stands for ten minutes, not twenty
    assert got.below_ms == 1_700_000 - 1_320_000  # the last one until the span's end (under ten minutes)
    assert bh.figures(series, 0, 2_000_000, 2.0, 8.0).below_ms == 10 * MIN  # ... and no longer than ten
    assert bh.figures(series, 60_000, 120_000, 2.0, 8.0).above_ms == 60_000
    assert bh.figures(series, 3_000_000, 4_000_000, 2.0, 8.0) == bh.NO_FIGURES


def test_the_reading_before_a_span_stands_into_it() -> None:
    series = bh.Series([0, 60_000], [9.0, 5.0])
    got = bh.figures(series, 30_000, 120_000, 2.0, 8.0)
    assert got.count == 1 and got.max == 5.0  # only the reading inside is a figure ...
    assert got.above_ms == 30_000  # ... but the one before was out of range until the next one
    assert bh.readings_cover(series, Span(30_000, 120_000)) == [Span(30_000, 120_000)]


def test_a_silent_sensor_covers_only_what_its_readings_stand_for() -> None:
    series = bh.Series([0, 60_000, 3_600_000], [5.0, 5.0, 5.0])
    assert bh.readings_cover(series, Span(0, 4_000_000)) == [
        Span(0, 60_000 + 10 * MIN), Span(3_600_000, 4_000_000)
    ]
    assert bh.readings_cover(bh.EMPTY, Span(0, 10)) == []


@given(
    st.lists(st.tuples(st.integers(0, 5_000_000), st.floats(-5, 15)), max_size=40, unique_by=lambda p: p[0]),
    st.integers(0, 5_000_000), st.integers(0, 2_000_000),
)
def test_out_of_range_by_prefix_sums_is_what_walking_the_readings_gives(
    points: list[tuple[int, float]], start: int, length: int
) -> None:
    points.sort()
    series = bh.Series([t for t, _ in points], [v for _, v in points])
    walked = bh.figures(series, start, start + length + 1, 2.0, 8.0)
    assert OutOfRange(series, 2.0, 8.0).within(start, start + length + 1) == walked.above_ms + walked.below_ms


# ---------------------------------------------------------------- the story, on both dialects


@pytest.fixture
def world(engine: Any) -> Any:
    history_world(engine)
    return engine


def _segment(history: bh.History, custody: str, where: str | None) -> bh.Segment:
    found = [s for s in history.segments if s.custody == custody and (s.location or s.party) == where]
    assert len(found) == 1, [(s.custody, s.location, s.party) for s in history.segments]
    return found[0]


def test_a_lots_history_has_its_segments_inside_and_outside_our_custody(world: Any) -> None:
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=AS_OF)
    kinds = [(s.custody, s.location or s.party) for s in history.segments]
    assert kinds == [
        ("supplier", "Acme Pharma GmbH"), ("ours", "CR1"), ("ours", "CR2"), ("ours", "CR3"),
        ("customer", "Pharmacy A"), ("customer", "Hospital B"),
    ]  # fmt: skip
    supplier = _segment(history, "supplier", "Acme Pharma GmbH")
    assert (supplier.start, supplier.end, supplier.pallets, supplier.cases) == (None, at(8, 1), 1, 4)
    assert supplier.sensors == () and supplier.temperature == bh.NO_FIGURES  # never joined to our rooms
    cr1, cr2, cr3 = (_segment(history, "ours", room) for room in ("CR1", "CR2", "CR3"))
    assert (cr1.start, cr1.end) == (at(8, 1), at(8, 42))
    assert (cr2.start, cr2.end, cr2.cases) == (at(8, 30), at(13, 1), 2)
    assert (cr3.start, cr3.end, cr3.pallets, cr3.cases) == (at(8, 40), None, 1, 2)
    pharmacy = _segment(history, "customer", "Pharmacy A")
    assert (pharmacy.start, pharmacy.end, pharmacy.cases) == (at(12, 1), None, 2)
    assert [s.custody for s in history.segments if s.party == "Hospital B"] == ["customer"]


def test_each_segments_figures_match_the_readings_directly(world: Any) -> None:
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=AS_OF)
    for room in ("CR1", "CR2", "CR3"):
        segment = _segment(history, "ours", room)
        end = AS_OF if segment.end is None else segment.end
        assert segment.start is not None
        minutes = range(-(-segment.start // MIN) * MIN, end, MIN)
        values = [v for ms in minutes if (v := room_value(room, ms)) is not None]
        (sensor,) = segment.sensors
        assert sensor.sensor == f"t-{room.lower()}"
        assert sensor.temperature.count == len(values)
        assert (sensor.temperature.min, sensor.temperature.max) == (min(values), max(values))
        assert sensor.temperature.mean == pytest.approx(sum(values) / len(values))
        assert sensor.temperature.mkt == pytest.approx(mkt(values))
    cr2 = _segment(history, "ours", "CR2")
    assert cr2.temperature.above_ms == 20 * MIN and cr2.temperature.below_ms == 0
    assert [x.alert_id for x in cr2.excursions] == [EXCURSION]
    (excursion,) = cr2.excursions
    assert (excursion.start, excursion.end, excursion.peak) == (at(10, 0), at(10, 20), 9.5)
    assert _segment(history, "ours", "CR1").excursions == ()


def test_unmonitored_minutes_are_the_gaps_and_the_unwatched_time(world: Any) -> None:
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=AS_OF)
    cr3 = _segment(history, "ours", "CR3")
    assert cr3.unmonitored == (Span(at(11, 0), at(11, 30)),)
    assert cr3.sensors[0].gaps == (Span(at(11, 0), at(11, 30)),)
    assert _segment(history, "ours", "CR2").unmonitored == ()
    assert history.totals.unmonitored_ms == 30 * MIN


def test_a_sensor_silent_without_a_gap_on_record_is_not_monitoring(world: Any) -> None:
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=at(15, 0))
    cr3 = _segment(history, "ours", "CR3")  # the last reading at 14:00 stands for ten minutes, no more
    assert cr3.unmonitored == (Span(at(11, 0), at(11, 30)), Span(at(14, 10), at(15, 0)))
    assert history.totals.unmonitored_ms == 80 * MIN


def test_totals_take_the_worst_units_path_against_the_budget(world: Any) -> None:
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=AS_OF)
    totals = history.totals
    assert totals.out_of_range_ms == 20 * MIN  # case 1001 or 1002 through CR2's excursion, not 20 x 2
    assert totals.excursions == 1
    assert totals.first_in == at(8, 1)
    assert totals.last_out == at(13, 1)
    every = [s.temperature for s in history.segments if s.custody == "ours"]
    terms = math.fsum(f.arrhenius_sum for f in every)
    assert totals.readings == sum(f.count for f in every)
    assert totals.mkt == pytest.approx(mkt_from_sums(totals.readings, terms))
    assert history.limits.low == 2.0 and history.limits.high == 8.0


def test_a_pallets_history_is_its_own_path(world: Any) -> None:
    with world.connect() as conn:
        history = unit_history(conn, PALLET, as_of=AS_OF)
    assert [(s.custody, s.location or s.party) for s in history.segments] == [
        ("supplier", "Acme Pharma GmbH"), ("ours", "CR1"), ("ours", "CR3")
    ]
    assert history.totals.out_of_range_ms == 0
    assert history.totals.unmonitored_ms == 30 * MIN


def test_a_case_received_between_two_readings_was_watched_from_its_first_second(world: Any) -> None:
    with world.connect() as conn:
        history = unit_history(conn, "VX10~1001", as_of=AS_OF)
    cr1 = _segment(history, "ours", "CR1")
    assert cr1.start == at(8, 1, 1)  # the 08:01 reading stands for 08:01:00-08:02:00, this second included
    assert cr1.unmonitored == ()
    places = [s.location or s.party for s in history.segments]
    assert places == ["Acme Pharma GmbH", "CR1", "CR2", "Pharmacy A"]
    assert history.totals.out_of_range_ms == 20 * MIN


def test_a_sensor_placed_in_a_room_only_after_the_lot_left_it_is_not_part_of_its_history(world: Any) -> None:
    """It watched nothing of the lot (it raised IndexError in the gaps' lookup, found by bench.growth)."""
    from coldgate.cloud.catalog.placements import place
    from tests.rig.documents import QA

    with world.begin() as conn:
        place(conn, "gw01", "sensor", "t-cr1-late", "CR1", at(10, 0), reason="installed", by=QA,
              now=datetime.datetime.fromtimestamp(at(10, 0) / 1000, datetime.UTC))  # fmt: skip
    with world.connect() as conn:
        history = lot_history(conn, GTIN, "L1", as_of=AS_OF)
    cr1 = _segment(history, "ours", "CR1")
    assert [s.sensor for s in cr1.sensors] == ["t-cr1"]
