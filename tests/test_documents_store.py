"""The documents store on both dialects: drafts made and edited as versions, states moved only along
the model's transitions (each refusal naming both states), the door a release needs, every refusal of
a line naming its field's path, every change audited in its transaction, the tables append-only."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.catalog.versions import Conflict
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.documents import documents as store
from coldgate.cloud.documents.model import Document, DocumentKind, DocumentState, Line
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.identity.users import NotFound, UserInputError
from tests.rig.documents import DOCK, NOW, SITE, accept_open, note, sscc, stock_the_dock

LATER = NOW + datetime.timedelta(minutes=5)


@pytest.fixture
def dock(engine: Engine) -> Engine:
    stock_the_dock(engine)
    return engine


def make(engine: Engine, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    with engine.begin() as conn:
        return store.create_document(conn, fields or note(), reason="ASN received", by=DOCK, now=NOW)


def move(engine: Engine, doc_id: str, state: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("reason", "at the dock")
    with engine.begin() as conn:
        return move_document(conn, doc_id, state, by=DOCK, now=LATER, **kwargs)


def accept_and_move(engine: Engine, doc_id: str, state: str, **kwargs: Any) -> dict[str, Any]:
    """``move``, QA first accepting the open discrepancies a completion waits for."""
    if state == "completed":
        with engine.begin() as conn:
            accept_open(conn, doc_id, LATER)
    return move(engine, doc_id, state, **kwargs)


def refused(engine: Engine, call: Any, kind: type[Exception] = UserInputError) -> str:
    with pytest.raises(kind) as caught, engine.begin() as conn:
        call(conn)
    return str(caught.value)


def audit_actions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(AuditEntry.action).where(AuditEntry.entity_type.like("document%")))
        return [row.action for row in rows]


def test_a_draft_is_made_with_its_lines_and_audited(dock: Engine) -> None:
    made = make(dock)
    assert made["id"].startswith("doc-") and made["version"] == 1 and made["state"] == "draft"
    assert made["changed_by"] == "Dora Dock" and made["reason"] == "ASN received"
    assert [(x["number"], x["product"], x["lot"], x["quantity"], x["unit"]) for x in made["lines"]] == [
        (1, "VX10", "L1", 20, "case"),
        (2, "PLAIN", None, 5, "each"),
    ]
    assert made["lines"][0]["ssccs"] == [sscc(1)] and made["lines"][0]["serials"] == ["000100", "000101"]
    with dock.connect() as conn:
        assert store.document(conn, made["id"]) == made
        entry = conn.execute(select(AuditEntry).where(AuditEntry.action == "document.create")).one()
    assert entry.entity_id == made["id"] and entry.reason == "ASN received" and entry.actor_id == "u-dora"


def test_the_whole_life_of_a_receiving_note(dock: Engine) -> None:
    doc = make(dock)["id"]
    released = move(dock, doc, "released", door="D1")
    assert (released["state"], released["door"], released["opened_at"]) == (
        "released",
        "D1",
        int(LATER.timestamp() * 1000),
    )
    with dock.connect() as conn:
        [found] = store.open_at_door(conn, SITE, "D1")
        assert store.open_at_door(conn, SITE, "D2") == [] and store.open_at_door(conn, "site2", "D1") == []
    assert isinstance(found, Document) and found.kind is DocumentKind.RECEIVING
    assert found.state is DocumentState.RELEASED and found.door == "D1" and found.party == "Acme Pharma GmbH"
    assert found.lines[0] == Line(1, "VX10", 20, "case", "L1", (sscc(1),), ("000100", "000101"))
    back = move(dock, doc, "draft")
    assert (back["door"], back["opened_at"]) == (None, None)
    move(dock, doc, "released", door="D1")
    assert move(dock, doc, "in_progress")["door"] == "D1"
    with dock.connect() as conn:
        assert [d.id for d in store.open_at_door(conn, SITE, "D1")] == [doc]
    early = {"reason": "x", "by": DOCK, "now": LATER}
    refusal = refused(dock, lambda c: move_document(c, doc, "completed", **early), Conflict)
    assert refusal.startswith(f"discrepancies: document {doc} has 2 open discrepancies: missing (line 1): ")
    assert "accepted with a reason by someone allowed to decide (qa.decide)" in refusal
    with dock.begin() as conn:
        assert len(accept_open(conn, doc, LATER)) == 2
    completed = move(dock, doc, "completed", reason="all 20 cases seen")
    assert completed["reason"] == "all 20 cases seen"
    closed = move(dock, doc, "closed")
    assert closed["closed_at"] == int(LATER.timestamp() * 1000) and closed["version"] == 7
    with dock.connect() as conn:
        assert store.open_at_door(conn, SITE, "D1") == []
        history = store.document_history(conn, doc)
    assert [v["state"] for v in history] == [
        "draft",
        "released",
        "draft",
        "released",
        "in_progress",
        "completed",
        "closed",
    ]
    assert all(v["lines"] == history[0]["lines"] for v in history)
    assert audit_actions(dock) == [
        "document.create",
        "document.release",
        "document.draft",
        "document.release",
        "document.start",
        "document.accept_discrepancy",
        "document.accept_discrepancy",
        "document.complete",
        "document.close",
    ]


@pytest.mark.parametrize(
    ("path", "target", "message"),
    [
        ((), "in_progress", "state: a draft document cannot become in_progress (it may go: released)"),
        ((), "completed", "state: a draft document cannot become completed (it may go: released)"),
        (
            ("released",),
            "closed",
            "state: a released document cannot become closed (it may go: draft, in_progress)",
        ),
        (
            ("released", "in_progress"),
            "draft",
            "state: a in_progress document cannot become draft (it may go: completed)",
        ),
        (
            ("released", "in_progress", "completed", "closed"),
            "draft",
            "state: a closed document cannot become draft (it may go: nowhere: it is final)",
        ),
        ((), "shipped", "state: 'shipped' is no state (draft, released, in_progress, completed, closed)"),
    ],
)
def test_a_refused_move_names_both_states(
    dock: Engine, path: tuple[str, ...], target: str, message: str
) -> None:
    doc = make(dock)["id"]
    for state in path:
        accept_and_move(dock, doc, state, door="D1" if state == "released" else None)
    kwargs = {"door": None, "reason": "x"}
    assert (
        refused(dock, lambda c: move_document(c, doc, target, by=DOCK, now=LATER, **kwargs)) == message
    )


def test_a_release_needs_a_dock_door_of_the_site(dock: Engine) -> None:
    doc = make(dock)["id"]

    def release(door: Any) -> str:
        return refused(
            dock, lambda c: move_document(c, doc, "released", door=door, reason="x", by=DOCK, now=LATER)
        )

    assert release(None) == "door: releasing names the dock door the document is worked at"
    assert release("D9") == "door: no location 'D9' at site 'site1'"
    assert release("CR1") == "door: 'CR1' at site 'site1' is a cold_room, not a dock door"
    start = refused(
        dock, lambda c: move_document(c, doc, "draft", door="D1", reason="x", by=DOCK, now=LATER)
    )
    assert start == "state: a draft document cannot become draft (it may go: released)"
    empty = make(dock, note("ASN-EMPTY", lines=[]))["id"]
    message = refused(
        dock, lambda c: move_document(c, empty, "released", door="D1", reason="x", by=DOCK, now=LATER)
    )
    assert message == "lines: a document without lines has nothing to release"
    released = move(dock, doc, "released", door="D1")
    wrong = refused(
        dock, lambda c: move_document(c, doc, "in_progress", door="D1", reason="x", by=DOCK, now=LATER)
    )
    assert wrong == "door: only a release names the dock door" and released["version"] == 2
    assert audit_actions(dock) == ["document.create", "document.create", "document.release"]


def test_every_write_needs_a_reason(dock: Engine) -> None:
    assert refused(dock, lambda c: store.create_document(c, note(), reason=" ", by=DOCK, now=NOW)) == (
        "reason: must say why the change is made"
    )
    doc = make(dock)["id"]
    assert (
        refused(
            dock, lambda c: move_document(c, doc, "released", door="D1", reason="", by=DOCK, now=NOW)
        )
        == "reason: must say why the change is made"
    )


def test_a_draft_gets_new_versions_and_only_a_draft(dock: Engine) -> None:
    doc = make(dock)["id"]
    lines = [{"product": "VX10", "lot": "L2", "quantity": 30}]
    with dock.begin() as conn:
        changed = store.put_document(
            conn,
            doc,
            {"party": "Acme", "lines": lines},
            reason="ASN corrected",
            if_version=1,
            by=DOCK,
            now=LATER,
        )
    assert changed["version"] == 2 and changed["party"] == "Acme" and len(changed["lines"]) == 1
    stale = refused(
        dock,
        lambda c: store.put_document(c, doc, {"lines": lines}, reason="x", if_version=1, by=DOCK, now=LATER),
        Conflict,
    )
    assert stale == (
        "if_version: document " + repr(doc) + " has version 2, not 1: read it again and redo the change"
    )
    same = refused(
        dock, lambda c: store.put_document(c, doc, {"reference": "ASN-2"}, reason="x", by=DOCK, now=LATER)
    )
    assert same == "reference: is 'ASN-1001' for this document: a different one is a new document"
    move(dock, doc, "released", door="D1")
    locked = refused(
        dock, lambda c: store.put_document(c, doc, {"lines": lines}, reason="x", by=DOCK, now=LATER)
    )
    assert locked == (
        f"state: document {doc} is released: only a draft is edited (send it back to draft first, if "
        "it is released)"
    )
    stale_move = refused(
        dock,
        lambda c: move_document(c, doc, "in_progress", reason="x", if_version=2, by=DOCK, now=LATER),
        Conflict,
    )
    assert "has version 3, not 2" in stale_move
    assert audit_actions(dock) == ["document.create", "document.update", "document.release"]
    with dock.connect() as conn:
        entry = conn.execute(select(AuditEntry).where(AuditEntry.action == "document.update")).one()
    assert '"lot":"L1"' in entry.before and '"lot":"L2"' in entry.after and entry.reason == "ASN corrected"


def test_a_change_of_the_party_alone_keeps_the_lines(dock: Engine) -> None:
    made = make(dock)
    with dock.begin() as conn:
        changed = store.put_document(
            conn, made["id"], {"party": None}, reason="supplier unknown", by=DOCK, now=LATER
        )
        kept = store.put_document(conn, made["id"], {}, reason="checked", by=DOCK, now=LATER)
    assert changed["party"] is None and changed["lines"] == made["lines"] and changed["version"] == 2
    assert kept["party"] is None and kept["lines"] == made["lines"] and kept["version"] == 3


def test_missing_documents_are_not_found(dock: Engine) -> None:
    for call in (
        lambda c: store.document(c, "doc-none"),
        lambda c: store.document_history(c, "doc-none"),
        lambda c: move_document(c, "doc-none", "released", door="D1", reason="x", by=DOCK, now=NOW),
        lambda c: store.put_document(c, "doc-none", {}, reason="x", by=DOCK, now=NOW),
    ):
        assert refused(dock, call, NotFound) == "document_id: no document 'doc-none'"


def test_a_reference_is_unique_per_site_and_kind(dock: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make(dock)["id"]
    again = refused(dock, lambda c: store.create_document(c, note(), reason="x", by=DOCK, now=NOW))
    assert again == f"reference: receiving 'ASN-1001' of site 'site1' is already document {first}"
    make(dock, note(kind="dispatch", party="Clinic"))  # another kind, the same number
    make(dock, note(site="site2"))
    # Two writers racing past the check: the index on first versions refuses the second.
    monkeypatch.setattr(store, "reference_holder", lambda *_: None)
    raced = refused(dock, lambda c: store.create_document(c, note(), reason="x", by=DOCK, now=NOW), Conflict)
    assert raced == "reference: receiving 'ASN-1001' of site 'site1' was made meanwhile"
    with dock.connect() as conn:
        assert len(store.documents(conn, kind="receiving")) == 2


BAD_LINES: list[tuple[Any, str]] = [
    ("not a list", "lines: must be a list"),
    (["x"], "lines[0]: must be an object with product, quantity, ..."),
    (
        [{"product": "VX10", "quantity": 1, "colour": "red"}],
        "lines[0].colour: is not a line field (fields: number, product, lot, quantity, unit, ssccs, serials)",
    ),
    ([{"product": "NOPE", "quantity": 1}], "lines[0].product: no product 'NOPE' in the catalog"),
    ([{"product": ["VX10"], "quantity": 1}], "lines[0].product: must be text"),
    (
        [{"product": "VX10", "quantity": 1}, {"product": "VX10", "lot": "L9", "quantity": 1}],
        "lines[1].lot: no lot 'L9' of product 'VX10' in the catalog",
    ),
    (
        [{"product": "PLAIN", "lot": "L1", "quantity": 1}],
        "lines[0].lot: no lot 'L1' of product 'PLAIN' in the catalog",
    ),
    ([{"product": "VX10", "quantity": 0}], "lines[0].quantity: 0 is not a whole number from 1 to 10000000"),
    (
        [{"product": "VX10", "quantity": 2.5}],
        "lines[0].quantity: 2.5 is not a whole number from 1 to 10000000",
    ),
    (
        [{"product": "VX10", "quantity": True}],
        "lines[0].quantity: True is not a whole number from 1 to 10000000",
    ),
    (
        [{"product": "VX10", "quantity": "3"}],
        "lines[0].quantity: '3' is not a whole number from 1 to 10000000",
    ),
    (
        [{"product": "VX10", "quantity": 1, "unit": "crate"}],
        "lines[0].unit: 'crate' is not a unit (each, pack, case, pallet)",
    ),
    (
        [{"product": "VX10", "quantity": 1, "ssccs": ["1234"]}],
        "lines[0].ssccs[0]: '1234' is not an SSCC (18 digits)",
    ),
    (
        [{"product": "VX10", "quantity": 1, "ssccs": [sscc(1)[:-1] + "9"]}],
        f"lines[0].ssccs[0]: the check digit of SSCC {sscc(1)[:-1]}9 is wrong",
    ),
    (
        [{"product": "VX10", "quantity": 1, "ssccs": [sscc(1), sscc(2), sscc(1)]}],
        f"lines[0].ssccs[2]: SSCC {sscc(1)} is also lines[0].ssccs[0]",
    ),
    (
        [{"product": "VX10", "quantity": 1, "serials": ["A1", "A2", "A1"]}],
        "lines[0].serials[2]: serial 'A1' is also lines[0].serials[0]",
    ),
    (
        [
            {"product": "VX10", "quantity": 1, "serials": ["A1"]},
            {"product": "VX10", "quantity": 1, "serials": ["A1"]},
        ],
        "lines[1].serials[0]: serial 'A1' of 'VX10' is also on lines[0]",
    ),
    (
        [{"product": "VX10", "quantity": 1, "number": 2}, {"product": "PLAIN", "quantity": 1}],
        "lines[1].number: 2 is also lines[0]",
    ),
    (
        [{"product": "VX10", "quantity": 1, "number": 0}],
        "lines[0].number: 0 is not a whole number from 1 to 10000000",
    ),
    (
        [{"product": "VX10", "quantity": 1, "serials": [" A1"]}],
        "lines[0].serials[0]: ' A1' is not a serial (no spaces at its ends, not empty)",
    ),
]
BAD_HEADERS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "return"}, "kind: 'return' is not a kind of document (receiving, dispatch, transfer)"),
    ({"site": "site 1"}, "site: 'site 1' is not an id (1-64 of A-Z a-z 0-9 _ . -)"),
    ({"reference": "  "}, "reference: must name the sender's number (ship notice, order)"),
    ({"reference": "A\x00"}, "reference: must not contain control characters (NUL, newline, ...)"),
    ({"party": 7}, "party: must be text"),
    ({"colour": "red"}, "colour: is not a document field (fields: kind, site, reference, party, lines)"),
]


@pytest.mark.parametrize(("lines", "message"), BAD_LINES, ids=[m.split(":")[0] for _, m in BAD_LINES])
def test_every_bad_line_is_named_by_its_path(dock: Engine, lines: Any, message: str) -> None:
    assert (
        refused(dock, lambda c: store.create_document(c, note(lines=lines), reason="x", by=DOCK, now=NOW))
        == message
    )
    assert audit_actions(dock) == []


@pytest.mark.parametrize(("changes", "message"), BAD_HEADERS, ids=[m.split(":")[0] for _, m in BAD_HEADERS])
def test_every_bad_header_field_is_named(dock: Engine, changes: dict[str, Any], message: str) -> None:
    assert (
        refused(dock, lambda c: store.create_document(c, note(**changes), reason="x", by=DOCK, now=NOW))
        == message
    )


def test_the_list_filters(dock: Engine) -> None:
    a = make(dock)["id"]
    b = make(dock, note("SO-7", kind="dispatch", party="Clinic"))["id"]
    move(dock, a, "released", door="D1")
    with dock.connect() as conn:

        def ids(**filters: Any) -> list[str]:
            return sorted(d["id"] for d in store.documents(conn, **filters))

        assert ids() == sorted([a, b]) and ids(state="all") == sorted([a, b])
        assert ids(kind="dispatch") == [b] and ids(state="open") == [a] and ids(state="draft") == [b]
        assert ids(door="D1") == [a] and ids(site="site2") == [] and ids(site=SITE) == sorted([a, b])
        listed = store.documents(conn, kind="receiving")[0]
        assert listed["line_count"] == 2 and listed["lines"] == []
        for bad, message in (
            ({"kind": "x"}, "kind: 'x' is not a kind of document (receiving, dispatch, transfer)"),
            (
                {"state": "x"},
                "state: 'x' is no state (draft, released, in_progress, completed, closed, open, all)",
            ),
        ):
            with pytest.raises(UserInputError) as caught:
                store.documents(conn, **bad)
            assert str(caught.value) == message


def test_the_tables_refuse_update_and_delete(dock: Engine) -> None:
    make(dock)
    for statement in (
        "UPDATE document_versions SET state = 'closed'",
        "DELETE FROM document_versions",
        "UPDATE document_lines SET quantity = 1",
        "DELETE FROM document_lines",
    ):
        with pytest.raises(DatabaseError, match="append-only"), dock.begin() as conn:
            conn.execute(text(statement))
