"""A QA case's life, defined once: its states, the moves between them, who may make each move, and what
signatures a move needs (issue 16).  Pure: no I/O; the case store asks it before it writes anything.

Why a table of our own rather than the ``transitions`` library: a move here is more than an edge: it
names the permission it needs, whether it must be signed and with what meaning, and what else it asks
for (a reason, a disposition).  A dictionary of those rules is read, reviewed and tested in one place;
a state machine object would hold the same table and add callbacks we would not use.

The flow, as GSP/GDP practice runs it::

    open -> acknowledged -> investigating -> pending_disposition -> closed (with a disposition)
                                 ^-----------------'
    any state but closed -> cancelled (signed, with a reason)

* **Acknowledging** says someone is on it (the escalation stops); anyone who may acknowledge alerts.
* **Investigating** and proposing a disposition (**pending disposition**) are QA's (``qa.decide``); a
  proposal can go back to investigating when more is needed.
* **Closing** records the disposition: released, rejected/destroyed, returned to the supplier, or no
  impact.  It is signed (21 CFR 11.50: who, when, meaning) by a QA manager (``qa.review``); a release,
  and any closing as no impact or cancelling that gives quarantined stock back, needs a second signature
  by another person holding ``qa.decide`` (two people, two roles), and the person who acknowledged the
  case cannot be the only approver.
* **Cancelling** (opened in error, a duplicate) is signed with a reason by a QA manager.
* **Separation of duties per case type** (``[cases.signatures]``: excursion, door, discrepancy...): how
  many people sign a closing or cancelling of that type, 1 to 3.  The floors above hold whatever it
  says: configuration may ask more signatures, never fewer.

Every refusal says what was asked, what the case's state allows, and why, so the person at the screen
and the inspector reading the audit trail get the same sentence.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal, NamedTuple

__all__ = [
    "ACKNOWLEDGE_WITHIN", "DECIDE_WITHIN", "FINAL", "MOVES", "NOTE_KINDS", "Awaiting", "CaseDuties",
    "CaseState", "Disposition", "Move", "Refusal", "Signer", "check_move", "check_note", "check_signatures",
    "gives_stock_back", "is_overdue", "may_act", "next_states",
]  # fmt: skip


class CaseState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    PENDING_DISPOSITION = "pending_disposition"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Disposition(StrEnum):
    """What QA decided about the affected stock when closing the case."""

    RELEASED = "released"
    REJECTED = "rejected_destroyed"
    RETURNED = "returned_to_supplier"
    NO_IMPACT = "no_impact"


class Move(NamedTuple):
    """One allowed move: the permission it needs, the meaning of the signature it needs (None: not
    signed), and whether it needs a reason or a disposition."""

    permission: str
    meaning: str | None = None
    reason: bool = False
    disposition: bool = False


_S = CaseState
_CANCEL: Final = Move("qa.review", meaning="cancelled", reason=True)

#: Every move a case may make; any other is refused naming both states.
MOVES: Final[dict[tuple[CaseState, CaseState], Move]] = {
    (_S.OPEN, _S.ACKNOWLEDGED): Move("alerts.acknowledge"),
    (_S.ACKNOWLEDGED, _S.INVESTIGATING): Move("qa.decide"),
    (_S.INVESTIGATING, _S.PENDING_DISPOSITION): Move("qa.decide", disposition=True),
    (_S.PENDING_DISPOSITION, _S.INVESTIGATING): Move("qa.decide", reason=True),
    (_S.PENDING_DISPOSITION, _S.CLOSED): Move("qa.review", meaning="approved", disposition=True),
    **{(state, _S.CANCELLED): _CANCEL for state in (_S.OPEN, _S.ACKNOWLEDGED, _S.INVESTIGATING,
                                                    _S.PENDING_DISPOSITION)},
}  # fmt: skip

#: States a case never leaves.
FINAL: Final = frozenset({_S.CLOSED, _S.CANCELLED})

#: A case nobody has acknowledged this long after it opened is overdue (the inbox says so; escalation
#: tells the next level on its own clock, ``notify_policy``).
ACKNOWLEDGE_WITHIN: Final = datetime.timedelta(minutes=30)
#: A case not decided (closed or cancelled) this long after it opened is overdue: GDP expects deviations
#: investigated and closed within about a month.
DECIDE_WITHIN: Final = datetime.timedelta(days=30)


def is_overdue(state: CaseState, opened_at: datetime.datetime, now: datetime.datetime) -> bool:
    """Whether a case in ``state`` opened at ``opened_at`` is overdue at ``now``."""
    if state in FINAL:
        return False
    if state is CaseState.OPEN and now - opened_at > ACKNOWLEDGE_WITHIN:
        return True
    return now - opened_at > DECIDE_WITHIN


def may_act(state: CaseState, held: frozenset[str]) -> bool:
    """Whether a person holding ``held`` can take the case in ``state`` a step further: make one of its
    next moves, or sign one (a release's second signature is ``qa.decide``'s)."""
    for (frm, _to), move in MOVES.items():
        if frm is not state:
            continue
        if move.permission in held or (move.meaning == "approved" and "qa.decide" in held):
            return True
    return False


#: What people add to a case besides moving it, and the permission each needs: anyone who may
#: acknowledge comments and attaches (a photo of the display, the logger's printout); the investigation's
#: findings (root cause, corrective and preventive action: CAPA) are QA's.
NOTE_KINDS: Final[dict[str, str]] = {
    "comment": "alerts.acknowledge",
    "attachment": "alerts.acknowledge",
    "root_cause": "qa.decide",
    "corrective_action": "qa.decide",
    "preventive_action": "qa.decide",
}


def check_note(state: CaseState, kind: str, held: frozenset[str]) -> Refusal | None:
    """Whether a person holding ``held`` may add a note of ``kind`` to a case in ``state``."""
    if kind not in NOTE_KINDS:
        return Refusal("field", "kind", f"{kind!r} is not a kind of note (one of {', '.join(NOTE_KINDS)})")
    if state in FINAL:
        return Refusal("state", "state", f"a {state.value} case is final: nothing is added to it")
    if NOTE_KINDS[kind] not in held:
        return Refusal("permission", "kind", f"adding a {kind} needs the {NOTE_KINDS[kind]} permission")
    return None


class Refusal(NamedTuple):
    """Why a move is refused: ``kind`` tells the store which answer it is (``state``: the case's state
    does not allow it, a 409; ``permission``: the person may not, a 403; ``field``: something asked for
    is missing or wrong, a 422 naming ``field``)."""

    kind: Literal["state", "permission", "field"]
    field: str
    message: str


class Signer(NamedTuple):
    """One signature given for a move: who (user id and printed name), with which permissions, and its
    meaning."""

    user_id: str
    name: str
    permissions: frozenset[str]
    meaning: str


def next_states(state: CaseState) -> list[CaseState]:
    """The states a case in ``state`` may move to, in the flow's order (what the case page offers)."""
    return [to for (frm, to) in MOVES if frm is state]


def check_move(
    state: CaseState, target: CaseState, held: frozenset[str], *, reason: str | None = None,
    disposition: Disposition | None = None, signing: bool = False,
) -> Move | Refusal:  # fmt: skip
    """The move from ``state`` to ``target`` if the person holding ``held`` may make it with what is
    given, else why not.  Signatures are checked apart (:func:`check_signatures`), once this passes;
    a person ``signing`` a signed move is held to what :func:`check_signatures` asks of each signer
    instead of the move's permission (a release's second signer holds ``qa.decide``, not
    ``qa.review``)."""
    move = MOVES.get((state, target))
    if move is None:
        if state in FINAL:
            why = f"a {state.value} case is final: nothing moves it (a new case is opened instead)"
        else:
            allowed = ", ".join(s.value for s in next_states(state))
            why = f"a case cannot go from {state.value} to {target.value} (from {state.value}: {allowed})"
        return Refusal("state", "state", why)
    if move.permission not in held and not (signing and move.meaning is not None):
        return Refusal(
            "permission", "state", f"moving a case to {target.value} needs the {move.permission} permission"
        )
    if move.reason and not (reason or "").strip():
        return Refusal("field", "reason", f"moving a case to {target.value} needs a reason")
    if move.disposition and disposition is None:
        choices = ", ".join(d.value for d in Disposition)
        return Refusal(
            "field", "disposition", f"moving a case to {target.value} needs a disposition ({choices})"
        )
    return move


class Awaiting(NamedTuple):
    """The signatures given so far are good but not yet enough: ``message`` says whose is still needed."""

    message: str


@dataclass(frozen=True, slots=True)
class CaseDuties:
    """How many people sign a closing or cancelling, per case type (``case_opening.CASE_TYPES``), as
    ``[cases.signatures]`` says; a type not named: one.  The floors of :func:`check_signatures` hold
    whatever it says."""

    signatures: Mapping[str, int] = field(default_factory=dict)

    def least(self, case_type: str) -> int:
        return max(1, self.signatures.get(case_type, 1))


def gives_stock_back(target: CaseState, disposition: Disposition | None) -> bool:
    """Whether closing or cancelling so gives the stock a case quarantined back (``case_quarantine``'s
    ``SETTLED_TO``: released for released, no impact and a cancellation)."""
    if target is CaseState.CANCELLED:
        return True
    return target is CaseState.CLOSED and disposition in (Disposition.RELEASED, Disposition.NO_IMPACT)


def check_signatures(
    move: Move, signers: Sequence[Signer], *, releases_stock: bool = False,
    acknowledged_by: str | None = None, least: int = 1,
) -> Refusal | Awaiting | None:  # fmt: skip
    """Whether ``signers`` sign ``move`` as separation of duties asks: None when they do, ``Awaiting``
    when another signature is still needed, a ``Refusal`` when these signatures cannot stand.

    Signatures are given one at a time, by different people at their own screens, in any order, so the
    answer never depends on who signed first.  Every signer signs with the move's meaning and nobody
    signs twice.  One signer holds the move's permission (the approver).  A move that releases product
    (``releases_stock``: a release, or :func:`gives_stock_back` of a case holding stock) takes a second
    person holding ``qa.decide``; whoever acknowledged the case is never its only approver (a second
    person holding ``qa.decide`` signs too); ``least``, the case type's configured count, may ask more
    people still, each holding ``qa.decide``.  Anyone else may not sign."""
    if move.meaning is None:
        return None if not signers else Refusal("field", "signatures", "this move is not signed")
    if not signers:
        return Awaiting(f"this move is signed ({move.meaning}): nobody has signed it yet")
    for signer in signers:
        if signer.meaning != move.meaning:
            return Refusal(
                "field",
                "signatures",
                f"{signer.name} signed as {signer.meaning!r}; this move is {move.meaning!r}",
            )
    ids = [s.user_id for s in signers]
    if len(set(ids)) != len(ids):
        return Refusal(
            "field", "signatures", "the same person cannot sign twice: two signatures need two people"
        )
    needed = max(least, 2 if releases_stock else 1)
    second = needed >= 2 or (acknowledged_by is not None and acknowledged_by in ids)
    for signer in signers:
        if move.permission in signer.permissions or (second and "qa.decide" in signer.permissions):
            continue
        also = " (or qa.decide, as the second signer)" if second else ""
        return Refusal(
            "permission", "signatures", f"{signer.name} may not sign this: it needs {move.permission}{also}"
        )
    approvers = [s for s in signers if move.permission in s.permissions]
    if not approvers:
        if len(signers) >= 2:
            needed = f"one of the signatures must be by a person holding {move.permission}"
            return Refusal("permission", "signatures", needed)
        return Awaiting(f"{signers[0].name} signed; a person holding {move.permission} must sign too")
    if len(signers) < needed:
        if releases_stock and len(signers) < 2:
            return Awaiting(
                "releasing stock needs a second signature by another person holding qa.decide"
            )
        return Awaiting(
            f"this type of case is signed by {needed} people ({len(signers)} so far): another person holding "
            "qa.decide must sign"
        )
    if acknowledged_by is not None and set(ids) == {acknowledged_by}:
        return Awaiting(
            "whoever acknowledged the case cannot be its only approver: another person holding qa.decide "
            "must sign too"
        )
    return None
