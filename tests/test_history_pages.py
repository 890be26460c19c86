"""The environmental history pages (``cloud/web/history_pages.py``) on the story of
``tests/rig/history_world.py``: reached from the lot's custody page in Chromium, showing what the PDF
prints (the segments, the chart per room, the excursion, the unmonitored minutes) with the downloads
beside it, which answer; a pallet's page; an unknown lot a 404 page.  Screenshots for a person to look
at."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine

from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.custody_world import PALLET
from tests.rig.history_world import history_world
from tests.rig.people import person

CUSTODY = "/dashboard/lots/VX10/L1/custody"
HISTORY = "/dashboard/lots/VX10/L1/history"


def test_from_the_custody_page_to_the_lots_history_and_its_downloads(
    browser: Any, engine: Engine, db_url: str
) -> None:
    from playwright.sync_api import expect

    history_world(engine)
    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(site + CUSTODY)
        page.click("a.environment-link")
        expect(page).to_have_url(site + HISTORY)
        expect(page.locator("h1")).to_contain_text("lot L1 of 04006381333931")
        expect(page.locator("section.segment")).to_have_count(3)  # CR1, CR2, CR3: our rooms
        expect(page.locator("section.segment svg")).to_have_count(3)
        cr2 = page.locator("section.segment", has_text="CR2 (site1)")
        expect(cr2.locator("tr.out").first).to_contain_text("20 min")
        expect(cr2).to_contain_text("temperature.high")
        cr3 = page.locator("section.segment", has_text="CR3 (site1)")
        expect(cr3).to_contain_text("2026-12-01 11:00 to 2026-12-01 11:30")  # the sensor's gap
        expect(cr3).to_contain_text("2026-12-01 14:10 to")  # silent since its last reading, as of now
        expect(page.locator("body")).to_contain_text("supplier (before receipt)")
        shot(page, f"history-lot-{dialect}")
        for link, kind in (("a.download-pdf", "application/pdf"), ("a.download-csv", "text/csv")):
            href = page.locator(link).get_attribute("href")
            assert href is not None
            reply = page.request.get(site + href)
            assert reply.status == 200, (link, reply.status)
            assert reply.headers["content-type"].startswith(kind), link
        page.goto(f"{site}/dashboard/units/{PALLET}/history")
        expect(page.locator("section.segment")).to_have_count(2)
        shot(page, f"history-pallet-{dialect}")
        missing = page.goto(f"{site}/dashboard/lots/VX10/NOPE/history")
        assert missing is not None and missing.status == 404
        expect(page.locator("p.error")).to_contain_text("NOPE")
        context.close()
