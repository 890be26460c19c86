"""Receiving notes from a supplier's EPCIS 2.0 shipping event, through the API on both dialects: a pallet
of 24 serialised cases (an AggregationEvent) and a class-level quantity of another lot under one despatch
advice become one draft with the right lines; the URN and bare CBV words read the same; GS1's own
examples (sensor events, no shipment) and bad shipments are refused naming what and where, nothing made;
and structured junk is never a 500."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("jsonschema", reason="the EPCIS import checks GS1's JSON Schema")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.db.models import AuditEntry, DocumentVersion
from tests.rig.catalog import NOW, QA
from tests.rig.documents import sscc, stock_the_dock
from tests.rig.people import bearer, person

EXAMPLES = Path(__file__).parent / "testcases" / "epcis"
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
SUPPLIER = "urn:epc:id:pgln:4012345.00000"
#: VX10's GTIN 04006381333931 as EPC company prefix and item reference.
VX = "4006381.033393"
PALLET = f"urn:epc:id:sscc:4006381.0{sscc(1)[8:17]}"
WHEN = {"eventTime": "2026-12-05T14:00:00.000+01:00", "eventTimeZoneOffset": "+01:00"}
ASN = "urn:epcglobal:cbv:bt:4012345000009:ASN-4711"


def case(n: int) -> str:
    return f"urn:epc:id:sgtin:{VX}.{n:06d}"


def shipment(reference: str = ASN) -> dict[str, Any]:
    """What a supplier publishes when a truck leaves: a pallet of 24 cases of VX10 (serials 000100-000123,
    the last as a GS1 Digital Link) and, loose, 5 cases of lot L2 counted by class; one despatch advice."""
    business = [
        {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:PO-77"},
        {"type": "desadv", "bizTransaction": reference},
    ]
    parties = {
        "sourceList": [
            {"type": "location", "source": "urn:epc:id:sgln:4012345.00001.0"},
            {"type": "possessing_party", "source": "urn:epc:id:pgln:4099999.00000"},
            {"type": "owning_party", "source": SUPPLIER},
        ],
        "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:4006381.00000"}],
    }
    children = [case(n) for n in range(100, 123)] + ["https://id.gs1.org/01/04006381333931/21/000123"]
    pallet = {
        "type": "AggregationEvent",
        **WHEN,
        "action": "OBSERVE",
        "bizStep": "shipping",
        "disposition": "in_transit",
        "parentID": PALLET,
        "childEPCs": children,
        "readPoint": {"id": "urn:epc:id:sgln:4012345.00001.0"},
        "bizTransactionList": business,
        **parties,
    }
    loose = {
        "type": "ObjectEvent",
        **WHEN,
        "action": "OBSERVE",
        "bizStep": "shipping",
        "epcList": [],
        "quantityList": [{"epcClass": f"urn:epc:class:lgtin:{VX}.L2", "quantity": 5}],
        "bizTransactionList": business,
        **parties,
    }
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-12-05T14:05:00Z",
        "epcisBody": {"eventList": [pallet, loose]},
    }


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    stock_the_dock(engine)
    with engine.begin() as conn:
        add_serials(conn, "VX10", "L1", ranges=[("000100", "000199")], reason="supplier list", by=QA, now=NOW)
    headers = {"dock_operator": bearer(person(engine, "dock-operator", ("dock_operator",))[1])}
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, headers


def send(client: TestClient, headers: dict[str, str], body: object, **params: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/documents/import/epcis",
        params={"site": "site1", **params},
        content=content,
        headers={**headers, "content-type": "application/ld+json"},
    )


def stored(engine: Engine) -> tuple[int, list[str]]:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(DocumentVersion)).scalar()
        actions = [
            r.action
            for r in conn.execute(select(AuditEntry.action).where(AuditEntry.action.like("document%")))
        ]
    return int(count or 0), actions


def problems(reply: Any) -> list[tuple[str, str]]:
    assert reply.status_code == 422, reply.text
    return [(p["path"], p["why"]) for p in reply.json()["detail"]]


def test_a_pallet_and_a_loose_lot_become_one_draft(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = api
    viewer = bearer(person(engine, "viewer", ("viewer",))[1])
    assert send(client, viewer, shipment()).status_code == 403
    reply = send(client, h["dock_operator"], shipment())
    assert reply.status_code == 200, reply.text
    made = reply.json()
    assert (made["documents"], made["lines"], made["references"]) == (1, 2, ["ASN-4711"])
    doc = client.get(f"/documents/{made['ids'][0]}", headers=h["dock_operator"]).json()
    assert (doc["kind"], doc["site"], doc["state"], doc["party"]) == ("receiving", "site1", "draft", SUPPLIER)
    assert doc["reason"] == f"EPCIS shipping event from {SUPPLIER}"
    assert doc["lines"] == [
        {
            "number": 1,
            "product": "VX10",
            "lot": "L1",
            "quantity": 24,
            "unit": "case",
            "ssccs": [sscc(1)],
            "serials": [f"{n:06d}" for n in range(100, 124)],
        },
        {
            "number": 2,
            "product": "VX10",
            "lot": "L2",
            "quantity": 5,
            "unit": "case",
            "ssccs": [],
            "serials": [],
        },
    ]
    assert stored(engine) == (1, ["document.create", "document.import"])
    again = send(client, h["dock_operator"], shipment())
    assert problems(again) == [
        (
            "epcisBody.eventList[0].bizTransactionList[1].bizTransaction",
            f"is already document {made['ids'][0]} of site 'site1'",
        ),
    ]
    assert stored(engine)[0] == 1


def test_urn_words_a_lone_event_a_packing_event_and_a_given_reason(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    """CBV 1.x URNs read as the bare words; a lone event is a document; a pallet shipped by its SSCC alone
    takes its contents from an earlier packing aggregation; without a desadv the po is the reference."""
    client, h = api
    lone = {
        "@context": CONTEXT,
        "type": "ObjectEvent",
        **WHEN,
        "action": "OBSERVE",
        "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
        "epcList": [case(150), "urn:epc:id:sgtin:4006381.033393.777", "urn:epc:id:grai:4012345.55555.1"],
        "bizTransactionList": [
            {"type": "urn:epcglobal:cbv:btt:po", "bizTransaction": "https://erp.example.com/po/88"}
        ],
        "sourceList": [
            {"type": "urn:epcglobal:cbv:sdt:possessing_party", "source": "urn:epc:id:pgln:4099999.00000"}
        ],
    }
    reply = send(client, h["dock_operator"], lone, reason="ASN from the carrier portal")
    assert reply.status_code == 200, reply.text
    doc = client.get(f"/documents/{reply.json()['ids'][0]}", headers=h["dock_operator"]).json()
    assert (doc["reference"], doc["party"], doc["reason"]) == (
        "https://erp.example.com/po/88",
        "urn:epc:id:pgln:4099999.00000",
        "ASN from the carrier portal",
    )
    # Serial 777 is in no lot the catalog knows: its line has no lot; the GRAI (a crate) is no goods.
    assert [(x["lot"], x["quantity"], x["serials"]) for x in doc["lines"]] == [
        (None, 1, ["777"]),
        ("L1", 1, ["000150"]),
    ]
    packed = shipment("urn:epcglobal:cbv:bt:4012345000009:ASN-4712")
    pallet, loose = packed["epcisBody"]["eventList"]
    pallet["bizStep"], pallet["action"] = "packing", "ADD"
    loose["epcList"] = [PALLET]
    reply = send(client, h["dock_operator"], packed)
    assert reply.status_code == 200, reply.text
    doc = client.get(f"/documents/{reply.json()['ids'][0]}", headers=h["dock_operator"]).json()
    assert [(x["lot"], x["quantity"], x["ssccs"]) for x in doc["lines"]] == [
        ("L1", 24, [sscc(1)]),
        ("L2", 5, []),
    ]
    assert stored(engine)[0] == 2


#: GS1's examples (sensor events of the EPCIS 2.0 standard) and what the refusal says it found there.
EXAMPLE_EVENTS = {
    "SensorDataExample2.jsonld": "ObjectEvent bizStep inspecting at epcisBody.eventList[0]",
    "SensorDataExample3.jsonld": "ObjectEvent bizStep inspecting at epcisBody.eventList[0]",
    "SensorDataExample9.jsonld": "ObjectEvent bizStep sensor_reporting at epcisBody.eventList[0]",
}


def test_gs1_sensor_examples_are_no_shipment(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = api
    for example, found in EXAMPLE_EVENTS.items():
        reply = send(client, h["dock_operator"], (EXAMPLES / example).read_bytes())
        why = f"no shipping event (an ObjectEvent or AggregationEvent with bizStep shipping): found {found}"
        assert problems(reply) == [("epcisBody.eventList", why)], example
    assert stored(engine) == (0, [])


def test_bad_shipments_are_named_by_path_and_nothing_is_made(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = api
    bad = shipment()
    pallet, loose = bad["epcisBody"]["eventList"]
    pallet["childEPCs"][3] = "urn:epc:id:sgtin:4012345.011111.9876"
    pallet["childEPCs"][5] = "urn:epc:id:sgln:4012345.00001.0"
    loose["quantityList"] = [
        {"epcClass": f"urn:epc:class:lgtin:{VX}.L9", "quantity": 5},
        {"epcClass": f"urn:epc:class:lgtin:{VX}.L2", "quantity": 2.5},
        {"epcClass": f"urn:epc:class:lgtin:{VX}.L2", "quantity": 2, "uom": "KGM"},
    ]
    loose["epcList"] = [f"urn:epc:id:sscc:4006381.0{sscc(2)[8:17]}"]
    extra = {
        **loose,
        "bizTransactionList": [{"type": "inv", "bizTransaction": "urn:x:inv:1"}],
        "epcList": [],
        "quantityList": [{"epcClass": f"urn:epc:class:lgtin:{VX}.L1", "quantity": 1}],
    }
    void = {**extra, "bizStep": "void_shipping"}
    bad["epcisBody"]["eventList"] += [extra, void]
    at = "epcisBody.eventList"
    assert problems(send(client, h["dock_operator"], bad)) == [
        (f"{at}[3].bizStep", "cancels a shipment: not imported (send the corrected one)"),
        (
            f"{at}[0].childEPCs[3]",
            "'urn:epc:id:sgtin:4012345.011111.9876' names no product of the catalog (GTIN 04012345111118)",
        ),
        (
            f"{at}[0].childEPCs[5]",
            "'urn:epc:id:sgln:4012345.00001.0' is no SGTIN, SSCC or LGTIN (EPC URI or GS1 Digital Link)",
        ),
        (
            f"{at}[1].epcList[0]",
            f"'urn:epc:id:sscc:4006381.0{sscc(2)[8:17]}': SSCC {sscc(2)} is shipped but "
            "no AggregationEvent of the document says what is on it",
        ),
        (
            f"{at}[1].quantityList[0].epcClass",
            "lot 'L9' of product 'VX10' is not in the catalog: add it first",
        ),
        (f"{at}[1].quantityList[1].quantity", "2.5 is not a whole count from 1"),
        (
            f"{at}[1].quantityList[2].uom",
            "uom 'KGM' measures, it does not count: a line counts trade items (no uom, EA, H87, C62)",
        ),
        (
            f"{at}[2].bizTransactionList",
            "names no despatch advice (desadv) or purchase order (po): a "
            "receiving note needs the sender's number",
        ),
    ]
    assert stored(engine) == (0, [])


def test_what_the_schema_or_the_reader_refuses(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = api
    op = h["dock_operator"]
    no_time = shipment()
    del no_time["epcisBody"]["eventList"][1]["eventTime"]
    found = problems(send(client, op, no_time))
    assert found == [
        ("epcisBody.eventList[1]", "refused by the EPCIS 2.0 JSON Schema: 'eventTime' is a required property")
    ]
    deleting = shipment()
    deleting["epcisBody"]["eventList"][0]["action"] = "DELETE"
    assert problems(send(client, op, deleting))[0] == (
        "epcisBody.eventList[0].action",
        "a shipping event that deletes: nothing is shipped",
    )
    assert problems(send(client, op, b"{not json"))[0][0] == "(document)"
    deep = shipment()
    deep["epcisBody"]["eventList"][0]["example:x"] = json.loads("[" * 500 + "]" * 500)
    path, why = problems(send(client, op, deep))[0]
    assert path.startswith("epcisBody.eventList[0].example:x[0][0]") and why.startswith("nests deeper than")
    assert problems(send(client, op, [1, 2]))[0] == (
        "(document)",
        "is no JSON object: send an EPCISDocument or one EPCIS event",
    )
    assert problems(send(client, op, shipment(), site="site 1"))[0][0] == "site"
    wrong = client.post(
        "/documents/import/epcis",
        params={"site": "site1"},
        content=b"<xml/>",
        headers={**op, "content-type": "application/xml"},
    )
    assert problems(wrong)[0][0] == "content-type"
    assert stored(engine) == (0, [])


TEXT = st.text(max_size=8)
JUNK = st.none() | st.booleans() | st.integers(-3, 10**9) | st.floats(allow_nan=True) | TEXT
EPCS = (
    st.sampled_from(
        [
            case(100),
            case(999),
            PALLET,
            "urn:epc:id:sgtin:4012345.011111.1",
            "https://id.gs1.org/01/04006381333931/21/1",
            "https://id.gs1.org/00/" + sscc(1),
            "https://x.example/01/123/21/1",
            "http://[x/01/1",
            f"urn:epc:class:lgtin:{VX}.L2",
            "urn:x",
        ]
    )
    | TEXT
    | JUNK
)


@st.composite
def mangled(draw: st.DrawFn) -> object:
    """A real shipment with a few fields replaced by plausible or junk values, or dropped."""
    doc = copy.deepcopy(
        shipment(draw(st.sampled_from([ASN, "urn:epcglobal:cbv:bt:4012345000009:X", "\x00"])))
    )
    events = doc["epcisBody"]["eventList"]
    for _ in range(draw(st.integers(0, 4))):
        event = events[draw(st.integers(0, len(events) - 1))]
        key = draw(
            st.sampled_from(
                [
                    "type",
                    "action",
                    "bizStep",
                    "parentID",
                    "childEPCs",
                    "epcList",
                    "quantityList",
                    "bizTransactionList",
                    "sourceList",
                    "eventTime",
                    "@context",
                ]
            )
        )
        if draw(st.booleans()):
            event.pop(key, None)
            continue
        event[key] = draw(
            st.sampled_from(
                [
                    "ObjectEvent",
                    "AggregationEvent",
                    "TransactionEvent",
                    "ADD",
                    "DELETE",
                    "shipping",
                    "urn:epcglobal:cbv:bizstep:void_shipping",
                ]
            )
            | EPCS
            | st.lists(EPCS, max_size=3)
            | st.lists(st.fixed_dictionaries({"epcClass": EPCS, "quantity": JUNK}), max_size=2)
            | st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["desadv", "po", "owning_party"]) | TEXT,
                        "bizTransaction": EPCS,
                        "source": EPCS,
                    }
                ),
                max_size=2,
            )
            | JUNK
        )
    return draw(st.just(doc) | st.just(events[0]) | st.just(doc["epcisBody"]) | JUNK)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=mangled())
def test_junk_is_never_a_500_and_a_refusal_makes_nothing(
    api: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine, body: object
) -> None:
    client, h = api
    before = stored(engine)[0]
    reply = send(client, h["dock_operator"], body)
    assert reply.status_code in (200, 422), (body, reply.status_code, reply.text)
    event(str(reply.status_code))
    after = stored(engine)[0]
    if reply.status_code == 422:
        assert after == before and reply.json()["detail"], reply.text
    else:
        assert after == before + reply.json()["documents"]


def test_query_documents_web_vocabulary_and_digital_links_without_a_database() -> None:
    """The pure reader alone: an EPCISQueryDocument's events, CBV 2.0 web URIs for the words, a pallet
    and a lot named by GS1 Digital Link, a GTIN pattern without a lot."""
    from coldgate.cloud.documents.checks import Catalog
    from coldgate.cloud.documents.epcis_import import receiving_notes
    from coldgate.cloud.documents.identifiers import CatalogIndex

    doc = shipment()
    pallet, loose = doc["epcisBody"]["eventList"]
    pallet["parentID"] = f"https://id.gs1.org/00/{sscc(1)}"
    pallet["bizStep"] = "https://ref.gs1.org/cbv/BizStep-shipping"
    loose["bizStep"] = "urn:epcglobal:cbv:bizstep:shipping"
    loose["bizTransactionList"] = [{"type": "https://ref.gs1.org/cbv/BTT-desadv", "bizTransaction": ASN}]
    loose["quantityList"] = [
        {"epcClass": "https://id.gs1.org/01/04006381333931/10/L2", "quantity": 3, "uom": "EA"},
        {"epcClass": f"urn:epc:idpat:sgtin:{VX}.*", "quantity": 2.0},
    ]
    query = {**doc, "type": "EPCISQueryDocument", "epcisBody": {"queryResults": {
        "queryName": "SimpleEventQuery", "resultsBody": {"eventList": [pallet, loose]}}}}  # fmt: skip
    index = CatalogIndex(gtins={"04006381333931": "VX10"})
    catalog = Catalog({"VX10": False}, frozenset({("VX10", "L1"), ("VX10", "L2")}))
    (note,) = receiving_notes(query, index, catalog, site="site1")
    assert note.fields["reference"] == "ASN-4711" and note.fields["party"] == SUPPLIER
    assert [(x["lot"], x["quantity"], x["ssccs"]) for x in note.fields["lines"]] == [
        (None, 26, [sscc(1)]),  # no serial spans in this index: 24 cases of no known lot, and 2 by pattern
        ("L2", 3, []),
    ]
