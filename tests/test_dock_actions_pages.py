"""Working a dock door from the browser, on both dialects: a dock operator releases a draft to the door,
starts the note being worked there, assigns the case left unbound to it and tries to complete it (refused:
discrepancies are open); QA accepts each one with a reason on the note's page; the operator completes
it.  Every step through the pages' forms in Chromium, with screenshots; refused forms say why and change
nothing, and odd form values are never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.documents.documents import create_document, document
from coldgate.cloud.web.app import create_web_app
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.dock_pass import DockPass, pass_at_the_door
from tests.rig.documents import DOCK, NOW, SITE, note
from tests.rig.people import PASSWORD, bearer, person

DOOR = "/dashboard/dock/site1/D1"


@pytest.fixture
def passed(engine: Engine) -> DockPass:
    dock = pass_at_the_door(engine, missing=1)
    with engine.begin() as conn:
        create_document(conn, note("ASN-2002"), reason="ASN received", by=DOCK, now=NOW)
    return dock


def test_in_a_browser_the_dock_and_qa_work_a_note_to_completion(
    browser: Any, engine: Engine, passed: DockPass, db_url: str
) -> None:
    from playwright.sync_api import expect

    person(engine, "dora", ("dock_operator",))
    person(engine, "marta", ("qa_manager",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        sign_in(page, site, "dora")
        page.goto(site + DOOR)
        release = page.locator("form.release")
        expect(release.locator("select[name=document] option")).to_have_text(
            ["receiving ASN-2002 · Acme Pharma GmbH (2 lines)"]
        )
        release.locator("input[name=reason]").fill("second truck at door 1")
        release.locator("button").click()
        expect(page.locator("p.done")).to_contain_text("receiving ASN-2002 released to D1")
        move = page.locator(f'form.move[data-document="{passed.document}"]')
        move.locator("input[name=reason]").fill("unloading")
        move.locator("button[value=start]").click()
        expect(page.locator("p.done")).to_contain_text("receiving ASN-7 in progress")
        assign = page.locator("form.assign")
        assign.locator("select[name=document]").select_option(passed.document)
        assign.locator("input[name=reason]").fill("came off the same truck before the note was released")
        assign.locator("button").click()
        expect(page.locator("p.done")).to_contain_text("assigned: receiving ASN-7: line 1, assigned by")
        expect(page.locator("tr[data-unbound]")).to_have_count(0)
        move = page.locator(f'form.move[data-document="{passed.document}"]')
        move.locator("input[name=reason]").fill("all unloaded")
        move.locator("button[value=complete]").click()
        refusal = page.locator("p.error")
        expect(refusal).to_contain_text("Refused, nothing changed: discrepancies: document")
        expect(refusal).to_contain_text("has 3 open discrepancies")
        shot(page, f"dock-work-refused-{dialect}")
        context.close()

        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        sign_in(page, site, "marta")
        page.goto(f"{site}/dashboard/documents/{passed.document}")
        expect(page.locator("strong.rec-open-count")).to_contain_text("3 open discrepancies")
        for n in range(3):  # each acceptance signed in the dialog: the login only at the first
            page.locator("button.open-signature").first.click()
            dialog = page.locator("dialog.signature-dialog[open]")
            expect(dialog).to_contain_text("Meaning: accepted")
            dialog.locator("textarea[name=reason]").fill(f"agreed with the supplier, credit note {n + 1}")
            expect(dialog.locator("input[name=login]")).to_have_count(1 if n == 0 else 0)
            if n == 0:
                dialog.locator("input[name=login]").fill("marta")
                shot(page, f"document-accept-dialog-{dialect}")
            dialog.locator("input[name=password]").fill(PASSWORD)
            dialog.locator("button.sign").click()
            expect(page.locator("p.done")).to_contain_text("accepted and signed: ")
        expect(page.locator("form.accept-discrepancy")).to_have_count(0)
        expect(page.locator("td.decision span.accepted")).to_have_count(3)
        expect(page.locator("td.decision span.accepted").first).to_contain_text("accepted by Marta Tester")
        signed = page.locator("td.decision span.acceptance-signature.matches")
        expect(signed).to_have_count(3)
        expect(signed.first).to_contain_text("signed by Marta Tester (marta)")
        expect(signed.first).to_contain_text("UTC, meaning: accepted · matches the acceptance")
        shot(page, f"document-accepted-{dialect}")
        context.close()

        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        sign_in(page, site, "dora")
        page.goto(site + DOOR)
        move = page.locator(f'form.move[data-document="{passed.document}"]')
        move.locator("input[name=reason]").fill("all unloaded, QA decided")
        move.locator("button[value=complete]").click()
        expect(page.locator("p.done")).to_contain_text("receiving ASN-7 completed")
        shot(page, f"dock-work-completed-{dialect}")
        context.close()
    with engine.connect() as conn:
        assert document(conn, passed.document)["state"] == "completed"
        actions = [
            r.action
            for r in conn.execute(
                select(AuditEntry.action).where(AuditEntry.action.like("document.%")).order_by(AuditEntry.seq)
            )
        ]
    assert actions[-7:] == [
        "document.release",
        "document.start",
        "document.assign_item",
        "document.accept_discrepancy",
        "document.accept_discrepancy",
        "document.accept_discrepancy",
        "document.complete",
    ]


@pytest.fixture
def operator(engine: Engine, passed: DockPass) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "dora", ("dock_operator",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


#: (form path, form, status, what the page says): each refused, nothing changed.
REFUSALS = [
    ("/move", {"step": "finish", "reason": "x"}, 422, "step: 'finish' is no move here (start, complete)"),
    (
        "/move",
        {"step": "start", "document": "doc-none", "reason": "x"},
        422,
        "is not being worked at door D1",
    ),
    ("/move", {"step": "start", "reason": ""}, 422, "reason: must say why the change is made"),
    ("/assign", {"item": "gw01", "reason": "x"}, 422, "item: 'gw01' is not an item (gateway/stream/seq)"),
    ("/assign", {"item": "gw01/s/9", "line": "x1", "reason": "x"}, 422, "line: 'x1' is not a line number"),
    ("/assign", {"item": "gw01/s/9", "reason": "x"}, 404, "item: no item gw01/s/9"),
    ("/release", {"document": "doc-none", "reason": "x"}, 404, "no document 'doc-none'"),
]


def test_a_refused_form_says_why_and_changes_nothing(
    operator: tuple[TestClient, dict[str, str]], passed: DockPass, engine: Engine
) -> None:
    client, headers = operator
    with engine.connect() as conn:
        before = document(conn, passed.document)
    for path, form, status, said in REFUSALS:
        sent = {"document": passed.document, **form} if "document" not in form else form
        reply = client.post(DOOR + path, data=sent, headers=headers, follow_redirects=False)
        assert reply.status_code == status, (path, form, reply.text)
        assert said in reply.text.replace("&#39;", "'"), (path, form)
        assert "Refused, nothing changed" in reply.text
    with engine.connect() as conn:
        assert document(conn, passed.document) == before


def test_forms_at_a_door_that_is_none_are_404_pages(operator: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = operator
    for path in ("/release", "/move", "/assign"):
        reply = client.post(f"/dashboard/dock/{SITE}/CR1{path}", data={"reason": "x"}, headers=headers)
        assert reply.status_code == 404 and "no dock door 'CR1'" in reply.text.replace("&#39;", "'")
