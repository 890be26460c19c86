"""Dock discrepancies: an alert per document while it has discrepancies nobody has decided on.

Issue 15: "a discrepancy raises an alert that QA can act on".  QA should hear of a recalled, expired
or foreign case at once, but not of every case "missing" while the pallet is still being driven
through the portal: a shortfall (``missing``, ``under_quantity``) is alerted only once the door has
been quiet for the document for ``settle_ms`` (nothing bound to it since) and something was bound
at all (a note released to a door before its truck has come is not short).  What counts is what keeps
the document from being completed (``dock_decisions.Judged.blocking``): accepted discrepancies and
duplicate reads do not.

One alert per document (``alert_id``): raised once, updated when the open kinds or counts change,
cleared when none is left (resolved at the dock, accepted by QA, or the document left the dock).
``critical`` when a unit must not enter or leave stock (recalled, rejected, quarantined, expired, or
a product of another temperature class than the door's room), else ``warning``.  The alert is on the
cloud stream of the gateway whose item was bound last to the document (the dock's gateway), about the
door (subject ``door``).

Pure: the watch (``dock_discrepancies_watch``) reads documents, bindings and open alerts.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from coldgate.cloud.alerts.cloud_stream import cloud_item_fields
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType

__all__ = [
    "RULE", "SETTLE_MS", "DockStanding", "DockStep", "OpenDockAlert", "alert_id", "dock_alert", "judge",
]  # fmt: skip

RULE: Final = "dock.discrepancy"
#: Quiet at the door before a shortfall is alerted: a pallet's pass is seconds, a truck's unloading minutes.
SETTLE_MS: Final = 5 * 60 * 1000
SHORTFALLS: Final = frozenset({"missing", "under_quantity"})
CRITICAL: Final = frozenset({"recalled", "rejected", "quarantined", "expired", "temperature_class"})


@dataclass(frozen=True, slots=True)
class DockStanding:
    """A document as the watch sees it: its open (blocking) discrepancies counted by kind, whether it is
    being worked at a door, and the last binding to it (gateway and time)."""

    document: str
    kind: str
    reference: str
    door: str | None
    worked: bool
    open_kinds: Mapping[str, int] = field(default_factory=dict)
    last_gateway: str | None = None
    last_bound: int | None = None


@dataclass(frozen=True, slots=True)
class OpenDockAlert:
    gateway: str
    door: str
    severity: Severity
    counts: str


@dataclass(frozen=True, slots=True)
class DockStep:
    gateway: str
    document: str
    reference: str
    kind: str
    door: str
    action: AlertAction
    severity: Severity
    counts: str  # "missing=3, unexpected=1", sorted by kind


def alert_id(document: str) -> str:
    """``dock.discrepancy.<document>``, or with a digest when that would pass the contract's 64 characters."""
    plain = f"{RULE}.{document}"
    return plain if len(plain) <= 64 else f"{RULE}.{hashlib.sha256(document.encode()).hexdigest()[:32]}"


def _wanted(standing: DockStanding, now_ms: int, settle_ms: int) -> dict[str, int]:
    if not standing.worked:
        return {}
    settled = standing.last_bound is not None and now_ms - standing.last_bound >= settle_ms
    return {k: n for k, n in standing.open_kinds.items() if n > 0 and (settled or k not in SHORTFALLS)}


def _counts(kinds: Mapping[str, int]) -> str:
    return ", ".join(f"{kind}={kinds[kind]}" for kind in sorted(kinds))


def judge(
    standings: Iterable[DockStanding], open_alerts: Mapping[str, OpenDockAlert], now_ms: int,
    settle_ms: int = SETTLE_MS,
) -> list[DockStep]:  # fmt: skip
    """``open_alerts``: document -> its alert as last raised or updated (not cleared)."""
    steps = []
    for s in standings:
        wanted = _wanted(s, now_ms, settle_ms)
        held = open_alerts.get(s.document)
        if wanted:
            severity = Severity.CRITICAL if CRITICAL & wanted.keys() else Severity.WARNING
            counts = _counts(wanted)
            if held is None and s.last_gateway is not None and s.door is not None:
                steps.append(DockStep(s.last_gateway, s.document, s.reference, s.kind, s.door,
                                      AlertAction.RAISED, severity, counts))  # fmt: skip
            elif held is not None and (held.counts, held.severity) != (counts, severity):
                steps.append(DockStep(held.gateway, s.document, s.reference, s.kind, held.door,
                                      AlertAction.UPDATED, severity, counts))  # fmt: skip
        elif held is not None:
            steps.append(DockStep(held.gateway, s.document, s.reference, s.kind, held.door,
                                  AlertAction.CLEARED, held.severity, ""))  # fmt: skip
    return steps


def dock_alert(step: DockStep, seq: int, now: datetime.datetime) -> Alert:
    what = f"{step.kind} {step.reference} at door {step.door}"
    if step.action is AlertAction.CLEARED:
        message = f"{what}: no discrepancy left open (resolved at the dock or accepted)"
    else:
        message = f"{what}: discrepancies for QA to decide on: {step.counts}"
    details: dict[str, str | int | float | bool] = {"document": step.document, "reference": step.reference}
    if step.counts:
        details["open"] = step.counts
    return Alert(
        **cloud_item_fields(seq, now), alert_id=alert_id(step.document), action=step.action, rule=RULE,
        subject_type=SubjectType.DOOR, subject=step.door, severity=step.severity, message=message[:1000],
        evidence=Evidence(details=details),
    )  # fmt: skip
