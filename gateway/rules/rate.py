"""Rate of change: an early warning that a cold room is warming (or cooling) fast.

A compressor that fails or a door left wide open shows as a steady climb
long before the value crosses the limit.  The rate is the least-squares slope
of the readings in the last ``window_s`` (not the difference of two readings,
which one noisy value would swing), in units per minute.  The warning
``temperature.rate`` is raised when its magnitude reaches ``max_per_min`` and
cleared when it falls to ``clear_at`` or below (hysteresis on the rate);
a slope needs ``min_samples`` readings spanning at least half the window.
Only a bounded number of recent readings is kept.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import AlertAction, Severity
from coldgate.gateway.rules.alerts import Finding, fmt_duration, fmt_value
from coldgate.gateway.rules.limits import EVIDENCE_UNIT
from coldgate.gateway.rules.params import SensorParams
from coldgate.gateway.rules.timebase import Mark, Obs

MAX_SAMPLES = 256


class RateState(Struct, frozen=True):
    """Recent (axis ms, value) pairs, oldest first; ``raised_at`` while the warning is open."""

    recent: tuple[tuple[int, float], ...] = ()
    raised_at: Mark | None = None
    worst: float = 0.0


def slope_per_min(points: tuple[tuple[int, float], ...]) -> float | None:
    """Least-squares slope of value over time, per minute; None for fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return None
    t0 = points[0][0]
    ts = [(t - t0) / 60_000 for t, _ in points]
    vs = [v for _, v in points]
    mt = sum(ts) / n
    mv = sum(vs) / n
    var = sum((t - mt) ** 2 for t in ts)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs, strict=True)) / var


def step(sp: SensorParams, state: RateState, obs: Obs) -> tuple[RateState, list[Finding]]:
    rp = sp.rate
    if rp is None or obs.value is None:
        return state, []
    window = round(rp.window_s * 1000)
    recent = tuple(p for p in (*state.recent, (obs.t_ms, obs.value)) if p[0] >= obs.t_ms - window)
    recent = recent[-MAX_SAMPLES:]
    state = structs.replace(state, recent=recent)
    slope = None
    if len(recent) >= rp.min_samples and 2 * (recent[-1][0] - recent[0][0]) >= window:
        slope = slope_per_min(recent)
    size = abs(slope) if slope is not None else 0.0
    if state.raised_at is None:
        if slope is None or size < rp.max_per_min:
            return state, []
        state = structs.replace(state, raised_at=obs.mark, worst=slope)
        return state, [_finding(sp, state, obs, AlertAction.RAISED, slope)]
    if size <= rp.clear_at and obs.trusted:
        found = _finding(sp, state, obs, AlertAction.CLEARED, slope or 0.0)
        return structs.replace(state, raised_at=None, worst=0.0), [found]
    if size > abs(state.worst):
        state = structs.replace(state, worst=slope or 0.0)
    return state, []


def _finding(sp: SensorParams, state: RateState, obs: Obs, action: AlertAction, slope: float) -> Finding:
    assert sp.rate is not None and state.raised_at is not None
    unit = f"{sp.label}/min"
    window = fmt_duration(round(sp.rate.window_s * 1000))
    values = [v for _, v in state.recent]
    if action is AlertAction.CLEARED:
        text = f"{sp.quantity} rate back to {slope:+.2f} {unit} (worst {state.worst:+.2f} {unit})"
    else:
        word = "rising" if slope > 0 else "falling"
        now = fmt_value(obs.value, sp.label)
        text = f"{sp.quantity} {word} {abs(slope):.2f} {unit} over the last {window}, now {now}"
    evidence = Evidence(
        start=state.raised_at.ts,
        end=max(obs.ts, state.raised_at.ts) if action is AlertAction.CLEARED else None,
        peak=obs.value if action is AlertAction.RAISED else None,
        min=min(values),
        max=max(values),
        samples=len(values),
        unit=EVIDENCE_UNIT[sp.quantity],
        details={
            "rate_per_min": round(slope, 4),
            "worst_rate_per_min": round(state.worst, 4),
            "max_per_min": sp.rate.max_per_min,
            "window_s": round(sp.rate.window_s),
        },
    )
    return Finding(action, f"{sp.quantity}.rate", Severity.WARNING, state.raised_at, text, evidence)
