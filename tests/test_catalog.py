"""Master data through the API, on both dialects: temperature classes, products and lots, versioned and
audited, refused precisely, each status move by whoever decides it, nothing ever edited in place."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import verify
from coldgate.cloud.db.models import AuditEntry
from tests.rig.people import bearer, person

COLD = {"low": 2, "high": 8, "pre_alarm_margin": 0.5, "alarm_delay_s": 900}
ASPIRIN = {
    "name": "Vaccine X 10 ml",
    "gtin": "4006381333931",
    "temperature_class": "2-8C",
    "serialised": True,
}


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def people(engine: Engine) -> dict[str, dict[str, str]]:
    return {
        role: bearer(person(engine, login, (role,))[1])
        for role, login in (("qa_manager", "marta"), ("qa", "quentin"), ("recall_coordinator", "rico"),
                            ("viewer", "vera"), ("admin", "ada"))
    }  # fmt: skip


def _audit(engine: Engine, prefix: str) -> list[Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry).where(AuditEntry.action.like(f"{prefix}%")).order_by(AuditEntry.seq)
        )
        return list(rows)


def _put_class(client: TestClient, who: dict[str, str], **changes: Any) -> Any:
    body = {"spec": COLD, "description": "Refrigerated", "reason": "SOP-12 storage conditions", **changes}
    return client.put("/catalog/temperature-classes/2-8C", json=body, headers=who)


def test_a_class_is_versioned_audited_and_checked_as_a_gateway_checks_it(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    assert _put_class(client, people["viewer"]).status_code == 403
    assert _put_class(client, people["admin"]).status_code == 403  # master data is QA's, not the admin's
    made = _put_class(client, people["qa_manager"])
    assert made.status_code == 200, made.text
    assert made.json()["version"] == 1 and made.json()["spec"]["hysteresis"] == 0.3  # the gateway's default
    changed = _put_class(client, people["qa_manager"], spec={**COLD, "alarm_delay_s": 600}, if_version=1)
    assert changed.json()["version"] == 2
    stale = _put_class(client, people["qa_manager"], spec={**COLD, "alarm_delay_s": 300}, if_version=1)
    assert stale.status_code == 409 and "has version 2, not 1" in stale.text
    history = client.get("/catalog/temperature-classes/2-8C/history", headers=people["viewer"]).json()
    assert [(h["version"], h["spec"]["alarm_delay_s"]) for h in history] == [(1, 900.0), (2, 600.0)]
    assert client.get("/catalog/temperature-classes", headers=people["viewer"]).json()[0]["version"] == 2
    entries = _audit(engine, "temperature_class.")
    assert [e.action for e in entries] == ["temperature_class.create", "temperature_class.update"]
    assert json.loads(entries[1].before)["spec"]["alarm_delay_s"] == 900.0
    assert entries[1].reason == "SOP-12 storage conditions"
    with engine.connect() as conn:
        assert verify(conn)[1] is None


@pytest.mark.parametrize(
    ("spec", "where", "says"),
    [
        ({"low": 8, "high": 2}, "spec.high", "a temperature above low = 8"),
        ({"low": 2}, "spec.high", "the key is missing"),
        ({"low": 2, "high": 8, "pre_alarm_margin": 4}, "spec.pre_alarm_margin", "a margin below 3"),
        ({"low": 2, "high": 8, "hysterisis": 1}, "spec.hysterisis", "unknown key"),
        ({"low": "cold", "high": 8}, "spec.low", 'got "cold"'),
        ({"low": 2, "high": 800}, "spec.high", "-100..100"),
    ],
)
def test_a_bad_class_is_refused_naming_its_key(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]], spec: dict[str, Any], where: str,
    says: str,
) -> None:  # fmt: skip
    refused = _put_class(client, people["qa_manager"], spec=spec)
    assert refused.status_code == 422
    [detail] = refused.json()["detail"]
    assert detail["loc"] == ["body", where] and says in detail["msg"]
    assert client.get("/catalog/temperature-classes", headers=people["viewer"]).json() == []
    assert _audit(engine, "temperature_class.") == []


def test_products_claim_their_identifiers_and_are_refused_precisely(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    qa_manager = people["qa_manager"]
    unknown_class = client.put(
        "/catalog/products/VX10", json={**ASPIRIN, "reason": "new"}, headers=qa_manager
    )
    assert unknown_class.status_code == 422 and "no temperature class '2-8C'" in unknown_class.text
    _put_class(client, qa_manager)
    made = client.put("/catalog/products/VX10", json={**ASPIRIN, "reason": "new product"}, headers=qa_manager)
    assert made.status_code == 200, made.text
    assert made.json()["gtin"] == "04006381333931"  # a GTIN-13 as the GTIN-14 scans decode to
    refusals = [
        ({**ASPIRIN, "gtin": "4006381333932"}, "gtin", "check digit of 04006381333932 is wrong"),
        ({**ASPIRIN, "gtin": "04006381333931"}, "gtin", "already names product 'VX10'"),
        ({"name": "x", "temperature_class": "2-8C"}, "gtin", "needs a GTIN, an HIBC code or an MA id"),
        ({**ASPIRIN, "gtin": None, "hibc_lic": "A123"}, "hibc_pcn", "needs both"),
        ({**ASPIRIN, "gtin": None, "hibc_lic": "1ABC", "hibc_pcn": "X"}, "hibc_lic", "not an HIBC labeler"),
        ({**ASPIRIN, "gtin": None, "ma_id": "MA-1", "hibc_uom": 3}, "hibc_uom", "needs the HIBC"),
        ({**ASPIRIN, "tor_budget_s": -5}, "tor_budget_s", "not a number of seconds"),
        ({**ASPIRIN, "serialised": "yes"}, "serialised", "not true or false"),
    ]
    for body, field, says in refusals:
        refused = client.put("/catalog/products/OTHER", json={**body, "reason": "r"}, headers=qa_manager)
        assert refused.status_code == 422, (field, refused.text)
        [detail] = refused.json()["detail"]
        assert detail["loc"] == ["body", field] and says in detail["msg"], detail
    hibc = {
        "name": "Catheter",
        "hibc_lic": "A123",
        "hibc_pcn": "CAT01",
        "hibc_uom": 1,
        "temperature_class": "2-8C",
    }
    assert (
        client.put("/catalog/products/CAT", json={**hibc, "reason": "r"}, headers=qa_manager).status_code
        == 200
    )
    # Retiring VX10 frees its GTIN for another product.
    retire = client.put("/catalog/products/VX10", json={**ASPIRIN, "reason": "discontinued", "retired": True},
                        headers=qa_manager)  # fmt: skip
    assert retire.json()["version"] == 2
    reuse = client.put("/catalog/products/VX20", json={**ASPIRIN, "reason": "successor"}, headers=qa_manager)
    assert reuse.status_code == 200
    listed = client.get(
        "/catalog/products", params={"gtin": "04006381333931"}, headers=people["viewer"]
    ).json()
    assert [p["id"] for p in listed] == ["VX20"]
    assert [e.action for e in _audit(engine, "product.")] == [
        "product.create",
        "product.create",
        "product.update",
        "product.create",
    ]


def test_lot_moves_are_decided_by_their_owners_and_final_states_stay(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    qa_manager = people["qa_manager"]
    _put_class(client, qa_manager)
    client.put("/catalog/products/VX10", json={**ASPIRIN, "reason": "new"}, headers=qa_manager)
    lot = "/catalog/products/VX10/lots/L2026-07"
    bad = client.put(lot, json={"expiry": "2027-02-30", "reason": "received"}, headers=qa_manager)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "expiry"]
    made = client.put(lot, json={"expiry": "2027-06-30", "manufactured": "2026-07-01", "reason": "received"},
                      headers=qa_manager)  # fmt: skip
    assert (made.status_code, made.json()["status"], made.json()["expired"]) == (200, "released", False)
    assert client.post(lot + "/quarantine", json={"reason": "x"}, headers=people["viewer"]).status_code == 403
    held = client.post(lot + "/quarantine", json={"reason": "excursion in cold room 1"}, headers=people["qa"])
    assert held.json()["status"] == "quarantined"
    assert client.post(lot + "/recall", json={"reason": "x"}, headers=people["qa"]).status_code == 403
    recalled = client.post(
        lot + "/recall", json={"reason": "FSN-2026-11"}, headers=people["recall_coordinator"]
    )
    assert recalled.json()["status"] == "recalled" and recalled.json()["version"] == 3
    back = client.post(lot + "/release", json={"reason": "mistake"}, headers=people["qa"])
    assert back.status_code == 422 and "a recalled lot cannot become released" in back.text
    no_reason = client.post(lot + "/release", json={"reason": "  "}, headers=people["qa"])
    assert no_reason.status_code == 422 and "must say why" in no_reason.text
    assert [x["status"] for x in client.get(lot + "/history", headers=people["viewer"]).json()] == [
        "released",
        "quarantined",
        "recalled",
    ]
    assert [x["lot"] for x in client.get("/catalog/lots", params={"status": "recalled"},
                                          headers=people["viewer"]).json()] == ["L2026-07"]  # fmt: skip
    entries = _audit(engine, "lot.")
    assert [e.action for e in entries] == ["lot.create", "lot.status", "lot.status"]
    assert entries[-1].reason == "FSN-2026-11" and entries[-1].entity_id == "VX10/L2026-07"
    missing = client.post("/catalog/products/VX10/lots/NOPE/recall", json={"reason": "x"},
                          headers=people["recall_coordinator"])  # fmt: skip
    assert missing.status_code == 404


def test_versions_are_never_edited_in_place(
    engine: Engine, client: TestClient, people: dict[str, Any]
) -> None:
    _put_class(client, people["qa_manager"])
    for statement in ("UPDATE temperature_classes SET reason = 'x'", "DELETE FROM temperature_classes"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(["name", "gtin", "hibc_lic", "hibc_pcn", "hibc_uom", "ma_id", "temperature_class",
                           "tor_budget_s", "serialised", "reason", "if_version", "bogus"]),
    value=json_values,
)  # fmt: skip
def test_no_product_body_gives_a_500(
    client: TestClient, people: dict[str, dict[str, str]], field: str, value: Any
) -> None:
    body = {**ASPIRIN, "reason": "r", field: value}
    reply = client.put("/catalog/products/FUZZ", json=body, headers=people["qa_manager"])
    assert reply.status_code in (200, 422), reply.text
