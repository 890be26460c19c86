"""Locations, placements with validity, calibrations, through the API on both dialects: a sensor that
moves keeps where its earlier readings were taken; a calibration's due date reaches the overview."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.api import ApiTokens, create_app, queries_overview
from coldgate.cloud.catalog.placements import location_at
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.web.app import create_web_app
from tests.rig.cloud_db import ingest
from tests.rig.ingest import NOW_MS, SITE, batch_message, reading
from tests.rig.people import bearer, person

COLD = {"spec": {"low": 2, "high": 8}, "reason": "SOP-12"}
T1, T2 = NOW_MS, NOW_MS + 3_600_000


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def who(engine: Engine, client: TestClient) -> dict[str, dict[str, str]]:
    people = {
        "qa_manager": bearer(person(engine, "marta", ("qa_manager",))[1]),
        "viewer": bearer(person(engine, "vera", ("viewer",))[1]),
    }
    assert (
        client.put("/catalog/temperature-classes/2-8C", json=COLD, headers=people["qa_manager"]).status_code
        == 200
    )
    return people


def _put(client: TestClient, who: dict[str, str], location: str, **fields: Any) -> Any:
    return client.put(
        f"/catalog/sites/{SITE}/locations/{location}", json={"reason": "site survey", **fields}, headers=who
    )


def test_locations_are_checked_versioned_and_doors_name_their_sides(
    engine: Engine, client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    qa = who["qa_manager"]
    assert (
        _put(
            client, who["viewer"], "CR1", name="Cold room 1", kind="cold_room", temperature_class="2-8C"
        ).status_code
        == 403
    )
    refusals = [
        (
            "CR1",
            {"name": "Cold room 1", "kind": "cold_room"},
            "temperature_class",
            "needs the temperature class",
        ),
        ("CR1", {"name": "Cold room 1", "kind": "igloo", "temperature_class": "2-8C"}, "kind", "not a kind"),
        (
            "CR1",
            {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "-20C"},
            "temperature_class",
            "no temperature class '-20C'",
        ),
        (
            "D1",
            {"name": "Door 1", "kind": "dock_door", "inside": "CR1", "outside": "YARD"},
            "inside",
            "no location 'CR1'",
        ),
    ]
    for location, fields, field, says in refusals:
        reply = _put(client, qa, location, **fields)
        assert reply.status_code == 422, reply.text
        [detail] = reply.json()["detail"]
        assert detail["loc"] == ["body", field] and says in detail["msg"], detail
    assert (
        _put(client, qa, "CR1", name="Cold room 1", kind="cold_room", temperature_class="2-8C").status_code
        == 200
    )
    assert (
        _put(client, qa, "CR2", name="Cold room 2", kind="cold_room", temperature_class="2-8C").status_code
        == 200
    )
    assert _put(client, qa, "YARD", name="Yard", kind="vehicle", temperature_class="2-8C").status_code == 200
    one_side = _put(client, qa, "D1", name="Door 1", kind="dock_door", inside="CR1")
    assert one_side.status_code == 422 and "names the location on each side" in one_side.text
    door = _put(client, qa, "D1", name="Door 1", kind="dock_door", inside="CR1", outside="YARD")
    assert door.status_code == 200 and door.json()["outside"] == "YARD"
    renamed = _put(
        client,
        qa,
        "CR1",
        name="Cold room 1 (vaccines)",
        kind="cold_room",
        temperature_class="2-8C",
        if_version=1,
    )
    assert renamed.json()["version"] == 2
    history = client.get(f"/catalog/sites/{SITE}/locations/CR1/history", headers=who["viewer"]).json()
    assert [h["name"] for h in history] == ["Cold room 1", "Cold room 1 (vaccines)"]
    listed = client.get("/catalog/locations", params={"site": SITE}, headers=who["viewer"]).json()
    assert [x["id"] for x in listed] == ["CR1", "CR2", "D1", "YARD"]


def test_a_moved_sensor_keeps_where_its_earlier_readings_were_taken(
    engine: Engine, client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    qa = who["qa_manager"]
    for room in ("CR1", "CR2"):
        _put(client, qa, room, name=f"Room {room}", kind="cold_room", temperature_class="2-8C")
    place = {"gateway": "gw01", "device_kind": "sensor", "device": "cr1-t01", "reason": "installed"}
    assert (
        client.post(
            "/catalog/placements", json={**place, "location": "CR1", "valid_from": T1}, headers=qa
        ).status_code
        == 200
    )
    moved = client.post(
        "/catalog/placements",
        json={**place, "location": "CR2", "valid_from": T2, "reason": "moved to the new room"},
        headers=qa,
    )
    assert moved.status_code == 200, moved.text
    backwards = client.post(
        "/catalog/placements", json={**place, "location": "CR1", "valid_from": T2 - 1}, headers=qa
    )
    assert backwards.status_code == 422 and "must start later" in backwards.text
    elsewhere = client.post(
        "/catalog/placements", json={**place, "location": "NOPE", "valid_from": T2 + 1}, headers=qa
    )
    assert elsewhere.status_code == 422 and "no location 'NOPE'" in elsewhere.text
    unknown_gateway = client.post(
        "/catalog/placements",
        json={**place, "gateway": "gw-x", "location": "CR1", "valid_from": T2 + 1},
        headers=qa,
    )
    assert unknown_gateway.status_code == 404
    with engine.connect() as conn:
        assert location_at(conn, "gw01", "sensor", "cr1-t01", T1 - 1) is None
        assert location_at(conn, "gw01", "sensor", "cr1-t01", T1 + 60_000) == "CR1"
        assert location_at(conn, "gw01", "sensor", "cr1-t01", T2 + 60_000) == "CR2"
    listed = client.get("/catalog/placements", params={"device": "cr1-t01"}, headers=who["viewer"]).json()
    assert [(p["location"], p["valid_from"], p["valid_to"]) for p in listed] == [
        ("CR1", T1, T2),
        ("CR2", T2, None),
    ]
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE placements SET location = 'CR1'"))
    # The overview names the room the sensor is in now; its page lists where it was, and when.
    ingest(engine, *batch_message("gw01", [reading(1, sensor="cr1-t01")]))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as web:
        overview = web.get("/overview", headers=who["viewer"]).json()
        [tile] = [t for t in overview["tiles"] if t["sensor"] == "cr1-t01"]
        assert (tile["zone"], tile["location_name"]) == ("CR2", "Room CR2")
        page = web.get(
            "/dashboard/sensor", params={"gateway": "gw01", "sensor": "cr1-t01"}, headers=who["viewer"]
        )
        assert page.status_code == 200
        assert "Where this sensor was" in page.text and "moved to the new room" in page.text
        assert page.text.index("Room CR2") < page.text.index("Room CR1")  # newest first


def test_a_calibration_due_date_reaches_the_overview(
    engine: Engine, client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    ingest(engine, *batch_message("gw01", [reading(1, sensor="cr1-t01")]))  # the sensor is registered
    body = {
        "gateway": "gw01",
        "sensor": "cr1-t01",
        "certificate": "CAL-2024-117",
        "calibrated_on": "2024-03-01",
        "accuracy": "±0.3 °C",
        "next_due": "2025-03-01",
        "reason": "annual calibration",
    }
    bad = client.post(
        "/catalog/calibrations", json={**body, "next_due": "2024-02-01"}, headers=who["qa_manager"]
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "next_due"]
    kept = client.post("/catalog/calibrations", json=body, headers=who["qa_manager"])
    assert kept.status_code == 200, kept.text
    again = client.post("/catalog/calibrations", json=body, headers=who["qa_manager"])
    assert again.status_code == 422 and "already recorded" in again.text
    with engine.connect() as conn:
        tiles = {t.sensor: t for t in queries_overview.overview(conn, site=None, now_ms=NOW_MS + 2000).tiles}
        actions = conn.execute(select(AuditEntry.action).where(AuditEntry.action == "calibration.add")).all()
    tile = tiles["cr1-t01"]
    assert tile.state == "calibration overdue" and "2025-03-01" in (tile.why or ""), tile
    assert len(actions) == 1
