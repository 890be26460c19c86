"""Which alerts open QA cases, and which case each joins (issue 16).  Pure: no I/O.

* **What opens a case:** a raised alert of severity warning or critical: a cold-chain excursion, a door
  check (a recalled, quarantined or expired case at the door), a receiving discrepancy, a source or
  gateway offline, calibration overdue, a stream stuck.  Two kinds stay alerts without a case: ``info``
  (calibration due soon) and pre-alarms (``<quantity>.pre_high``/``pre_low``), which warn the people
  on site before anything happened to the goods.
* **One case per cause:** alerts of the same cause fold into the case open for it (a flapping sensor is
  one case, not fifty).  The cause is the gateway, the rule and the subject (a sensor, a door, a
  gateway...), except where the rule's alert id names the cause itself: a receiving discrepancy is per
  document, not per door (two notes worked at one door are two cases).  Once a case is closed or
  cancelled, the next alert of its cause opens a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

__all__ = [
    "CASE_TYPES", "OPENING_SEVERITIES", "PRE_ALARM", "CaseAlert", "Opening", "case_type", "cause_of", "fold",
    "is_excursion", "is_limit_crossing", "opens_case",
]  # fmt: skip

#: Severities whose raised alerts open (or join) a case.
OPENING_SEVERITIES: Final = ("warning", "critical")
#: What the last part of a pre-alarm's rule starts with (``temperature.pre_high``).
PRE_ALARM: Final = "pre_"
#: Rules whose alert id is one per cause (the cloud's own: ``dock.discrepancy.<document>``).
_CAUSE_IN_ALERT_ID: Final = frozenset({"dock.discrepancy", "calibration.due"})
#: The last part of a cold-chain excursion's rule: a limit crossed (``temperature.high``,
#: ``humidity.low``), the time-out-of-range budget spent (``temperature.budget``), or the example's
#: ``temperature.excursion``.
_EXCURSION: Final = frozenset({"high", "low", "budget", "excursion"})
#: The kinds of case, by what opened it: what ``[cases.signatures]`` configures per kind.
CASE_TYPES: Final = ("excursion", "door", "discrepancy", "offline", "calibration", "stream", "other")
#: The first part of a rule, for the kinds not told by their subject.
_TYPE_OF_FAMILY: Final = {
    "door": "door", "dock": "discrepancy", "source": "offline", "gateway": "offline", "downlink": "offline",
    "calibration": "calibration", "stream": "stream", "dead_letters": "stream",
}  # fmt: skip


class CaseAlert(NamedTuple):
    """A raised alert as cases see it (a row of ``alerts`` with action ``raised``)."""

    gateway: str
    alert_id: str
    rule: str
    subject_type: str
    subject: str
    severity: str
    message: str
    ts: int


class Opening(NamedTuple):
    """A case to open for ``cause``, with the alerts it starts with (the first is its title's)."""

    cause: str
    alerts: tuple[CaseAlert, ...]


def opens_case(alert: CaseAlert) -> bool:
    return alert.severity in OPENING_SEVERITIES and not alert.rule.rsplit(".", 1)[-1].startswith(PRE_ALARM)


def cause_of(alert: CaseAlert) -> str:
    """What alerts folded into one case share (stored with the case, so it can be looked up)."""
    if alert.rule in _CAUSE_IN_ALERT_ID:
        return f"{alert.gateway}|{alert.rule}|alert|{alert.alert_id}"
    return f"{alert.gateway}|{alert.rule}|{alert.subject_type}|{alert.subject}"


def fold(
    alerts: Iterable[CaseAlert], open_cases: Mapping[str, str]
) -> tuple[dict[str, list[CaseAlert]], list[Opening]]:
    """The alerts that open cases, in time order (then by gateway and alert id), folded: those whose
    cause has an open case (``open_cases``: cause -> case id) join it; the rest open one case per
    cause.  Returns (case id -> alerts joining it, the cases to open)."""
    joining: dict[str, list[CaseAlert]] = {}
    opening: dict[str, list[CaseAlert]] = {}
    for alert in sorted(alerts, key=lambda a: (a.ts, a.gateway, a.alert_id)):
        if not opens_case(alert):
            continue
        cause = cause_of(alert)
        if cause in open_cases:
            joining.setdefault(open_cases[cause], []).append(alert)
        else:
            opening.setdefault(cause, []).append(alert)
    return joining, [Opening(cause, tuple(found)) for cause, found in opening.items()]


def case_type(rule: str, subject_type: str) -> str:
    """The kind of case an alert of ``rule`` about a ``subject_type`` opens (one of :data:`CASE_TYPES`)."""
    family, _, last = rule.rpartition(".")
    if subject_type == "sensor" and last in _EXCURSION:
        return "excursion"
    return _TYPE_OF_FAMILY.get(family.split(".")[0] if family else last, "other")


#: The last part of a rule that is an episode at a place: a limit crossed (``temperature.high``,
#: ``humidity.low``) or the example's ``temperature.excursion``.  Not the budget (a figure of a unit's
#: whole life), not a pre-alarm (a warning before anything happened to the goods).
_LIMIT_CROSSED: Final = frozenset({"high", "low", "excursion"})


def is_limit_crossing(rule: str) -> bool:
    """Whether alerts of ``rule`` are excursions as the reports list them (the batch history, the GSP
    excursion log): one definition, so the two reports and the cases count the same episodes."""
    return rule.rsplit(".", 1)[-1] in _LIMIT_CROSSED


def is_excursion(alert: CaseAlert) -> bool:
    """Whether the alert is a cold-chain excursion of a sensor: its case quarantines the room's stock."""
    return alert.subject_type == "sensor" and alert.rule.rsplit(".", 1)[-1] in _EXCURSION
