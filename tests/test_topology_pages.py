"""The topology page on both dialects: each finding of a laid-out site with the proposal's location name,
gateways with nothing to compare named in one line, an unknown gateway a 404 page, the gateways page
linking to it; and in Chromium, signed in as a QA manager, with a screenshot for a person to look at."""

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
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.people import bearer, person
from tests.rig.topology import lay_out_site, report_topology


@pytest.fixture
def laid_out(engine: Engine) -> Engine:
    now = datetime.datetime.now(datetime.UTC)
    lay_out_site(engine, now)
    report_topology(engine, int(now.timestamp() * 1000) - 60_000)
    return engine


@pytest.fixture
def pages(laid_out: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(laid_out, "vera", ("viewer",))
    with TestClient(create_web_app(laid_out, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def cells(page: str, device: str) -> list[str]:
    pattern = rf'<tr class="state-[a-z]+" data-device="{device}" data-state="([a-z]+)">(.*?)</tr>'
    row = re.search(pattern, page, re.S)
    assert row is not None, device
    texts = [re.sub(r"<[^>]+>", " ", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(2), re.S)]
    return [row.group(1), *(html.unescape(" ".join(t.split())) for t in texts)]


def test_the_page_shows_every_finding_with_the_proposals_names(
    pages: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = pages
    page = client.get("/dashboard/topology", headers=headers)
    assert page.status_code == 200, page.text
    text = page.text
    assert cells(text, "sensor/cr1-t01")[:5] == ["agreeing", "cr1-t01 sensor", "zone CR1", "Cold room 1 CR1",
                                                 "agreeing"]  # fmt: skip
    assert cells(text, "sensor/cr1-t02")[4:6] == ["proposed", "Cold room 1 CR1"]
    assert cells(text, "reader/dock1-r1")[2:7] == ["door D1 zone CR1", "—", "proposed", "Dock door 1 D1",
        "not placed; the configuration puts it at door D1: location D1 (Dock door 1)"]  # fmt: skip
    assert cells(text, "sensor/cr2-t01")[0] == "drift"
    assert cells(text, "sensor/old-t09")[2:5] == ["not configured", "Cold room 2 CR2", "gone"]
    assert "site site1 has no location D9" in cells(text, "scanner/dock1-s1")[-1]
    assert re.search(r'data-zone="FZ" data-state="unlocated"', text)
    assert re.search(r'data-count="proposed">2 proposed<', text)
    # A viewer may not accept: the page says who may.
    assert "2 proposals await someone who may manage the catalog" in html.unescape(text)
    silent = re.search(r'<p class="note silent">(.*?)</p>', text, re.S)
    assert silent is not None and silent.group(1).startswith("Nothing to compare for gw00, gw02, gw03")
    assert silent.group(1).endswith(": no status heard from it yet.")
    one = client.get("/dashboard/topology", params={"gateway": "gw01"}, headers=headers)
    assert one.status_code == 200 and 'class="note silent"' not in one.text
    unknown = client.get("/dashboard/topology", params={"gateway": "gw-x"}, headers=headers)
    assert unknown.status_code == 404 and "no enrolled gateway" in unknown.text
    gateways = client.get("/dashboard/gateways", headers=headers)
    assert 'href="/dashboard/topology"' in gateways.text
    assert 'name="device"' not in text  # nothing to tick for a viewer
    form = {"reason": "checked on site", "device": ["sensor/cr1-t02"]}
    refused = client.post("/dashboard/topology/gw01/accept", data=form, headers=headers)
    assert refused.status_code == 403


def test_a_qa_manager_accepts_the_ticked_proposals_with_a_reason(laid_out: Engine) -> None:
    _, token = person(laid_out, "quinn", ("qa_manager",))
    headers = bearer(token)
    url = "/dashboard/topology/gw01/accept"
    with TestClient(create_web_app(laid_out, ApiTokens(())), raise_server_exceptions=False) as client:
        page = client.get("/dashboard/topology", headers=headers).text
        assert 'value="sensor/cr1-t02" form="accept-gw01" checked' in page
        assert 'value="reader/dock1-r1" form="accept-gw01" checked' in page
        blank = client.post(url, data={"reason": " ", "device": ["sensor/cr1-t02"]}, headers=headers)
        assert blank.status_code == 422 and "Refused, nothing changed: reason: must say why" in blank.text
        none = client.post(url, data={"reason": "checked"}, headers=headers)
        assert none.status_code == 422 and "tick the proposals to accept" in none.text
        wrong = client.post(url, data={"reason": "checked", "device": ["sensor/fz-t01"]}, headers=headers)
        assert wrong.status_code == 422 and "sensor fz-t01 has no proposal" in wrong.text
        form = {"reason": "checked on site", "device": ["sensor/cr1-t02"]}
        done = client.post(url, data=form, headers=headers, follow_redirects=False)
        assert done.status_code == 303
        assert done.headers["location"] == "/dashboard/topology?gateway=gw01&done=placed+cr1-t02+at+CR1"
        after = client.get(done.headers["location"], headers=headers).text
        assert "Done: placed cr1-t02 at CR1 (recorded in the audit trail)" in after
        assert (
            cells(after, "sensor/cr1-t02")[0] == "agreeing"
            and cells(after, "reader/dock1-r1")[0] == "proposed"
        )
        unknown = client.post("/dashboard/topology/gw-x/accept", data=form, headers=headers)
        assert unknown.status_code == 404


def test_in_a_browser_a_qa_manager_sees_the_findings(browser: Any, laid_out: Engine, db_url: str) -> None:
    from playwright.sync_api import expect

    person(laid_out, "quinn", ("qa_manager",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(laid_out, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "quinn")
        page.goto(site + "/dashboard/gateways")
        page.click("a.topology-link")
        expect(page).to_have_url(site + "/dashboard/topology")
        row = page.locator('tr[data-device="reader/dock1-r1"]')
        expect(row).to_have_attribute("data-state", "proposed")
        expect(row.locator("td.proposal")).to_contain_text("Dock door 1")
        shot(page, f"topology-{dialect}")
        page.uncheck('input[value="reader/dock1-r1"]')
        page.fill("#accept-gw01 input[name=reason]", "sensor moved in on 2026-12-06, checked on site")
        page.click("#accept-gw01 button[type=submit]")
        expect(page.locator(".done")).to_contain_text("placed cr1-t02 at CR1")
        expect(page.locator('tr[data-device="sensor/cr1-t02"]')).to_have_attribute("data-state", "agreeing")
        expect(row).to_have_attribute("data-state", "proposed")
        shot(page, f"topology-accepted-{dialect}")
        context.close()
