"""A sensor's readings over a span: the figures a report gives (count, min, max, mean, MKT, time above and
below the limits), the time they cover, and the time out of range of any span in O(log n).  Pure.

One rule throughout: a reading stands for the time until the next reading of its series, at most
:data:`MAX_HOLD_MS` (a longer silence is a gap's business, not an excursion's); the reading before a span
stands into it.  ``batch_history`` and the KPIs judge rooms and units by it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from coldgate.cloud.reports.spans import Span
from coldgate.gateway.rules.mkt import arrhenius, mkt_from_sums

__all__ = [
    "EMPTY", "MAX_HOLD_MS", "NO_FIGURES", "Figures", "OutOfRange", "Series", "combined", "figures",
    "readings_cover",
]  # fmt: skip

#: The longest a reading stands for (ten minutes: ten polls at the usual one a minute).
MAX_HOLD_MS = 10 * 60_000


class Series(NamedTuple):
    """One sensor's ok readings of one quantity, sorted by time: two lists, so that a span is two
    bisections and a sum (a segment's figures are asked for many stays' spans)."""

    times: Sequence[int]
    values: Sequence[float]


EMPTY = Series((), ())


@dataclass(frozen=True, slots=True)
class Figures:
    """One sensor's ok readings of one quantity over a span.  ``arrhenius_sum`` lets figures of several
    spans be combined into an exact MKT."""

    count: int
    min: float | None
    max: float | None
    mean: float | None
    mkt: float | None
    above_ms: int
    below_ms: int
    arrhenius_sum: float = 0.0
    value_sum: float = 0.0


NO_FIGURES = Figures(0, None, None, None, None, 0, 0)


def figures(series: Series, start: int, end: int, low: float | None, high: float | None) -> Figures:
    """The figures of the readings in [start, end).  A reading stands for the time to the next one of the
    series (which may lie past ``end``: the span is cut there), at most :data:`MAX_HOLD_MS`."""
    times, values = series
    first = bisect.bisect_left(times, start)
    last = bisect.bisect_left(times, end)
    above_before = below_before = 0
    if first > 0:  # the reading before the span stands into it: its time out of range is the span's too
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


def readings_cover(series: Series, span: Span) -> list[Span]:
    """The part of ``span`` the series' readings stand for (each to the next, at most
    :data:`MAX_HOLD_MS`): a sensor placed but silent, with no gap reported (its data not in yet, or lost
    without a trace), is not monitoring, and the report must not say it was."""
    times = series.times
    first = max(0, bisect.bisect_left(times, span.start) - 1)  # the one before may stand into the span
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


def combined(parts: Sequence[Figures], *, worst_time: bool) -> Figures:
    """Figures of several spans or sensors together: counts, sums and extremes add up exactly; the time
    above and below is the worst part's (``worst_time``: views of one place) or the sum (one path)."""
    used = [p for p in parts if p.count]
    count = sum(p.count for p in used)
    pick = max if worst_time else sum
    above = pick((p.above_ms for p in parts), default=0) if worst_time else sum(p.above_ms for p in parts)
    below = pick((p.below_ms for p in parts), default=0) if worst_time else sum(p.below_ms for p in parts)
    if not count:
        return Figures(0, None, None, None, None, above, below)
    term_sum = math.fsum(p.arrhenius_sum for p in used)
    value_sum = math.fsum(p.value_sum for p in used)
    return Figures(count, min(p.min for p in used if p.min is not None),
                   max(p.max for p in used if p.max is not None), value_sum / count,
                   mkt_from_sums(count, term_sum), above, below, term_sum, value_sum)  # fmt: skip


class OutOfRange:
    """One series' time out of ``low``-``high``, answerable for any span in O(log n)."""

    __slots__ = ("_out", "_prefix", "_times")

    def __init__(self, series: Series, low: float | None, high: float | None) -> None:
        times, values = series
        self._times = times
        self._out = [(high is not None and v > high) or (low is not None and v < low) for v in values]
        # _prefix[i]: what readings 0..i-1 stand for out of range, each to the next reading (at most
        # MAX_HOLD_MS); the last reading has no next one and is cut at a span's end instead.
        prefix = [0] * (len(times) + 1)
        acc = 0
        for i, out in enumerate(self._out):
            prefix[i] = acc
            if out and i + 1 < len(times):
                acc += min(times[i + 1], times[i] + MAX_HOLD_MS) - times[i]
        prefix[len(times)] = acc
        self._prefix = prefix

    def within(self, start: int, end: int) -> int:
        """``figures(series, start, end, low, high)``'s ``above_ms + below_ms``."""
        times, out = self._times, self._out
        n = len(times)
        first = bisect.bisect_left(times, start)
        last = bisect.bisect_left(times, end)
        found = 0
        if first > 0 and out[first - 1]:  # the reading before the span stands into it
            held = min(times[first] if first < n else end, end, times[first - 1] + MAX_HOLD_MS) - start
            found += max(held, 0)
        if first >= last:
            return found
        # Readings first..last-2 are each followed by one inside the span: their holds are the prefix's.
        found += self._prefix[last - 1] - self._prefix[first]
        t = times[last - 1]
        if out[last - 1]:
            following = times[last] if last < n else end
            found += min(following, end, t + MAX_HOLD_MS) - t
        return found
