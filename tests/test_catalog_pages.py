"""The catalog pages (read-only), on both dialects: classes, products and lots in force with the lot
status and product filters, and each record's history, every version with who, when, why and what it
changed; a bad filter or an unknown record is a page saying so, never a 500.  ``changes`` (pure) too."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from coldgate.cloud.web.catalog_pages import LOT_FIELDS, changes
from tests.rig.catalog import seed_catalog
from tests.rig.people import bearer, person


@pytest.fixture
def pages(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    seed_catalog(engine)
    _, token = person(engine, "vera", ("viewer",))  # catalog.read is everyone's
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def rows(page: str, kind: str) -> list[str]:
    return [html.unescape(x) for x in re.findall(rf'data-{kind}="([^"]+)"', page)]


def test_changes_name_each_field_that_differs() -> None:
    first = {"status": "released", "expiry": "2027-06-30", "retired": False}
    assert changes(None, first, LOT_FIELDS) == ["created"]
    assert changes(first, {**first, "status": "recalled"}, LOT_FIELDS) == ["status: released → recalled"]
    assert changes(first, {**first, "retired": True}, LOT_FIELDS) == ["retired: no → yes"]
    assert changes(first, dict(first), LOT_FIELDS) == ["no field changed"]
    assert changes(first, {**first, "expiry": None}, LOT_FIELDS) == ["expiry: 2027-06-30 → —"]


def test_the_catalog_lists_classes_products_and_lots_with_filters(
    pages: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = pages
    page = client.get("/dashboard/catalog", headers=headers)
    assert page.status_code == 200
    assert rows(page.text, "lot") == ["IN20/B7", "VX10/L1", "VX10/L2"]
    assert rows(page.text, "product") == ["IN20", "VX10"] and rows(page.text, "class") == ["15-25C", "2-8C"]
    assert 'class="lot-status status-recalled">recalled<' in page.text and "expired</span>" in page.text
    assert "GTIN 04006381333931" in page.text and "MA MA.156.M0.100003.IN20" in page.text
    assert "2.0 to 8.0 °C" in page.text and "900 s" in page.text
    recalled = client.get("/dashboard/catalog", params={"status": "recalled"}, headers=headers)
    assert rows(recalled.text, "lot") == ["VX10/L1"]
    one = client.get("/dashboard/catalog", params={"product": "VX10"}, headers=headers)
    assert rows(one.text, "lot") == ["VX10/L1", "VX10/L2"] and rows(one.text, "product") == ["VX10"]
    bad = client.get("/dashboard/catalog", params={"status": "lost"}, headers=headers)
    assert bad.status_code == 422 and "status: &#39;lost&#39; is none of released" in bad.text
    assert rows(bad.text, "lot") == ["IN20/B7", "VX10/L1", "VX10/L2"]


def test_each_record_has_its_history_newest_first(pages: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = pages
    lot = client.get("/dashboard/catalog/lot", params={"product": "VX10", "lot": "L1"}, headers=headers)
    assert lot.status_code == 200
    assert rows(lot.text, "version") == ["2", "1"]
    text = html.unescape(lot.text)
    assert "Rita Recall" in text and "FSN 2026-07: potency" in text and "status: released → recalled" in text
    assert "2026-12-01 11:00:00 +00:00" in text and "created" in text
    cls = html.unescape(client.get("/dashboard/catalog/class", params={"name": "2-8C"}, headers=headers).text)
    assert "pre_alarm_margin: 0.5 → 1.0" in cls and "alarm_delay_s: 0.0 → 900.0" in cls
    product = client.get("/dashboard/catalog/product", params={"product": "IN20"}, headers=headers)
    assert product.status_code == 200 and rows(product.text, "version") == ["1"]
    for kind, params, words in (
        ("lot", {"product": "VX10", "lot": "L9"}, "no lot &#39;L9&#39; of product &#39;VX10&#39;"),
        ("lot", {"product": "VX10"}, "lot: which lot"),
        ("serial", {}, "&#39;serial&#39; is none of class, product, lot"),
        ("class", {}, "name: which temperature class"),
    ):
        missing = client.get(f"/dashboard/catalog/{kind}", params=params, headers=headers)
        assert missing.status_code == 404 and words in missing.text, missing.text
