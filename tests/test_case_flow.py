"""A QA case's flow (``cloud/alerts/case_flow.py``), pure: every move allowed and every other refused
with its reason; who may move a case; what a signature needs (separation of duties)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.alerts.case_flow import (
    MOVES,
    CaseState,
    Disposition,
    Move,
    Refusal,
    Signer,
    check_move,
    check_signatures,
    next_states,
)  # fmt: skip
from coldgate.cloud.identity.roles import ROLES

S = CaseState
QA = ROLES["qa"]
MANAGER = ROLES["qa_manager"]
VIEWER = ROLES["viewer"]
DOCK = ROLES["dock_operator"]
ADMIN = ROLES["admin"]


def _signer(user: str, held: frozenset[str], meaning: str = "approved") -> Signer:
    return Signer(user, user.title(), held, meaning)


def test_the_flow_from_alert_to_decision() -> None:
    """The happy path as a QA team walks it, each step by the role that does it."""
    steps = [
        (S.OPEN, S.ACKNOWLEDGED, DOCK, {}),
        (S.ACKNOWLEDGED, S.INVESTIGATING, QA, {}),
        (S.INVESTIGATING, S.PENDING_DISPOSITION, QA, {"disposition": Disposition.RELEASED}),
        (S.PENDING_DISPOSITION, S.INVESTIGATING, QA, {"reason": "need the logger's calibration"}),
        (S.INVESTIGATING, S.PENDING_DISPOSITION, QA, {"disposition": Disposition.RELEASED}),
        (S.PENDING_DISPOSITION, S.CLOSED, MANAGER, {"disposition": Disposition.RELEASED}),
    ]
    for frm, to, held, given_ in steps:
        assert isinstance(check_move(frm, to, held, **given_), Move), (frm, to)
    assert next_states(S.OPEN) == [S.ACKNOWLEDGED, S.CANCELLED]
    assert next_states(S.PENDING_DISPOSITION) == [S.INVESTIGATING, S.CLOSED, S.CANCELLED]
    assert next_states(S.CLOSED) == next_states(S.CANCELLED) == []


@pytest.mark.parametrize(
    ("frm", "to"), [pair for pair in itertools.product(CaseState, CaseState) if pair not in MOVES]
)
def test_every_illegal_move_is_refused_naming_both_states(frm: CaseState, to: CaseState) -> None:
    found = check_move(frm, to, MANAGER | QA, reason="because", disposition=Disposition.NO_IMPACT)
    assert isinstance(found, Refusal) and found.kind == "state" and found.field == "state"
    if frm in (S.CLOSED, S.CANCELLED):
        assert f"a {frm.value} case is final" in found.message
    else:
        assert f"from {frm.value} to {to.value}" in found.message
        assert all(s.value in found.message for s in next_states(frm))


@pytest.mark.parametrize(("frm", "to"), list(MOVES))
def test_every_move_needs_its_permission(frm: CaseState, to: CaseState) -> None:
    """A viewer and an admin (who holds no QA permission) move nothing; a dock operator acknowledges
    only; a QA person does all but close and cancel; a QA manager closes and cancels."""
    given_ = {"reason": "because", "disposition": Disposition.NO_IMPACT}
    for held in (VIEWER, ADMIN):
        refused = check_move(frm, to, held, **given_)
        assert isinstance(refused, Refusal) and refused.kind == "permission", (frm, to)
        assert MOVES[(frm, to)].permission in refused.message
    may = {name for name, held in ROLES.items() if isinstance(check_move(frm, to, held, **given_), Move)}
    expected = {
        S.ACKNOWLEDGED: {"dock_operator", "qa", "qa_manager"},
        S.INVESTIGATING: {"qa", "qa_manager"},
        S.PENDING_DISPOSITION: {"qa", "qa_manager"},
        S.CLOSED: {"qa_manager"},
        S.CANCELLED: {"qa_manager"},
    }[to]
    assert may == expected, (frm, to)


def test_what_a_move_asks_for_is_named_when_missing() -> None:
    refused = check_move(S.PENDING_DISPOSITION, S.INVESTIGATING, QA, reason="  ")
    assert refused == Refusal("field", "reason", "moving a case to investigating needs a reason")
    refused = check_move(S.OPEN, S.CANCELLED, MANAGER)
    assert isinstance(refused, Refusal) and refused.field == "reason"
    refused = check_move(S.INVESTIGATING, S.PENDING_DISPOSITION, QA)
    assert isinstance(refused, Refusal) and refused.field == "disposition"
    assert all(d.value in refused.message for d in Disposition)


CLOSE = MOVES[(S.PENDING_DISPOSITION, S.CLOSED)]
CANCEL = MOVES[(S.OPEN, S.CANCELLED)]


def test_a_release_takes_two_people_with_their_roles() -> None:
    marta, quentin = _signer("marta", MANAGER), _signer("quentin", QA)
    release = Disposition.RELEASED
    assert check_signatures(CLOSE, [marta, quentin], disposition=release) is None
    refusals = {
        "one signature": check_signatures(CLOSE, [marta], disposition=release),
        "the same person twice": check_signatures(CLOSE, [marta, marta], disposition=release),
        "a QA person first": check_signatures(CLOSE, [quentin, marta], disposition=release),
        "a second who may not": check_signatures(
            CLOSE, [marta, _signer("dora", DOCK)], disposition=release
        ),
        "another meaning": check_signatures(
            CLOSE, [marta, _signer("quentin", QA, "reviewed")], disposition=release
        ),
        "nobody": check_signatures(CLOSE, [], disposition=release),
    }
    assert {k: (r.kind, r.field) if r else None for k, r in refusals.items()} == {
        "one signature": ("field", "signatures"),
        "the same person twice": ("field", "signatures"),
        "a QA person first": ("permission", "signatures"),
        "a second who may not": ("permission", "signatures"),
        "another meaning": ("field", "signatures"),
        "nobody": ("field", "signatures"),
    }
    assert "two people" in refusals["the same person twice"].message  # type: ignore[union-attr]
    # Other dispositions: one QA manager's signature, but never only the person who acknowledged.
    assert check_signatures(CLOSE, [marta], disposition=Disposition.REJECTED) is None
    alone = check_signatures(CLOSE, [marta], disposition=Disposition.NO_IMPACT, acknowledged_by="marta")
    assert alone is not None and "only approver" in alone.message
    assert check_signatures(CLOSE, [marta, quentin], disposition=Disposition.NO_IMPACT,
                            acknowledged_by="marta") is None  # fmt: skip


def test_a_cancellation_is_signed_and_unsigned_moves_take_no_signature() -> None:
    assert check_signatures(CANCEL, [_signer("marta", MANAGER, "cancelled")]) is None
    assert check_signatures(CANCEL, [_signer("quentin", QA, "cancelled")]) == Refusal(
        "permission", "signatures", "Quentin may not sign this: it needs qa.review"
    )
    acknowledge = MOVES[(S.OPEN, S.ACKNOWLEDGED)]
    assert check_signatures(acknowledge, []) is None
    assert check_signatures(acknowledge, [_signer("marta", MANAGER)]) == Refusal(
        "field", "signatures", "this move is not signed"
    )


@given(
    st.lists(st.sampled_from(list(CaseState)), min_size=1, max_size=12),
    st.sampled_from(sorted(ROLES)),
)
def test_any_walk_only_ever_takes_allowed_moves(targets: list[CaseState], role: str) -> None:
    """Whatever is asked in whatever order: a move is granted exactly when the table has it and the
    role holds its permission, and a final state is never left."""
    state = S.OPEN
    for target in targets:
        found = check_move(state, target, ROLES[role], reason="r", disposition=Disposition.NO_IMPACT)
        rule = MOVES.get((state, target))
        assert isinstance(found, Move) == (rule is not None and rule.permission in ROLES[role])
        if isinstance(found, Move):
            assert state not in (S.CLOSED, S.CANCELLED)
            state = target
