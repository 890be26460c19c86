"""Excursion budget: cumulative time outside the alarm limits in a sliding window.

Stability data often allow a product a total time out of its storage range
("up to 60 min above 8 °C per 24 h"), and WHO TRS 961 Annex 9 asks that
short, repeated excursions are not lost just because each one was shorter
than the alarm delay.  This rule adds up every minute outside low..high, with
or without an alarm, and raises ``temperature.budget`` (critical) as soon as
the sum within ``window_s`` exceeds ``budget_s``.  It clears when old
excursions have left the window and the sum is back within the budget.

Time outside is measured like an excursion's duration (each value holds until
the next reading, capped at the sensor's longest gap; an error reading ends
the hold).  Memory is bounded: only the window's buckets that hold time
outside are kept, at most ``buckets`` of them.
"""

from __future__ import annotations

from msgspec import Struct, structs

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import AlertAction, Severity
from coldgate.gateway.rules.alerts import Finding, fmt_duration, fmt_value
from coldgate.gateway.rules.limits import EVIDENCE_UNIT, limits_evidence
from coldgate.gateway.rules.params import SensorParams
from coldgate.gateway.rules.timebase import Mark, Obs


class BudgetState(Struct, frozen=True):
    """``spent``: (bucket index, ms outside) for buckets with time outside, oldest first."""

    spent: tuple[tuple[int, int], ...] = ()
    last_t: int | None = None
    last_beyond: bool = False
    raised_at: Mark | None = None
    sent_t: int = 0


def spent_ms(state: BudgetState) -> int:
    return sum(ms for _, ms in state.spent)


def step(sp: SensorParams, state: BudgetState, obs: Obs) -> tuple[BudgetState, list[Finding]]:
    bp, lp = sp.budget, sp.limits
    if bp is None or lp is None:
        return state, []
    width = max(1, round(bp.window_s * 1000 / bp.buckets))
    index = obs.t_ms // width
    spent = state.spent
    if state.last_beyond and state.last_t is not None:
        dt = min(max(0, obs.t_ms - state.last_t), sp.max_gap_ms)
        if dt:
            if spent and spent[-1][0] == index:
                spent = (*spent[:-1], (index, spent[-1][1] + dt))
            else:
                spent = (*spent, (index, dt))
    first = index - bp.buckets + 1
    spent = tuple(b for b in spent if b[0] >= first)
    v = obs.value
    beyond = v is not None and ((lp.high is not None and v > lp.high) or (lp.low is not None and v < lp.low))
    state = structs.replace(state, spent=spent, last_t=obs.t_ms, last_beyond=beyond)
    total = spent_ms(state)
    budget = round(bp.budget_s * 1000)
    if state.raised_at is None:
        if total <= budget:
            return state, []
        state = structs.replace(state, raised_at=obs.mark, sent_t=obs.t_ms)
        return state, [_finding(sp, state, obs, AlertAction.RAISED, total)]
    if total <= budget:
        found = _finding(sp, state, obs, AlertAction.CLEARED, total)
        return structs.replace(state, raised_at=None, sent_t=0), [found]
    every = bp.update_every_s
    if every is not None and obs.t_ms - state.sent_t >= round(every * 1000):
        state = structs.replace(state, sent_t=obs.t_ms)
        return state, [_finding(sp, state, obs, AlertAction.UPDATED, total)]
    return state, []


def _finding(sp: SensorParams, state: BudgetState, obs: Obs, action: AlertAction, total: int) -> Finding:
    assert sp.budget is not None and sp.limits is not None and state.raised_at is not None
    bp, lp = sp.budget, sp.limits
    if lp.low is not None and lp.high is not None:
        band = f"outside {lp.low:.1f}..{fmt_value(lp.high, sp.label)}"
    else:
        band = (
            f"above {fmt_value(lp.high, sp.label)}"
            if lp.high is not None
            else f"below {fmt_value(lp.low, sp.label)}"
        )
    window = fmt_duration(round(bp.window_s * 1000))
    allowance = fmt_duration(round(bp.budget_s * 1000))
    if action is AlertAction.CLEARED:
        text = f"back within its allowance: {fmt_duration(total)} {band} in the last {window}"
        text += f" (allowed {allowance})"
    else:
        text = f"spent {fmt_duration(total)} {band} in the last {window}, allowed {allowance}"
    evidence = Evidence(
        start=state.raised_at.ts,
        end=max(obs.ts, state.raised_at.ts) if action is AlertAction.CLEARED else None,
        duration_s=round(total / 1000),
        unit=EVIDENCE_UNIT[sp.quantity],
        limits=limits_evidence(lp),
        details={"budget_s": round(bp.budget_s), "window_s": round(bp.window_s)},
    )
    rule = f"{sp.quantity}.budget"
    return Finding(action, rule, Severity.CRITICAL, state.raised_at, text, evidence)
