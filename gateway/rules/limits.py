"""High and low limits with pre-alarms, an alarm delay and hysteresis: one state machine per limit.

Each limit (``temperature.high``, ``temperature.pre_high``, ``temperature.low``,
``temperature.pre_low``, ``humidity.high`` ...) is judged on its own, like the
threshold levels of commercial monitoring systems, and each has its own alert
with one severity for its whole life: warning for a pre-alarm, critical for an
alarm.  Escalation is therefore a second alert, not a change of severity, and
the local alarm can latch on "any open alert at or above its severity".

The life of one limit, with L the limit and h the hysteresis:

* An *episode* opens at the first judged reading beyond L.  Its start (the
  excursion's start in the evidence) is that reading's time, not the time
  the alarm is raised.
* It closes at the first trusted reading back inside by h (at or below
  L - h for a high limit).  Readings between L - h and L keep it open:
  that is what stops a value hovering on the limit from flapping.
* The alert is *raised* at the first reading beyond L once the episode is
  ``delay_s`` old (monotonic time).  A door opening that is over before the
  delay raises nothing; the readings are still recorded, and the excursion
  budget still counts the time.
* While raised, it is *updated* when the peak has worsened by ``peak_step``
  since the last report and every ``update_every_s``; it is *cleared* when the
  episode closes, with the final evidence and the end time.
* A pre-alarm is not raised while the alarm on its side is raised (a door
  left open does not page twice); a pre-alarm raised before the alarm stays
  open until the value is back inside the pre-alarm limit.
* A reading without a judged value (quality error, outside the sensor's
  range) neither opens nor closes an episode; the time it covers is not
  counted as outside.  A dead sensor therefore never clears an alarm.
* A suspect reading is judged, but cannot close an episode.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from msgspec import Struct, structs

from coldgate.contract.evidence import Limits
from coldgate.contract.items import AlertAction, Severity
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.rules.alerts import Finding, fmt_duration, fmt_value
from coldgate.gateway.rules.evidence import Stats, add, close, open_stats, to_evidence
from coldgate.gateway.rules.mkt import DH_R_K
from coldgate.gateway.rules.params import LimitParams, SensorParams
from coldgate.gateway.rules.timebase import Obs

EVIDENCE_UNIT = MappingProxyType({Quantity.TEMPERATURE: Unit.CEL, Quantity.HUMIDITY: Unit.P1})


class Level(Struct, frozen=True):
    """One limit to judge: which rule, how severe, which side, where, with what delay."""

    rule: str
    severity: Severity
    side: Literal["high", "low"]
    limit: float
    hysteresis: float
    delay_ms: int
    pre: bool

    def beyond(self, value: float) -> bool:
        return value > self.limit if self.side == "high" else value < self.limit

    def recovered(self, value: float) -> bool:
        if self.side == "high":
            return value <= self.limit - self.hysteresis
        return value >= self.limit + self.hysteresis


class LevelState(Struct, frozen=True):
    """``stats`` is the open episode (None: inside); ``raised`` once its alert went out."""

    stats: Stats | None = None
    raised: bool = False
    sent_t: int = 0
    sent_peak: float | None = None


class LimitsState(Struct, frozen=True):
    levels: tuple[LevelState, ...] = ()


def levels(params: LimitParams, quantity: Quantity) -> tuple[Level, ...]:
    """The limits to judge, each alarm before its pre-alarm (the pre-alarm looks at the alarm)."""
    out: list[Level] = []
    delay = round(params.delay_s * 1000)
    margin = params.pre_alarm_margin
    for side, limit, sign in (("high", params.high, -1), ("low", params.low, 1)):
        if limit is None:
            continue
        hyst = params.hysteresis
        out.append(Level(f"{quantity}.{side}", Severity.CRITICAL, side, limit, hyst, delay, False))
        if margin > 0:
            pre = limit + sign * margin
            out.append(Level(f"{quantity}.pre_{side}", Severity.WARNING, side, pre, hyst, delay, True))
    return tuple(out)


def limits_evidence(params: LimitParams) -> Limits:
    margin = params.pre_alarm_margin
    return Limits(
        low=params.low,
        high=params.high,
        pre_low=params.low + margin if margin > 0 and params.low is not None else None,
        pre_high=params.high - margin if margin > 0 and params.high is not None else None,
        delay_s=round(params.delay_s),
    )


def initial(params: LimitParams, quantity: Quantity) -> LimitsState:
    return LimitsState(levels=tuple(LevelState() for _ in levels(params, quantity)))


def quiet(params: LimitParams, state: LimitsState, value: float | None) -> bool:
    """No limit has an open episode and ``value`` is beyond none of them: judging it changes nothing.

    The case of almost every reading, decided without building the levels (issue 18: the
    rules run for every reading, 1,000 a second at a busy site).
    """
    if len(state.levels) != params.level_count:
        return False
    for s in state.levels:  # a loop, not any(<generator>): this runs for every reading
        if s.stats is not None:
            return False
    if value is None:
        return True
    low, high = params.quiet_band
    return low <= value <= high


def in_excursion(state: LimitsState, params: LimitParams, quantity: Quantity) -> bool:
    """True while any alarm (not pre-alarm) limit has an open episode, raised or still in its delay."""
    for s in state.levels:  # a loop, not all(<generator>): this runs for every reading
        if s.stats is not None:
            break
    else:
        return False
    return any(
        s.stats is not None
        for lv, s in zip(levels(params, quantity), state.levels, strict=False)
        if not lv.pre
    )


def step(sp: SensorParams, state: LimitsState, obs: Obs) -> tuple[LimitsState, list[Finding]]:
    """Judge ``obs`` against every limit of ``sp.limits``."""
    lp = sp.limits
    if lp is None or quiet(lp, state, obs.value):
        return state, []
    lvls = levels(lp, sp.quantity)
    current = state.levels if len(state.levels) == len(lvls) else tuple(LevelState() for _ in lvls)
    new: list[LevelState] = []
    findings: list[Finding] = []
    alarm_raised = {"high": False, "low": False}
    for level, level_state in zip(lvls, current, strict=True):
        suppress = level.pre and alarm_raised[level.side]
        after, found = step_level(sp, level, level_state, obs, suppress)
        if not level.pre:
            alarm_raised[level.side] = after.raised
        new.append(after)
        findings.extend(found)
    return LimitsState(levels=tuple(new)), findings


def step_level(
    sp: SensorParams, level: Level, state: LevelState, obs: Obs, suppress_raise: bool = False
) -> tuple[LevelState, list[Finding]]:
    """One limit's state machine (see the module docstring)."""
    value = obs.value
    stats = state.stats
    if stats is None:
        if value is None or not level.beyond(value):
            return state, []
        state = LevelState(stats=add(open_stats(obs), obs, True, sp.max_gap_ms, _dh_r_k(sp)))
        return _maybe_raise(sp, level, state, obs, suppress_raise)
    if value is not None and obs.trusted and level.recovered(value):
        if not state.raised:
            return LevelState(), []
        stats = close(stats, obs, sp.max_gap_ms)
        return LevelState(), [_finding(sp, level, stats, AlertAction.CLEARED, end_ts=obs.ts)]
    beyond = value is not None and level.beyond(value)
    state = structs.replace(state, stats=add(stats, obs, beyond, sp.max_gap_ms, _dh_r_k(sp)))
    if not state.raised:
        if not beyond:
            return state, []
        return _maybe_raise(sp, level, state, obs, suppress_raise)
    return _maybe_update(sp, level, state, obs)


def _maybe_raise(
    sp: SensorParams, level: Level, state: LevelState, obs: Obs, suppress: bool
) -> tuple[LevelState, list[Finding]]:
    assert state.stats is not None
    if suppress or obs.t_ms - state.stats.start_t < level.delay_ms:
        return state, []
    return _sent(state, level, obs), [_finding(sp, level, state.stats, AlertAction.RAISED)]


def _maybe_update(
    sp: SensorParams, level: Level, state: LevelState, obs: Obs
) -> tuple[LevelState, list[Finding]]:
    assert state.stats is not None and sp.limits is not None
    peak = _peak(level, state.stats)
    worse = 0.0
    if peak is not None and state.sent_peak is not None:
        worse = peak - state.sent_peak if level.side == "high" else state.sent_peak - peak
    every = sp.limits.update_every_s
    due = every is not None and obs.t_ms - state.sent_t >= round(every * 1000)
    if not (due or (worse > 0 and worse >= sp.limits.peak_step)):
        return state, []
    return _sent(state, level, obs), [_finding(sp, level, state.stats, AlertAction.UPDATED)]


def _sent(state: LevelState, level: Level, obs: Obs) -> LevelState:
    assert state.stats is not None
    return structs.replace(state, raised=True, sent_t=obs.t_ms, sent_peak=_peak(level, state.stats))


def _peak(level: Level, stats: Stats) -> float | None:
    return stats.max if level.side == "high" else stats.min


def _dh_r_k(sp: SensorParams) -> float | None:
    """ΔH/R for the excursion's MKT; None (no MKT) for humidity."""
    if sp.quantity is not Quantity.TEMPERATURE:
        return None
    return sp.mkt.dh_r_k if sp.mkt is not None else DH_R_K


def _finding(
    sp: SensorParams, level: Level, stats: Stats, action: AlertAction, end_ts: int | None = None
) -> Finding:
    assert sp.limits is not None
    peak = _peak(level, stats)
    word = "above" if level.side == "high" else "below"
    what = (
        f"the pre-alarm limit {fmt_value(level.limit, sp.label)}"
        if level.pre
        else fmt_value(level.limit, sp.label)
    )
    worst = "peak" if level.side == "high" else "lowest"
    took = fmt_duration(stats.beyond_ms)
    if action is AlertAction.CLEARED:
        back = level.limit - level.hysteresis if level.side == "high" else level.limit + level.hysteresis
        edge = "below" if level.side == "high" else "above"
        text = f"back {edge} {fmt_value(back, sp.label)} after {took} {word} {what}, {worst} "
    else:
        text = f"{word} {what} for {took}, {worst} "
    text += fmt_value(peak, sp.label)
    evidence = to_evidence(
        stats,
        unit=EVIDENCE_UNIT[sp.quantity],
        peak=peak,
        end_ts=end_ts,
        dh_r_k=_dh_r_k(sp),
        limits=limits_evidence(sp.limits),
    )
    return Finding(action, level.rule, level.severity, stats.start, text, evidence)
