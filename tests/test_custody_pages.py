"""The custody pages on both dialects (``cloud/web/custody_pages.py``), on issue 15's story
(``tests/rig/custody_world.py``): a lot's page with its stock, its customers, its pallet and every stay,
linked from the catalog's lots and the document's lines; a case's and a pallet's page; an unknown lot a
404 page, a malformed unit id a 422 page; and in Chromium, a viewer going from the catalog to the lot and
on to a case, with screenshots for a person to look at."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.custody_world import PALLET, CustodyWorld, custody_world
from tests.rig.people import bearer, person

LOT = "/dashboard/lots/VX10/L1/custody"


@pytest.fixture
def world(engine: Engine) -> CustodyWorld:
    return custody_world(engine)


@pytest.fixture
def pages(engine: Engine, world: CustodyWorld) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_the_lot_and_unit_pages(pages: tuple[TestClient, dict[str, str]], world: CustodyWorld) -> None:
    client, headers = pages
    page = client.get(LOT, headers=headers)
    assert page.status_code == 200, page.text
    stock = re.findall(r'<tr data-stock="([^"]+)"><td>site1</td><td>CR3</td><td>1</td><td>0</td>', page.text)
    assert stock == ["site1/CR3"]
    assert re.findall(r'<tr data-customer="([^"]+)">', page.text) == ["Pharmacy A", "Hospital B"]
    wheres = re.findall(r'<tr data-stay="serial:VX10/1003" data-where="([^"]+)"', page.text)
    assert wheres == ["CR1", "CR3", "Pharmacy A"]
    assert len(re.findall(r"<tr data-stay=", page.text)) == 14
    assert (
        f'href="/dashboard/units/{PALLET}"' in page.text and 'href="/dashboard/units/VX10~1003"' in page.text
    )
    assert f'href="/dashboard/documents/{world.to_pharmacy}"' in page.text
    assert 'datetime="2026-12-01T12:01:01.000Z"' in page.text and 'data-status="released"' in page.text
    case = client.get("/dashboard/units/VX10~1003", headers=headers)
    assert case.status_code == 200 and 'href="/dashboard/lots/VX10/L1/custody"' in case.text
    assert re.findall(r'<tr data-stay="[^"]+" data-where="([^"]+)"', case.text) == [
        "CR1",
        "CR3",
        "Pharmacy A",
    ]
    pallet = client.get(f"/dashboard/units/{PALLET}", headers=headers)
    assert re.findall(r'<tr data-stay="[^"]+" data-where="([^"]+)"', pallet.text) == ["CR1", "CR3"]
    counted = client.get("/dashboard/lots/PLAIN/G1/custody", headers=headers)
    assert re.findall(r'data-stay="lot:PLAIN/G1" data-where="([^"]+)"', counted.text)[-1] == "CR2"
    # Linked from the catalog's lots and from the document's lines.
    assert f'href="{LOT}"' in client.get("/dashboard/catalog", headers=headers).text
    assert f'href="{LOT}"' in client.get(f"/dashboard/documents/{world.receipt}", headers=headers).text
    missing = client.get("/dashboard/lots/VX10/L9/custody", headers=headers)
    assert missing.status_code == 404 and "no lot &#39;L9&#39;" in missing.text
    malformed = client.get("/dashboard/units/junk", headers=headers)
    assert malformed.status_code == 422 and "is none of" in html.unescape(malformed.text)
    assert client.get(LOT, follow_redirects=False).status_code == 303


def test_in_a_browser_from_the_catalog_to_the_lot_and_a_case(
    browser: Any, engine: Engine, world: CustodyWorld, db_url: str
) -> None:
    from playwright.sync_api import expect

    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(f"{site}/dashboard/catalog")
        page.click('tr[data-lot="VX10/L1"] a.custody-link')
        expect(page).to_have_url(site + LOT)
        expect(page.locator('tr[data-stock="site1/CR3"]')).to_contain_text("1")
        expect(page.locator("tr[data-customer]")).to_have_count(2)
        party = page.locator('tr[data-where="Hospital B"] td.where strong').first
        assert party.evaluate("e => getComputedStyle(e).color") == "rgb(179, 38, 30)"  # --bad
        shot(page, f"custody-lot-{dialect}")
        page.click('tr[data-stay="serial:VX10/1003"] a.unit-link >> nth=0')
        expect(page).to_have_url(site + "/dashboard/units/VX10~1003")
        expect(page.locator("tr[data-stay]")).to_have_count(3)
        expect(page.locator('tr[data-where="CR3"] td.began')).to_contain_text("put-away")
        shot(page, f"custody-case-{dialect}")
        # A serial holding '/': escaped as in an EPC URI, and that again in the URL; read as 'A/1'.
        reply = page.goto(f"{site}/dashboard/units/VX10~A%252F1")
        assert reply is not None and reply.status == 404
        expect(page.locator("p.error")).to_contain_text("serial 'A/1' of product 'VX10'")
        context.close()
