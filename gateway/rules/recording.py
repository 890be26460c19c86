"""Recording policy: the minimum a zone's record must hold, and a check that it does.

China GSP (2016), appendix on automatic temperature and humidity monitoring:
the displayed value is refreshed at least every minute; a record is kept at
least every 30 min in storage and every 5 min in transport, and at least every
2 min while temperature or humidity is outside its limits.  WHO TRS 961
Annex 9 asks for the same without numbers.

By default (``mode = "all"``) every reading is recorded and published, which
is more than the policy asks; the policy then only *checks*:

* ``recording.refresh``: the time between two readings with a value went
  past ``refresh_s`` (+ ``tolerance_s`` for poll jitter and retries);
* ``recording.interval``: the time between two recorded values went past
  the interval required at that moment (``excursion_record_s`` while the
  sensor was in excursion, else the zone's ``record_s``).

Each is one warning, raised at the first late reading and cleared at the
first reading on time again, so a sensor polled too slowly gets one open
alert, not one per poll.  The rules only see readings, so a sensor that stops
answering is noticed here when it answers again; the poller's gap record is
what reports silence as it happens.

``mode = "minimum"`` thins the record to the policy: a reading is kept when
it is the first, has no value or is not ``ok``, the excursion state changed,
it moved ``deadband`` away from the last kept value, or skipping it would
leave the record short of the required interval by the next poll.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import AlertAction, Severity
from coldgate.gateway.rules.alerts import Finding, fmt_duration
from coldgate.gateway.rules.params import RecordingParams, SensorParams
from coldgate.gateway.rules.timebase import Mark, Obs


class Violation(Struct, frozen=True, gc=False):
    """An open violation: since when (the last reading on time) and the longest wait seen."""

    since: Mark
    worst_ms: int


class RecordingState(Struct, frozen=True, gc=False):
    last_value_t: int | None = None
    last_value: Mark | None = None
    last_record_t: int | None = None
    last_record: Mark | None = None
    last_record_value: float | None = None
    in_excursion: bool = False
    refresh: Violation | None = None
    interval: Violation | None = None


def step(
    sp: SensorParams, state: RecordingState, obs: Obs, *, has_value: bool, ok: bool, in_excursion: bool
) -> tuple[RecordingState, bool, list[Finding]]:
    """Check ``obs`` against the policy; returns the new state, whether to record it, and findings.

    ``obs.value`` is the reading's value as read (``has_value`` says whether it
    has one); ``ok`` is its quality after annotation; ``in_excursion`` the
    sensor's excursion state after judging this reading.
    """
    rp = sp.recording
    if rp is None:
        return state, True, []
    tol = rp.tolerance_ms
    findings: list[Finding] = []
    required = rp.excursion_record_ms if state.in_excursion else rp.record_ms
    refresh = state.refresh
    interval = state.interval
    if has_value:
        every = rp.refresh_ms
        if every is not None and state.last_value_t is not None and state.last_value is not None:
            gap = obs.t_ms - state.last_value_t
            if refresh is not None or gap > every + tol:  # else on time with nothing open: no change
                refresh, found = _judge(
                    sp, "recording.refresh", refresh, state.last_value, gap, every, tol, obs
                )
                findings.extend(found)
    record = rp.mode == "all" or _decide(
        sp, state, obs, has_value=has_value, ok=ok, in_excursion=in_excursion
    )
    if record and has_value and state.last_record_t is not None and state.last_record is not None:
        gap = obs.t_ms - state.last_record_t
        if interval is not None or gap > required + tol:
            interval, found = _judge(
                sp, "recording.interval", interval, state.last_record, gap, required, tol, obs
            )
            findings.extend(found)
    if not has_value:
        state = structs.replace(state, in_excursion=in_excursion, refresh=refresh, interval=interval)
    elif record:
        mark = Mark(obs.ts, obs.boot, obs.mono)
        state = RecordingState(obs.t_ms, mark, obs.t_ms, mark, obs.value, in_excursion, refresh, interval)
    else:
        state = structs.replace(
            state,
            in_excursion=in_excursion,
            refresh=refresh,
            interval=interval,
            last_value_t=obs.t_ms,
            last_value=Mark(obs.ts, obs.boot, obs.mono),
        )
    return state, record, findings


def step_quiet(
    rp: RecordingParams, state: RecordingState, t_ms: int, mark: Mark, value: float
) -> RecordingState | None:
    """``step`` for an ok reading with a value, out of excursion, kept (mode "all") and on time.

    Precondition: the reading is not in excursion (the caller has checked the
    limits, as the engine's quiet path does with ``limits.quiet``): this
    function sees only the state's old excursion flag and leaves it False.
    Returns the state ``step`` would return, or None when this reading is not
    that case (an open violation, a late reading, mode "minimum", the state in
    excursion): then only ``step`` may judge it.  The engine's quiet path
    (issue 18) calls this for almost every reading.
    """
    if rp.mode != "all" or state.in_excursion or state.refresh is not None or state.interval is not None:
        return None
    tol = rp.tolerance_ms
    every = rp.refresh_ms
    last_t = state.last_value_t
    if every is not None and last_t is not None and state.last_value is not None:
        if t_ms - last_t > every + tol:
            return None
    last_t = state.last_record_t
    if last_t is not None and state.last_record is not None and t_ms - last_t > rp.record_ms + tol:
        return None
    return RecordingState(t_ms, mark, t_ms, mark, value, False, None, None)


def _decide(
    sp: SensorParams, state: RecordingState, obs: Obs, *, has_value: bool, ok: bool, in_excursion: bool
) -> bool:
    rp = sp.recording
    assert rp is not None
    if rp.mode == "all" or not has_value or not ok or state.last_record_t is None:
        return True
    if in_excursion != state.in_excursion:
        return True
    if obs.value is not None and state.last_record_value is not None:
        if abs(obs.value - state.last_record_value) >= rp.deadband:
            return True
    required = rp.excursion_record_ms if in_excursion else rp.record_ms
    return obs.t_ms - state.last_record_t + sp.nominal_ms > required


def _judge(
    sp: SensorParams,
    rule: str,
    open_: Violation | None,
    since: Mark,
    gap: int,
    required: int,
    tol: int,
    obs: Obs,
) -> tuple[Violation | None, list[Finding]]:
    late = gap > required + tol
    if late and open_ is None:
        v = Violation(since=since, worst_ms=gap)
        return v, [_finding(sp, rule, v, obs, AlertAction.RAISED, gap, required)]
    if late and open_ is not None:
        return structs.replace(open_, worst_ms=max(open_.worst_ms, gap)), []
    if open_ is not None:
        return None, [_finding(sp, rule, open_, obs, AlertAction.CLEARED, gap, required)]
    return None, []


def _finding(
    sp: SensorParams, rule: str, v: Violation, obs: Obs, action: AlertAction, gap: int, required: int
) -> Finding:
    what = "refreshed" if rule == "recording.refresh" else "recorded"
    if action is AlertAction.CLEARED:
        text = f"{sp.quantity} {what} on time again (longest wait {fmt_duration(v.worst_ms)})"
    else:
        every = fmt_duration(required)
        text = f"{sp.quantity} not {what} for {fmt_duration(gap)}, required at least every {every}"
    evidence = Evidence(
        start=v.since.ts,
        end=max(obs.ts, v.since.ts) if action is AlertAction.CLEARED else None,
        duration_s=round(v.worst_ms / 1000),
        details={"required_s": round(required / 1000), "longest_gap_s": round(v.worst_ms / 1000)},
    )
    return Finding(action, rule, Severity.WARNING, v.since, text, evidence)
