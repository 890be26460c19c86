"""The gateways page says which published documents each enrolled gateway has in force: the words of
each state (pure), then the page over statuses sent through ingest, on both dialects."""

from __future__ import annotations

import datetime
import re

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.downlink.currency import Currency, currency
from coldgate.cloud.downlink.versions import due_documents
from coldgate.cloud.web.admin_pages import downlink_words
from coldgate.cloud.web.app import create_web_app
from coldgate.contract.uplink import DocumentVersions
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import status_message
from tests.rig.people import bearer, person

#: 2026-12-06 11:03 UTC, 12:03 in Berlin.
T = int(datetime.datetime(2026, 12, 6, 11, 3, tzinfo=datetime.UTC).timestamp() * 1000)
PUBLISHED = [(1, T - 3_600_000), (2, T - 60_000), (3, T)]
BERLIN = "Europe/Berlin"


def test_each_state_in_words_with_its_time_in_the_site_zone() -> None:
    assert downlink_words(currency("g", "recall", PUBLISHED, {"versions": {"recall": 3}}), BERLIN) == (
        "recall list v3 in force"
    )
    behind = currency("g", "recall", PUBLISHED, {"versions": {"recall": 2}})
    words = downlink_words(behind, BERLIN)
    assert words == "behind since 2026-12-06 12:03 +01:00 (v3 published, v2 in force)"
    errors = [{"kind": "recall_rejected", "message": "recall version 3: bad signature"}]
    rejected = currency("g", "recall", PUBLISHED, {"versions": {"recall": 2}, "errors": errors})
    assert downlink_words(rejected, BERLIN) == (
        "rejected: recall version 3: bad signature (v3 published since 2026-12-06 12:03 +01:00, v2 in force)"
    )
    unknown = downlink_words(currency("g", "master", PUBLISHED, None), "UTC")
    assert unknown == "not reported: v3 published; the gateway has not said what it holds (waiting since " \
        "2026-12-06 10:03 +00:00)"
    none = Currency("g", "master", None, None, None, "none published", None, "nothing published yet")
    assert downlink_words(none, BERLIN) == "master data: nothing published yet"


def test_the_gateways_page_shows_each_document_in_force_or_behind(engine: Engine) -> None:
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=Actor("QA"), now=RECEIVED)
        due_documents(conn, RECEIVED, {"gw01", "gw02"})  # master v1 and recall v1 each
    ts = int(RECEIVED.timestamp() * 1000)
    ingest(engine, *status_message("gw01", ts=ts + 1000, versions=DocumentVersions(master=1, recall=1)))
    ingest(engine, *status_message("gw02", ts=ts + 1000, versions=DocumentVersions(master=1)))
    _, token = person(engine, "ada", ("admin",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        page = client.get("/dashboard/gateways", headers=bearer(token))
    assert page.status_code == 200, page.text

    def cell(gateway: str, kind: str) -> str:
        row = re.search(rf'<tr data-downlink="{gateway}">(.*?)</tr>', page.text, re.S)
        assert row is not None, gateway
        found = re.search(rf'data-kind="{kind}" data-state="([^"]+)">([^<]*)<', row.group(1))
        assert found is not None, (gateway, kind)
        return f"{found.group(1)}: {found.group(2)}"

    assert cell("gw01", "recall") == "current: recall list v1 in force"
    assert cell("gw02", "master") == "current: master data v1 in force"
    behind = "behind: behind since 2026-12-06 12:00 +00:00 (v1 published, none in force)"
    assert cell("gw02", "recall") == behind
    assert 'data-downlink="gw03"' not in page.text  # nothing published to it: named in one line
    assert re.search(r"Nothing published yet to 28 enrolled gateways: gw00, gw03, gw04, .*gw29\.", page.text)
