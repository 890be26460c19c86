"""The dock's decisions on both dialects: an item left unbound at the door is assigned by hand to the
note (it binds there at once, and again on every re-run), a discrepancy is accepted by QA with a reason
(an acceptance covers the discrepancy as it stood, not a worse one later), and completion waits until
none is open.  Every decision is audited, and its table refuses UPDATE and DELETE."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.catalog.versions import Conflict
from coldgate.cloud.db.models import AuditEntry, BindingRow
from coldgate.cloud.documents import dock_decisions
from coldgate.cloud.documents.binding_store import rebind
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.identity.users import NotFound, UserInputError
from tests.rig.dock_pass import pass_at_the_door
from tests.rig.documents import DOCK, QA, QA_SIGNS, SITE
from tests.rig.ingest import STREAM

EARLY = {"gateway": "gw01", "stream": STREAM, "seq": 1}  # the case that passed before the release


def _binding(engine: Engine, seq: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(BindingRow.__table__).where(BindingRow.seq == seq)).one()


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def _kinds(engine: Engine, document: str) -> list[tuple[str, bool]]:
    """(kind, blocking) of each of the document's discrepancies now."""
    with engine.connect() as conn:
        judged = dock_decisions.judged_discrepancies(conn, document, _today())
    return sorted((j.discrepancy.kind, j.blocking) for j in judged)


def test_an_unbound_case_assigned_by_hand_binds_to_the_note_and_stays_bound_on_a_rerun(
    engine: Engine,
) -> None:
    dock = pass_at_the_door(engine)
    before = _binding(engine, 1)
    assert (before.document, before.how) == (None, "unbound")
    with engine.begin() as conn:
        done = dock_decisions.assign_item(
            conn,
            SITE,
            "D1",
            {**EARLY, "document": dock.document},
            reason="came off the same truck early",
            by=DOCK,
            now=dock.now,
        )
    assert (done["document"], done["line"], done["how"]) == (dock.document, 1, "assigned")
    assert done["binding"] == "receiving ASN-7: line 1, assigned by Dora Dock: came off the same truck early"
    row = _binding(engine, 1)
    assert (row.document, row.line, row.how, row.serial) == (dock.document, 1, "assigned", "1010")
    with engine.begin() as conn:
        assert rebind(conn, dock.now) == 5
    assert (_binding(engine, 1).document, _binding(engine, 1).how) == (dock.document, "assigned")
    # On the note: serial 1010 is not one it lists, so it is an unexpected instance, to decide on.
    assert ("unexpected_instance", True) in _kinds(engine, dock.document)
    with engine.connect() as conn:
        entry = conn.execute(
            select(AuditEntry.__table__).where(AuditEntry.action == "document.assign_item")
        ).one()
    assert (entry.entity_id, entry.actor_id, entry.reason) == (
        dock.document,
        "u-dora",
        "came off the same truck early",
    )
    assert json.loads(entry.before)["unbound"].startswith("no open document at door D1 at ")


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            {**EARLY, "seq": 99},
            NotFound,
            f"item: no item gw01/{STREAM}/99 bound or left unbound at door 'D1'",
        ),
        ({**EARLY, "seq": 2}, Conflict, f"item: item gw01/{STREAM}/2 is bound to document "),
        ({**EARLY, "seq": -1}, UserInputError, "seq: -1 is not an item's sequence number"),
        ({**EARLY, "seq": "1"}, UserInputError, "seq: '1' is not an item's sequence number"),
        ({**EARLY, "line": 7}, UserInputError, "line: 7 is no line of document "),
        ({**EARLY, "document": "doc-none"}, NotFound, "document_id: no document 'doc-none'"),
    ],
)
def test_a_refused_assignment_says_what_and_changes_nothing(
    engine: Engine, fields: dict[str, object], error: type[Exception], message: str
) -> None:
    dock = pass_at_the_door(engine)
    with pytest.raises(error) as caught, engine.begin() as conn:
        dock_decisions.assign_item(
            conn, SITE, "D1", {"document": dock.document, **fields}, reason="x", by=DOCK, now=dock.now
        )
    assert str(caught.value).startswith(message), str(caught.value)
    assert (_binding(engine, 1).document, _binding(engine, 1).how) == (None, "unbound")


def test_completion_waits_until_qa_has_accepted_what_is_left_open(engine: Engine) -> None:
    dock = pass_at_the_door(engine, missing=1)
    today = _today()
    assert _kinds(engine, dock.document) == [("missing", True), ("unexpected", True)]
    with engine.connect() as conn:
        judged = {
            j.discrepancy.kind: j for j in dock_decisions.judged_discrepancies(conn, dock.document, today)
        }
    missing = judged["missing"]
    assert missing.key.startswith("missing:1:") and missing.discrepancy.units == ("serial:VX10/1002",)
    with pytest.raises(Conflict) as caught, engine.begin() as conn:
        move_document(conn, dock.document, "in_progress", reason="worked", by=DOCK, now=dock.now)
        move_document(conn, dock.document, "completed", reason="done", by=DOCK, now=dock.now)
    assert str(caught.value).startswith(
        f"discrepancies: document {dock.document} has 2 open discrepancies: unexpected (no line): "
    )
    with engine.begin() as conn:
        accepted = dock_decisions.accept_discrepancy(
            conn,
            dock.document,
            missing.key,
            reason="case 1002 broken in transit, credit note asked",
            by=QA,
            signer=QA_SIGNS,
            now=dock.now,
            today=today,
        )
    assert (accepted["kind"], accepted["accepted_by"]) == ("missing", "Marta QA")
    assert accepted["summary"].startswith("missing (line 1): ")
    for key, error, said in (
        (missing.key, Conflict, "key: discrepancy 'missing:1:"),
        (
            "missing:1:ffff",
            UserInputError,
            f"key: document {dock.document} has no discrepancy 'missing:1:ffff'",
        ),
    ):
        with pytest.raises(error) as refused, engine.begin() as conn:
            dock_decisions.accept_discrepancy(
                conn, dock.document, key, reason="x", by=QA, signer=QA_SIGNS, now=dock.now, today=today
            )
        assert str(refused.value).startswith(said), str(refused.value)
    assert _kinds(engine, dock.document) == [("missing", False), ("unexpected", True)]
    with engine.begin() as conn:
        dock_decisions.accept_discrepancy(
            conn,
            dock.document,
            judged["unexpected"].key,
            reason="saline kept aside",
            by=QA,
            signer=QA_SIGNS,
            now=dock.now,
            today=today,
        )
        move_document(conn, dock.document, "in_progress", reason="worked", by=DOCK, now=dock.now)
        done = move_document(conn, dock.document, "completed", reason="received", by=DOCK, now=dock.now)
    assert done["state"] == "completed"
    with (
        pytest.raises(UserInputError, match="accepted while it is worked at the dock"),
        engine.begin() as conn,
    ):
        dock_decisions.accept_discrepancy(
            conn, dock.document, missing.key, reason="x", by=QA, signer=QA_SIGNS, now=dock.now, today=today
        )
    with engine.connect() as conn:
        actions = conn.execute(
            select(AuditEntry.action, AuditEntry.actor_id).where(
                AuditEntry.action == "document.accept_discrepancy"
            )
        ).all()
    assert [tuple(a) for a in actions] == [("document.accept_discrepancy", "u-marta")] * 2


def test_an_acceptance_does_not_cover_a_worse_discrepancy_found_later(engine: Engine) -> None:
    """Accepting "one case missing" is not accepting two: the key names the units."""
    dock = pass_at_the_door(engine, missing=1, foreign=False)
    today = _today()
    with engine.begin() as conn:
        dock_decisions.accept_discrepancy(
            conn,
            dock.document,
            dock_decisions.judged_discrepancies(conn, dock.document, today)[0].key,
            reason="short",
            by=QA,
            signer=QA_SIGNS,
            now=dock.now,
            today=today,
        )
        assert [j.blocking for j in dock_decisions.judged_discrepancies(conn, dock.document, today)] == [
            False
        ]
        conn.execute(text("DELETE FROM bindings WHERE seq = 3"))  # derived: binding forgets case 1001 ...
        assert [j.blocking for j in dock_decisions.judged_discrepancies(conn, dock.document, today)] == [True]


def test_the_decisions_tables_refuse_update_and_delete(engine: Engine) -> None:
    dock = pass_at_the_door(engine, missing=1)
    today = _today()
    with engine.begin() as conn:
        dock_decisions.assign_item(
            conn, SITE, "D1", {**EARLY, "document": dock.document}, reason="x", by=DOCK, now=dock.now
        )
        key = dock_decisions.judged_discrepancies(conn, dock.document, today)[0].key
        dock_decisions.accept_discrepancy(
            conn, dock.document, key, reason="x", by=QA, signer=QA_SIGNS, now=dock.now, today=today
        )
    for statement in (
        "UPDATE discrepancy_acceptances SET reason = 'y'",
        "DELETE FROM discrepancy_acceptances",
        "UPDATE item_assignments SET document = 'other'",
        "DELETE FROM item_assignments",
    ):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_the_dock_assigns_through_the_api_and_odd_bodies_are_422s(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from coldgate.cloud.api import ApiTokens, create_app
    from tests.rig.people import bearer, person

    dock = pass_at_the_door(engine)
    operator = bearer(person(engine, "dock-operator", ("dock_operator",))[1])
    url = f"/doors/{SITE}/D1/unbound/assign"
    body = {**EARLY, "document": dock.document, "line": 1, "reason": "same truck"}
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        for odd in (
            {},
            {**body, "seq": None},
            {**body, "line": "one"},
            {**body, "extra": 1},
            [],
            {**body, "gateway": 7},
        ):
            reply = client.post(url, json=odd, headers=operator)
            assert reply.status_code == 422, (odd, reply.text)
        done = client.post(url, json=body, headers=operator)
        assert done.status_code == 200, done.text
        assert done.json() == {
            "item": f"gw01/{STREAM}/1",
            "document": dock.document,
            "line": 1,
            "how": "assigned",
            "binding": "receiving ASN-7: line 1, assigned by Dock-Operator Tester: same truck",
        }
        again = client.post(url, json=body, headers=operator)
        assert again.status_code == 409 and "only an unbound item is assigned" in again.json()["detail"]
        elsewhere = client.post(f"/doors/{SITE}/D9/unbound/assign", json={**body, "seq": 2}, headers=operator)
        assert elsewhere.status_code == 404
        unbound = client.get(f"/doors/{SITE}/D1/unbound", headers=operator).json()["items"]
        assert unbound == []
