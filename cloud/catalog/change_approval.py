"""Change control of master data (EU GDP 2013/C 343/01 §3.3, 21 CFR Part 11 §11.50/§11.70): what a
master-data change is, what of it an approver signs, and who may approve it.  Pure: the store
(``change_approvals.py``) reads the audit trail and the signatures and hands the facts in.

A change is one audit entry of a master-data action, written by the catalog's one write path
(``put_class``, ``put_product``, ``put_lot``, ``add_serials``, ``put_location``, ``place``,
``record_calibration``, a CSV import): the entry already holds who, when, why and the record before
and after, chained by hash, so it is what is approved, not a copy of it.  A lot's status move is no
such change: it is a QA decision of its own (a case's disposition, a recall), signed there.

Separation of duties: the approver holds ``qa.decide`` (a QA person or a QA manager; ``catalog.manage``
is the QA manager's, so a manager's change is approved by another manager or by QA) and is not the
change's author.  A change made on the cloud host's command line has no user id, only the
operating-system account's name: it is held to the name (a person whose printed name is the author's is
refused), which cannot prove the approver is someone else; such changes are better made through the API.

Known limit: a change takes effect when it is written, not when it is approved.  The gateways receive
the new master data at once (the down-link publisher), and the rules apply it; the approval is the
record that a second person reviewed the change, after the fact, as the GDP change control's
"approved and documented" asks, and the awaiting list is what QA still has to review.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "APPROVED_ACTION", "MASTER_DATA_ACTIONS", "MEANING", "PERMISSION", "RECORD_SEQ", "RECORD_TYPE",
    "REFUSED_ACTION", "SIGNED_ACTION", "STATES", "Refusal", "check_approval", "differences", "not_a_change",
    "signed_content", "what_changed",
]  # fmt: skip

#: The audit actions that change master data, each with the words a page shows for it.
MASTER_DATA_ACTIONS: Final[Mapping[str, str]] = {
    "temperature_class.create": "temperature class created",
    "temperature_class.update": "temperature class changed",
    "product.create": "product created",
    "product.update": "product changed",
    "lot.create": "lot created",
    "lot.update": "lot's dates changed",
    "lot.serials": "serials added to a lot",
    "location.create": "location created",
    "location.update": "location changed",
    "placement.add": "device placed",
    "calibration.add": "calibration recorded",
    "catalog.import": "catalog file imported",
}
#: Whom an approval needs: a QA decision (roles.py: held by ``qa`` and ``qa_manager``).
PERMISSION: Final = "qa.decide"
#: The signature's record: the change's audit seq is its id, its one step is this.
RECORD_TYPE: Final = "catalog_change"
RECORD_SEQ: Final = 1
SIGNED_ACTION: Final = "approve"
MEANING: Final = "approved"
#: The audit actions of an approval and of a refused one.
APPROVED_ACTION: Final = "catalog.change_approved"
REFUSED_ACTION: Final = "catalog.change_approval_refused"
#: The list's states.
STATES: Final = ("awaiting", "approved", "all")
#: How many field differences a change's summary lists before saying how many more.
SHOWN_DIFFERENCES: Final = 8


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an approval is refused: ``kind`` says how an API answers it (forbidden 403, conflict 409,
    not_a_change 422), ``message`` says it to the person."""

    kind: Literal["forbidden", "conflict", "not_a_change"]
    message: str


def not_a_change(seq: int, action: str) -> Refusal | None:
    """None if audit entry ``seq`` (of ``action``) is a master-data change; else why it is not one."""
    if action in MASTER_DATA_ACTIONS:
        return None
    if action == "lot.status":
        why = "a lot's status move is a QA decision (a case's disposition or a recall), signed there"
    else:
        why = (
            "only changes of temperature classes, products, lots, serials, locations, placements and "
            "calibrations are approved here"
        )
    return Refusal("not_a_change", f"audit entry {seq} ({action}) is not a master-data change: {why}")


def check_approval(
    change: Mapping[str, Any], *, signer_id: str, signer_name: str, held: frozenset[str],
    approvals: list[Mapping[str, Any]],
) -> Refusal | None:  # fmt: skip
    """None if ``signer`` may approve ``change`` (an audit entry's fields: seq, action, actor_id,
    actor_name) now, given its ``approvals`` so far; else the refusal, most basic first."""
    refused = not_a_change(int(change["seq"]), str(change["action"]))
    if refused is not None:
        return refused
    if PERMISSION not in held:
        return Refusal(
            "forbidden", f"{signer_name} may not approve a master-data change: it needs {PERMISSION} (QA)"
        )
    author_id, author_name = change.get("actor_id"), change.get("actor_name")
    if (author_id is not None and author_id == signer_id) or (
        author_id is None and author_name == signer_name
    ):
        return Refusal("forbidden", "you made this change: another person approves it")
    if approvals:
        first = approvals[0]
        when = _utc_text(first["signed_at"])
        return Refusal(
            "conflict", f"change {change['seq']} is already approved (by {first['signer_name']}, {when} UTC)"
        )
    return None


def _utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def signed_content(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What an approver signs of a change: the audit entry as the chain holds it (its seq, time, author,
    action, record, reason, the record before and after as the canonical JSON that was hashed) and the
    entry's hash, so the signature is bound to that one link of the chain.  ``at``: naive means UTC."""
    at: datetime.datetime = entry["at"]
    moment = at.replace(tzinfo=datetime.UTC) if at.tzinfo is None else at.astimezone(datetime.UTC)
    return {
        "seq": int(entry["seq"]), "at": moment.isoformat(timespec="microseconds"),
        "actor_id": entry["actor_id"], "actor_name": entry["actor_name"], "action": entry["action"],
        "entity_type": entry["entity_type"], "entity_id": entry["entity_id"], "before": entry["before"],
        "after": entry["after"], "reason": entry["reason"], "entry_hash": entry["hash"],
    }  # fmt: skip


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A record's fields as dotted names ("spec.high"); lists are one field."""
    if not isinstance(value, dict):
        return {prefix or "value": value}
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(_flat(inner, name) if isinstance(inner, dict) else {name: inner})
    return flat


#: Fields every version carries that say nothing about what changed ("expired" is computed when read).
_STAMP = frozenset({"version", "changed_at", "changed_by", "reason", "recorded_by", "expired"})


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "…"


def differences(before: Any, after: Any, *, shown: int = SHOWN_DIFFERENCES) -> list[str]:
    """A change's before → after, field by field ("spec.high: 8 → 6"), for a page and the API's summary:
    "created" and the new fields for a new record; at most ``shown`` lines, then how many more."""
    old = {k: v for k, v in _flat(before).items() if k not in _STAMP} if before is not None else {}
    new = {k: v for k, v in _flat(after).items() if k not in _STAMP} if after is not None else {}
    if before is None:
        said = {name: value for name, value in new.items() if value not in (None, "")}
        if said.get("retired") is False:  # a new record is in force: saying so is noise
            del said["retired"]
        lines = [f"{name}: {_shown(value)}" for name, value in said.items()]
    else:
        names = [*old, *(name for name in new if name not in old)]
        lines = [
            f"{n}: {_shown(old.get(n))} → {_shown(new.get(n))}" for n in names if old.get(n) != new.get(n)
        ]
    if len(lines) > shown:
        lines = [*lines[:shown], f"… and {len(lines) - shown} more"]
    if before is None:
        return ["created", *lines]
    return lines or ["no field changed"]


def what_changed(action: str) -> str:
    """The words a page shows for the change's action."""
    return MASTER_DATA_ACTIONS.get(action, action)
