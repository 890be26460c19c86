"""The custody routes on both dialects (``cloud/api/routes/custody.py``): a lot's chain as JSON with
ISO UTC times and the events' documents, stock now and at a time, a unit's chain; unknown ids 404 and
malformed ones 422 naming the path parameter; who may read it by the access table (a stranger 401;
every role against every route is ``tests/test_api_access.py``'s matrix)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, access
from coldgate.cloud.api.app import create_app
from coldgate.cloud.identity.roles import ROLES
from tests.rig.custody_world import GTIN, PALLET, CustodyWorld, custody_world
from tests.rig.people import bearer, person

LOT = f"/lots/{GTIN}/L1/custody"


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, CustodyWorld, dict[str, str]]]:
    world = custody_world(engine)
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, world, bearer(token)


def test_the_lots_chain_stock_and_a_units_chain(api: tuple[TestClient, CustodyWorld, dict[str, str]]) -> None:
    client, world, headers = api
    reply = client.get(LOT, headers=headers)
    assert reply.status_code == 200, reply.text
    lot = reply.json()
    heading = ("product", "gtin", "lot", "status", "expiry", "pallets", "units", "stock_at")
    assert {k: lot[k] for k in heading} == {
        "product": "VX10", "gtin": GTIN, "lot": "L1", "status": "released", "expiry": "2027-12-31",
        "pallets": [PALLET], "units": 5, "stock_at": None,
    }  # fmt: skip
    assert lot["stock"] == [{"site": "site1", "location": "CR3", "product": "VX10", "lot": "L1",
                             "status": "released", "pallets": 1, "cases": 0, "quantity": 0}]  # fmt: skip
    first = lot["stays"][0]
    fields = ("unit", "unit_kind", "serial", "quantity", "site", "location", "party", "from", "to")
    assert {k: first[k] for k in fields} == {
        "unit": "serial:VX10/1001", "unit_kind": "case", "serial": "1001", "quantity": 1, "site": "site1",
        "location": "CR1", "party": None, "from": "2026-12-01T08:01:01.000Z",
        "to": "2026-12-01T08:30:00.000Z",
    }  # fmt: skip
    assert first["began_by"]["what"] == "receipt" and first["began_by"]["reference"] == "ASN-9"
    assert first["began_by"]["document"] == world.receipt and first["began_by"]["door"] == "D1"
    assert first["began_by"]["item"].startswith("gw01/") and first["began_by"]["item_kind"] == "movement"
    assert first["ended_by"]["what"] == "put-away" and first["ended_by"]["document"] is None
    customers = sorted((s["party"], s["serial"], s["from"]) for s in lot["stays"] if s["party"])
    assert customers == [
        ("Hospital B", "1002", "2026-12-01T13:01:00.000Z"),
        ("Hospital B", "1004", "2026-12-01T13:01:01.000Z"),
        ("Pharmacy A", "1001", "2026-12-01T12:01:00.000Z"),
        ("Pharmacy A", "1003", "2026-12-01T12:01:01.000Z"),
    ]
    # Stock at a moment of the day, the time as people type it.
    then = client.get(LOT, params={"at": "2026-12-01T09:35:00+01:00"}, headers=headers).json()
    assert then["stock_at"] == "2026-12-01T08:35:00.000Z"
    assert [(s["location"], s["pallets"], s["cases"]) for s in then["stock"]] == [
        ("CR1", 1, 2),
        ("CR2", 0, 2),
    ]
    counted = client.get("/lots/PLAIN/G1/custody", headers=headers).json()
    assert [(s["unit_kind"], s["quantity"], s["location"] or s["party"]) for s in counted["stays"]][-2:] == [
        ("lot", 8, "Hospital B"), ("lot", 2, "CR2")
    ]  # fmt: skip
    # One case, by its SGTIN URI; the pallet by its SSCC.
    case = client.get("/units/urn:epc:id:sgtin:4006381.033393.1004/custody", headers=headers).json()
    assert (case["unit"], case["lot"], case["status"], case["gtin"]) == ("serial:VX10/1004", "L1", "released",
                                                                       GTIN)  # fmt: skip
    assert [(s["location"] or s["party"], s["from"], s["to"]) for s in case["stays"]] == [
        ("CR1", "2026-12-01T08:01:04.000Z", "2026-12-01T08:41:00.000Z"),
        ("CR3", "2026-12-01T08:41:00.000Z", "2026-12-01T13:01:01.000Z"),
        ("Hospital B", "2026-12-01T13:01:01.000Z", None),
    ]  # fmt: skip
    pallet = client.get(f"/units/{PALLET}/custody", headers=headers).json()
    assert pallet["unit_kind"] == "pallet" and [s["location"] for s in pallet["stays"]] == ["CR1", "CR3"]
    _unknown_ids_are_404_and_malformed_ones_422(client, headers)


def _unknown_ids_are_404_and_malformed_ones_422(client: TestClient, headers: dict[str, str]) -> None:
    for path, words in (
        ("/lots/VX10/L9/custody", "no lot 'L9'"),
        ("/lots/NOPE/L1/custody", "no product 'NOPE'"),
        ("/units/040063810000000024/custody", "no movement or scan of pallet"),
        ("/units/04006381333931.9999/custody", "serial '9999'"),
    ):
        reply = client.get(path, headers=headers)
        assert reply.status_code == 404 and words in reply.json()["detail"], (path, reply.text)
    for path, field, words in (
        ("/lots/04006381333932/L1/custody", "gtin", "check digit"),
        ("/units/040063810000000018/custody", "unit_id", "check digit of SSCC"),
        ("/units/junk/custody", "unit_id", "is none of"),
        (LOT + "?at=yesterday", "at", "neither"),
    ):
        reply = client.get(path, headers=headers)
        assert reply.status_code == 422, (path, reply.text)
        [error] = reply.json()["detail"]
        assert error["loc"][-1] == field and words in error["msg"], (path, error)


def test_who_may_read_custody(engine: Engine) -> None:
    """By the access table: documents.read, which every role holds; a stranger hears 401.  An empty
    database: a reader hears that there is no such product or pallet, never a 500."""
    for path in ("/lots/{gtin}/{lot}/custody", "/units/{unit_id}/custody"):
        assert access.required("GET", path) == "documents.read"
    assert all("documents.read" in held for held in ROLES.values())
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        for path in (LOT, f"/units/{PALLET}/custody"):
            assert client.get(path, headers=bearer(token)).status_code == 404, path
        assert client.get(LOT).status_code == 401
        assert client.get(f"/units/{PALLET}/custody", headers=bearer("not-a-token")).status_code == 401
