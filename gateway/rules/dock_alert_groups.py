"""One door alert per pallet, not per case: item alerts of one product lot at one door, folded.

:class:`~gateway.rules.dock_checks.DoorChecks` judges every item, so a
pallet of 200 cases from a recalled lot gives 200 ``door.recalled`` alerts:
200 rows for QA to review and sign off for what is one event.  This stage
folds the item alerts' steps into *group* alerts, keyed by (rule, door,
product, lot), the product as its label names it (GTIN, HIBC code, MA id), and
passes on only the group's steps:

* the first item alert of a group raises the group alert, as the item's own
  raise (same id, message and evidence), so a lone item looks exactly as
  before;
* later item alerts of the group, raised within ``window_ms`` of the
  group's previous item raise, join it silently; one of a higher severity
  (the same lot now leaving: warning → critical) updates the group to that
  severity, which is what drives the stack light;
* an item raised after the window starts a *new* group alert: the next
  pallet of a recalled lot is a new event, and must re-arm an alarm the
  operator silenced for the previous one;
* so does an item raised more than ``MAX_AGE_WINDOWS`` windows after the
  group's first: a steady flow of one lot (a conveyor) whose cases never
  leave a window's gap still re-arms a silenced light every few minutes;
* the group clears when its last open item clears (each item still holds
  for ``hold_s`` after its last step), with the number of items, the first
  keys and the group's start in the evidence.

Items with neither GTIN nor lot in their evidence (none today: every door
rule is about a product) each stay a group of their own.  Pure: no clock is
read, times come from the alert steps (monotonic within a boot).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity

__all__ = ("DEFAULT_WINDOW_MS", "MAX_AGE_WINDOWS", "DoorAlertGroups")

#: Cases of one pallet pass a door within seconds; the next pallet comes minutes later.
DEFAULT_WINDOW_MS = 30_000
#: A group takes new items for at most this many windows after its first (5 min by default).
MAX_AGE_WINDOWS = 10
_RANK = (Severity.INFO, Severity.WARNING, Severity.CRITICAL)
_KEYS_SHOWN = 5
_DETAIL_MAX = 200
#: What names an item's product lot in door-check evidence: a GTIN, or a product key, HIBC code or MA id
#: for goods labelled without one (named, so an HIBC code never meets a lot number of the same text).
_PRODUCT_DETAILS = ("gtin", "product", "hibc", "hibc_uom", "ma", "lot")


@dataclass
class _Group:
    first: Alert  # the raise that opened it: id, message and evidence of the group
    severity: Severity
    boot: str
    last_raise_mono: int
    open_members: set[str] = field(default_factory=set)
    items: int = 0
    keys: list[str] = field(default_factory=list)


class DoorAlertGroups:
    """Folds ``DoorChecks`` alert steps; ``fold(steps)`` returns the steps to record and alarm on."""

    def __init__(self, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self.window_ms = window_ms
        self._groups: dict[str, _Group] = {}  # group alert id -> group
        self._current: dict[tuple[str, ...], str] = {}  # group key -> id of the group items join
        self._member_of: dict[str, str] = {}  # item alert id -> group alert id
        self.folded = 0  # item raises that joined an open group instead of raising their own

    def fold(self, steps: list[Alert]) -> list[Alert]:
        if self.window_ms <= 0 and not self._member_of:  # folding off, and no group left to finish
            return list(steps)
        out: list[Alert] = []
        for step in steps:
            out.extend(self._fold_one(step))
        return out

    def open_alerts(self) -> list[tuple[str, str, str, int]]:
        """(group alert id, rule, door, items) of every open group alert, oldest first."""
        return [(ident, g.first.rule, g.first.subject, g.items) for ident, g in self._groups.items()]

    # -- one step --------------------------------------------------------------------------------

    def _fold_one(self, step: Alert) -> list[Alert]:
        if step.action is AlertAction.RAISED:
            return self._raised(step)
        ident = self._member_of.get(step.alert_id)
        if ident is None:  # not ours (a step of an alert raised before this stage existed): pass on
            return [step]
        group = self._groups[ident]
        if step.action is AlertAction.UPDATED:
            return self._escalate(group, ident, step)
        del self._member_of[step.alert_id]
        group.open_members.discard(step.alert_id)
        if group.open_members:
            return []
        del self._groups[ident]
        if self._current.get(_key(group.first)) == ident:
            del self._current[_key(group.first)]
        if group.items == 1:
            return [_as(step, ident)]
        return [self._cleared(group, ident, step)]

    def _raised(self, step: Alert) -> list[Alert]:
        key = _key(step)
        ident = self._current.get(key)
        group = self._groups.get(ident) if ident is not None else None
        if (
            group is None
            or self.window_ms <= 0
            or not key[2:]  # nothing names the product: the item is its own group
            or step.boot != group.boot
            or step.mono - group.last_raise_mono > self.window_ms
            or step.mono - group.first.mono > MAX_AGE_WINDOWS * self.window_ms
        ):
            group = _Group(first=step, severity=step.severity, boot=step.boot, last_raise_mono=step.mono)
            ident = step.alert_id
            self._groups[ident] = group
            self._current[key] = ident
            self._join(group, ident, step)
            return [step]
        assert ident is not None
        self._join(group, ident, step)
        self.folded += 1
        group.last_raise_mono = step.mono
        if _RANK.index(step.severity) > _RANK.index(group.severity):
            return self._escalate(group, ident, step)
        return []

    def _join(self, group: _Group, ident: str, step: Alert) -> None:
        self._member_of[step.alert_id] = ident
        group.open_members.add(step.alert_id)
        group.items += 1
        key = step.evidence.details.get("key")
        if isinstance(key, str) and len(group.keys) < _KEYS_SHOWN:
            group.keys.append(key)

    def _escalate(self, group: _Group, ident: str, step: Alert) -> list[Alert]:
        if _RANK.index(step.severity) <= _RANK.index(group.severity):
            return []
        group.severity = step.severity
        updated = msgspec.structs.replace(
            step,
            alert_id=ident,
            action=AlertAction.UPDATED,
            evidence=_with_items(step.evidence, group, start=group.first.evidence.start),
        )
        if group.items > 1:
            updated = msgspec.structs.replace(
                updated, message=_counted(step.message, group.items, group.first.subject)
            )
        return [updated]

    def _cleared(self, group: _Group, ident: str, step: Alert) -> Alert:
        start = group.first.evidence.start
        end = step.evidence.end
        duration = None if start is None or end is None else max(0, end - start) // 1000
        evidence = msgspec.structs.replace(
            _with_items(group.first.evidence, group, start=start), end=end, duration_s=duration
        )
        return msgspec.structs.replace(
            step,
            alert_id=ident,
            severity=group.severity,
            message=_counted(f"{group.first.message}: cleared", group.items, group.first.subject),
            evidence=evidence,
        )


def _key(step: Alert) -> tuple[str, ...]:
    details = step.evidence.details
    product = tuple(f"{name}={details[name]}" for name in _PRODUCT_DETAILS if name in details)
    return (step.rule, step.subject, *product) if product else (step.rule, step.subject)


def _as(step: Alert, ident: str) -> Alert:
    """A lone item's step as the group's (the ids are the same; kept explicit)."""
    return step if step.alert_id == ident else msgspec.structs.replace(step, alert_id=ident)


def _counted(message: str, items: int, door: str) -> str:
    return f"{message} ({items} items at door {door})"[:1000]


def _with_items(evidence: Evidence, group: _Group, *, start: int | None) -> Evidence:
    details = dict(evidence.details)
    if group.items > 1:
        details["items"] = group.items
        shown = ", ".join(group.keys) + (
            f" and {group.items - len(group.keys)} more" if group.items > len(group.keys) else ""
        )
        details["keys"] = shown[:_DETAIL_MAX]
    return msgspec.structs.replace(evidence, start=start, details=details)
