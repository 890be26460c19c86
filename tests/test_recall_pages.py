"""The recall pages on both dialects (``cloud/web/recall_pages.py``): the list and the opening form, a
recall's page with its customers, the stock to block, the forms (a notification, an acknowledgement, a
return, a refusal said on the page), the page to print; and in Chromium a recall coordinator runs a
recall from opening to the signed closing, with screenshots for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.catalog.lots import lot
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.custody_world import GTIN
from tests.rig.people import PASSWORD, bearer, person
from tests.rig.recall_world import recall_world

OPENING = {
    "recall_class": "I",
    "reason": "FSN 2026-12: sterility not assured",
    "lots": f"{GTIN} L1\nPLAIN G1\n",
}


@pytest.fixture
def pages(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    recall_world(engine)
    roles = {"rita": ("recall_coordinator",), "vera": ("viewer",)}
    headers = {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, headers


def test_open_notify_acknowledge_return_through_the_forms(
    pages: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = pages
    assert "Open a recall" not in client.get("/dashboard/recalls", headers=h["vera"]).text
    assert client.post("/dashboard/recalls", data=OPENING, headers=h["vera"]).status_code == 403
    bad = client.post("/dashboard/recalls", data={**OPENING, "lots": "04006381333932 L1"}, headers=h["rita"])
    assert bad.status_code == 422 and "check digit" in bad.text and "04006381333932 L1" in bad.text
    opened = client.post("/dashboard/recalls", data=OPENING, headers=h["rita"], follow_redirects=False)
    assert opened.status_code == 303, opened.text
    url = opened.headers["location"].split("?")[0]
    page = client.get(url, headers=h["rita"]).text
    assert re.findall(r'data-customer="([^"]+)"', page) == ["Hospital B", "Pharmacy A"]
    assert "status-recalled" in page and "<td>CR2</td>" in page and "<td>CR3</td>" in page
    with engine.connect() as conn:
        assert lot(conn, "VX10", "L1")["status"] == "recalled"
    early = client.post(
        f"{url}/customer", data={"customer": "Hospital B", "kind": "acknowledged"}, headers=h["rita"]
    )
    assert early.status_code == 409 and "no notification recorded yet" in early.text
    told = {"customer": "Hospital B", "kind": "notified", "channel": "phone", "note": "spoke to them",
            "at": "next tuesday"}  # fmt: skip
    vague = client.post(f"{url}/customer", data=told, headers=h["rita"])
    assert vague.status_code == 422 and "&#39;next tuesday&#39; is not a time" in vague.text
    done = client.post(f"{url}/customer", data={**told, "at": ""}, headers=h["rita"], follow_redirects=True)
    assert done.status_code == 200 and "Hospital B: notified" in done.text
    back = {"customer": "Hospital B", "lot": "PLAIN/G1", "quantity": "5"}
    done = client.post(f"{url}/returns", data=back, headers=h["rita"], follow_redirects=True)
    assert done.status_code == 200 and "5 of PLAIN lot G1" in done.text
    nonsense = client.post(f"{url}/returns", data={**back, "quantity": "lots"}, headers=h["rita"])
    assert nonsense.status_code == 422 and "is not a quantity" in nonsense.text
    long = client.post(f"{url}/returns", data={**back, "lot": "P" * 100 + "/G1"}, headers=h["rita"])
    assert long.status_code == 422 and "is not one of the recall" in long.text
    shut = client.post(
        f"{url}/close", data={"reason": "done", "password": PASSWORD, "login": "rita"}, headers=h["rita"]
    )
    assert shut.status_code == 409 and "not notified yet: Pharmacy A" in shut.text
    printed = client.get(f"{url}/print", headers=h["vera"]).text
    assert "customer notification list" in printed and printed.count('data-customer="Hospital B"') == 2
    listed = client.get("/dashboard/recalls?state=notifying", headers=h["vera"]).text
    assert url.rsplit("/", 1)[1] in listed
    assert client.get("/dashboard/recalls/recall-none", headers=h["vera"]).status_code == 404


def test_in_a_browser_a_coordinator_runs_a_recall_to_its_signed_closing(
    browser: Any, engine: Engine, db_url: str
) -> None:
    from playwright.sync_api import expect

    recall_world(engine)
    person(engine, "rita", ("recall_coordinator",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "rita")
        page.click("nav >> text=Recalls")
        page.select_option("form.recall-open select[name=recall_class]", "II")
        page.fill("form.recall-open input[name=reason]", OPENING["reason"])
        page.fill("form.recall-open textarea[name=lots]", OPENING["lots"])
        shot(page, f"recalls-open-form-{dialect}")
        page.click("form.recall-open button[type=submit]")
        expect(page.locator("p.done")).to_contain_text("recall opened")
        for name in ("Hospital B", "Pharmacy A"):
            row = page.locator(f'tr[data-customer="{name}"]')
            row.locator("select[name=channel]").select_option("email")
            row.locator("form:has(input[value=notified]) button").click()
            expect(page.locator("p.done")).to_contain_text(f"{name}: notified")
        row = page.locator('tr[data-customer="Pharmacy A"]')
        row.locator("input[name=note]").last.fill("stock quarantined")
        row.locator("form:has(input[value=acknowledged]) button").click()
        expect(page.locator("p.done")).to_contain_text("Pharmacy A: acknowledged")
        page.select_option("form.recall-return select[name=customer]", "Hospital B")
        page.select_option("form.recall-return select[name=lot]", "PLAIN/G1")
        page.fill("form.recall-return input[name=quantity]", "8")
        page.click("form.recall-return button[type=submit]")
        expect(page.locator("p.done")).to_contain_text("return of 8 from Hospital B")
        shot(page, f"recall-notifying-{dialect}")
        page.click("button.open-signature[data-dialog=sign-close]")
        dialog = page.locator("dialog#sign-close")
        dialog.locator("textarea[name=reason]").fill("all customers told, stock back or destroyed")
        dialog.locator("textarea[name=unacknowledged]").fill(
            "Hospital B returned all 8 units without a reply"
        )
        dialog.locator("input[name=login]").fill("rita")
        dialog.locator("input[name=password]").fill(PASSWORD)
        shot(page, f"recall-signature-dialog-{dialect}")
        dialog.locator("button.sign").click()
        expect(page.locator("h1 .recall-state")).to_have_text("closed")
        expect(page.locator("table.recall-signatures tr.matches")).to_have_count(1)
        shot(page, f"recall-closed-{dialect}")
        page.click("text=Customer list to print")
        expect(page.locator("table.print-list").first).to_be_visible()
        shot(page, f"recall-print-{dialect}")
        context.close()
