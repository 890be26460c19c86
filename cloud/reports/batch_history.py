"""The environmental history of a lot, a pallet or a case: where its units were, and what they
experienced there.  Pure (DESIGN.md principles 2 and 9): the store (``history_store.py``) reads the
custody chain, the placements, the readings, the gaps and the excursions, and this module joins them.

What a recall coordinator or an inspector asks, and how it is answered:

* **Segments.**  The stays of the custody chain (``custody_store``), grouped by place: the stays at one
  location of one site that overlap or touch make one segment, from the first arrival to the last
  departure (None: still there).  Before the first receipt the goods were with the supplier (the
  receiving note's party); after a dispatch, with the customer.  Those segments are *outside our
  custody* and are never joined to our rooms' readings: we know nothing of the truck or the customer's
  fridge, and a report that suggested otherwise would be false evidence.
* **What watched each segment.**  The sensors placed at that location (placements are append-only rows
  with a validity interval), clipped to the segment.  For each: count, min, max, mean and MKT of the ok
  readings (USP <1079.2>: equal weights, as the gateway polls at a fixed interval), and the time spent
  above and below the product's class limits.  A reading stands for the time until the next one, at
  most :data:`MAX_HOLD_MS`; longer silences are the gaps' business, not an excursion's.
* **Minutes not monitored.**  The time of the segment that no placed sensor covered with its
  readings: what a sensor covers is the time its ok readings stand for (as above) within its
  placement, less its own gaps (offline, errors) and its gateway's (restart, shed data, unheard unless
  judged "delayed"); the sensors' covers are united, and what of the segment is left over is
  unmonitored, including every minute at a place with no sensor at all and every minute a sensor was
  silent without a gap on record.
* **Purged by retention.**  A month whose readings were purged once every lot held in it allowed
  (``cloud/db/purge.py``) is neither covered nor unmonitored: the sensors recorded it and the readings
  were kept their whole term, then let go by a rule, with the archive's hash on record.  Where a placed
  sensor watched during such a month (less its own gaps, which are records still held), that time is
  *purged*, its own category, and the history names the month, the date, the rule and the hash.  A place
  with no sensor, or a sensor's recorded gap, stays unmonitored: the purge took readings, not those
  facts.  Where the store knows which hours a sensor had readings in (the hourly summaries, derived data
  the purge leaves), only those hours are purged and a silence without a gap on record stays unmonitored,
  as before the purge.  The figures (MKT, time out of range) are over the readings still held and the
  notes say so.
* **Excursions** of those sensors that overlap the segment, with the QA case that holds each and the
  case's disposition and signatures.
* **Totals over our custody.**  The MKT of every reading of every segment; the time out of range of
  the *worst-placed unit* (each unit's own path through the segments, summed: two pallets of one lot
  in two rooms at once do not add up to one pallet's exposure) against the product's budget; the
  distinct excursions; the unmonitored time (a moment counts once, whichever room was unwatched).

A segment's time above and below the limits is its worst sensor's (two probes in one room are two
views
of one place; the conservative one is the one a QA reviewer must see).  Times are the clock-corrected
ones where the cloud has them (a Pi that booted without a clock); the store counts how many readings
that concerns and the report says so.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from coldgate.cloud.db.selections import PurgedMonth
from coldgate.cloud.documents.custody_store import Stay
from coldgate.cloud.reports.series_figures import (
    EMPTY,
    MAX_HOLD_MS,
    NO_FIGURES,
    Figures,
    OutOfRange,
    Series,
    combined,
    figures,
    readings_cover,
)
from coldgate.cloud.reports.spans import Span, clip, subtract, total, union

__all__ = [
    "MAX_HOLD_MS", "Excursion", "Figures", "History", "Limits", "Segment", "SensorReport", "Series", "Totals",
    "Watch", "figures", "history", "readings_cover", "segments",
]  # fmt: skip

#: Where a segment lies: with the supplier before receipt, in our locations, with a customer after a
#: dispatch, or handed to another party by a transfer out.
SUPPLIER, OURS, CUSTOMER, TRANSFERRED = "supplier", "ours", "customer", "transferred"


@dataclass(frozen=True, slots=True)
class Limits:
    """The product's storage condition, from its temperature class."""

    temperature_class: str | None
    low: float | None
    high: float | None
    humidity_low: float | None = None
    humidity_high: float | None = None


@dataclass(frozen=True, slots=True)
class Watch:
    """Sensor ``sensor`` of ``gateway`` placed at the segment's location from ``start`` to ``end``."""

    gateway: str
    sensor: str
    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class Excursion:
    """An excursion alert of a sensor: from the edge's evidence, and the QA case it was folded into."""

    gateway: str
    alert_id: str
    sensor: str
    rule: str
    severity: str
    start: int
    end: int | None
    peak: float | None
    message: str
    case_id: str | None = None
    case_state: str | None = None
    disposition: str | None = None
    signatures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorReport:
    """What one sensor saw of a segment: the part of it it was placed for (``watched``), its figures,
    its gaps inside that part, and how many of its readings there carry a clock-corrected time."""

    gateway: str
    sensor: str
    watched: Span
    temperature: Figures
    humidity: Figures | None
    gaps: tuple[Span, ...]
    corrected: int = 0


@dataclass(frozen=True, slots=True)
class Segment:
    """A place the units were at, and when.  ``custody`` is :data:`SUPPLIER`, :data:`OURS`,
    :data:`CUSTOMER` or :data:`TRANSFERRED`; ``start`` None: before anything we know (the supplier's);
    ``end`` None: still there.  ``pallets``, ``cases`` and ``quantity`` (counted from unserialised
    labels, the most held at once) say how much of the subject was there; ``documents`` the documents
    that brought it there or took it away."""

    custody: str
    site: str | None
    location: str | None
    party: str | None
    start: int | None
    end: int | None
    pallets: int = 0
    cases: int = 0
    quantity: int = 0
    documents: tuple[str, ...] = ()
    stays: tuple[Stay, ...] = ()
    #: The documents' references as people know them (the ship notice, the customer's order).
    references: tuple[str, ...] = ()
    sensors: tuple[SensorReport, ...] = ()
    temperature: Figures = NO_FIGURES
    unmonitored: tuple[Span, ...] = ()
    excursions: tuple[Excursion, ...] = ()
    #: The time a placed sensor watched whose readings retention purged (never part of ``unmonitored``).
    purged: tuple[Span, ...] = ()

    @property
    def unmonitored_ms(self) -> int:
        return total(self.unmonitored)

    @property
    def purged_ms(self) -> int:
        return total(self.purged)

    @property
    def out_of_range_ms(self) -> int:
        return self.temperature.above_ms + self.temperature.below_ms


@dataclass(frozen=True, slots=True)
class Totals:
    """Over our custody only.  ``out_of_range_ms``: the worst unit's time outside the class limits;
    ``budget_ms`` the product's allowance (None: none tolerated)."""

    readings: int
    mkt: float | None
    min: float | None
    max: float | None
    out_of_range_ms: int
    budget_ms: int | None
    excursions: int
    unmonitored_ms: int
    in_custody_ms: int
    first_in: int | None
    last_out: int | None
    #: Time in our custody whose readings retention purged (a moment counts once), apart from unmonitored.
    purged_ms: int = 0

    @property
    def budget_exceeded(self) -> bool:
        limit = self.budget_ms or 0
        return self.out_of_range_ms > limit


@dataclass(frozen=True, slots=True)
class History:
    subject: str
    product: str
    gtin: str | None
    lot: str | None
    status: str | None
    expiry: str | None
    limits: Limits
    as_of: int
    segments: tuple[Segment, ...]
    totals: Totals
    corrected_readings: int = 0
    notes: tuple[str, ...] = field(default=())
    #: The temperature readings the figures were computed from, by (gateway, sensor): what a chart draws.
    series: Mapping[tuple[str, str], Series] = field(default_factory=dict)
    #: The months purged by retention that overlap the time some of it was watched in our rooms.
    purged: tuple[PurgedMonth, ...] = ()


def _end(end: int | None, as_of: int) -> int:
    return as_of if end is None else end


def segments(stays: Sequence[Stay], suppliers: Mapping[str, str | None]) -> list[Segment]:
    """The stays grouped into segments by place and overlap (see the module docstring), in time order
    (the supplier's first); ``suppliers`` maps a receiving document to its party."""
    by_place: dict[tuple[str | None, str | None, str | None], list[Stay]] = {}
    received: dict[str | None, list[Stay]] = {}
    for stay in stays:
        ours = stay.location is not None
        place = (stay.site, stay.location, stay.party) if ours else (None, None, stay.party)
        by_place.setdefault(place, []).append(stay)
        if stay.began_by.what == "receipt":
            party = suppliers.get(stay.began_by.document or "") or stay.began_by.reference
            received.setdefault(party, []).append(stay)
    found: list[Segment] = []
    for party, arrivals in received.items():
        documents = tuple(sorted({s.began_by.document for s in arrivals if s.began_by.document}))
        found.append(_counted(Segment(SUPPLIER, None, None, party, None, min(s.start for s in arrivals),
                                      documents=documents), arrivals))  # fmt: skip
    for (site, location, party), group in by_place.items():
        group.sort(key=_BY_ARRIVAL)
        begin, run_end = 0, group[0].end
        for i in range(1, len(group)):
            stay = group[i]
            if run_end is None:
                continue  # still there: every later stay joins the run
            if stay.start > run_end:
                found.append(_segment(site, location, party, group[begin:i], run_end))
                begin, run_end = i, stay.end
            elif stay.end is None or stay.end > run_end:
                run_end = stay.end
        found.append(_segment(site, location, party, group[begin:], run_end))
    order = {SUPPLIER: 0, OURS: 1, TRANSFERRED: 2, CUSTOMER: 2}
    return sorted(found, key=lambda s: (s.start is not None, s.start or 0, order[s.custody],
                                         s.location or "", s.party or ""))  # fmt: skip


#: A place's stays in the order they are run through: by arrival, then unit (C-level, no lambda).
_BY_ARRIVAL = operator.attrgetter("start", "unit.key")


def _segment(
    site: str | None, location: str | None, party: str | None, run: list[Stay], end: int | None
) -> Segment:
    """A run of stays as a segment; ``end``: the run's latest end (None: one is still there)."""
    if location is not None:
        custody = OURS
        documents = {e.document for s in run for e in (s.began_by, s.ended_by)
                     if e is not None and e.document}  # fmt: skip
    else:
        custody = CUSTOMER if run[0].began_by.what == "dispatch" else TRANSFERRED
        end = None  # what left our hands stays out of them as far as this record knows
        documents = {s.began_by.document for s in run if s.began_by.document}
    base = Segment(custody, site, location, party, run[0].start, end, documents=tuple(sorted(documents)))
    return _counted(base, run)


def _counted(segment: Segment, run: list[Stay]) -> Segment:
    """``segment`` with its units counted and its stays kept (one pass over the run: a lot's room holds
    10,000 stays)."""
    pallets: set[str] = set()
    cases: set[str] = set()
    events: list[tuple[int, int]] = []
    for s in run:
        unit = s.unit
        counted = unit.counted
        if unit.sscc is not None:
            pallets.add(unit.key)
        elif not counted:
            cases.add(unit.key)
        if counted:
            events.append((s.start, s.quantity))
            if s.end is not None:
                events.append((s.end, -s.quantity))
    held = most = 0
    for _, change in sorted(events):
        held += change
        most = max(most, held)
    named = set(segment.documents)
    references = tuple(sorted({e.reference or e.document or "" for s in run for e in (s.began_by, s.ended_by)
                               if e is not None and e.document in named}))  # fmt: skip
    return Segment(segment.custody, segment.site, segment.location, segment.party, segment.start,
                   segment.end, len(pallets), len(cases), most, segment.documents, tuple(run),
                   references)  # fmt: skip


def _watched(segment: Segment, watches: Sequence[Watch], as_of: int) -> list[tuple[Watch, Span]]:
    start, end = segment.start or 0, _end(segment.end, as_of)
    found = []
    for w in watches:
        span = Span(max(w.start, start), min(_end(w.end, as_of), end))
        if span.end > span.start:
            found.append((w, span))
    return found


def _report(
    segment: Segment,
    watches: Sequence[Watch],
    temperature: Mapping[tuple[str, str], Series],
    humidity: Mapping[tuple[str, str], Series],
    gaps: Mapping[tuple[str, str], Sequence[Span]],
    corrected: Mapping[tuple[str, str], int],
    excursions: Sequence[Excursion],
    limits: Limits,
    as_of: int,
    purged_cover: Mapping[tuple[str, str], Sequence[Span]] | None = None,
    purged_months: Sequence[Span] = (),
) -> Segment:
    start, end = segment.start or 0, _end(segment.end, as_of)
    reports: list[SensorReport] = []
    covered: list[Span] = []
    purged: list[Span] = []
    for watch, span in _watched(segment, watches, as_of):
        key = (watch.gateway, watch.sensor)
        sensor_gaps = clip(gaps.get(key, ()), span.start, span.end)
        recorded = [*readings_cover(temperature.get(key, EMPTY), span),
                    *readings_cover(humidity.get(key, EMPTY), span)]  # fmt: skip
        covered += subtract(recorded, sensor_gaps)
        recorded_then = purged_months if purged_cover is None else purged_cover.get(key, ())
        purged += subtract(clip(recorded_then, span.start, span.end), sensor_gaps)
        t = figures(temperature.get(key, EMPTY), span.start, span.end, limits.low, limits.high)
        h_series = humidity.get(key)
        h = None
        if h_series is not None and h_series.times:
            h = figures(h_series, span.start, span.end, limits.humidity_low, limits.humidity_high)
        reports.append(SensorReport(watch.gateway, watch.sensor, span, t, h, tuple(sensor_gaps),
                                    corrected.get(key, 0)))  # fmt: skip
    watched_sensors = {(r.gateway, r.sensor): r.watched for r in reports}
    overlapping = tuple(
        x for x in excursions
        if (x.gateway, x.sensor) in watched_sensors
        and x.start < watched_sensors[(x.gateway, x.sensor)].end
        and _end(x.end, as_of) > watched_sensors[(x.gateway, x.sensor)].start
    )  # fmt: skip
    # A reading held over from before a purged month still covers its first minutes: covered wins.
    purged_here = subtract(union(purged), covered)
    unmonitored = subtract(subtract([Span(start, end)], covered), purged_here)
    return Segment(segment.custody, segment.site, segment.location, segment.party, segment.start,
                   segment.end, segment.pallets, segment.cases, segment.quantity, segment.documents,
                   segment.stays, segment.references, tuple(reports),
                   combined([r.temperature for r in reports], worst_time=True),
                   tuple(unmonitored), overlapping, tuple(purged_here))  # fmt: skip


def history(
    *,
    subject: str,
    product: str,
    gtin: str | None,
    lot: str | None,
    status: str | None,
    expiry: str | None,
    stays: Sequence[Stay],
    suppliers: Mapping[str, str | None],
    watches: Mapping[tuple[str, str], Sequence[Watch]],
    temperature: Mapping[tuple[str, str], Series],
    humidity: Mapping[tuple[str, str], Series],
    gaps: Mapping[tuple[str, str], Sequence[Span]],
    excursions: Sequence[Excursion],
    limits: Limits,
    budget_s: int | None,
    as_of: int,
    corrected: Mapping[tuple[str, str], int] | None = None,
    purged: Sequence[PurgedMonth] = (),
    purged_cover: Mapping[tuple[str, str], Sequence[Span]] | None = None,
) -> History:
    """The whole history (see the module docstring).  ``watches`` maps (site, location) to its sensors'
    placements; ``temperature``, ``humidity``, ``gaps`` and ``corrected`` map (gateway, sensor);
    ``purged`` the months retention purged (every site's readings of each: they concern every sensor);
    ``purged_cover`` per (gateway, sensor) the times within them it had readings (None: not known, every
    watched moment of a purged month counts as purged)."""
    corrected = corrected or {}
    months = [Span(p.start, p.end) for p in purged]
    reported = [
        _report(s, watches.get((s.site or "", s.location or ""), ()), temperature, humidity, gaps, corrected,
                excursions, limits, as_of, purged_cover, months) if s.custody == OURS else s
        for s in segments(stays, suppliers)
    ]  # fmt: skip
    ours = [s for s in reported if s.custody == OURS]
    overall = combined([s.temperature for s in ours], worst_time=False)
    worst = _worst_path(stays, watches, temperature, limits, as_of)
    seen_excursions = {(x.gateway, x.alert_id) for s in ours for x in s.excursions}
    unmonitored = union(span for s in ours for span in s.unmonitored)
    # A moment purged in one room and unmonitored in another is unmonitored: the stricter word wins.
    purged_time = subtract(union(span for s in ours for span in s.purged), unmonitored)
    in_custody = union(Span(s.start or 0, _end(s.end, as_of)) for s in ours)
    first_in = min((s.start for s in ours if s.start is not None), default=None)
    left = [s.start for s in reported if s.custody in (CUSTOMER, TRANSFERRED) and s.start is not None]
    totals = Totals(
        overall.count, overall.mkt, overall.min, overall.max, worst,
        None if budget_s is None else budget_s * 1000, len(seen_excursions), total(unmonitored),
        total(in_custody), first_in, max(left, default=None), total(purged_time),
    )  # fmt: skip
    # Per sensor, not per report: a sensor that watched several segments (a room the units left and came
    # back to, or a sensor moved between rooms) reports its count in each.
    watching = {(r.gateway, r.sensor) for s in ours for r in s.sensors}
    corrected_total = sum(corrected.get(key, 0) for key in watching)
    notes = []
    if corrected_total:
        notes.append(
            f"{corrected_total} readings carry a clock-corrected time (their gateway booted without a "
            "synchronised clock); the report places them by the corrected time."
        )
    # The months named are those some of it was watched in: a purge elsewhere in time is no concern here.
    held = [span for s in ours for span in s.purged]
    shown = tuple(p for p in purged if any(s.start < p.end and s.end > p.start for s in held))
    notes += [p.note() for p in shown]
    return History(subject, product, gtin, lot, status, expiry, limits, as_of, tuple(reported), totals,
                   corrected_total, tuple(notes), temperature, shown)  # fmt: skip


def _worst_path(
    stays: Sequence[Stay],
    watches: Mapping[tuple[str, str], Sequence[Watch]],
    temperature: Mapping[tuple[str, str], Series],
    limits: Limits,
    as_of: int,
) -> int:
    """The most time out of range any one unit spent in our locations: each distinct stay place and
    span is judged once, by its worst sensor, and summed along each unit's own path.  Cases read one by
    one at a door each have their own span (a lot of 10,000 makes some 30,000), so a span is judged in
    O(log n) from each sensor's out-of-range readings (``OutOfRange``), not by walking its readings;
    and a place none of whose sensors was ever out of range adds nothing (a time out of range is never
    negative), so its stays are passed over without a question."""
    judges: dict[tuple[str, str], list[tuple[int, int, OutOfRange]]] = {}
    made: dict[tuple[str, str], OutOfRange] = {}
    piece_time: dict[tuple[str, str, int, int], int] = {}
    per_unit: dict[str, int] = {}
    for stay in stays:
        if stay.location is None:
            continue
        place = (stay.site, stay.location)
        judging = judges.get(place)
        if judging is None:
            judging = judges[place] = _judges(watches.get(place, ()), temperature, limits, as_of, made)
        if not judging:
            continue
        start, end = stay.start, _end(stay.end, as_of)
        piece = (*place, start, end)
        worst = piece_time.get(piece)
        if worst is None:
            worst = 0
            for w_start, w_end, out in judging:
                lo, hi = max(w_start, start), min(w_end, end)
                if hi > lo:
                    worst = max(worst, out.within(lo, hi))
            piece_time[piece] = worst
        if worst:
            per_unit[stay.unit.key] = per_unit.get(stay.unit.key, 0) + worst
    return max(per_unit.values(), default=0)


def _judges(
    placed: Sequence[Watch], temperature: Mapping[tuple[str, str], Series], limits: Limits, as_of: int,
    made: dict[tuple[str, str], OutOfRange],
) -> list[tuple[int, int, OutOfRange]]:  # fmt: skip
    """A place's placements (from, to) whose sensor read out of range at some time, with its judge
    (one per sensor, kept in ``made``: a sensor moved between two of the lot's rooms judges both)."""
    found = []
    for w in placed:
        key = (w.gateway, w.sensor)
        out = made.get(key)
        if out is None:
            out = made[key] = OutOfRange(temperature.get(key, EMPTY), limits.low, limits.high)
        if out:
            found.append((w.start, _end(w.end, as_of), out))
    return found
