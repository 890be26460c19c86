"""The batch-history routes (``cloud/api/routes/history.py``) on both dialects: the lot's history as JSON
with its hash, as CSV and as a PDF rendered to PNG; a pallet's; a lot nobody received, an unknown lot and
a malformed GTIN; who may read it (a stranger 401; the role matrix is ``tests/test_api_access.py``'s).
"""

from __future__ import annotations

import csv
import datetime
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.api.app import create_app
from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.reports.pdf import content_sha256
from tests.rig.custody_world import GTIN, PALLET
from tests.rig.documents import QA
from tests.rig.epcis import valid
from tests.rig.history_world import AS_OF, history_world
from tests.rig.people import bearer, person

LOT = f"/lots/{GTIN}/L1/history"
WHEN = {"as_of": str(AS_OF)}
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    history_world(engine)
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_the_lots_history_as_json_with_its_hash(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.get(LOT, headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    history = reply.json()
    assert (history["product"], history["gtin"], history["lot"]) == ("VX10", GTIN, "L1")
    assert history["custody_recorded"] is True
    places = [(s["custody"], s["location"] or s["party"]) for s in history["segments"]]
    assert places[0] == ("supplier", "Acme Pharma GmbH") and ("customer", "Hospital B") in places
    cr2 = next(s for s in history["segments"] if s["location"] == "CR2")
    assert cr2["temperature"]["above_s"] == 1200.0 and cr2["excursions"][0]["rule"] == "temperature.high"
    assert history["totals"]["out_of_range_s"] == 1200.0
    assert history["totals"]["unmonitored_s"] == 1800.0
    assert history["as_of"] == "2026-12-01T14:00:00.000Z"
    hashed = history.pop("report_sha256")
    assert hashed == content_sha256(history)  # anyone holding the JSON can recompute the PDF's hash
    again = client.get(LOT, headers=headers, params=WHEN).json()
    assert again["report_sha256"] == hashed  # the same records, the same moment: the same hash


def test_the_lots_history_as_csv(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.get(f"{LOT}.csv", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    cr2 = [r for r in rows if r["location"] == "CR2"]
    expected = [("t-cr2", "1200.0", "gw01-a-cr2-high")]
    assert [(r["sensor"], r["above_s"], r["excursions"]) for r in cr2] == expected
    assert rows[-1]["custody"] == "totals" and rows[-1]["unmonitored_s"] == "1800.0"
    assert {r["custody"] for r in rows} == {"supplier", "ours", "customer", "totals"}


def test_the_lots_history_as_a_pdf_an_inspector_can_read(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.get(f"{LOT}.pdf", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/pdf" and reply.content.startswith(b"%PDF")
    pdftoppm, pdftotext = shutil.which("pdftoppm"), shutil.which("pdftotext")
    if pdftoppm is None or pdftotext is None:
        pytest.skip("poppler-utils is not installed (scripts/setup.sh installs it)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    pdf = SHOTS / "history_lot_L1.pdf"
    pdf.write_bytes(reply.content)
    subprocess.run([pdftoppm, "-png", "-r", "70", str(pdf), str(SHOTS / "history_lot_L1")], check=True)
    pages = sorted(SHOTS.glob("history_lot_L1-*.png"))
    assert pages and all(p.stat().st_size > 10_000 for p in pages)
    text = subprocess.run([pdftotext, str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip
    digest = client.get(LOT, headers=headers, params=WHEN).json()["report_sha256"]
    words = " ".join(text.split())
    for seen in ("Batch history", "lot L1", "Acme Pharma GmbH", "CR2", "temperature.high", "Pharmacy A",
                 "ASN-9", "SO-1", "Reviewed by", "page 1 of", "2026-12-01 10:00", "30 min"):  # fmt: skip
        assert seen in words, seen
    assert digest in text.replace("\n", "").replace(" ", "")


def test_the_lots_history_as_schema_valid_epcis(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.get(f"{LOT}.epcis.json", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/ld+json")
    document = valid(reply.json())
    events = document["epcisBody"]["eventList"]
    steps = [e.get("bizStep") for e in events]
    assert {"receiving", "storing", "shipping", "sensor_reporting"} <= set(steps), steps
    assert any(e["type"] == "AggregationEvent" for e in events)  # the pallet and its cases
    shipped = [e for e in events if e.get("bizStep") == "shipping"]
    assert len(shipped) >= 2 and all(e["bizTransactionList"] for e in shipped)  # SO-1 and SO-2, named
    elements = [element for e in events for element in e.get("sensorElementList", ())]
    reports = [r for element in elements for r in element["sensorReport"]]
    assert max(r["maxValue"] for r in reports if "maxValue" in r) == 9.5  # CR2's excursion
    assert all(r.get("uom", "CEL") == "CEL" for r in reports if r.get("type") == "Temperature")
    again = client.get(f"{LOT}.epcis.json", headers=headers, params=WHEN)
    assert again.content == reply.content  # the same history, the same bytes and event ids


def test_a_pallets_history(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.get(f"/units/{PALLET}/history", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["lot"] == "L1" and body["subject"].startswith("pallet")
    assert [s["location"] for s in body["segments"] if s["custody"] == "ours"] == ["CR1", "CR3"]


def test_a_lot_nobody_received_an_unknown_lot_and_a_bad_gtin(
    api: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    client, headers = api
    with engine.begin() as conn:
        put_lot(conn, "VX10", "L9", {"expiry": "2028-01-31"}, reason="ASN", by=QA,
                now=datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))  # fmt: skip
    empty = client.get(f"/lots/{GTIN}/L9/history", headers=headers, params=WHEN)
    assert empty.status_code == 200, empty.text
    body: dict[str, Any] = empty.json()
    assert body["custody_recorded"] is False and body["segments"] == []
    assert "No custody is recorded for lot L9" in body["notes"][0]
    unknown = client.get(f"/lots/{GTIN}/NOPE/history", headers=headers)
    assert unknown.status_code == 404 and "NOPE" in unknown.text
    bad = client.get("/lots/04006381333932/L1/history", headers=headers)
    assert bad.status_code == 422 and "check digit" in bad.text
    assert client.get(LOT).status_code == 401
    assert client.get(LOT, headers=headers, params={"as_of": "yesterday-ish"}).status_code == 422
