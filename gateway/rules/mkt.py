"""Mean kinetic temperature (MKT), USP <1079.2>, plain and time-weighted, batch and rolling.

USP <1079.2> defines MKT as the single temperature that would degrade a
product as much as the temperatures it actually saw, weighting each by the
Arrhenius factor exp(-ΔH/(R·T)):

    MKT = (ΔH/R) / -ln( Σ wᵢ·exp(-ΔH/(R·Tᵢ)) / Σ wᵢ )      (T in kelvin)

with ΔH = 83.144 kJ/mol, so ΔH/R = 10 000 K.  The chapter's formula has
equal weights, which assumes equally spaced samples; with gaps or a changed
poll interval each sample is weighted by the time it stands for (see
``gateway.rules.timebase.Obs``), as the chapter recommends for uneven data.
Because exp(-ΔH/(R·T)) is convex in T, MKT is never below the time-weighted
mean: warm spells count more than cold ones.

The rolling form keeps a 30-day window at one-minute polls (43 200 readings)
in a bounded number of buckets of summed weights and Arrhenius terms, so
each reading costs O(buckets) without re-scanning the window.  The window is
whole buckets: the current bucket and the ``buckets - 1`` before it on the
sensor's axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from msgspec import Struct

from coldgate.gateway.rules.params import MktParams

KELVIN = 273.15
DH_R_K = 10_000.0


def arrhenius(value_c: float, dh_r_k: float = DH_R_K) -> float:
    """exp(-ΔH/(R·T)) for a temperature in °C."""
    return math.exp(-dh_r_k / (value_c + KELVIN))


def mkt_from_sums(weight: float, arrhenius_sum: float, dh_r_k: float = DH_R_K) -> float | None:
    """MKT in °C from Σwᵢ and Σwᵢ·exp(-ΔH/(R·Tᵢ)); ``None`` without weight."""
    if weight <= 0 or arrhenius_sum <= 0:
        return None
    return dh_r_k / -math.log(arrhenius_sum / weight) - KELVIN


def mkt(values_c: Iterable[float], dh_r_k: float = DH_R_K) -> float | None:
    """USP <1079.2> MKT of equally spaced readings in °C (2, 2, 5, 8, 8, 8, 8 → 6.25)."""
    return time_weighted_mkt(((1.0, v) for v in values_c), dh_r_k)


def time_weighted_mkt(samples: Iterable[tuple[float, float]], dh_r_k: float = DH_R_K) -> float | None:
    """MKT of ``(weight, °C)`` pairs, the weight being the time each value stood for."""
    weights: list[float] = []
    terms: list[float] = []
    for weight, value in samples:
        if weight < 0:
            raise ValueError(f"negative weight {weight}")
        weights.append(weight)
        terms.append(weight * arrhenius(value, dh_r_k))
    return mkt_from_sums(math.fsum(weights), math.fsum(terms), dh_r_k)


def time_weighted_mean(samples: Iterable[tuple[float, float]]) -> float | None:
    """Arithmetic mean of ``(weight, value)`` pairs; MKT is never below it."""
    pairs = list(samples)
    total = math.fsum(w for w, _ in pairs)
    return math.fsum(w * v for w, v in pairs) / total if total > 0 else None


class Bucket(Struct, frozen=True, array_like=True, gc=False):
    """One slice of the window: its index on the axis and its sums."""

    index: int
    weight: float
    arrhenius: float
    samples: int


class RollingMkt(Struct, frozen=True, gc=False):
    """The buckets of a rolling MKT window, oldest first: the closed ones, then the one being filled.

    The newest bucket is kept apart because every reading adds to it: rebuilding one tuple of all
    buckets per reading cost a copy of up to 720 of them once a day of data had filled the window
    (issue 18, a gateway's polling budget).  Closed buckets change once per bucket width.
    """

    closed: tuple[Bucket, ...] = ()
    head: Bucket | None = None

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        return self.closed if self.head is None else (*self.closed, self.head)


def bucket_ms(params: MktParams) -> int:
    return params.bucket_ms


def rolling_add(
    params: MktParams, state: RollingMkt, t_ms: int, weight_ms: int, value_c: float
) -> RollingMkt:
    """Add one reading at axis time ``t_ms`` and drop buckets that left the window."""
    index = t_ms // params.bucket_ms
    term = weight_ms * arrhenius(value_c, params.dh_r_k)
    head = state.head
    if head is not None and head.index == index:
        # The window was cut at this index when the head was opened, and the axis never goes back.
        new = Bucket(index, head.weight + weight_ms, head.arrhenius + term, head.samples + 1)
        return RollingMkt(state.closed, new)
    closed = _within(params, state.closed if head is None else (*state.closed, head), index)
    return RollingMkt(closed, Bucket(index, float(weight_ms), term, 1))


def rolling_value(params: MktParams, state: RollingMkt, t_ms: int | None = None) -> float | None:
    """MKT in °C over the window ending in the bucket of ``t_ms`` (default: the newest bucket)."""
    buckets = state.buckets
    if t_ms is not None:
        buckets = _within(params, buckets, t_ms // bucket_ms(params))
    return mkt_from_sums(
        math.fsum(b.weight for b in buckets), math.fsum(b.arrhenius for b in buckets), params.dh_r_k
    )


def rolling_samples(state: RollingMkt) -> int:
    return sum(b.samples for b in state.buckets)


def window_start_index(params: MktParams, index: int) -> int:
    """Index of the oldest bucket still in a window whose newest bucket is ``index``."""
    return index - params.buckets + 1


def _within(params: MktParams, buckets: tuple[Bucket, ...], index: int) -> tuple[Bucket, ...]:
    first = window_start_index(params, index)
    if not buckets or buckets[0].index >= first:
        return buckets
    return tuple(b for b in buckets if b.index >= first)
