"""The page of master-data changes on both dialects (``cloud/web/catalog_change_pages.py``): what
awaits approval (what changed, by whom, when, why, before → after), the signature dialog, refusals said
on the page, approved changes with their signatures; and in Chromium a QA manager's change approved by
another through the dialog, with screenshots for a person to look at."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.lots import move_lot, put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db.models import AuditEntry, User
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.people import PASSWORD, bearer, person

NOW = datetime.datetime(2026, 12, 7, 8, 30, tzinfo=datetime.UTC)
PAGE = "/dashboard/catalog/changes"


def _catalog(engine: Engine) -> None:
    """Marta's changes (a class, its narrower limits, a product, a lot, a room) and a lot status move."""
    with engine.connect() as conn:
        marta_id = conn.execute(select(User.id).where(User.login == "marta")).scalar_one()
    marta = Actor("Marta Tester", marta_id)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=marta, now=NOW)
        put_class(conn, "2-8C", {"low": 2, "high": 6}, reason="stability data", by=marta,
                  now=NOW + datetime.timedelta(minutes=5))  # fmt: skip
        product = {"name": "Vaccine", "gtin": "04006381333931", "temperature_class": "2-8C"}
        put_product(conn, "VX10", product, reason="new product", by=marta, now=NOW)
        put_lot(conn, "VX10", "L1", {"expiry": "2027-06-30"}, reason="supplier CoA", by=marta, now=NOW)
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
        put_location(conn, "site1", "cr1", room, reason="site survey", by=marta, now=NOW)
        move_lot(conn, "VX10", "L1", "quarantined", reason="deviation DV-7", by=marta, now=NOW)


@pytest.fixture
def pages(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    roles = {"vera": ("viewer",), "quentin": ("qa",), "marta": ("qa_manager",), "mona": ("qa_manager",)}
    headers = {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}
    _catalog(engine)
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, headers


def _rows(html: str) -> list[str]:
    return re.findall(r'data-change="(\d+)"', html)


def test_the_page_lists_what_awaits_approval_and_signs_an_approval(
    pages: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, h = pages
    viewer = client.get(PAGE, headers=h["vera"])
    assert viewer.status_code == 200, viewer.text
    seqs = _rows(viewer.text)
    assert len(seqs) == 5  # the lot's status move is a QA decision, not listed
    shown = ("Temperature class changed", "spec.high: 8 → 6", "stability data", "Marta Tester",
             "Awaiting approval (5)", "Approved (0)", "Awaiting approval by QA", "Lot created")  # fmt: skip
    for words in shown:
        assert words in viewer.text, words
    assert "open-signature" not in viewer.text  # a viewer is offered nothing to sign
    # The author sees hers as hers; another QA manager is offered the dialog (login: a token signs).
    assert viewer.text.count("Your change") == 0
    assert client.get(PAGE, headers=h["marta"]).text.count("Your change: another person approves it.") == 5
    mona = client.get(PAGE, headers=h["mona"]).text
    assert mona.count('class="open-signature"') == 5 and 'name="login"' in mona
    # The catalog links to it.
    assert f'href="{PAGE}"' in client.get("/dashboard/catalog", headers=h["vera"]).text
    limits = seqs[3]  # newest first: the room, the lot, the product, the class's new limits, the class
    form = {"reason": "checked against the stability report", "login": "mona", "password": "nope"}
    refused = client.post(f"{PAGE}/{limits}/approve", data=form, headers=h["mona"])
    assert refused.status_code == 403 and "the password is wrong" in refused.text
    own = client.post(f"{PAGE}/{limits}/approve", data={**form, "login": "marta", "password": PASSWORD},
                      headers=h["marta"])  # fmt: skip
    assert own.status_code == 403 and "you made this change: another person approves it" in own.text
    denied = client.post(f"{PAGE}/{limits}/approve", data={**form, "login": "vera"}, headers=h["vera"])
    assert denied.status_code == 403
    done = client.post(f"{PAGE}/{limits}/approve", data={**form, "password": PASSWORD}, headers=h["mona"],
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and f"change+{limits}+approved" in done.headers["location"]
    again = client.post(f"{PAGE}/{limits}/approve", data={**form, "login": "quentin", "password": PASSWORD},
                        headers=h["quentin"])  # fmt: skip
    assert again.status_code == 409 and "already approved (by Mona Tester" in again.text
    missing = client.post(f"{PAGE}/999999/approve", data={**form, "password": PASSWORD}, headers=h["mona"])
    assert missing.status_code == 404 and "no audit entry 999999" in missing.text
    approved = client.get(PAGE + "?state=approved", headers=h["vera"]).text
    assert _rows(approved) == [limits]
    for words in ("Approved</strong> by Mona Tester", " UTC", "checked against the stability report",
                  "matches the change", "Awaiting approval (4)", "Approved (1)"):  # fmt: skip
        assert words in approved, words
    assert limits not in _rows(client.get(PAGE, headers=h["vera"]).text)
    assert len(_rows(client.get(PAGE + "?state=all", headers=h["vera"]).text)) == 5
    bad = client.get(PAGE + "?state=bogus", headers=h["vera"])
    assert bad.status_code == 422 and "Filter not applied" in bad.text and len(_rows(bad.text)) == 4
    with engine.connect() as conn:
        refusals = conn.execute(
            select(AuditEntry.actor_name).where(AuditEntry.action == "catalog.change_approval_refused")
        ).scalars()
        assert sorted(refusals) == ["Marta Tester", "Mona Tester", "Mona Tester", "Quentin Tester"]


def test_in_a_browser_another_manager_approves_the_change(browser: Any, engine: Engine, db_url: str) -> None:
    from playwright.sync_api import expect

    for login, roles in (("marta", ("qa_manager",)), ("mona", ("qa_manager",))):
        person(engine, login, roles)
    _catalog(engine)
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "mona")
        page.click("nav >> text=Catalog")
        page.click("a.changes-link")
        expect(page.locator("tr[data-change]")).to_have_count(5)
        shot(page, f"catalog-changes-awaiting-{dialect}")
        limits = page.locator("tr[data-change]", has_text="Temperature class changed")
        seq = limits.get_attribute("data-change")
        limits.locator("button.open-signature").click()
        dialog = page.locator(f"dialog#approve-{seq}")
        expect(dialog).to_be_visible()
        expect(dialog.locator("input[name=login]")).to_be_visible()  # her first signature in this session
        dialog.locator("textarea[name=reason]").fill("checked against the stability report")
        dialog.locator("input[name=login]").fill("mona")
        dialog.locator("input[name=password]").fill("not my password")
        shot(page, f"catalog-changes-dialog-{dialect}")
        dialog.locator("button.sign").click()
        expect(page.locator("p.error")).to_contain_text("the password is wrong")
        page.locator(f'tr[data-change="{seq}"] button.open-signature').click()
        dialog.locator("textarea[name=reason]").fill("checked against the stability report")
        dialog.locator("input[name=login]").fill("mona")
        dialog.locator("input[name=password]").fill(PASSWORD)
        dialog.locator("button.sign").click()
        expect(page.locator("p.done")).to_contain_text(f"change {seq} approved")
        expect(page.locator("tr[data-change]")).to_have_count(4)
        # Her next signature in this session: the password is enough.
        nxt = page.locator("tr[data-change]").first
        nxt_seq = nxt.get_attribute("data-change")
        nxt.locator("button.open-signature").click()
        dialog = page.locator(f"dialog#approve-{nxt_seq}")
        expect(dialog.locator("input[name=login]")).to_have_count(0)
        dialog.locator("input[name=password]").fill(PASSWORD)
        dialog.locator("button.sign").click()
        expect(page.locator("p.done")).to_contain_text(f"change {nxt_seq} approved")
        page.click("a[data-state=approved]")
        expect(page.locator("tr[data-change]")).to_have_count(2)
        expect(page.locator(f'tr[data-change="{seq}"] .change-signature')).to_contain_text(
            "Approved by Mona Tester"
        )
        expect(page.locator(f'tr[data-change="{seq}"] .sig-ok')).to_have_text("matches the change")
        shot(page, f"catalog-changes-approved-{dialect}")
        context.close()
        # Marta, the author, is offered no signature on her own changes.
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "marta")
        page.goto(site + PAGE)
        expect(page.locator("button.open-signature")).to_have_count(0)
        expect(page.locator(".own-change")).to_have_count(3)
        context.close()
