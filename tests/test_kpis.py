"""The KPIs' pure arithmetic (``cloud/reports/kpis.py``): months, nearest-rank percentiles, case and
recall times, excursions charged to locations, and the monitoring cover's fast path held to the exact
answer (every reading read) by hypothesis."""

from __future__ import annotations

import csv
import datetime
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.cloud.reports import kpis
from coldgate.cloud.reports.batch_history import Series, readings_cover
from coldgate.cloud.reports.spans import Span, subtract

MIN = 60_000
HOUR = kpis.HOUR_MS
DEC = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp() * 1000)


def test_months_of_a_period_across_a_year_end() -> None:
    found = kpis.months("2026-11", "2027-02")
    assert [m.name for m in found] == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert found[1].start == DEC and found[0].end == DEC
    assert all(a.end == b.start for a, b in itertools.pairwise(found))
    assert kpis.months(str(DEC + 5 * HOUR), str(DEC))[0].name == "2026-12"  # an epoch ms: its month


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [("2026-13", "2026-12", "from"), ("2026-00", "2026-12", "from"), ("2026-1", "2026-12", "from"),
     ("2026-12", "2026-11", "to"), ("2026-01", "26-01", "to"), ("2020-01", "2026-12", "to")],
)  # fmt: skip
def test_a_bad_period_names_the_field(first: str, last: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        kpis.months(first, last)


@given(st.lists(st.integers(0, 10_000), max_size=50), st.floats(0.01, 1.0))
def test_nearest_rank_is_a_value_with_that_share_at_or_below(values: list[int], q: float) -> None:
    found = kpis.nearest_rank(values, q)
    if not values:
        assert found is None
        return
    assert found in values
    assert sum(v <= found for v in values) >= q * len(values) - 1e-9
    assert sum(v < found for v in values) < q * len(values)


def test_p90_of_ten_is_the_ninth() -> None:
    assert kpis.durations(list(range(1, 11))) == {"count": 10, "median_s": 5.5, "p90_s": 9}
    assert kpis.durations([]) == {"count": 0, "median_s": None, "p90_s": None}


def test_case_times_by_month_opened() -> None:
    within = kpis.months("2026-11", "2026-12")
    cases = [
        kpis.CaseTimes("a", DEC + HOUR, [("open", DEC + HOUR), ("acknowledged", DEC + HOUR + 5 * MIN),
                                         ("closed", DEC + 3 * HOUR)]),
        kpis.CaseTimes("b", DEC + HOUR, [("open", DEC + HOUR), ("cancelled", DEC + 2 * HOUR)]),
        kpis.CaseTimes("c", DEC - HOUR, [("open", DEC - HOUR), ("acknowledged", DEC + HOUR)]),
        kpis.CaseTimes("d", DEC + 40 * 24 * HOUR, []),  # after the period
    ]  # fmt: skip
    found = kpis.case_kpis(cases, within)
    assert found["2026-12"]["opened"] == 2
    assert found["2026-12"]["acknowledgement"] == {"count": 1, "median_s": 300, "p90_s": 300}
    assert found["2026-12"]["disposition"] == {"count": 1, "median_s": 7200, "p90_s": 7200}
    assert found["2026-11"]["acknowledgement"]["median_s"] == 7200  # by the month it was opened


def test_recall_times_count_only_those_reached() -> None:
    found = kpis.recall_kpis([(DEC, 600, 60), (DEC + HOUR, None, 120)], kpis.months("2026-12", "2026-12"))
    assert found["2026-12"]["opened"] == 2
    assert found["2026-12"]["to_notified"] == {"count": 1, "median_s": 600, "p90_s": 600}
    assert found["2026-12"]["to_blocked"]["median_s"] == 90


def test_inbound_accuracy() -> None:
    found = kpis.inbound_kpis(
        [(DEC, False), (DEC + 1, True), (DEC + 2, False)], kpis.months("2026-12", "2026-12")
    )
    assert found["2026-12"] == {"completed": 3, "without_discrepancy": 2, "percent": 66.67}


def test_excursions_go_to_where_the_sensor_was_when_raised() -> None:
    placed = [("gw", "t1", "CR1", 0, DEC + 10 * HOUR), ("gw", "t1", "CR2", DEC + 10 * HOUR, None)]
    alerts = [("gw", "a1", "t1", DEC + HOUR), ("gw", "a2", "t1", DEC + 11 * HOUR), ("gw", "a3", "t9", DEC)]
    found = kpis.excursions_by_location(alerts, placed, kpis.months("2026-12", "2026-12"))
    assert found == {"CR1": {"2026-12": ["gw/a1"]}, "CR2": {"2026-12": ["gw/a2"]}}


@st.composite
def minute_readings(draw: st.DrawFn) -> tuple[list[int], Span, list[Span]]:
    """Up to one reading a minute over six hours, with runs of missed polls, a span and some gaps."""
    present = draw(st.lists(st.booleans(), min_size=360, max_size=360))
    dense = draw(st.booleans())
    if dense:  # mostly full hours: the fast path's case
        present = [p or draw(st.integers(0, 30)) > 0 for p in present]
    times = [DEC + i * MIN for i, p in enumerate(present) if p]
    a = draw(st.integers(0, 360)) * MIN // draw(st.sampled_from([1, 7]))
    b = draw(st.integers(0, 400)) * MIN
    span = Span(DEC + min(a, b), DEC + max(a, b))
    gaps = [Span(DEC + s * MIN, DEC + (s + n) * MIN) for s, n in draw(st.lists(
        st.tuples(st.integers(0, 360), st.integers(1, 60)), max_size=2))]  # fmt: skip
    return times, span, gaps


@given(minute_readings())
@settings(max_examples=300, deadline=None)
def test_the_fast_cover_is_the_exact_one(world: tuple[list[int], Span, list[Span]]) -> None:
    times, span, gaps = world
    counts: dict[int, int] = {}
    for t in times:
        counts[t - t % HOUR] = counts.get(t - t % HOUR, 0) + 1
    whole, read = kpis.split_hours(counts, span)
    shown = [t for t in times if any(p.start - kpis.LOOK_BACK_MS <= t < p.end for p in read)]
    fast = kpis.cover(whole, Series(shown, [0.0] * len(shown)), read, gaps, span)
    exact = subtract(readings_cover(Series(times, [0.0] * len(times)), span), gaps)
    assert fast == exact


def test_completeness_of_an_empty_window_is_none() -> None:
    assert kpis.completeness([], Span(DEC, DEC))["percent"] is None
    half = kpis.completeness([Span(DEC, DEC + HOUR)], Span(DEC, DEC + 2 * HOUR))
    assert half == {"window_s": 7200, "monitored_s": 3600, "unmonitored_s": 3600, "percent": 50.0}


def test_the_csv_has_a_row_per_month_figure_and_location() -> None:
    months = kpis.months("2026-12", "2026-12")
    none = {"count": 0, "median_s": None, "p90_s": None}
    report = {
        "site": "site1",
        "trace": {"measured_at": "2026-12-07T13:00:00+00:00", "median_ms": 12.5, "lots": [{}]},
        "months": [{
            "month": "2026-12", "cases": {"acknowledgement": none, "disposition": none},
            "recalls": {"to_notified": none, "to_blocked": none},
            "inbound": {"percent": 100.0, "completed": 1},
            "locations": [
                {"location": "CR1", "excursions": 2, "monitoring": {"percent": 99.5, "window_s": 60}}
            ],
        }],
    }  # fmt: skip
    assert months[0].name == "2026-12"
    rows = list(csv.DictReader(io.StringIO(kpis.kpis_csv(report))))
    by = {(r["kpi"], r["subject"]): r for r in rows}
    assert by[("monitoring_completeness", "CR1")]["value"] == "99.5"
    assert by[("excursions", "CR1")]["value"] == "2"
    assert by[("trace_completion_median", "measured 2026-12-07T13:00:00+00:00")]["value"] == "12.5"
