"""A sensor's readings over a span: the figures a report gives (count, min, max, mean, MKT, time above and
below the limits), the time they cover, and the time out of range of any span in O(log n).  Pure.

One rule throughout: a reading stands for the time until the next reading of its series, at most
:data:`MAX_HOLD_MS` (a longer silence is a gap's business, not an excursion's); the reading before a span
stands into it.  ``batch_history`` and the KPIs judge rooms and units by it.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import operator
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
    series (which may lie past ``end``: the span is cut there), at most :data:`MAX_HOLD_MS`.

    The sums run in C over the span's slice, in reading order from 0.0 as a loop adds them (``reduce``,
    not ``sum``, which compensates its rounding from Python 3.12 on), so they are the loop's to the
    last bit; only the readings out of range are walked one by one, and only when the slice's extremes
    say there are some (a room's 34,000 readings once cost 100 ms walked in Python)."""
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
    inside = values[first:last]
    low_v, high_v = min(inside), max(inside)
    value_sum = functools.reduce(operator.add, inside, 0.0)
    term_sum = functools.reduce(operator.add, map(arrhenius, inside), 0.0)
    above, below = above_before, below_before
    # max() and min() keep the first of a NaN-led slice, which no comparison settles: walk that one too.
    settled = (high is None or high_v <= high) and (low is None or low_v >= low)
    if not settled:
        n = len(times)
        for i in range(first, last):
            t, v = times[i], values[i]
            if (high is not None and v > high) or (low is not None and v < low):
                following = times[i + 1] if i + 1 < n else end
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
    without a trace), is not monitoring, and the report must not say it was.

    The cover is the readings' run less its silences (a next reading more than :data:`MAX_HOLD_MS` on),
    and the silences are found in C (``map`` of the differences, ``compress``): walking a room's 34,000
    readings one by one in Python was a third of a lot's history."""
    times = series.times
    first = max(0, bisect.bisect_left(times, span.start) - 1)  # the one before may stand into the span
    last = bisect.bisect_left(times, span.end)
    if first >= last:
        return []
    run = times[first:last]
    following = itertools.chain(itertools.islice(run, 1, None), (span.end,))  # the last one: to the end
    gaps = map(operator.sub, following, run)
    silences = itertools.compress(range(len(run)), map(MAX_HOLD_MS.__lt__, gaps))
    found: list[Span] = []
    begin = run[0]
    for i in silences:  # reading i stands for MAX_HOLD_MS, then nothing until reading i + 1
        found.append(Span(begin, run[i] + MAX_HOLD_MS))
        begin = run[i + 1] if i + 1 < len(run) else span.end
    found.append(Span(begin, span.end))
    clipped = (Span(max(s.start, span.start), min(s.end, span.end)) for s in found)
    return [s for s in clipped if s.end > s.start]


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
    """One series' time out of ``low``-``high``, answerable for any span in O(log n).

    Only the readings out of range are kept (with the time of the reading after each, which ends its
    hold): a room in range all along answers 0 at once, and one excursion is a few dozen entries, where
    a lot's 30,000 stays ask some 60,000 spans of the room's sensors."""

    __slots__ = ("_next", "_prefix", "_times")

    def __init__(self, series: Series, low: float | None, high: float | None) -> None:
        times, values = series
        n = len(times)
        out = [i for i, v in enumerate(values)
               if (high is not None and v > high) or (low is not None and v < low)]  # fmt: skip
        self._times = [times[i] for i in out]
        #: The time of the reading after each (None: it is the series' last, cut at a span's end).
        self._next: list[int | None] = [times[i + 1] if i + 1 < n else None for i in out]
        # _prefix[k]: what out-of-range readings 0..k-1 stand for, each to the next reading (at most
        # MAX_HOLD_MS); the series' last reading has no next one and counts nothing here.
        prefix = [0] * (len(out) + 1)
        acc = 0
        for k, (t, following) in enumerate(zip(self._times, self._next, strict=True)):
            prefix[k] = acc
            if following is not None:
                acc += min(following, t + MAX_HOLD_MS) - t
        prefix[len(out)] = acc
        self._prefix = prefix

    def __bool__(self) -> bool:
        """Whether any reading was out of range (else every span's answer is 0)."""
        return bool(self._times)

    def within(self, start: int, end: int) -> int:
        """``figures(series, start, end, low, high)``'s ``above_ms + below_ms``."""
        times = self._times
        if not times:
            return 0
        following = self._next
        first = bisect.bisect_left(times, start)
        last = bisect.bisect_left(times, end)
        found = 0
        if first > 0:  # the reading before the span stands into it, if it is out of range and the last
            before = following[first - 1]  # reading before the span (no other comes between)
            if before is None or before >= start:
                t = times[first - 1]
                found += max(min(end if before is None else before, end, t + MAX_HOLD_MS) - start, 0)
        if first >= last:
            return found
        # Out-of-range readings first..last-2 are each followed by a reading inside the span (the one
        # after them comes before the next out-of-range one): their holds are the prefix's.  The last
        # one may be the span's last reading, cut at its end.
        found += self._prefix[last - 1] - self._prefix[first]
        t, after = times[last - 1], following[last - 1]
        found += min(end if after is None else after, end, t + MAX_HOLD_MS) - t
        return found
