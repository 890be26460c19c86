"""The batch history's fast paths give exactly what the plain walks they replaced gave.

Each reference below is the previous code, kept here verbatim in substance: a reading-by-reading walk
for the figures, the cover and the time out of range; Span-by-Span merging; the sorted, one-query-per-
quantity read of a sensor's readings.  Hypothesis drives the pure ones with bunched and repeated times,
values on and around the limits and missing limits; the read is checked on both dialects with readings
that share a time, loggers in °F, K and an unknown unit, corrected times and many stay spans.

Equality is exact throughout (``==`` on floats too): the fast paths add in the same order from the same
start, so not even the last bit of a mean or an MKT may move.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from coldgate.cloud.db.models import Reading
from coldgate.cloud.db.partitions import ensure_partitions
from coldgate.cloud.db.reading_hours import TO_CELSIUS
from coldgate.cloud.db.selections import readings_in
from coldgate.cloud.documents.custody import Unit
from coldgate.cloud.documents.custody_store import Event, Stay
from coldgate.cloud.reports import batch_history as bh
from coldgate.cloud.reports import history_store
from coldgate.cloud.reports.series_figures import (
    MAX_HOLD_MS,
    Figures,
    OutOfRange,
    Series,
    figures,
    readings_cover,
)
from coldgate.cloud.reports.spans import Span, union
from coldgate.gateway.rules.mkt import arrhenius, mkt_from_sums

MIN = 60_000

# ---------------------------------------------------------------- the walks the fast paths replaced


def walked_figures(series: Series, start: int, end: int, low: float | None, high: float | None) -> Figures:
    """``figures`` as it was: every reading of the span walked in Python."""
    import bisect

    times, values = series
    first = bisect.bisect_left(times, start)
    last = bisect.bisect_left(times, end)
    above_before = below_before = 0
    if first > 0:
        t, v = times[first - 1], values[first - 1]
        held = min(times[first] if first < len(times) else end, end, t + MAX_HOLD_MS) - start
        if held > 0 and high is not None and v > high:
            above_before = held
        elif held > 0 and low is not None and v < low:
            below_before = held
    if first >= last:
        return Figures(0, None, None, None, None, above_before, below_before)
    low_v = high_v = values[first]
    value_sum = term_sum = 0.0
    above, below = above_before, below_before
    for i in range(first, last):
        t, v = times[i], values[i]
        low_v, high_v = min(low_v, v), max(high_v, v)
        value_sum += v
        term_sum += arrhenius(v)
        if (high is not None and v > high) or (low is not None and v < low):
            following = times[i + 1] if i + 1 < len(times) else end
            held = min(following, end, t + MAX_HOLD_MS) - t
            if high is not None and v > high:
                above += held
            else:
                below += held
    count = last - first
    return Figures(count, low_v, high_v, value_sum / count, mkt_from_sums(count, term_sum), above, below,
                   term_sum, value_sum)  # fmt: skip


def walked_cover(series: Series, span: Span) -> list[Span]:
    """``readings_cover`` as it was: a piece per reading, merged as it went."""
    import bisect

    times = series.times
    first = max(0, bisect.bisect_left(times, span.start) - 1)
    last = bisect.bisect_left(times, span.end)
    found: list[Span] = []
    for i in range(first, last):
        t = times[i]
        following = times[i + 1] if i + 1 < len(times) else span.end
        start, end = max(t, span.start), min(following, span.end, t + MAX_HOLD_MS)
        if end <= start:
            continue
        if found and found[-1].end >= start:
            found[-1] = Span(found[-1].start, max(found[-1].end, end))
        else:
            found.append(Span(start, end))
    return found


def merged(spans: Sequence[Span]) -> list[Span]:
    """``union`` as it was: Span by Span."""
    out: list[Span] = []
    for span in sorted(s for s in spans if s.end > s.start):
        if out and span.start <= out[-1].end:
            if span.end > out[-1].end:
                out[-1] = Span(out[-1].start, span.end)
        else:
            out.append(span)
    return out


# ---------------------------------------------------------------- pure, by hypothesis

#: Times bunched (several readings a minute, repeats) and spread (silences past ten minutes).
times_st = st.lists(st.integers(0, 120).map(lambda m: m * 15_000), max_size=60).map(sorted)
#: Values on, inside and outside the limits 2.0-8.0, in few enough kinds that they repeat.
value_st = st.sampled_from([-1.5, 1.9, 2.0, 2.1, 4.0, 5.25, 7.9, 8.0, 8.1, 12.0, 0.1 + 0.2])
limit_st = st.sampled_from([(2.0, 8.0), (None, 8.0), (2.0, None), (None, None), (5.25, 5.25)])
span_st = st.tuples(st.integers(-30, 130), st.integers(0, 60)).map(
    lambda p: (p[0] * 15_000 + 7, p[0] * 15_000 + 7 + p[1] * 20_000)
)


@st.composite
def series_st(draw: Any) -> Series:
    times = draw(times_st)
    return Series(times, [draw(value_st) for _ in times])


@settings(max_examples=400)
@given(series_st(), span_st, limit_st, st.booleans())
def test_figures_are_the_walks_to_the_last_bit(
    series: Series, span: tuple[int, int], limits: tuple[float | None, float | None], as_tuples: bool
) -> None:
    if as_tuples:  # the store hands in tuples (columns of the fetched rows), the tests lists
        series = Series(tuple(series.times), tuple(series.values))
    start, end = span
    low, high = limits
    assert figures(series, start, end, low, high) == walked_figures(series, start, end, low, high)


@settings(max_examples=400)
@given(series_st(), span_st)
def test_the_cover_is_the_walks(series: Series, span: tuple[int, int]) -> None:
    assert readings_cover(series, Span(*span)) == walked_cover(series, Span(*span))


@settings(max_examples=400)
@given(series_st(), st.lists(span_st, min_size=1, max_size=6), limit_st)
def test_out_of_range_of_any_span_is_the_walks(
    series: Series, spans: list[tuple[int, int]], limits: tuple[float | None, float | None]
) -> None:
    low, high = limits
    judge = OutOfRange(series, low, high)
    for start, end in spans:
        walked = walked_figures(series, start, end, low, high)
        assert judge.within(start, end) == walked.above_ms + walked.below_ms
    assert bool(judge) == any((high is not None and v > high) or (low is not None and v < low)
                              for v in series.values)  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=12))
def test_union_of_pairs_is_the_span_by_span_merge(pairs: list[tuple[int, int]]) -> None:
    spans = [Span(a, b) for a, b in pairs]
    assert union(pairs) == union(spans) == merged(spans)
    assert all(type(s) is Span for s in union(pairs))


# ---------------------------------------------------------------- segments and the worst path


def _event(what: str, at: int, document: str | None) -> Event:
    kind = {"receipt": "receiving", "dispatch": "dispatch"}.get(what)
    return Event(what, at, "gw01", "s", at, "movement", "site1", None, document, kind if document else None,
                 None if document is None else f"REF-{document}")  # fmt: skip


@st.composite
def stays_st(draw: Any) -> list[Stay]:
    """Units (cases, pallets, a counted lot) through rooms A-C and out to a customer."""
    stays: list[Stay] = []
    for n in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["case", "pallet", "lot"]))
        unit = {
            "case": Unit(f"serial:P1/{n}", "P1", "L1", serial=str(n)),
            "pallet": Unit(f"sscc:00{n}", None, None, sscc=f"00{n}"),
            "lot": Unit("lot:P1/L1", "P1", "L1"),
        }[kind]
        at = draw(st.integers(0, 20)) * MIN
        began = _event("receipt", at, draw(st.sampled_from(["d1", "d2", None])))
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(0, 30)) * MIN
            room = draw(st.sampled_from(["A", "B", "C"]))
            last = draw(st.integers(0, 5)) == 0
            end = None if last else at + length
            ended = None if end is None else _event(draw(st.sampled_from(["put-away", "dispatch"])), end,
                                                   draw(st.sampled_from(["d3", None])))  # fmt: skip
            quantity = draw(st.integers(1, 5)) if kind == "lot" else 1
            stays.append(Stay(unit, quantity, "site1", room, None, at, end, began, ended))
            if end is None:
                break
            began, at = ended, end
            assert began is not None
        else:
            stays.append(Stay(unit, 1, "site1", None, "Customer", at, None, began, None))
    return stays


def walked_worst(stays: Sequence[Stay], watches: Any, temperature: Any, limits: bh.Limits, as_of: int) -> int:
    """The worst unit's path by definition: each of its stays judged by its worst sensor's walk."""
    per_unit: dict[str, int] = {}
    for stay in stays:
        if stay.location is None:
            continue
        end = as_of if stay.end is None else stay.end
        worst = 0
        for w in watches.get((stay.site, stay.location), ()):
            lo, hi = max(w.start, stay.start), min(as_of if w.end is None else w.end, end)
            if hi > lo:
                f = walked_figures(temperature.get((w.gateway, w.sensor), bh.EMPTY), lo, hi, limits.low,
                                   limits.high)  # fmt: skip
                worst = max(worst, f.above_ms + f.below_ms)
        per_unit[stay.unit.key] = per_unit.get(stay.unit.key, 0) + worst
    return max(per_unit.values(), default=0)


@settings(max_examples=200)
@given(stays_st(), series_st(), series_st(), limit_st)
def test_the_worst_path_is_each_units_walked_sum(
    stays: list[Stay], a: Series, b: Series, limits: tuple[float | None, float | None]
) -> None:
    watches = {("site1", "A"): [bh.Watch("gw01", "ta", 0, None)],
               ("site1", "B"): [bh.Watch("gw01", "tb", 0, 20 * MIN), bh.Watch("gw01", "ta", 20 * MIN, None)]}
    temperature = {("gw01", "ta"): a, ("gw01", "tb"): b}
    lim = bh.Limits("2-8", *limits)
    as_of = 200 * MIN
    want = walked_worst(stays, watches, temperature, lim, as_of)
    assert bh._worst_path(stays, watches, temperature, lim, as_of) == want


def walked_segments(stays: Sequence[Stay], suppliers: dict[str, str | None]) -> list[tuple[Any, ...]]:
    """The segments as the previous code grouped them: (custody, place, party, start, end, pallets,
    cases, quantity, documents, references, stays)."""
    by_place: dict[tuple[Any, Any, Any], list[Stay]] = {}
    for stay in stays:
        ours = stay.location is not None
        place = (stay.site, stay.location, stay.party) if ours else (None, None, stay.party)
        by_place.setdefault(place, []).append(stay)
    found = []
    for (site, location, party), group in by_place.items():
        group.sort(key=lambda s: (s.start, s.unit.key))
        runs: list[list[Stay]] = []
        run: list[Stay] = []
        run_end: int | None = None
        for stay in group:
            if run and run_end is not None and stay.start > run_end:
                runs.append(run)
                run = []
            later = None if run_end is None or stay.end is None else max(run_end, stay.end)
            run_end = later if run else stay.end
            run.append(stay)
        runs.append(run)
        for run in runs:
            end: int | None = run[0].end
            for s in run:
                end = None if end is None or s.end is None else max(end, s.end)
            if location is None:
                end = None
                documents = {s.began_by.document for s in run if s.began_by.document}
            else:
                documents = {e.document for s in run for e in (s.began_by, s.ended_by)
                             if e and e.document}  # fmt: skip
            found.append((site, location, party, run[0].start, end, tuple(sorted(documents)), tuple(run)))
    return sorted(found, key=lambda f: (f[3], f[1] or "", f[2] or "", f[6][0].unit.key))


@settings(max_examples=200)
@given(stays_st())
def test_segments_group_the_stays_as_before(stays: list[Stay]) -> None:
    got = [s for s in bh.segments(stays, {"d1": "Acme"}) if s.custody != bh.SUPPLIER]
    mine = sorted(((s.site, s.location, s.party, s.start, s.end, s.documents, s.stays) for s in got),
                  key=lambda f: (f[3], f[1] or "", f[2] or "", f[6][0].unit.key))  # fmt: skip
    assert mine == walked_segments(stays, {"d1": "Acme"})
    for s in got:  # counted in one pass as the three set comprehensions and the sweep counted them
        assert s.pallets == len({x.unit.key for x in s.stays if x.unit.sscc is not None})
        assert s.cases == len({x.unit.key for x in s.stays if x.unit.sscc is None and not x.unit.counted})
        named = set(s.documents)
        assert s.references == tuple(sorted({e.reference or e.document or "" for x in s.stays
                                             for e in (x.began_by, x.ended_by)
                                             if e is not None and e.document in named}))  # fmt: skip


# ---------------------------------------------------------------- the read, on both dialects


def sorted_series(conn: Any, key: tuple[str, str], quantity: str, covered: list[Span]) -> tuple[Series, int]:
    """``history_store._series`` as it was: one quantity, sorted by the database, kept by bisection."""
    import bisect

    gateway, sensor = key
    inside = [(s.start - MAX_HOLD_MS, s.end) for s in covered]
    r = readings_in(gateway, sensor, inside[0][0], covered[-1].end, quantity).c
    query = (
        select(r.t, r.value, r.unit, r.ts_corrected.is_not(None))
        .where(r.quality == "ok", r.value.is_not(None))
        .order_by(r.t, r.stream, r.seq)
    )
    times: list[int] = []
    values: list[float] = []
    fixed = 0
    starts = [lo for lo, _ in inside]
    for t, value, unit, was_corrected in conn.execute(query).cursor.fetchall():
        at = bisect.bisect_right(starts, t) - 1
        if at < 0 or t >= inside[at][1]:
            continue
        if quantity == "temperature":
            to_celsius = TO_CELSIUS.get(unit)
            if to_celsius is None:
                continue
            value = to_celsius(value)
        times.append(t)
        values.append(value)
        fixed += bool(was_corrected)
    return Series(times, values), fixed


T0 = 1_796_112_000_000  # 2026-12-01 08:00 UTC


def _readings(case: int) -> list[dict[str, Any]]:
    """A sensor's readings over three hours: every minute, some in °F or K or an unknown unit, some
    sharing a time on two streams (in an order their seqs do not give), some corrected, some not ok."""
    rows = []
    for n in range(180):
        ts = T0 + n * MIN + (n % 3) * 7_000
        unit = {0: "CEL", 1: "FAH", 2: "KEL", 3: "XYZ"}[n % 4 if case else 0]
        value = {"CEL": 4.0 + n % 9, "FAH": 40.0 + n % 9, "KEL": 278.15 + n % 9, "XYZ": 5.0}[unit]
        quality = "error" if n % 17 == 5 else "ok"
        corrected = ts + 1_000 if n % 11 == 3 else None
        for stream, seq, quantity, v, u in (("b" * 8, n, "temperature", value, unit),
                                            ("a" * 8, 1000 + n, "humidity", 40.0 + n % 5, "P1")):  # fmt: skip
            rows.append({"gateway": "gw01", "stream": stream, "seq": seq, "ts": ts, "boot": "b", "mono": n,
                         "synced": True, "sensor": "t1", "quantity": quantity, "value": v, "unit": u,
                         "quality": quality, "ts_corrected": corrected})  # fmt: skip
        if n % 20 == 7:  # a second stream at the very same time, seq lower than the first's
            for stream in ("0" * 8, "c" * 8):
                rows.append({"gateway": "gw01", "stream": stream, "seq": n, "ts": ts, "boot": "b2",
                             "mono": n, "synced": True, "sensor": "t1", "quantity": "temperature",
                             "value": 9.5 - n % 2, "unit": "CEL", "quality": "ok", "ts_corrected": None})
    return rows


@pytest.mark.parametrize("case", [0, 1])
def test_the_read_is_the_sorted_read(engine: Any, case: int) -> None:
    with engine.begin() as conn:
        day = datetime.date(2026, 11, 30)
        ensure_partitions(conn, day, day + datetime.timedelta(days=3))
        conn.execute(insert(Reading.__table__), _readings(case))  # type: ignore[arg-type]
    key = ("gw01", "t1")
    few = [Span(T0 + 5 * MIN, T0 + 40 * MIN), Span(T0 + 70 * MIN, T0 + 71 * MIN),
           Span(T0 + 100 * MIN, T0 + 180 * MIN)]  # fmt: skip
    many = [Span(T0 + k * 4 * MIN, T0 + k * 4 * MIN + 90_000) for k in range(history_store._SPANS_IN_SQL + 5)]
    whole, none = [Span(T0 - MIN, T0 + 240 * MIN)], [Span(T0 + 600 * MIN, T0 + 660 * MIN)]
    with engine.connect() as conn:
        for covered in (whole, few, many, none):
            got = history_store._series(conn, key, covered)
            for quantity in ("temperature", "humidity"):
                want_series, want_fixed = sorted_series(conn, key, quantity, covered)
                series, fixed = got[quantity]
                assert (list(series.times), list(series.values), fixed) == (
                    want_series.times, want_series.values, want_fixed
                ), (quantity, covered[0])
        assert history_store._series(conn, key, []) == {q: (bh.EMPTY, 0) for q in ("temperature", "humidity")}


def test_a_sensor_watching_two_segments_counts_its_corrected_readings_once() -> None:
    """``ta`` watches room A, then room B from minute 20; the case stays in A, then B: its corrected
    readings are counted once in the history's total and note, not once per segment."""
    unit = Unit("serial:P1/1", "P1", "L1", serial="1")
    received, moved = _event("receipt", 0, "d1"), _event("put-away", 10 * MIN, None)
    stays = [Stay(unit, 1, "site1", "A", None, 0, 10 * MIN, received, moved),
             Stay(unit, 1, "site1", "B", None, 10 * MIN, None, moved, None)]  # fmt: skip
    watches = {("site1", "A"): [bh.Watch("gw01", "ta", 0, None)],
               ("site1", "B"): [bh.Watch("gw01", "ta", 20 * MIN, None)]}  # fmt: skip
    readings = Series(tuple(range(0, 40 * MIN, MIN)), tuple(5.0 for _ in range(40)))
    found = bh.history(
        subject="case 1", product="P1", gtin=None, lot="L1", status="released", expiry=None, stays=stays,
        suppliers={"d1": "Supplier"}, watches=watches, temperature={("gw01", "ta"): readings}, humidity={},
        gaps={}, excursions=(), limits=bh.Limits("2-8C", 2.0, 8.0), budget_s=None, as_of=40 * MIN,
        corrected={("gw01", "ta"): 7},
    )  # fmt: skip
    assert [len(s.sensors) for s in found.segments if s.location in ("A", "B")] == [1, 1]
    assert found.corrected_readings == 7
    assert found.notes[0].startswith("7 readings carry a clock-corrected time")
