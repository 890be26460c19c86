"""The most time out of range any one unit of a lot spent in our locations, in O(log n) a stay.

A proposed replacement for ``batch_history._worst_path`` (not wired in: that module's owner decides),
measured by ``python -m bench.recall``.  ``_worst_path`` judges each distinct (site, location, start,
end) piece of the custody chain by calling ``batch_history.figures`` for each sensor there, which walks
every reading of the piece (and computes an Arrhenius term for each, though only the time out of range
is used).  That is cheap when a lot's cases move together in a few pallets, but cases read one by one at
a dock door or scanned one by one at put-away each get their own start and end, so a lot of 10,000 cases
makes ~30,000 pieces, each walking days of one-minute readings: ~275 million readings walked for one
history (``bench.recall``: minutes instead of the goal's second).

Here each sensor's series is walked once: the time each reading stands for out of range (to the next
reading, at most ``MAX_HOLD_MS``, as ``figures`` holds it) is summed into a prefix array, so a piece's
time out of range is two bisections, a difference of prefix sums and the two edge readings (the one
before the span, standing into it, and the last one inside it, cut at the span's end).  The result is
the same integer milliseconds as ``figures(...).above_ms + below_ms`` for every span (the bench checks
the whole history's content, hash included, equal to the original's).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

from coldgate.cloud.documents.custody_store import Stay
from coldgate.cloud.reports.batch_history import EMPTY, MAX_HOLD_MS, Limits, Series, Watch

__all__ = ["OutOfRange", "worst_path"]


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


def worst_path(
    stays: Sequence[Stay],
    watches: Mapping[tuple[str, str], Sequence[Watch]],
    temperature: Mapping[tuple[str, str], Series],
    limits: Limits,
    as_of: int,
) -> int:
    """``batch_history._worst_path``, same arguments, same result: each distinct stay place and span
    judged once by its worst sensor, summed along each unit's path; the most any unit spent."""
    judged: dict[tuple[str, str], OutOfRange] = {}
    piece_time: dict[tuple[str, str, int, int], int] = {}
    per_unit: dict[str, int] = {}
    for stay in stays:
        if stay.location is None:
            continue
        piece = (stay.site, stay.location, stay.start, as_of if stay.end is None else stay.end)
        worst = piece_time.get(piece)
        if worst is None:
            worst = 0
            for w in watches.get((stay.site, stay.location), ()):
                lo, hi = max(w.start, piece[2]), min(as_of if w.end is None else w.end, piece[3])
                if hi > lo:
                    key = (w.gateway, w.sensor)
                    series = judged.get(key)
                    if series is None:
                        series = OutOfRange(temperature.get(key, EMPTY), limits.low, limits.high)
                        judged[key] = series
                    worst = max(worst, series.within(lo, hi))
            piece_time[piece] = worst
        per_unit[stay.unit.key] = per_unit.get(stay.unit.key, 0) + worst
    return max(per_unit.values(), default=0)
