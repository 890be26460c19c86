"""The numbers behind an alert, accumulated reading by reading.

QA judges an excursion on its start, end, peak, how long the product was
outside the limits, the time-weighted mean and the MKT over it (WHO TRS 961
Annex 9: excursions are investigated with their duration and extent).  An
open excursion can last days, so nothing here keeps the readings: running
sums only, as plain data that can be persisted with the rest of the state.

Two time measures, on purpose:

* ``beyond_ms`` (time beyond the limit) holds each value until the next
  reading (zero-order hold, as a logger's value stands until it is
  refreshed), capped at the longest gap one value may bridge; an error
  reading ends the hold, because from then on the value is unknown.
* The mean and MKT weight each reading by the time it stands for
  (``Obs.weight_ms``), which with regular polls is USP <1079.2>'s plain mean.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.evidence import Evidence, Limits
from coldgate.contract.units import Unit
from coldgate.gateway.rules.mkt import DH_R_K, arrhenius, mkt_from_sums
from coldgate.gateway.rules.timebase import Mark, Obs


class Stats(Struct, frozen=True):
    """Running statistics of an interval that started at ``start``."""

    start: Mark
    start_t: int
    samples: int = 0
    min: float | None = None
    max: float | None = None
    weight: float = 0.0
    weighted_sum: float = 0.0
    arrhenius: float = 0.0
    beyond_ms: int = 0
    last_t: int | None = None
    last_beyond: bool = False


def open_stats(obs: Obs) -> Stats:
    return Stats(start=obs.mark, start_t=obs.t_ms)


def close(stats: Stats, obs: Obs, max_gap_ms: int) -> Stats:
    """Account for the time up to ``obs`` without taking its value: the reading that ends the interval."""
    return add(stats, structs.replace(obs, value=None), False, max_gap_ms)


def add(stats: Stats, obs: Obs, beyond: bool, max_gap_ms: int, dh_r_k: float | None = DH_R_K) -> Stats:
    """Account for ``obs``; ``beyond``: its value is outside the limit; ``dh_r_k`` None: no MKT."""
    beyond_ms = stats.beyond_ms
    if stats.last_beyond and stats.last_t is not None:
        beyond_ms += min(max(0, obs.t_ms - stats.last_t), max_gap_ms)
    if obs.value is None:
        return structs.replace(stats, beyond_ms=beyond_ms, last_t=obs.t_ms, last_beyond=False)
    v = obs.value
    w = obs.weight_ms
    return structs.replace(
        stats,
        samples=stats.samples + 1,
        min=v if stats.min is None else min(stats.min, v),
        max=v if stats.max is None else max(stats.max, v),
        weight=stats.weight + w,
        weighted_sum=stats.weighted_sum + w * v,
        arrhenius=stats.arrhenius + (w * arrhenius(v, dh_r_k) if dh_r_k is not None else 0.0),
        beyond_ms=beyond_ms,
        last_t=obs.t_ms,
        last_beyond=beyond,
    )


def mean(stats: Stats) -> float | None:
    if stats.weight > 0:
        return stats.weighted_sum / stats.weight
    if stats.samples and stats.min is not None and stats.max is not None and stats.min == stats.max:
        return stats.min
    return None


def to_evidence(
    stats: Stats,
    *,
    unit: Unit,
    peak: float | None = None,
    end_ts: int | None = None,
    duration_ms: int | None = None,
    dh_r_k: float | None = DH_R_K,
    limits: Limits | None = None,
    details: dict[str, str | int | float | bool] | None = None,
) -> Evidence:
    """The contract ``Evidence`` for ``stats``; ``duration_ms`` defaults to the time beyond the limit."""
    duration = stats.beyond_ms if duration_ms is None else duration_ms
    return Evidence(
        start=stats.start.ts,
        end=end_ts if end_ts is None else max(end_ts, stats.start.ts),
        peak=_round(peak),
        min=_round(stats.min),
        max=_round(stats.max),
        mean=_round(mean(stats)),
        mkt=_round(mkt_from_sums(stats.weight, stats.arrhenius, dh_r_k)) if dh_r_k is not None else None,
        duration_s=max(0, round(duration / 1000)),
        samples=stats.samples,
        unit=unit,
        limits=limits,
        details=details or {},
    )


def _round(value: float | None) -> float | None:
    """Evidence is read by people and compared by tests: 4 decimals is far below any sensor's accuracy."""
    return None if value is None else round(value, 4)
