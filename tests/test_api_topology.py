"""``GET /gateways/{gateway}/topology`` and ``POST .../topology/accept`` on both dialects, over a status
sent through ingest: the findings of a laid-out site, accepting makes the proposed placements audited
in one transaction and a second accept proposes nothing; a viewer may read but not accept; a bad body
is a 422 naming its field, an unknown gateway a 404, nothing a 500."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.catalog.placements import placements
from coldgate.cloud.db.models import AuditEntry, Gateway
from tests.rig.people import bearer, person
from tests.rig.topology import lay_out_site, report_topology

URL = "/gateways/gw01/topology"


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def who(engine: Engine) -> dict[str, dict[str, str]]:
    return {
        "qa_manager": bearer(person(engine, "marta", ("qa_manager",))[1]),
        "viewer": bearer(person(engine, "vera", ("viewer",))[1]),
    }


@pytest.fixture
def site(engine: Engine) -> int:
    """The rig's laid-out site and gw01's status reporting its topology; the status's ts."""
    now = datetime.datetime.now(datetime.UTC)
    lay_out_site(engine, now)
    ts = int(now.timestamp() * 1000) - 60_000
    report_topology(engine, ts)
    return ts


def states(reply: Any) -> dict[str, tuple[str, str | None]]:
    return {f"{f['device_kind']}/{f['device']}": (f["state"], f["proposal"]) for f in reply.json()["devices"]}


def placement_audits(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action == "placement.add").order_by(AuditEntry.seq)
        return list(conn.execute(query))


def test_the_findings_of_a_reported_topology(
    client: TestClient, who: dict[str, dict[str, str]], site: int
) -> None:
    reply = client.get(URL, headers=who["viewer"])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["gateway"], body["site"], body["reported_at"], body["note"]) == ("gw01", "site1", site, "")
    assert states(reply) == {
        "sensor/cr1-t01": ("agreeing", None),
        "sensor/cr1-t02": ("proposed", "CR1"),
        "sensor/cr2-t01": ("drift", None),
        "sensor/fz-t01": ("unplaced", None),
        "sensor/old-t09": ("gone", None),
        "reader/dock1-r1": ("proposed", "D1"),
        "scanner/dock1-s1": ("unplaced", None),
    }
    assert body["counts"] == {"agreeing": 1, "proposed": 2, "unplaced": 2, "drift": 1, "gone": 1}
    reader = next(f for f in body["devices"] if f["device"] == "dock1-r1")
    assert reader["proposal_name"] == "Dock door 1" and reader["door"] == "D1"
    assert {z["zone"]: z["state"] for z in body["zones"]} == {
        "CR1": "located",
        "CR2": "drift",
        "FZ": "unlocated",
    }
    # Another enrolled gateway that never reported: nothing to compare, said so; a stranger id: 404.
    silent = client.get("/gateways/gw02/topology", headers=who["viewer"]).json()
    assert silent["devices"] == [] and silent["note"] == "no status heard from it yet"
    unknown = client.get("/gateways/gw-none/topology", headers=who["viewer"])
    assert unknown.status_code == 404 and "no enrolled gateway 'gw-none'" in unknown.text


def test_a_status_without_a_readable_topology_says_why(
    client: TestClient, who: dict[str, dict[str, str]], engine: Engine
) -> None:
    report_topology(engine, 1_795_000_000_000, gateway="gw03", topology=None)
    body = client.get("/gateways/gw03/topology", headers=who["viewer"]).json()
    assert body["reported_at"] is None and "carries no topology" in body["note"]
    # A stored status the contract no longer reads (an older cloud stored it): said, never a 500.
    broken = {"ts": 1_795_000_000_000, "topology": {"sensors": [{"id": "a"}, {"id": "a"}]}}
    with engine.begin() as conn:
        conn.execute(update(Gateway).where(Gateway.id == "gw03").values(last_status=broken))
    reply = client.get("/gateways/gw03/topology", headers=who["viewer"])
    assert reply.status_code == 200 and reply.json()["devices"] == []
    assert (
        reply.json()["note"] == "the topology in its last status cannot be read: sensors[1].id: duplicate 'a'"
    )


def test_accepting_makes_the_proposed_placements_audited_once(
    client: TestClient, who: dict[str, dict[str, str]], site: int, engine: Engine
) -> None:
    before = len(placement_audits(engine))
    body = {"reason": "placements from the gateway's configuration, checked on site"}
    refused = client.post(f"{URL}/accept", json=body, headers=who["viewer"])
    assert refused.status_code == 403
    reply = client.post(f"{URL}/accept", json=body, headers=who["qa_manager"])
    assert reply.status_code == 200, reply.text
    made = {(p["device_kind"], p["device"], p["location"]) for p in reply.json()["placed"]}
    assert made == {("sensor", "cr1-t02", "CR1"), ("reader", "dock1-r1", "D1")}
    assert all(
        p["recorded_by"] == "Marta Tester" and p["reason"] == body["reason"] for p in reply.json()["placed"]
    )
    audits = placement_audits(engine)[before:]
    assert sorted(a.entity_id for a in audits) == ["gw01/reader/dock1-r1", "gw01/sensor/cr1-t02"]
    assert all(a.reason == body["reason"] and a.actor_name == "Marta Tester" for a in audits)
    after = states(client.get(URL, headers=who["viewer"]))
    assert after["sensor/cr1-t02"] == ("agreeing", None) and after["reader/dock1-r1"] == ("agreeing", None)
    again = client.post(f"{URL}/accept", json=body, headers=who["qa_manager"])
    assert again.status_code == 200 and again.json()["placed"] == []
    assert len(placement_audits(engine)) == before + 2


def test_accepting_only_the_listed_devices_or_none_at_all(
    client: TestClient, who: dict[str, dict[str, str]], site: int, engine: Engine
) -> None:
    qa = who["qa_manager"]
    one = {"reason": "the reader first", "devices": [{"device_kind": "reader", "device": "dock1-r1"}]}
    reply = client.post(f"{URL}/accept", json=one, headers=qa)
    assert [p["device"] for p in reply.json()["placed"]] == ["dock1-r1"]
    # A listed device without a proposal refuses them all, naming it and why: nothing written.
    mixed = {"reason": "both", "devices": [{"device_kind": "sensor", "device": "cr1-t02"},
                                           {"device_kind": "sensor", "device": "fz-t01"}]}  # fmt: skip
    refused = client.post(f"{URL}/accept", json=mixed, headers=qa)
    assert refused.status_code == 422
    [detail] = refused.json()["detail"]
    assert detail["loc"] == ["body", "devices"]
    assert detail["msg"].startswith(
        "sensor fz-t01 has no proposal: not placed; no proposal: site site1 has no"
    )
    with engine.connect() as conn:
        assert [p["device"] for p in placements(conn, device="cr1-t02")] == []
    bad = [
        ({"reason": "  "}, ["body", "reason"], "must say why"),
        ({}, ["body", "reason"], "Field required"),
        ({"reason": "x", "devices": []}, ["body", "devices"], "names no device"),
        ({"reason": "x", "devices": [{"device_kind": "sensor", "device": "cr1-t02"}] * 2},
         ["body", "devices"], "listed twice"),
        ({"reason": "x", "devices": [{"device_kind": "fridge", "device": "a"}]},
         ["body", "devices", 0, "device_kind"], "Input should be"),
        ({"reason": "x", "devices": [{"device_kind": "sensor", "device": "nope"}]}, ["body", "devices"],
         "sensor nope has no proposal: not in the gateway's reported topology"),
        ({"reason": "x", "extra": 1}, ["body", "extra"], "Extra inputs"),
    ]  # fmt: skip
    for body, loc, says in bad:
        reply = client.post(f"{URL}/accept", json=body, headers=qa)
        assert reply.status_code == 422, (body, reply.text)
        details = reply.json()["detail"]
        assert any(d["loc"] == loc and says in d["msg"] for d in details), (body, details)
    unknown = client.post("/gateways/gw-none/topology/accept", json={"reason": "x"}, headers=qa)
    assert unknown.status_code == 404


_TEXT = st.text(max_size=80)
_KIND = st.sampled_from(["sensor", "reader", "scanner", "x"])
_DEVICE = st.fixed_dictionaries(
    {"device_kind": _KIND, "device": st.sampled_from(["cr1-t02", "fz-t01"]) | _TEXT}
)
_BODY = st.one_of(
    st.fixed_dictionaries({"reason": _TEXT}, optional={"devices": st.none() | st.lists(_DEVICE, max_size=4)}),
    st.dictionaries(_TEXT, st.none() | st.integers() | _TEXT | st.lists(_TEXT, max_size=3), max_size=3),
    st.lists(st.integers(), max_size=3),
    st.none(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_BODY)
def test_any_body_is_answered_never_a_500(
    client: TestClient, who: dict[str, dict[str, str]], site: int, body: object
) -> None:
    reply = client.post(f"{URL}/accept", json=body, headers=who["qa_manager"])
    assert reply.status_code in (200, 422), (body, reply.status_code, reply.text)


def test_a_refusal_midway_leaves_no_placement_behind(
    client: TestClient,
    who: dict[str, dict[str, str]],
    site: int,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The placements are one transaction: the reader's refusal takes the sensor's placement back too."""
    from coldgate.cloud.api import queries_topology
    from coldgate.cloud.identity.users import UserInputError

    real = queries_topology.place

    def refuse_readers(conn: Any, gateway: str, kind: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if kind == "reader":
            raise UserInputError("location", "refused for the test")
        return real(conn, gateway, kind, *args, **kwargs)

    before = len(placement_audits(engine))
    monkeypatch.setattr(queries_topology, "place", refuse_readers)
    reply = client.post(f"{URL}/accept", json={"reason": "both"}, headers=who["qa_manager"])
    assert reply.status_code == 422 and "refused for the test" in reply.text
    with engine.connect() as conn:
        assert placements(conn, device="cr1-t02") == []
    assert len(placement_audits(engine)) == before
