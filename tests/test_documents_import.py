"""Importing documents (CSV, one row per line; JSON, a list of documents) through the API on both
dialects: a good file makes every document as an audited draft; a file with any bad row makes nothing
and names every bad row by line, column and value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.models import AuditEntry, DocumentVersion
from tests.rig.documents import note, sscc, stock_the_dock
from tests.rig.people import bearer, person

CSV = "text/csv"
GOOD = f"""kind,site,reference,party,line,product,lot,quantity,unit,ssccs,serials
receiving,site1,ASN-1,Acme,1,VX10,L1,20,case,{sscc(1)},000100;000101
receiving,site1,ASN-1,Acme,2,PLAIN,,5,each,,
dispatch,site1,SO-9,Clinic Nord,,VX10,,3,,,
"""


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    stock_the_dock(engine)
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(person(engine, "dora", ("dock_operator",))[1])


def send(client: TestClient, headers: dict[str, str], data: str | bytes, media: str = CSV) -> Any:
    content = data.encode() if isinstance(data, str) else data
    return client.post(
        "/documents/import",
        params={"reason": "ERP export 2026-12-06"},
        content=content,
        headers={**headers, "content-type": media},
    )


def stored(engine: Engine) -> tuple[int, list[str]]:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(DocumentVersion)).scalar()
        actions = [
            r.action
            for r in conn.execute(select(AuditEntry.action).where(AuditEntry.action.like("document%")))
        ]
    return int(count or 0), actions


def test_a_good_csv_makes_every_document(api: tuple[TestClient, dict[str, str]], engine: Engine) -> None:
    client, headers = api
    reply = send(client, headers, GOOD)
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert (result["documents"], result["lines"], len(result["ids"])) == (2, 3, 2)
    first = client.get(f"/documents/{result['ids'][0]}", headers=headers).json()
    assert (first["reference"], first["party"], first["state"]) == ("ASN-1", "Acme", "draft")
    assert first["lines"][0]["serials"] == ["000100", "000101"] and first["lines"][0]["ssccs"] == [sscc(1)]
    assert first["lines"][1] == {
        "number": 2,
        "product": "PLAIN",
        "lot": None,
        "quantity": 5,
        "unit": "each",
        "ssccs": [],
        "serials": [],
    }
    assert stored(engine) == (2, ["document.create", "document.create", "document.import"])
    again = send(client, headers, GOOD)
    assert again.status_code == 422
    assert [(e["line"], e["column"], e["value"]) for e in again.json()["detail"]] == [
        (2, "reference", "ASN-1"),
        (4, "reference", "SO-9"),
    ]


def test_a_bad_csv_names_every_bad_row_and_makes_nothing(
    api: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    client, headers = api
    bad = f"""kind,site,reference,party,line,product,lot,quantity,unit,ssccs
receiving,site1,ASN-1,Acme,1,VX10,L9,20,case,{sscc(1)}
receiving,site1,ASN-1,Other,2,PLAIN,,5,each,
receiving,site1,ASN-2,,1,VX10,,zero,case,
receiving,site1,ASN-3,,1,VX10,,1,crate,
receiving,site1,ASN-4,,1,VX10,,1,case,{sscc(1)[:-1]}9
return,site1,RMA-1,,1,VX10,,1,case,
receiving,site1,ASN-5,,1,GONE,,1,case,
receiving,site1,ASN-6,,1,VX10,,1,case,
receiving,site1,ASN-6,,1,PLAIN,,1,case,
"""
    reply = send(client, headers, bad)
    assert reply.status_code == 422, reply.text
    found = [(e["line"], e["column"], e["value"], e["why"]) for e in reply.json()["detail"]]
    assert found == [
        (2, "lot", "L9", "no lot 'L9' of product 'VX10' in the catalog"),
        (3, "party", "Other", "differs from line 2's 'Acme' of the same document"),
        (4, "quantity", "zero", "'zero' is not a whole number from 1 to 10000000"),
        (5, "unit", "crate", "'crate' is not a unit (each, pack, case, pallet)"),
        (6, "ssccs", sscc(1)[:-1] + "9", f"the check digit of SSCC {sscc(1)[:-1]}9 is wrong"),
        (7, "kind", "return", "'return' is not a kind of document (receiving, dispatch, transfer)"),
        (8, "product", "GONE", "no product 'GONE' in the catalog"),
        (10, "line", "1", "1 is also lines[0]"),
    ]
    assert reply.json()["summary"].startswith(
        "documents file refused, nothing imported: 8 problem(s): line 2"
    )
    assert stored(engine) == (0, [])


def test_a_file_that_is_no_csv_or_lacks_columns(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    lacking = send(client, headers, "kind,site,reference,product\nreceiving,site1,A,VX10\n")
    assert [(e["line"], e["column"], e["why"]) for e in lacking.json()["detail"]] == [
        (1, "quantity", "the header lacks this column")
    ]
    assert send(client, headers, b"\xff\xfe").status_code == 422
    assert send(client, headers, "").status_code == 422
    other = send(client, headers, "x", "application/xml")
    assert other.status_code == 422 and other.json()["detail"][0]["loc"] == ["body", "content-type"]


def test_json_documents_whole_or_nothing(api: tuple[TestClient, dict[str, str]], engine: Engine) -> None:
    client, headers = api
    good = [note("ASN-7"), note("SO-7", kind="dispatch", lines=[{"product": "VX10", "quantity": 2}])]
    bad = [
        *good,
        note(
            "ASN-8",
            lines=[{"product": "VX10", "quantity": 1}, {"product": "VX10", "lot": "L9", "quantity": 1}],
        ),
        "a string",
        note("ASN-7"),
    ]
    refused = send(client, headers, json.dumps(bad), "application/json")
    assert refused.status_code == 422
    assert [(e["line"], e["column"], e["value"]) for e in refused.json()["detail"]] == [
        (3, "lines[1].lot", "L9"),
        (4, "-", '"a string"'),
        (5, "reference", "ASN-7"),
    ]
    assert stored(engine) == (0, [])
    assert send(client, headers, "{not json", "application/json").status_code == 422
    made = send(client, headers, json.dumps(good), "application/json")
    assert made.status_code == 200 and made.json()["documents"] == 2, made.text
    assert stored(engine)[0] == 2
