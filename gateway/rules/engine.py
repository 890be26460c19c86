"""All the rules of one sensor's readings of one quantity, as one pure step.

``step(params, state, reading) -> (state, Verdict)``: no clock, no I/O, no
globals; the state is plain msgspec structs that can be persisted and
restored (``msgspec.json.encode(state)`` / ``decode(..., type=SensorState)``),
and the same readings always give the same verdicts, at the edge and in the
cloud.

Order within a step, and why:

1. Time: the reading advances the sensor's axis (``timebase``).
2. Sensor faults first, on the value as read.  A value outside the sensor's
   range raises ``sensor.range`` and is withheld from everything below (it
   would fake an excursion and spoil the MKT).  A stuck value raises
   ``sensor.stuck`` and makes the reading untrusted.
3. The reading is *annotated*: ``ok`` becomes ``suspect`` with the fault as
   reason; a reading already suspect gets the reason appended; nothing else
   of it changes.  This annotated reading is what the app records and
   publishes, and what the alerts are stamped with.
4. Limits, budget, rate and the rolling MKT judge the value (error readings
   and out-of-range values are not judged; suspect ones are, but cannot
   clear an alarm).
5. The recording policy, which needs to know whether the sensor is now in
   excursion, says whether to record and whether the record is short.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.items import Alert, Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.rules import budget, faults, limits, rate, recording
from coldgate.gateway.rules.alerts import Finding, to_alert
from coldgate.gateway.rules.budget import BudgetState
from coldgate.gateway.rules.faults import RangeState, StuckState
from coldgate.gateway.rules.limits import LimitsState
from coldgate.gateway.rules.mkt import RollingMkt, rolling_add, rolling_value
from coldgate.gateway.rules.params import SensorParams
from coldgate.gateway.rules.rate import RateState
from coldgate.gateway.rules.recording import RecordingState
from coldgate.gateway.rules.timebase import Axis, Obs, advance

REASON_MAX = 200


class SensorState(Struct, frozen=True, gc=False):
    """Everything the rules remember about one sensor's quantity.

    This and the structs made for every reading (``Verdict``, ``Axis``, ``Mark``,
    ``Obs``, the stuck, range, recording and MKT states) are ``gc=False``: a new
    set per reading, 1,000 a second at a busy site, kept the cyclic collector busy
    (issue 18).  They are frozen and hold values, tuples and other frozen structs
    (a ``Verdict``'s alerts carry an evidence ``details`` dict of scalars, set when
    made), so nothing refers back to them and they cannot be part of a reference
    cycle.
    """

    axis: Axis = Axis()
    range: RangeState = RangeState()
    stuck: StuckState = StuckState()
    limits: LimitsState = LimitsState()
    budget: BudgetState = BudgetState()
    rate: RateState = RateState()
    mkt: RollingMkt = RollingMkt()
    recording: RecordingState = RecordingState()


class Verdict(Struct, frozen=True, gc=False):
    """What the app does with one reading: record ``reading`` if ``record``, send ``alerts``.

    ``reading`` is the reading as it must be recorded (quality possibly
    downgraded to suspect, with the reason); ``alerts`` are contract items
    with ``seq`` = UNSEQUENCED, stamped with the reading's time.
    """

    reading: Reading
    alerts: tuple[Alert, ...] = ()
    record: bool = True


def value_in_rule_unit(reading: Reading) -> float | None:
    """The reading's value in °C (temperatures) or %RH; ``None`` for error readings."""
    v = reading.value
    if v is None or reading.quality is Quality.ERROR:
        return None
    if reading.unit is Unit.FAH:
        return (v - 32.0) * 5.0 / 9.0
    if reading.unit is Unit.KEL:
        return v - 273.15
    return v


def annotate(reading: Reading, reasons: list[str]) -> Reading:
    """Downgrade ``ok`` to ``suspect`` with ``reasons``; append them to a suspect reading's reason."""
    if not reasons or reading.quality is Quality.ERROR:
        return reading
    ours = "; ".join(reasons)
    reason = ours if reading.quality is Quality.OK else f"{reading.reason}; {ours}"
    if len(reason) > REASON_MAX:
        reason = reason[: REASON_MAX - 1] + "…"
    return structs.replace(reading, quality=Quality.SUSPECT, reason=reason)


def step(
    sp: SensorParams, state: SensorState, reading: Reading, *, quiet_path: bool = True
) -> tuple[SensorState, Verdict]:
    """Judge one reading (see the module docstring for the order).

    ``quiet_path=False`` runs every sub-step even where the quiet path would
    skip some; the outputs are the same either way (tests/test_rules_quiet_path.py).
    """
    if quiet_path:
        quiet = _quiet_step(sp, state, reading)
        if quiet is not None:
            return quiet
    return full_step(sp, state, reading)


def _quiet_step(sp: SensorParams, state: SensorState, reading: Reading) -> tuple[SensorState, Verdict] | None:
    """``full_step`` for the common case, or None when the reading is not that case.

    Issue 18: the rules run for every reading (1,000 a second at a busy site),
    and almost every one is ok, inside the sensor's range and the limits, on
    time, with no fault or limit episode open.  Then the range check, the
    annotation, the limits and the excursion test cannot change anything, and
    no list of findings is needed: only the state that moves with every
    reading (axis, stuck count, budget, rate, MKT, recording) is computed, by
    the same functions or their quiet forms.  Whatever would find something
    (an alert raised, updated or cleared, a reading to annotate) returns None,
    and the full step judges the reading from the unchanged state.
    """
    if reading.quality is not Quality.OK:
        return None
    value = value_in_rule_unit(reading)
    if value is None:
        return None
    rp = sp.range
    if rp is not None and (state.range.raised_at is not None or not rp.low <= value <= rp.high):
        return None
    lp = sp.limits
    if lp is not None and not limits.quiet(lp, state.limits, value):
        return None
    axis, t_ms, weight = advance(state.axis, reading, sp.nominal_ms, sp.max_gap_ms)
    mark = axis.last
    assert mark is not None  # advance always leaves the reading's mark
    stuck_state = state.stuck
    if stuck_state.raised:  # the full step marks the reading suspect, with or without a stuck rule now
        return None
    if sp.stuck is not None:
        stuck_quiet = faults.step_stuck_quiet(sp.stuck, stuck_state, value, t_ms, mark)
        if stuck_quiet is None:
            return None
        stuck_state = stuck_quiet
    budget_state, rate_state = state.budget, state.rate
    if sp.budget is not None or sp.rate is not None:
        obs = Obs(t_ms, reading.ts, reading.boot, reading.mono, value, True, weight)
        budget_state, found = budget.step(sp, budget_state, obs)
        if found:
            return None
        rate_state, found = rate.step(sp, rate_state, obs)
        if found:
            return None
    mkt_state = state.mkt
    if sp.mkt is not None and sp.quantity is Quantity.TEMPERATURE:
        mkt_state = rolling_add(sp.mkt, mkt_state, t_ms, weight, value)
    recording_state = state.recording
    if sp.recording is not None:
        recording_quiet = recording.step_quiet(sp.recording, recording_state, t_ms, mark, value)
        if recording_quiet is None:
            return None
        recording_state = recording_quiet
    new_state = SensorState(
        axis, state.range, stuck_state, state.limits, budget_state, rate_state, mkt_state, recording_state
    )
    return new_state, Verdict(reading)


def full_step(sp: SensorParams, state: SensorState, reading: Reading) -> tuple[SensorState, Verdict]:
    """Every sub-step of ``step``, in the order of the module docstring."""
    axis, t_ms, weight = advance(state.axis, reading, sp.nominal_ms, sp.max_gap_ms)
    # Positional: this runs for every reading (t_ms, ts, boot, mono, value, trusted, weight_ms).
    raw = Obs(
        t_ms,
        reading.ts,
        reading.boot,
        reading.mono,
        value_in_rule_unit(reading),
        reading.quality is Quality.OK,
        weight,
    )
    findings: list[Finding] = []
    range_state, found = faults.step_range(sp, state.range, raw)
    findings += found
    reasons: list[str] = []
    judged = raw
    if faults.out_of_range(sp, raw.value):
        reasons.append(faults.range_reason(sp))
        judged = structs.replace(raw, value=None)
    stuck_state, found = faults.step_stuck(sp, state.stuck, judged)
    findings += found
    if stuck_state.raised and judged.value is not None:
        reasons.append(faults.stuck_reason(sp, stuck_state, judged))
    annotated = annotate(reading, reasons)
    trusted = annotated.quality is Quality.OK
    if judged.trusted is not trusted:
        judged = structs.replace(judged, trusted=trusted)

    limits_state, found = limits.step(sp, state.limits, judged)
    findings += found
    budget_state, found = budget.step(sp, state.budget, judged)
    findings += found
    rate_state, found = rate.step(sp, state.rate, judged)
    findings += found
    mkt_state = state.mkt
    if sp.mkt is not None and judged.value is not None and sp.quantity is Quantity.TEMPERATURE:
        mkt_state = rolling_add(sp.mkt, mkt_state, t_ms, weight, judged.value)
    excursion = sp.limits is not None and limits.in_excursion(limits_state, sp.limits, sp.quantity)
    recording_state, record, found = recording.step(
        sp,
        state.recording,
        raw,
        has_value=reading.value is not None,
        ok=annotated.quality is Quality.OK,
        in_excursion=excursion,
    )
    findings += found
    new_state = SensorState(
        axis, range_state, stuck_state, limits_state, budget_state, rate_state, mkt_state, recording_state
    )
    alerts = tuple(to_alert(f, annotated) for f in findings) if findings else ()
    return new_state, Verdict(annotated, alerts, record)


def in_excursion(sp: SensorParams, state: SensorState) -> bool:
    """True from the first reading beyond an alarm limit until back inside by the hysteresis."""
    return sp.limits is not None and limits.in_excursion(state.limits, sp.limits, sp.quantity)


def current_mkt(sp: SensorParams, state: SensorState) -> float | None:
    """Rolling MKT in °C over ``sp.mkt.window_s`` up to the latest reading; None without data."""
    return None if sp.mkt is None else rolling_value(sp.mkt, state.mkt)
