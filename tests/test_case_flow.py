"""A QA case's flow (``cloud/alerts/case_flow.py``), pure: every move allowed and every other refused
with its reason; who may move a case; what a signature needs (separation of duties)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.alerts.case_flow import (
    MOVES,
    Awaiting,
    CaseState,
    Disposition,
    Move,
    Refusal,
    Signer,
    check_move,
    check_signatures,
    gives_stock_back,
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


def _verdict(found: Refusal | Awaiting | None) -> tuple[str, str] | str | None:
    if isinstance(found, Refusal):
        return (found.kind, found.field)
    return "awaiting" if isinstance(found, Awaiting) else None


def test_a_release_takes_two_people_with_their_roles_in_either_order() -> None:
    marta, quentin = _signer("marta", MANAGER), _signer("quentin", QA)
    release = True  # closing as released a case that holds quarantined stock
    assert check_signatures(CLOSE, [marta, quentin], releases_stock=release) is None
    assert check_signatures(CLOSE, [quentin, marta], releases_stock=release) is None
    verdicts = {
        "the approver alone": check_signatures(CLOSE, [marta], releases_stock=release),
        "the QA person alone": check_signatures(CLOSE, [quentin], releases_stock=release),
        "nobody": check_signatures(CLOSE, [], releases_stock=release),
        "the same person twice": check_signatures(CLOSE, [marta, marta], releases_stock=release),
        "two QA people, no approver": check_signatures(
            CLOSE, [quentin, _signer("quinn", QA)], releases_stock=release
        ),
        "a second who may not": check_signatures(
            CLOSE, [marta, _signer("dora", DOCK)], releases_stock=release
        ),
        "a viewer": check_signatures(CLOSE, [_signer("vera", VIEWER)], releases_stock=release),
        "another meaning": check_signatures(
            CLOSE, [marta, _signer("quentin", QA, "reviewed")], releases_stock=release
        ),
    }
    assert {k: _verdict(v) for k, v in verdicts.items()} == {
        "the approver alone": "awaiting",
        "the QA person alone": "awaiting",
        "nobody": "awaiting",
        "the same person twice": ("field", "signatures"),
        "two QA people, no approver": ("permission", "signatures"),
        "a second who may not": ("permission", "signatures"),
        "a viewer": ("permission", "signatures"),
        "another meaning": ("field", "signatures"),
    }
    assert "two people" in verdicts["the same person twice"].message  # type: ignore[union-attr]
    assert "second signature" in verdicts["the approver alone"].message  # type: ignore[union-attr]
    assert "qa.review must sign" in verdicts["the QA person alone"].message  # type: ignore[union-attr]
    # Nothing given back (a rejection, or no stock held): one QA manager's signature, but never only the
    # person who acknowledged.
    assert check_signatures(CLOSE, [marta]) is None
    assert _verdict(check_signatures(CLOSE, [quentin])) == ("permission", "signatures")
    alone = check_signatures(CLOSE, [marta], acknowledged_by="marta")
    assert isinstance(alone, Awaiting) and "only approver" in alone.message
    assert check_signatures(CLOSE, [marta, quentin], acknowledged_by="marta") is None
    assert check_signatures(CLOSE, [quentin, marta], acknowledged_by="marta") is None


def test_whatever_gives_quarantined_stock_back_takes_two_people() -> None:
    """Closing as no impact and cancelling give the stock back as a release does: two signatures too
    (before, one QA manager closing as "no impact" released what the case had quarantined)."""
    assert [d for d in Disposition if gives_stock_back(S.CLOSED, d)] == [
        Disposition.RELEASED, Disposition.NO_IMPACT
    ]  # fmt: skip
    assert gives_stock_back(S.CANCELLED, None) and not gives_stock_back(S.CLOSED, None)
    marta, quentin = _signer("marta", MANAGER, "cancelled"), _signer("quentin", QA, "cancelled")
    half = check_signatures(CANCEL, [marta], releases_stock=True)
    assert isinstance(half, Awaiting) and "releasing stock needs a second" in half.message
    assert check_signatures(CANCEL, [marta, quentin], releases_stock=True) is None


def test_a_case_type_configured_for_more_signatures_takes_more_people_never_fewer() -> None:
    marta, quentin, quinn = _signer("marta", MANAGER), _signer("quentin", QA), _signer("quinn", QA)
    two = check_signatures(CLOSE, [marta], least=2)
    assert isinstance(two, Awaiting) and "signed by 2 people (1 so far)" in two.message
    assert check_signatures(CLOSE, [marta, quentin], least=2) is None
    assert isinstance(check_signatures(CLOSE, [marta, quentin], least=3), Awaiting)
    assert check_signatures(CLOSE, [quentin, marta, quinn], least=3) is None
    assert _verdict(check_signatures(CLOSE, [marta, _signer("dora", DOCK)], least=2)) == (
        "permission", "signatures"
    )  # fmt: skip
    # One is the floor's count when stock goes back: configuration never lowers it.
    assert isinstance(check_signatures(CLOSE, [marta], releases_stock=True, least=1), Awaiting)


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
    st.lists(st.sampled_from(sorted(ROLES)), min_size=1, max_size=3, unique=True),
    st.booleans(),
    st.booleans(),
)
def test_whom_signatures_complete_never_depends_on_their_order(
    roles: list[str], gives_back: bool, first_acknowledged: bool
) -> None:
    """Signatures arrive one at a time from different screens: any order of the same people gets the
    same verdict, and a complete set always holds an approver with qa.review, and for a release a
    second person with qa.decide."""
    signers = [_signer(role, ROLES[role]) for role in roles]
    ack = roles[0] if first_acknowledged else None
    verdicts = {
        _verdict(check_signatures(CLOSE, list(order), releases_stock=gives_back, acknowledged_by=ack))
        for order in itertools.permutations(signers)
    }
    assert len(verdicts) == 1
    if verdicts == {None}:
        assert any("qa.review" in s.permissions for s in signers)
        if gives_back or ack is not None:
            assert len(signers) >= 2 and sum("qa.decide" in s.permissions for s in signers) >= 2
        assert not any(s.permissions == ROLES["admin"] for s in signers)


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
