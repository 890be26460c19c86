"""Min, max, mean and MKT of a reading series as the API returns it (raw points or buckets).

Pure, and the same MKT formula the gateway's rules use (``gateway.rules.mkt``,
USP <1079.2>), so the cloud and the edge never disagree on it.  Raw points
weigh one each (the gateway polls at a fixed interval); buckets weigh their
count at their mean, so a bucketed MKT is computed from means and can only
come out a little low (the Arrhenius weight is convex), unless the buckets
came from the hourly summaries and carry their Arrhenius sums: ``exact``
says which.
Only readings of quality "ok" count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from coldgate.gateway.rules.mkt import mkt_from_sums, time_weighted_mkt

__all__ = ["SeriesStats", "series_stats"]


@dataclass(frozen=True, slots=True)
class SeriesStats:
    count: int
    min: float | None
    max: float | None
    mean: float | None
    mkt: float | None
    #: False when the MKT was computed from bucket means, True from every reading's Arrhenius term.
    exact: bool


def series_stats(series: dict[str, Any], *, temperature: bool) -> SeriesStats:
    """``mkt`` only for a temperature series (MKT of humidity means nothing)."""
    if series["mode"] == "raw":
        values = [p.value for p in series["points"] if p.quality == "ok" and p.value is not None]
        weighted = [(1.0, v) for v in values]
        low, high = (min(values), max(values)) if values else (None, None)
        exact = True
    else:
        usable = [b for b in series["buckets"] if b.avg is not None]
        weighted = [(float(b.count - b.not_ok), b.avg) for b in usable]
        low = min((b.min for b in usable if b.min is not None), default=None)
        high = max((b.max for b in usable if b.max is not None), default=None)
        # Buckets from the hourly summaries carry their Arrhenius sums: the MKT is then exact.
        exact = bool(usable) and all(b.arrhenius is not None for b in usable)
    weight = sum(w for w, _ in weighted)
    mean = sum(w * v for w, v in weighted) / weight if weight else None
    if not (temperature and weight):
        mkt = None
    elif series["mode"] == "buckets" and exact:
        mkt = mkt_from_sums(weight, math.fsum(b.arrhenius for b in usable))
    else:
        mkt = time_weighted_mkt(weighted)
    return SeriesStats(int(weight), low, high, mean, mkt, exact)
