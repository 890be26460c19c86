"""The dock's pages on both dialects: a document's reconciliation on its page (linked to its door), the
door page with the document worked there, its line complete and the foreign case in colour, the items
unbound there in the last 24 h, its live part for htmx; an unknown door a 404 page; and in Chromium, a
viewer following the link from the note to its door, with screenshots for a person to look at."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.catalog.lots import move_lot
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.web.app import create_web_app
from coldgate.contract.items import AlertAction, Severity, SubjectType
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.cloud_db import ingest
from tests.rig.dock_pass import DockPass, pass_at_the_door
from tests.rig.documents import DOCK, QA, accept_open
from tests.rig.ingest import batch_message
from tests.rig.items import alert
from tests.rig.people import bearer, person

DOOR = "/dashboard/dock/site1/D1"


@pytest.fixture
def passed(engine: Engine) -> DockPass:
    return pass_at_the_door(engine)


@pytest.fixture
def pages(engine: Engine, passed: DockPass) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def _states(page: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-rec-line="(\d+)" data-state="([a-z]+)"', page))


def test_the_document_page_shows_its_reconciliation_and_links_its_door(
    pages: tuple[TestClient, dict[str, str]], passed: DockPass
) -> None:
    client, headers = pages
    page = client.get(f"/dashboard/documents/{passed.document}", headers=headers)
    assert page.status_code == 200, page.text
    assert _states(page.text) == {"1": "complete"}
    assert re.findall(r'data-discrepancy="([a-z_]+)"', page.text) == ["unexpected"]
    text = html.unescape(page.text)
    assert "completeness_verified" in text and "mismatch_class" in text and "serial:SALINE/7" in text
    assert f'href="{DOOR}"' in page.text


def test_the_door_page_and_its_live_part(pages: tuple[TestClient, dict[str, str]], passed: DockPass) -> None:
    client, headers = pages
    page = client.get(DOOR, headers=headers)
    assert page.status_code == 200, page.text
    assert f'hx-get="{DOOR}/live"' in page.text and 'hx-trigger="every 5s"' in page.text
    assert re.findall(r'<section class="dock-document" data-document="([^"]+)"', page.text) == [
        passed.document
    ]
    assert _states(page.text) == {"1": "complete"}
    assert re.findall(r'data-discrepancy="([a-z_]+)" class="disc-unexpected blocking"', page.text) == [
        "unexpected"
    ]
    [unbound] = re.findall(r'<tr data-unbound="([^"]+)"', page.text)
    assert unbound.startswith("gw01/") and unbound.endswith("/1")
    assert "no open document at door D1" in page.text
    live = client.get(DOOR + "/live", headers=headers)
    assert live.status_code == 200 and "<html" not in live.text and _states(live.text) == {"1": "complete"}
    for wrong in ("/dashboard/dock/site1/D9", "/dashboard/dock/site1/CR1", "/dashboard/dock/site9/D1"):
        missing = client.get(wrong, headers=headers)
        assert missing.status_code == 404 and "no dock door" in missing.text, wrong
    assert client.get(DOOR, headers={}, follow_redirects=False).status_code == 303


def test_in_a_browser_the_dock_watches_the_note_at_its_door(
    browser: Any, engine: Engine, passed: DockPass, db_url: str
) -> None:
    from playwright.sync_api import expect

    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(f"{site}/dashboard/documents/{passed.document}")
        expect(page.locator('tr[data-rec-line="1"]')).to_have_attribute("data-state", "complete")
        shot(page, f"document-reconciliation-{dialect}")
        page.click("a.door-link")
        expect(page).to_have_url(site + DOOR)
        line = page.locator('section.dock-document tr[data-rec-line="1"]')
        expect(line).to_contain_text("3 / 3 case")
        expect(line).to_contain_text("completeness_verified")
        assert line.locator("progress").evaluate("e => [e.value, e.max]") == [3, 3]
        foreign = page.locator('tr[data-discrepancy="unexpected"]')
        expect(foreign).to_contain_text("serial:SALINE/7")
        colour = foreign.locator("td.kind").evaluate("e => getComputedStyle(e).color")
        assert colour == "rgb(179, 38, 30)", colour  # --bad
        expect(page.locator("tr[data-unbound]")).to_have_count(1)
        # The live part replaces the body every 5 s: it is still there (and the same) after a refresh.
        with page.expect_response(lambda r: r.url.endswith(DOOR + "/live"), timeout=10_000):
            pass
        expect(page.locator('tr[data-rec-line="1"]')).to_have_attribute("data-state", "complete")
        shot(page, f"dock-door-{dialect}")
        context.close()


def test_in_a_browser_a_short_pass_shows_the_missing_cases(browser: Any, engine: Engine, db_url: str) -> None:
    from playwright.sync_api import expect

    pass_at_the_door(engine, missing=2, foreign=False)
    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(site + DOOR)
        line = page.locator('tr[data-rec-line="1"]')
        expect(line).to_have_attribute("data-state", "short")
        expect(line).to_contain_text("1 / 3 case")
        expect(line).to_contain_text("mismatch_instance")
        missing = page.locator('tr[data-discrepancy="missing"]')
        expect(missing).to_contain_text("serial:VX10/1001")
        expect(missing).to_contain_text("serial:VX10/1002")
        shot(page, f"dock-door-short-{dialect}")
        context.close()


def test_the_door_page_lists_the_open_alerts_at_that_door_most_severe_first(
    engine: Engine, pages: tuple[TestClient, dict[str, str]], passed: DockPass
) -> None:
    """Why the door's stack light is on, on the page the person at the door looks at: the open ``door.*``
    alerts about this door, critical first; not another door's, not a cleared one, not a sensor's."""
    client, headers = pages
    at = passed.released + 120_000
    door_alert = {"rule": "door.recalled", "subject_type": SubjectType.DOOR, "subject": "D1"}
    items = [
        alert(1, ts=at, **door_alert, severity=Severity.CRITICAL, message="recalled item at door D1: lot PR"),
        alert(2, ts=at + 1, **door_alert, severity=Severity.WARNING, message="recalled item inbound: lot PQ"),
        alert(3, ts=at + 2, **{**door_alert, "subject": "D2"}, message="recalled item at door D2"),
        alert(4, ts=at + 3, **{**door_alert, "rule": "door.expired"}, message="expired lot at D1"),
        alert(4, ts=at + 4, **{**door_alert, "rule": "door.expired"}, action=AlertAction.CLEARED,
              message="expired lot at D1, cleared"),
        alert(5, ts=at + 5, message="a sensor's excursion"),
    ]  # fmt: skip
    numbered = [msgspec.structs.replace(item, seq=20 + n) for n, item in enumerate(items)]
    assert ingest(engine, *batch_message("gw01", numbered), now=passed.now).kind == "batch"
    for path in (DOOR, DOOR + "/live"):
        page = client.get(path, headers=headers)
        assert page.status_code == 200, page.text
        found = r'<tr class="open sev-(\w+)" data-alert="gw01/([^"]+)" data-rule="door\.'
        rows = re.findall(found, page.text)
        assert rows == [("critical", "gw01-a-000001"), ("warning", "gw01-a-000002")], rows
        assert "recalled item at door D1: lot PR" in html.unescape(page.text)


def test_a_completed_note_whose_lot_is_recalled_later_says_so_not_that_completion_waits(
    engine: Engine,
) -> None:
    """A receipt completed with nothing open, its lot recalled afterwards: its page shows the recalled
    cases as found since completion, for QA to look at, not "completion waits for QA" (it is done)."""
    done = pass_at_the_door(engine, foreign=False)
    with engine.begin() as conn:
        move_document(conn, done.document, "in_progress", reason="unloading", by=DOCK, now=done.now)
        move_document(conn, done.document, "completed", reason="received", by=DOCK, now=done.now)
        move_lot(conn, "VX10", "L1", "recalled", reason="FSN-9: seal", by=QA, now=done.now)
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        page = client.get(f"/dashboard/documents/{done.document}", headers=bearer(token))
    assert page.status_code == 200, page.text
    text = " ".join(html.unescape(page.text).split())
    assert "Completed, as it stands today:" in text, text
    summary = text[text.index("Completed, as it stands today:"):][:400]
    said = "1 discrepancy since it was completed (a lot recalled, quarantined or expired later)"
    assert said in summary, summary
    assert "completion waits for QA" not in text


def test_a_note_completed_with_its_discrepancies_decided_does_not_say_it_may_be_completed(
    engine: Engine,
) -> None:
    done = pass_at_the_door(engine)  # the foreign saline case: one discrepancy, accepted by QA
    with engine.begin() as conn:
        move_document(conn, done.document, "in_progress", reason="unloading", by=DOCK, now=done.now)
        assert accept_open(conn, done.document, done.now)
        move_document(conn, done.document, "completed", reason="received", by=DOCK, now=done.now)
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        page = client.get(f"/dashboard/documents/{done.document}", headers=bearer(token))
    assert page.status_code == 200, page.text
    text = " ".join(html.unescape(page.text).split())
    summary = text[text.index("Completed, as it stands today:"):][:400]
    assert "every discrepancy decided" in summary and "it may be completed" not in summary, summary
