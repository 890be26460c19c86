"""The KPI page in Chromium, both dialects (``cloud/web/kpi_pages.py``), on the history story
(``tests/rig/history_world.py``): a QA manager opens it from the navigation, sees each KPI's table and
trend chart for the site, the CR2 excursion counted; a month that is none is refused on the page with a
422 saying why.  Screenshots go to ``build/screenshots/`` for a person to look at."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.history_world import history_world
from tests.rig.people import person

pytestmark = pytest.mark.timeout(300)


def test_a_qa_manager_reads_the_kpis_with_their_trends(browser: Any, engine: Engine, db_url: str) -> None:
    from playwright.sync_api import expect

    history_world(engine)
    person(engine, "quinn", ("qa_manager",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "quinn")
        page.click("nav >> text=KPIs")
        page.locator("input[name=from]").fill("2026-10")
        page.locator("input[name=to]").fill("2026-12")
        page.locator("form.kpi-filters button[type=submit]").click()
        for kpi in ("monitoring", "excursions", "cases", "recalls", "inbound", "trace"):
            expect(page.locator(f"section[data-kpi={kpi}]")).to_have_count(1)
        for kpi in ("monitoring", "excursions", "cases", "recalls", "inbound"):
            expect(page.locator(f"section[data-kpi={kpi}] svg.report-chart")).to_have_count(1)
        excursions = page.locator("section[data-kpi=excursions] tr[data-location=CR2] td")
        expect(excursions).to_have_text(["Cold room 2 (CR2)", "0", "0", "1"])
        expect(page.locator("section[data-kpi=monitoring] thead")).to_contain_text("2026-12")
        expect(page.locator("section[data-kpi=trace]")).to_contain_text("measured at")
        shot(page, f"kpi-page-{dialect}")
        csv_link = page.locator("a.kpi-csv").get_attribute("href")
        assert csv_link is not None
        got = page.request.get(site + csv_link)
        assert got.status == 200 and "monitoring_completeness" in got.text()
        reply = page.goto(site + "/dashboard/kpis?site=site1&from=2026-13&to=2026-12")
        assert reply is not None and reply.status == 422
        expect(page.locator("p.kpi-error")).to_contain_text("from: '2026-13' is not a month")
        reply = page.goto(site + "/dashboard/kpis?site=nowhere")
        assert reply is not None and reply.status == 404
        expect(page.locator("p.kpi-error")).to_contain_text("no site 'nowhere'")
        context.close()
