"""The QA pages on both dialects (``cloud/web/case_pages.py``): the inbox and its views, a case's page
with its evidence, chart, affected stock, signatures and timeline, the forms (a move, a note, a refusal
said on the page), the quarantine list; and in Chromium a QA manager and a QA person release a case
with two signatures through the signature dialog, with screenshots for a person to look at."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.alerts.notify_links import make_token
from coldgate.cloud.alerts.notify_queue import link_secret
from coldgate.cloud.api import ApiTokens
from coldgate.cloud.catalog.lots import lot
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.config import NotifyConfig
from coldgate.cloud.db.models import User
from coldgate.cloud.web.app import create_web_app
from coldgate.contract.evidence import Evidence
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.cloud_db import ingest
from tests.rig.custody_world import GATEWAY, T0, at, custody_world
from tests.rig.documents import QA
from tests.rig.ingest import batch_message
from tests.rig.items import alert, reading
from tests.rig.people import PASSWORD, bearer, person

NOW = datetime.datetime(2026, 12, 1, 18, tzinfo=datetime.UTC)
LIMITS = alert().evidence.limits


def _value(ms: int) -> float:
    """Cold room 2's temperature: 4.6 °C, warming above 8 °C from 09:00 to 10:00 (peak 11.2 at 09:30)."""
    if at(9, 0) <= ms < at(10, 0):
        return round(11.2 - abs(ms - at(9, 30)) / 60_000 * 0.1, 1)
    return 4.6


@pytest.fixture
def story(engine: Engine) -> str:
    """Issue 15's custody story, CR2's sensor and its readings, the excursion's alert, the case open."""
    custody_world(engine)
    with engine.begin() as conn:
        place(conn, GATEWAY, "sensor", "cr2-t01", "CR2", T0 - 3_600_000, reason="installed", by=QA,
              now=NOW - datetime.timedelta(days=1))  # fmt: skip
    times = range(at(7, 30), at(11, 0), 300_000)
    readings = [reading(_value(ms), sensor="cr2-t01", ts=ms) for ms in times]
    evidence = Evidence(start=at(9, 0), end=at(10, 0), peak=11.2, min=8.2, max=11.2, mean=9.7, mkt=9.9,
                        duration_s=3600, samples=12, limits=LIMITS)  # fmt: skip
    raised = alert(1, ts=at(10, 0), subject="cr2-t01", evidence=evidence,
                   message="Cold room 2 above 8.0 °C for 60 min (peak 11.2 °C)")  # fmt: skip
    items = [*readings, raised]
    numbered = [msgspec.structs.replace(x, seq=100 + n) for n, x in enumerate(items)]
    assert ingest(engine, *batch_message(GATEWAY, numbered)).kind == "batch"
    with engine.begin() as conn:
        assert open_cases(conn, NOW) == 1
    return "CR2's excursion"


@pytest.fixture
def pages(engine: Engine, story: str) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], str]]:
    roles = {"vera": ("viewer",), "dora": ("dock_operator",), "quentin": ("qa",), "marta": ("qa_manager",)}
    headers = {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        inbox = client.get("/dashboard/cases", headers=headers["vera"])
        case_id = re.findall(r'data-case="([^"]+)"', inbox.text)
        assert len(case_id) == 1, inbox.text
        yield client, headers, case_id[0]


def test_the_inbox_its_views_and_the_case_page(
    pages: tuple[TestClient, dict[str, dict[str, str]], str], engine: Engine
) -> None:
    client, h, case_id = pages
    inbox = client.get("/dashboard/cases", headers=h["vera"]).text
    assert "overdue" in inbox and "Cold room 2 above 8.0 °C" in inbox  # opened 8 h after the alert
    assert (
        re.findall(r'data-case="([^"]+)"', client.get("/dashboard/cases?view=roles", headers=h["vera"]).text)
        == []
    )
    for who in ("dora", "quentin", "marta"):  # each can take an open case a step (acknowledge)
        page = client.get("/dashboard/cases?view=roles", headers=h[who]).text
        assert f'data-case="{case_id}"' in page, who
    assert f'data-case="{case_id}"' not in client.get("/dashboard/cases?view=mine", headers=h["dora"]).text
    bad = client.get("/dashboard/cases?view=nonsense&state=bogus", headers=h["vera"])
    assert bad.status_code == 422 and "is not a view" in bad.text
    page = client.get(f"/dashboard/cases/{case_id}", headers=h["vera"])
    assert page.status_code == 200, page.text
    shown = ("Cold room 2 above 8.0 °C", "Room: CR2 at site1", "2.0 to 8.0 °C", 'data-stat="mkt">9.9',
             "Quarantined by this case", "serial:VX10/1001", "Not signed yet.",
             'id="chart-data"')  # fmt: skip
    for words in shown:
        assert words in page.text, words
    assert 'class="case-move"' not in page.text  # a viewer is offered nothing to do
    assert client.get("/dashboard/cases/case-nope", headers=h["vera"]).status_code == 404
    # A form refused says why on the page; a done one redirects back saying what was done.
    refused = client.post(
        f"/dashboard/cases/{case_id}/move", data={"state": "acknowledged"}, headers=h["vera"]
    )
    assert refused.status_code == 403 and "needs the alerts.acknowledge permission" in refused.text
    done = client.post(f"/dashboard/cases/{case_id}/move", data={"state": "acknowledged"}, headers=h["dora"],
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and "moved+to+acknowledged" in done.headers["location"]
    assert f'data-case="{case_id}"' in client.get("/dashboard/cases?view=mine", headers=h["dora"]).text
    comment = {"kind": "comment", "text": "door seal torn"}
    noted = client.post(f"/dashboard/cases/{case_id}/notes", data=comment, headers=h["dora"],
                        follow_redirects=True)  # fmt: skip
    assert noted.status_code == 200 and "door seal torn" in noted.text
    quarantine = client.get("/dashboard/quarantine", headers=h["vera"]).text
    assert re.findall(r'data-lot="([^"]+)"', quarantine) == ["PLAIN/G1", "VX10/L1"]
    assert quarantine.count(f'href="/dashboard/cases/{case_id}"') == 2
    listed = client.get("/quarantine", headers=h["vera"]).json()["items"]
    assert [(x["lot"], x["cases"], x["rooms"]) for x in listed] == [
        ("G1", [case_id], ["site1/CR2"]), ("L1", [case_id], ["site1/CR2"])
    ]  # fmt: skip


def test_in_a_browser_two_people_sign_the_release(
    browser: Any, engine: Engine, story: str, db_url: str
) -> None:
    from playwright.sync_api import expect

    for login, roles in (("dora", ("dock_operator",)), ("quentin", ("qa",)), ("marta", ("qa_manager",))):
        person(engine, login, roles)
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "marta")
        page.click("nav >> text=QA cases")
        expect(page.locator("tr[data-case]")).to_have_count(1)
        shot(page, f"cases-inbox-{dialect}")
        page.click("a.case-link")
        for to in ("acknowledged", "investigating"):
            page.click(f'form.case-move[data-to="{to}"] button[type=submit]')
            expect(page.locator("p.done")).to_contain_text(f"moved to {to}")
        page.select_option(
            'form.case-move[data-to="pending_disposition"] select[name=disposition]', "released"
        )
        page.click('form.case-move[data-to="pending_disposition"] button[type=submit]')
        expect(page.locator("p.done")).to_contain_text("moved to pending disposition")
        # The signature dialog: a wrong password first (refused, said), then hers.
        page.click("button.open-signature[data-dialog=sign-closed]")
        dialog = page.locator("dialog#sign-closed")
        expect(dialog).to_be_visible()
        expect(dialog.locator("input[name=login]")).to_be_visible()  # her first signature in this session
        dialog.locator("textarea[name=reason]").fill("stability data cover 60 min at 11 °C")
        dialog.locator("input[name=login]").fill("marta")
        dialog.locator("input[name=password]").fill("not my password")
        shot(page, f"case-signature-dialog-{dialect}")
        dialog.locator("button.sign").click()
        expect(page.locator("p.error")).to_contain_text("the password is wrong")
        page.click("button.open-signature[data-dialog=sign-closed]")
        dialog.locator("textarea[name=reason]").fill("stability data cover 60 min at 11 °C")
        dialog.locator("input[name=login]").fill("marta")
        dialog.locator("input[name=password]").fill(PASSWORD)
        dialog.locator("button.sign").click()
        expect(page.locator("p.done")).to_contain_text("second signature by another person")
        expect(page.locator("p.pending-signature")).to_contain_text("signed by Marta Tester")
        context.close()
        # Quentin, QA, signs second from his own screen: the case closes, the lots are released.
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "quentin")
        page.goto(site + "/dashboard/cases?view=roles")
        page.click("a.case-link")
        # The case page's script (deferred) must have run before its button opens the dialog.
        expect(page.locator("h1 .case-state")).to_be_visible()
        page.wait_for_load_state("domcontentloaded")
        page.click("button.open-signature[data-dialog=sign-closed]")
        dialog = page.locator("dialog#sign-closed")
        expect(dialog).to_be_visible()
        dialog.locator("input[name=login]").fill("quentin")
        dialog.locator("input[name=password]").fill(PASSWORD)
        dialog.locator("button.sign").click()
        expect(page.locator("h1 .case-state")).to_have_text("closed")
        expect(page.locator("table.case-signatures tr.matches")).to_have_count(2)
        shot(page, f"case-closed-{dialect}")
        page.goto(site + "/dashboard/quarantine")
        expect(page.locator("tr[data-lot]")).to_have_count(0)
        context.close()
    with engine.connect() as conn:
        assert lot(conn, "VX10", "L1")["status"] == "released"


def test_a_notifications_link_opens_the_case_and_acknowledging_from_it_says_so(
    pages: tuple[TestClient, dict[str, dict[str, str]], str], engine: Engine
) -> None:
    client, h, case_id = pages
    with engine.begin() as conn:
        secret = link_secret(conn, NotifyConfig(), NOW)
        dora = conn.execute(select(User.id).where(User.login == "dora")).scalar_one()
    token = make_token(
        secret, case_id, dora, 1, datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    )
    page = client.get(f"/dashboard/cases/{case_id}?ack={token}", headers=h["dora"])
    assert "You followed the notification sent to <strong>Dora Tester</strong>" in page.text
    assert f'name="via_link" value="{token}"' in page.text
    other = client.get(f"/dashboard/cases/{case_id}?ack={token}", headers=h["quentin"]).text
    assert "you are signed in as Quentin Tester" in other
    forged = client.get(f"/dashboard/cases/{case_id}?ack={token[:-2]}xx", headers=h["dora"]).text
    assert "The link you followed is not taken: the link was not made for this case" in forged
    done = client.post(f"/dashboard/cases/{case_id}/move", data={"state": "acknowledged", "via_link": token},
                       headers=h["dora"], follow_redirects=True)  # fmt: skip
    assert done.status_code == 200 and "acknowledged from the notification&#39;s link" in done.text
