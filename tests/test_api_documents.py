"""The documents API on both dialects: a dock operator makes, edits and moves a document through its
life; a viewer reads but is refused every write (403); bad values are 422s naming the field's path, a
missing document 404, a stale version 409; and no body, however odd, is ever a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.models import AuditEntry
from tests.rig.documents import note, sscc, stock_the_dock
from tests.rig.people import PASSWORD, bearer, person

ONE = "/documents/{}"


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    stock_the_dock(engine)
    headers = {
        role: bearer(person(engine, role.replace("_", "-"), (role,))[1])
        for role in ("viewer", "dock_operator", "qa_manager", "admin")
    }
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, headers


def body(**changes: Any) -> dict[str, Any]:
    return {**note(), "reason": "ASN received", **changes}


def test_a_dock_operator_works_a_receiving_note(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    made = client.post("/documents", json=body(), headers=h["dock_operator"])
    assert made.status_code == 201, made.text
    doc = made.json()
    assert doc["state"] == "draft" and doc["changed_by"] == "Dock-Operator Tester"
    url = ONE.format(doc["id"])
    lines = [{"product": "VX10", "lot": "L2", "quantity": 10, "ssccs": [sscc(2)]}]
    edited = client.put(
        url, json={"lines": lines, "reason": "ASN v2", "if_version": 1}, headers=h["dock_operator"]
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2, edited.text
    stale = client.put(url, json={"lines": lines, "reason": "x", "if_version": 1}, headers=h["dock_operator"])
    assert stale.status_code == 409 and "has version 2, not 1" in stale.json()["detail"]
    released = client.post(
        url + "/release", json={"reason": "truck at door 1", "door": "D1"}, headers=h["qa_manager"]
    )
    assert released.status_code == 200 and released.json()["door"] == "D1", released.text
    started = client.post(url + "/start", json={"reason": "first case seen"}, headers=h["dock_operator"])
    assert started.status_code == 200, started.text
    early = client.post(url + "/complete", json={"reason": "all seen"}, headers=h["dock_operator"])
    said = f"discrepancies: document {doc['id']} has 1 open discrepancies: missing (line 1): line 1 (VX10 "
    assert early.status_code == 409 and early.json()["detail"].startswith(said), early.text
    rec = client.get(url + "/reconciliation", headers=h["viewer"]).json()
    [gap] = rec["discrepancies"]
    assert (rec["open"], gap["kind"], gap["blocking"], gap["accepted"]) == (1, "missing", True, None)
    accept = {"key": gap["key"], "reason": "pallet 2 follows on the next truck (supplier mail 12/6)",
              "signature": {"login": "qa-manager", "password": PASSWORD}}  # fmt: skip
    for who in ("dock_operator", "viewer", "admin"):  # deciding is QA's
        assert client.post(url + "/discrepancies/accept", json=accept, headers=h[who]).status_code == 403
    stale = client.post(url + "/discrepancies/accept", json={**accept, "key": "missing:1:0"},
                        headers=h["qa_manager"])  # fmt: skip
    assert stale.status_code == 422 and stale.json()["detail"][0]["loc"] == ["body", "key"], stale.text
    accepted = client.post(url + "/discrepancies/accept", json=accept, headers=h["qa_manager"])
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["accepted_by"] == "Qa-Manager Tester" and accepted.json()["kind"] == "missing"
    twice = client.post(url + "/discrepancies/accept", json=accept, headers=h["qa_manager"])
    assert twice.status_code == 409 and "was accepted by Qa-Manager Tester" in twice.json()["detail"]
    rec = client.get(url + "/reconciliation", headers=h["viewer"]).json()
    assert rec["open"] == 0 and rec["discrepancies"][0]["blocking"] is False
    assert rec["discrepancies"][0]["accepted"]["reason"] == accept["reason"]
    for step, reason in (("complete", "all seen"), ("close", "filed")):
        reply = client.post(f"{url}/{step}", json={"reason": reason}, headers=h["dock_operator"])
        assert reply.status_code == 200, (step, reply.text)
    assert reply.json()["state"] == "closed" and reply.json()["closed_at"] is not None
    again = client.post(url + "/draft", json={"reason": "x"}, headers=h["dock_operator"])
    assert again.status_code == 422
    assert again.json()["detail"][0] == {
        "type": "value_error",
        "loc": ["body", "state"],
        "msg": "a closed document cannot become draft (it may go: nowhere: it is final)",
    }
    history = client.get(url + "/history", headers=h["viewer"]).json()
    assert [v["state"] for v in history] == [
        "draft",
        "draft",
        "released",
        "in_progress",
        "completed",
        "closed",
    ]
    assert [v["reason"] for v in history][-4:] == ["truck at door 1", "first case seen", "all seen", "filed"]
    listed = client.get(
        "/documents", params={"state": "closed", "kind": "receiving"}, headers=h["viewer"]
    ).json()
    assert [d["id"] for d in listed] == [doc["id"]] and listed[0]["line_count"] == 1
    assert client.get(url, headers=h["viewer"]).json()["lines"][0]["ssccs"] == [sscc(2)]


def test_a_viewer_and_the_admin_may_read_but_not_write(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, h = api
    doc = client.post("/documents", json=body(), headers=h["dock_operator"]).json()
    url = ONE.format(doc["id"])
    for who in ("viewer", "admin"):
        assert client.get(url, headers=h[who]).status_code == 200
        writes = [
            ("POST", "/documents", body(reference="X")),
            ("PUT", url, {"reason": "x"}),
            ("POST", url + "/release", {"reason": "x", "door": "D1"}),
            ("POST", url + "/start", {"reason": "x"}),
            ("POST", url + "/complete", {"reason": "x"}),
            ("POST", url + "/close", {"reason": "x"}),
            ("POST", url + "/draft", {"reason": "x"}),
        ]
        for method, path, payload in writes:
            assert client.request(method, path, json=payload, headers=h[who]).status_code == 403, (who, path)
        imported = client.post(
            "/documents/import",
            params={"reason": "x"},
            content=b"[]",
            headers={**h[who], "content-type": "application/json"},
        )
        assert imported.status_code == 403
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        actions = [
            r.action
            for r in conn.execute(select(AuditEntry.action).where(AuditEntry.entity_type == "document"))
        ]
    assert actions == ["document.create"]


@pytest.mark.parametrize(
    ("changes", "where", "msg"),
    [
        (
            {"lines": [{"product": "VX10", "lot": "L7", "quantity": 1}]},
            "lines[0].lot",
            "no lot 'L7' of product 'VX10' in the catalog",
        ),
        (
            {"lines": [{"product": "VX10", "quantity": 1, "ssccs": ["040063810000000018"]}]},
            "lines[0].ssccs[0]",
            "the check digit of SSCC 040063810000000018 is wrong",
        ),
        ({"kind": "return"}, "kind", "'return' is not a kind of document (receiving, dispatch, transfer)"),
        ({"reason": ""}, "reason", "must say why the change is made"),
    ],
)
def test_bad_values_are_422_naming_the_field(
    api: tuple[TestClient, dict[str, dict[str, str]]], changes: dict[str, Any], where: str, msg: str
) -> None:
    client, h = api
    reply = client.post("/documents", json=body(**changes), headers=h["dock_operator"])
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"] == [{"type": "value_error", "loc": ["body", where], "msg": msg}]


def test_missing_and_wrong_moves(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, h = api
    for method, path, payload in (
        ("GET", "/documents/doc-none", None),
        ("GET", "/documents/doc-none/history", None),
        ("PUT", "/documents/doc-none", {"reason": "x"}),
        ("POST", "/documents/doc-none/start", {"reason": "x"}),
    ):
        reply = client.request(method, path, json=payload, headers=h["dock_operator"])
        assert reply.status_code == 404 and reply.json() == {"detail": "document_id: no document 'doc-none'"}
    doc = client.post("/documents", json=body(), headers=h["dock_operator"]).json()
    url = ONE.format(doc["id"])
    no_door = client.post(url + "/release", json={"reason": "x"}, headers=h["dock_operator"])
    assert no_door.status_code == 422 and no_door.json()["detail"][0]["loc"] == ["body", "door"]
    cold = client.post(url + "/release", json={"reason": "x", "door": "CR1"}, headers=h["dock_operator"])
    assert cold.json()["detail"][0]["msg"] == "'CR1' at site 'site1' is a cold_room, not a dock door"
    stale = client.post(
        url + "/release", json={"reason": "x", "door": "D1", "if_version": 3}, headers=h["dock_operator"]
    )
    assert stale.status_code == 409
    unknown = client.post(url + "/start", json={"reason": "x", "door": "D1"}, headers=h["dock_operator"])
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "door"
    assert client.get("/documents", params={"state": "lost"}, headers=h["viewer"]).status_code == 422
    again = client.post("/documents", json=body(), headers=h["dock_operator"])
    assert again.status_code == 422 and again.json()["detail"][0]["loc"] == ["body", "reference"]


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
LINE = st.fixed_dictionaries(
    {"product": st.sampled_from(["VX10", "PLAIN", "NOPE", ""]) | st.text(max_size=5) | JSONISH},
    optional={
        "lot": st.sampled_from(["L1", "L2", "G1", None]) | JSONISH,
        "quantity": JSONISH | st.integers(),
        "unit": st.sampled_from(["case", "each", "crate"]) | JSONISH,
        "number": JSONISH,
        "ssccs": st.lists(st.sampled_from([sscc(1), sscc(2), "1" * 18]) | JSONISH, max_size=3) | JSONISH,
        "serials": st.lists(st.text(max_size=6), max_size=3) | JSONISH,
    },
)
BODY = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["receiving", "dispatch", "transfer"]) | JSONISH,
        "site": st.sampled_from(["site1", "site 1"]) | JSONISH,
        "reference": st.text(max_size=10) | JSONISH,
        "reason": st.text(max_size=10) | JSONISH,
    },
    optional={"party": JSONISH, "lines": st.lists(LINE | JSONISH, max_size=3) | JSONISH, "extra": JSONISH},
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=BODY | JSONISH)
def test_no_body_is_ever_a_500(api: tuple[TestClient, dict[str, dict[str, str]]], payload: Any) -> None:
    client, h = api
    reply = client.post("/documents", json=payload, headers=h["dock_operator"])
    assert reply.status_code in (201, 422), (payload, reply.status_code, reply.text)
