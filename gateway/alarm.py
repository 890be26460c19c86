"""The local alarm's state: which alerts hold it on, and what people did about it.

An alarm that needs the internet is no alarm: this state machine runs on the Pi
and drives a siren or stack light directly (``gateway.alarm_outputs``).  It is
pure (no I/O, time passed in) so the rules about it are easy to test:

* An alert at or above ``min_severity`` that is raised (or updated to that
  severity) holds the alarm; a cleared alert lets go.  The alarm is *active*
  while any alert holds it.
* *Silence* mutes the output while the alerts stay open; *acknowledge* says a
  person has taken charge (and also mutes).  Both are recorded with who, when
  and why, and both are lifted (the alarm re-arms) when a **new** alert is raised.
* When the last alert clears, silence and acknowledgement are forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from coldgate.contract.items import Alert, AlertAction, Severity

SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class OperatorAction:
    """Who silenced or acknowledged the alarm, when (UTC ms), why, and from where."""

    by: str
    at_ms: int
    reason: str = ""
    via: str = "local"  # local CLI, down-link command, push button...


@dataclass(frozen=True)
class AlarmState:
    min_severity: Severity = Severity.CRITICAL
    alerts: frozenset[str] = field(default_factory=frozenset)
    silenced: OperatorAction | None = None
    acknowledged: OperatorAction | None = None

    @property
    def active(self) -> bool:
        return bool(self.alerts)

    @property
    def sounding(self) -> bool:
        """The output should be on: active, and nobody has silenced or acknowledged it."""
        return self.active and self.silenced is None and self.acknowledged is None


def on_alert(state: AlarmState, alert: Alert) -> AlarmState:
    """The alarm after an alert step; a newly raised alert re-arms a muted alarm."""
    holds = SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[state.min_severity]
    if alert.action is AlertAction.CLEARED or not holds:
        # An alert downgraded below the threshold no longer holds the alarm.
        remaining = state.alerts - {alert.alert_id}
        if remaining == state.alerts:
            return state
        if not remaining:
            return replace(state, alerts=remaining, silenced=None, acknowledged=None)
        return replace(state, alerts=remaining)
    if alert.alert_id in state.alerts:
        return state
    # New to the alarm (raised, or escalated to the threshold): re-arm.
    return replace(state, alerts=state.alerts | {alert.alert_id}, silenced=None, acknowledged=None)


class NothingToSilence(ValueError):
    """Silence or acknowledge asked while no alert holds the alarm."""


def silence(state: AlarmState, action: OperatorAction) -> AlarmState:
    if not state.active:
        raise NothingToSilence("the alarm is not active: nothing to silence")
    return replace(state, silenced=action)


def acknowledge(state: AlarmState, action: OperatorAction) -> AlarmState:
    if not state.active:
        raise NothingToSilence("the alarm is not active: nothing to acknowledge")
    return replace(state, acknowledged=action)
