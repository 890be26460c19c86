"""The documents pages on both dialects: the list with its filters (a filter the store refuses said on
the page), one document with its header, lines and every version with who, when and why; an unknown
document a 404 page; and in Chromium, signed in as a viewer, with screenshots for a person to look at."""

from __future__ import annotations

import datetime
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.documents import documents as store
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.documents import DOCK, NOW, note, stock_the_dock
from tests.rig.people import bearer, person


@pytest.fixture
def worked(engine: Engine) -> tuple[Engine, str, str]:
    """A receiving note edited once, released to D1 and started; a dispatch order left a draft."""
    stock_the_dock(engine)
    minute = datetime.timedelta(minutes=1)
    with engine.begin() as conn:
        receiving = store.create_document(conn, note(), reason="ASN 1001 received", by=DOCK, now=NOW)["id"]
        lines = [*note()["lines"], {"product": "VX10", "lot": "L2", "quantity": 4}]
        store.put_document(
            conn,
            receiving,
            {"party": "Acme Pharma GmbH", "lines": lines},
            reason="ASN 1001 rev 2: a third line",
            by=DOCK,
            now=NOW + minute,
        )
        move_document(
            conn, receiving, "released", door="D1", reason="truck at door 1", by=DOCK, now=NOW + 2 * minute
        )
        move_document(
            conn, receiving, "in_progress", reason="first case", by=DOCK, now=NOW + 3 * minute
        )
        dispatch = note(
            "SO-77",
            kind="dispatch",
            party="Clinic Nord, Hamburg",
            lines=[{"product": "PLAIN", "quantity": 12, "unit": "pack"}],
        )
        order = store.create_document(conn, dispatch, reason="order in", by=DOCK, now=NOW + 4 * minute)["id"]
    return engine, receiving, order


@pytest.fixture
def pages(worked: tuple[Engine, str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    engine = worked[0]
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def rows(page: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)"', page)


def test_the_list_and_its_filters(
    pages: tuple[TestClient, dict[str, str]], worked: tuple[Engine, str, str]
) -> None:
    client, headers = pages
    _, receiving, order = worked
    page = client.get("/dashboard/documents", headers=headers)
    assert page.status_code == 200, page.text
    assert rows(page.text, "data-document") == [order, receiving]  # most recently changed first
    assert 'href="/dashboard/documents"' in page.text  # the nav link
    assert "SO-77" in page.text and "Clinic Nord, Hamburg" in page.text
    open_ = client.get("/dashboard/documents", params={"state": "open"}, headers=headers)
    assert rows(open_.text, "data-document") == [receiving]
    by_door = client.get("/dashboard/documents", params={"door": "D1", "kind": "receiving"}, headers=headers)
    assert rows(by_door.text, "data-document") == [receiving]
    none = client.get("/dashboard/documents", params={"site": "site9"}, headers=headers)
    assert rows(none.text, "data-document") == [] and "No document for these filters." in none.text
    wrong = client.get("/dashboard/documents", params={"state": "lost"}, headers=headers)
    assert wrong.status_code == 422 and rows(wrong.text, "data-document") == [order, receiving]
    assert "Filter not applied: state: &#39;lost&#39; is no state" in wrong.text


def test_one_document_with_lines_and_history(
    pages: tuple[TestClient, dict[str, str]], worked: tuple[Engine, str, str]
) -> None:
    client, headers = pages
    _, receiving, _ = worked
    page = client.get(f"/dashboard/documents/{receiving}", headers=headers)
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Receiving ASN-1001" in text and "Acme Pharma GmbH" in text
    assert rows(page.text, "data-line") == ["1", "2", "3"]
    assert re.findall(r'<tr data-version="(\d+)"', page.text) == ["4", "3", "2", "1"]
    for said in (
        "ASN 1001 rev 2: a third line",
        "line 3 added",
        "state: draft → released",
        "door: — → D1",
        "truck at door 1",
        "Dora Dock",
        "created",
    ):
        assert said in text, said
    missing = client.get("/dashboard/documents/doc-none", headers=headers)
    assert missing.status_code == 404 and "no document" in missing.text


def test_in_a_browser_a_viewer_finds_the_note_at_the_door(
    browser: Any, worked: tuple[Engine, str, str], db_url: str
) -> None:
    from playwright.sync_api import expect

    engine, receiving, _ = worked
    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.click("nav >> text=Documents")
        expect(page).to_have_url(site + "/dashboard/documents")
        page.select_option("select[name=state]", "in_progress")
        page.click("form.documents-filters button[type=submit]")
        expect(page.locator("tr[data-document]")).to_have_count(1)
        shot(page, f"documents-{dialect}")
        page.click(f'tr[data-document="{receiving}"] a.document-link')
        expect(page.locator("table.document-lines tr[data-line]")).to_have_count(3)
        expect(page.locator('tr[data-version="3"]')).to_contain_text("truck at door 1")
        shot(page, f"document-{dialect}")
        context.close()
