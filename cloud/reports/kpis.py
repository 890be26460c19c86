"""The key performance indicators (issue 17), per month: pure arithmetic over recorded data, no I/O.

Every figure is derived from records (DESIGN.md principle 9): nobody types a KPI in, so recomputing a
month gives the same figures (bar the trace time, which is measured when asked, and says so).  The
store (``kpi_store.py``) reads the records; this module buckets them by month (UTC) and sums them up.
Each figure carries its count, so a reader can judge a median of two cases from one of two hundred.

* **Alert acknowledgement and disposition times**: from a QA case's opening to its first step in
  state ``acknowledged``, and to its first step in state ``closed`` (a cancelled case had no
  disposition and is not counted there); bucketed by the month the case was opened; median and p90.
* **Recall response time**: from a recall's initiation to all customers notified and to all stock
  blocked (``recall.response_times``); bucketed by the month the recall was opened.
* **Monitoring completeness**: the share of a storage location's time in the month (up to now) that
  some sensor placed there covered with its readings, less the gaps on record (see
  :func:`split_hours` for how a month of one-a-minute readings is read fast but exactly enough).
* **Excursions per location**: excursion alerts of the sensors placed at the location when raised.
* **Trace completion time**: how long producing a batch history took, measured when the KPIs were
  computed for a few recently moved lots; not a record, so it is reported beside the months, not in them.

Percentiles are nearest-rank (the p90 of ten values is the ninth): every figure shown is a time that
really happened, not an interpolation between two.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from coldgate.cloud.reports.batch_history import MAX_HOLD_MS, Series, readings_cover
from coldgate.cloud.reports.spans import Span, clip, subtract, total, union

__all__ = [
    "FULL_HOUR_OK", "MAX_MONTHS", "CaseTimes", "Month", "cover", "durations", "excursions_by_location",
    "kpis_csv", "months", "nearest_rank", "split_hours",
]  # fmt: skip

HOUR_MS = 3_600_000
#: The fewest and most ok readings an hour may hold to count as monitored whole without reading it:
#: at the usual one poll a minute, an hour missing at most four polls has no silence over ten minutes
#: inside it, nor across its boundary with a neighbour missing at most four (eight polls, nine minutes).
#: More than 60 means a faster poll (readings may bunch): such an hour is read reading by reading.
FULL_HOUR_OK = (56, 60)
#: The longest period asked at once (three years of months).
MAX_MONTHS = 36
_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month (UTC) as ``YYYY-MM`` and its window [start, end) in epoch ms."""

    name: str
    start: int
    end: int


def _ms(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def _parse(field: str, text: str) -> datetime.date:
    """A month as ``YYYY-MM``, or as an epoch ms (the API's other routes take ``from``/``to`` so): the
    month holding it."""
    if text.isdigit() and len(text) <= 15:
        day = datetime.datetime.fromtimestamp(int(text) / 1000, datetime.UTC).date()
        return day.replace(day=1)
    found = _MONTH.fullmatch(text)
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1970:
        raise ValueError(
            f"{field}: {text!r} is not a month as YYYY-MM (month 01 to 12, year from 1970) nor an epoch ms"
        )
    return datetime.date(int(found[1]), int(found[2]), 1)


def months(first: str, last: str) -> list[Month]:
    """The months from ``first`` to ``last`` (``YYYY-MM``, both included).  ValueError naming the field
    (``from`` or ``to``) for a month that is none, a period ending before it starts, or a period longer
    than :data:`MAX_MONTHS`."""
    start, end = _parse("from", first), _parse("to", last)
    if end < start:
        raise ValueError(f"to: {last} is before from ({first}): the period must not end before it starts")
    found = []
    day = start
    while day <= end:
        following = datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)
        found.append(Month(day.strftime("%Y-%m"), _ms(day), _ms(following)))
        day = following
        if len(found) > MAX_MONTHS:
            raise ValueError(f"to: the period {first} to {last} is longer than {MAX_MONTHS} months")
    return found


def month_of(ms: int, within: Sequence[Month]) -> Month | None:
    """The month of ``within`` holding ``ms`` (None: outside the period)."""
    return next((m for m in within if m.start <= ms < m.end), None)


# ---------------------------------------------------------------- durations


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ``values``: the smallest value at or above which
    lies a share ``q`` of them.  None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def durations(seconds: Sequence[float]) -> dict[str, Any]:
    """Count, median and p90 (nearest rank) of durations in seconds; None where there are none."""
    return {
        "count": len(seconds),
        "median_s": statistics.median(seconds) if seconds else None,
        "p90_s": nearest_rank(seconds, 0.9),
    }


@dataclass(frozen=True, slots=True)
class CaseTimes:
    """A QA case's opening and its steps (state, epoch ms), in order."""

    case_id: str
    opened: int
    steps: Sequence[tuple[str, int]]

    def first(self, state: str) -> int | None:
        """Seconds from opening to the first step in ``state`` (None: never reached)."""
        at = next((ms for s, ms in self.steps if s == state), None)
        return None if at is None else max(0, at - self.opened) // 1000


def case_kpis(cases: Iterable[CaseTimes], within: Sequence[Month]) -> dict[str, dict[str, Any]]:
    """Per month (of the case's opening): cases opened, and the acknowledgement and disposition times."""
    acked: dict[str, list[float]] = {m.name: [] for m in within}
    closed: dict[str, list[float]] = {m.name: [] for m in within}
    opened = dict.fromkeys(acked, 0)
    for case in cases:
        month = month_of(case.opened, within)
        if month is None:
            continue
        opened[month.name] += 1
        if (ack := case.first("acknowledged")) is not None:
            acked[month.name].append(ack)
        if (done := case.first("closed")) is not None:
            closed[month.name].append(done)
    return {
        m.name: {"opened": opened[m.name], "acknowledgement": durations(acked[m.name]),
                 "disposition": durations(closed[m.name])}
        for m in within
    }  # fmt: skip


def recall_kpis(
    recalls: Iterable[tuple[int, int | None, int | None]], within: Sequence[Month]
) -> dict[str, dict[str, Any]]:
    """Per month of opening, from (opened ms, seconds to all notified, seconds to all blocked): recalls
    opened, and the median of each time over the recalls that reached it."""
    found: dict[str, dict[str, list[float]]] = {m.name: {"notified": [], "blocked": []} for m in within}
    opened = {m.name: 0 for m in within}
    for at, notified, blocked in recalls:
        month = month_of(at, within)
        if month is None:
            continue
        opened[month.name] += 1
        if notified is not None:
            found[month.name]["notified"].append(notified)
        if blocked is not None:
            found[month.name]["blocked"].append(blocked)
    return {
        name: {
            "opened": opened[name],
            "to_notified": durations(t["notified"]),
            "to_blocked": durations(t["blocked"]),
        }
        for name, t in found.items()
    }


# ---------------------------------------------------------------- monitoring completeness


def split_hours(ok_counts: Mapping[int, int], span: Span) -> tuple[list[Span], list[Span]]:
    """Which parts of ``span`` a sensor's hourly summaries settle, and which must be read.

    ``ok_counts``: the hour's first epoch ms -> ok readings in it (``reading_hours``).  An hour is
    *whole* (monitored throughout, read no further) when it lies inside ``span``, holds a count in
    :data:`FULL_HOUR_OK` and so do both its neighbours (so the silences at its edges are short too);
    every other hour of the span is to be read reading by reading.  An hour without readings is read too
    (cheaply: it has none), since the reading before it stands into it for up to ten minutes.  Returns
    (whole spans, spans to read), each merged."""
    low, high = FULL_HOUR_OK

    def full(hour: int) -> bool:
        return low <= ok_counts.get(hour, 0) <= high and span.start <= hour and hour + HOUR_MS <= span.end

    whole: list[Span] = []
    first = span.start - span.start % HOUR_MS
    for hour in range(first, span.end, HOUR_MS):
        if full(hour) and full(hour - HOUR_MS) and full(hour + HOUR_MS):
            whole.append(Span(hour, hour + HOUR_MS))
    whole = union(whole)
    return whole, subtract([span], whole)


def cover(
    whole: Sequence[Span], series: Series, read: Sequence[Span], gaps: Iterable[Span], span: Span
) -> list[Span]:
    """What one sensor monitored of ``span``: the whole hours, plus what its ok readings (``series``,
    holding at least those of ``read`` and the ten minutes before each) stand for in the spans read,
    less its gaps (its own and its gateway's, as recorded)."""
    covered = list(whole)
    for part in read:
        covered += readings_cover(series, part)
    return clip(subtract(covered, gaps), span.start, span.end)


def completeness(monitored: Iterable[Span], window: Span) -> dict[str, Any]:
    """Location-time monitored of ``window`` (ms and %, None when the window is empty: a month to come)."""
    length = max(0, window.end - window.start)
    done = total(clip(monitored, window.start, window.end))
    return {
        "window_s": length // 1000, "monitored_s": done // 1000, "unmonitored_s": (length - done) // 1000,
        "percent": round(100 * done / length, 2) if length else None,
    }  # fmt: skip


#: Readings needed before a span to know what stands into it.
LOOK_BACK_MS = MAX_HOLD_MS


# ---------------------------------------------------------------- excursions


def excursions_by_location(
    alerts: Iterable[tuple[str, str, str, int]],
    placed: Iterable[tuple[str, str, str, int, int | None]],
    within: Sequence[Month],
) -> dict[str, dict[str, list[str]]]:
    """location -> month -> the alert ids (``gateway/alert``) of the excursion alerts (gateway, alert id,
    sensor, raised ms) of sensors placed there (gateway, sensor, location, from, to or None) when
    raised.  An alert of a sensor placed nowhere then is left out (no location to charge it to)."""
    where: dict[tuple[str, str], list[tuple[int, int | None, str]]] = {}
    for gateway, sensor, location, start, end in placed:
        where.setdefault((gateway, sensor), []).append((start, end, location))
    found: dict[str, dict[str, list[str]]] = {}
    for gateway, alert_id, sensor, raised in alerts:
        month = month_of(raised, within)
        if month is None:
            continue
        for start, end, location in where.get((gateway, sensor), []):
            if start <= raised and (end is None or raised < end):
                found.setdefault(location, {}).setdefault(month.name, []).append(f"{gateway}/{alert_id}")
    return {loc: {m: sorted(ids) for m, ids in by_month.items()} for loc, by_month in found.items()}


# ---------------------------------------------------------------- CSV


def kpis_csv(report: Mapping[str, Any]) -> str:
    """The KPIs as CSV, one row per month and figure: ``month, kpi, subject, value, unit, count``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["site", "month", "kpi", "subject", "value", "unit", "count"])
    site = report["site"]
    for row in report["months"]:
        month = row["month"]
        for name in ("acknowledgement", "disposition"):
            d = row["cases"][name]
            writer.writerow([site, month, f"{name}_median", "", d["median_s"], "s", d["count"]])
            writer.writerow([site, month, f"{name}_p90", "", d["p90_s"], "s", d["count"]])
        for name in ("to_notified", "to_blocked"):
            d = row["recalls"][name]
            writer.writerow(
                [site, month, f"recall_{name}_median", "all sites", d["median_s"], "s", d["count"]]
            )
        inbound = row["inbound"]
        writer.writerow([site, month, "inbound_accuracy", "", inbound["percent"], "%", inbound["completed"]])
        for loc in row["locations"]:
            m = loc["monitoring"]
            writer.writerow(
                [site, month, "monitoring_completeness", loc["location"], m["percent"], "%", m["window_s"]]
            )
            writer.writerow([site, month, "excursions", loc["location"], loc["excursions"], "alerts", ""])
    trace = report["trace"]
    measured = "measured " + trace["measured_at"]
    writer.writerow(
        [site, "", "trace_completion_median", measured, trace["median_ms"], "ms", len(trace["lots"])]
    )
    return out.getvalue()


def inbound_kpis(notes: Iterable[tuple[int, bool]], within: Sequence[Month]) -> dict[str, dict[str, Any]]:
    """Per month of completion, from (completed ms, had a discrepancy): receiving notes completed, those
    without a discrepancy, and their share (%)."""
    found = {m.name: [0, 0] for m in within}
    for at, discrepant in notes:
        month = month_of(at, within)
        if month is None:
            continue
        found[month.name][0] += 1
        found[month.name][1] += 0 if discrepant else 1
    return {
        name: {"completed": n, "without_discrepancy": ok, "percent": round(100 * ok / n, 2) if n else None}
        for name, (n, ok) in found.items()
    }
