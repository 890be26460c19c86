"""Sensor faults: a value outside what the sensor can measure, and a value that no longer moves.

Both make the reading doubtful, not the room warm, so they raise
``sensor.range`` / ``sensor.stuck`` about the sensor and mark the reading
``suspect`` with a reason (the contract's "plausible but doubtful"); the value
itself is kept as read: recorded readings are evidence and are never edited.

* Out of range (critical): a value the sensor cannot physically produce
  (3276.7 °C is an open probe's fault code) means monitoring is lost, as
  much as a sensor gap.  It is raised at the first such reading, is *not*
  judged against the limits or counted in MKT (it would fake an excursion),
  and clears after ``clear_after`` good readings in a row, so a loose wire
  does not flap.
* Stuck (warning): the same value, within ``tolerance``, for
  ``min_readings`` readings and ``min_s`` seconds.  A live sensor in a
  cold room follows the cooling cycle; a frozen register does not.  Stuck
  readings stay judged (the value may still be right) but, being suspect,
  cannot clear an alarm.  The fault clears at the first different value.

Error readings (no value) neither start, extend nor end a fault.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import AlertAction, Severity
from coldgate.gateway.rules.alerts import Finding, fmt_duration, fmt_value
from coldgate.gateway.rules.limits import EVIDENCE_UNIT
from coldgate.gateway.rules.params import SensorParams, StuckParams
from coldgate.gateway.rules.timebase import Mark, Obs

EPSILON = 1e-9


class RangeState(Struct, frozen=True, gc=False):
    raised_at: Mark | None = None
    raised_t: int = 0
    worst: float | None = None
    bad: int = 0
    good_streak: int = 0


class StuckState(Struct, frozen=True, gc=False):
    ref: float | None = None
    since: Mark | None = None
    since_t: int = 0
    count: int = 0
    raised: bool = False


def out_of_range(sp: SensorParams, value: float | None) -> bool:
    rp = sp.range
    return rp is not None and value is not None and not rp.low <= value <= rp.high


def range_reason(sp: SensorParams) -> str:
    assert sp.range is not None
    return f"outside the sensor's range {sp.range.low:g}..{sp.range.high:g} {sp.label}"


def step_range(sp: SensorParams, state: RangeState, obs: Obs) -> tuple[RangeState, list[Finding]]:
    """``obs.value`` is the value as read (before it is withheld from judging)."""
    rp = sp.range
    v = obs.value
    if rp is None or v is None:
        return state, []
    if out_of_range(sp, v):
        worst = v if state.worst is None or _further(sp, v, state.worst) else state.worst
        if state.raised_at is None:
            state = RangeState(raised_at=obs.mark, raised_t=obs.t_ms, worst=v, bad=1)
            return state, [_range_finding(sp, state, obs, AlertAction.RAISED)]
        return structs.replace(state, worst=worst, bad=state.bad + 1, good_streak=0), []
    if state.raised_at is None:
        return state, []
    state = structs.replace(state, good_streak=state.good_streak + 1)
    if state.good_streak < rp.clear_after:
        return state, []
    return RangeState(), [_range_finding(sp, state, obs, AlertAction.CLEARED)]


def _further(sp: SensorParams, a: float, b: float) -> bool:
    assert sp.range is not None
    mid = (sp.range.low + sp.range.high) / 2
    return abs(a - mid) > abs(b - mid)


def _range_finding(sp: SensorParams, state: RangeState, obs: Obs, action: AlertAction) -> Finding:
    assert state.raised_at is not None and sp.range is not None
    span = obs.t_ms - state.raised_t
    if action is AlertAction.CLEARED:
        text = (
            f"{sp.quantity} back within the sensor's range after {fmt_duration(span)} "
            f"({state.bad} readings outside, worst {fmt_value(state.worst, sp.label)})"
        )
    else:
        text = f"{sp.quantity} reads {fmt_value(obs.value, sp.label)}, {range_reason(sp)}"
    evidence = Evidence(
        start=state.raised_at.ts,
        end=max(obs.ts, state.raised_at.ts) if action is AlertAction.CLEARED else None,
        peak=state.worst,
        duration_s=round(span / 1000),
        samples=state.bad,
        unit=EVIDENCE_UNIT[sp.quantity],
        details={"quantity": str(sp.quantity), "range_low": sp.range.low, "range_high": sp.range.high},
    )
    return Finding(action, "sensor.range", Severity.CRITICAL, state.raised_at, text, evidence)


def stuck_reason(sp: SensorParams, state: StuckState, obs: Obs) -> str:
    since = fmt_duration(obs.t_ms - state.since_t)
    return f"stuck: unchanged at {fmt_value(state.ref, sp.label)} for {since}"


def step_stuck(sp: SensorParams, state: StuckState, obs: Obs) -> tuple[StuckState, list[Finding]]:
    """Feed a judged value; ``state.raised`` afterwards says whether this reading is stuck."""
    kp = sp.stuck
    v = obs.value
    if kp is None or v is None:
        return state, []
    findings: list[Finding] = []
    if state.ref is not None and abs(v - state.ref) <= kp.tolerance + EPSILON:
        state = structs.replace(state, count=state.count + 1)
    else:
        if state.raised:
            findings.append(_stuck_finding(sp, state, obs, AlertAction.CLEARED))
        state = StuckState(ref=v, since=obs.mark, since_t=obs.t_ms, count=1)
    due = state.count >= kp.min_readings and obs.t_ms - state.since_t >= kp.min_ms
    if not state.raised and due:
        state = structs.replace(state, raised=True)
        findings.append(_stuck_finding(sp, state, obs, AlertAction.RAISED))
    return state, findings


def step_stuck_quiet(
    kp: StuckParams, state: StuckState, value: float, t_ms: int, mark: Mark
) -> StuckState | None:
    """``step_stuck`` for a sensor not stuck that this value leaves not stuck; None in any other case.

    The engine's quiet path (issue 18) runs this for almost every reading: it
    needs no ``Obs`` and cannot find anything, so it builds no list.
    """
    if state.raised:
        return None
    ref = state.ref
    if ref is not None and abs(value - ref) <= kp.tolerance + EPSILON:
        state = StuckState(ref, state.since, state.since_t, state.count + 1)
    else:
        state = StuckState(value, mark, t_ms, 1)
    if state.count >= kp.min_readings and t_ms - state.since_t >= kp.min_ms:
        return None
    return state


def _stuck_finding(sp: SensorParams, state: StuckState, obs: Obs, action: AlertAction) -> Finding:
    assert state.since is not None and sp.stuck is not None
    span = obs.t_ms - state.since_t
    stuck_at = fmt_value(state.ref, sp.label)
    if action is AlertAction.CLEARED:
        now = fmt_value(obs.value, sp.label)
        text = f"{sp.quantity} moving again ({now}) after {fmt_duration(span)} at {stuck_at}"
    else:
        text = f"{sp.quantity} stuck at {stuck_at} for {fmt_duration(span)} ({state.count} readings)"
    evidence = Evidence(
        start=state.since.ts,
        end=max(obs.ts, state.since.ts) if action is AlertAction.CLEARED else None,
        peak=state.ref,
        min=state.ref,
        max=state.ref,
        duration_s=round(span / 1000),
        samples=state.count,
        unit=EVIDENCE_UNIT[sp.quantity],
        details={"quantity": str(sp.quantity), "tolerance": sp.stuck.tolerance},
    )
    return Finding(action, "sensor.stuck", Severity.WARNING, state.since, text, evidence)
