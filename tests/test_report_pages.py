"""The reports page in Chromium, both dialects (``cloud/web/report_pages.py``): a QA person generates a
monthly record from the form, sees it listed with its hash and downloads it byte for byte; a month that
is none is refused on the page, nothing stored; a viewer sees the list and the links but no forms.
Screenshots go to ``build/screenshots/`` for a person to look at."""

from __future__ import annotations

import datetime
import hashlib
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db.models import StoredReport
from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.reports.monthly_record import HOUR_MS, month_window
from tests.rig import items
from tests.rig.browser import serve_web_app, shot, sign_in
from tests.rig.people import person

QA = Actor("Marta QA", "u-marta")
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
START, _ = month_window("2026-11")


def _world(engine: Engine) -> None:
    """Cold room CR1 watched by t1, with two days of hourly readings in November 2026."""
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=QA, now=NOW)
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
        put_location(conn, "site1", "CR1", room, reason="layout", by=QA, now=NOW)
        place(conn, "gw01", "sensor", "t1", "CR1", START, reason="install", by=QA, now=NOW)
        sent = [items.reading(4.0 + n % 5, sensor="t1", ts=START + n * HOUR_MS, seq=n + 1) for n in range(48)]
        insert_new(conn, "gw01", uuid.uuid4().hex, sent)


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(StoredReport)).scalar_one())


def test_a_qa_person_generates_and_downloads_a_monthly_record(
    browser: Any, engine: Engine, db_url: str
) -> None:
    from playwright.sync_api import expect

    _world(engine)
    person(engine, "marta", ("qa",))
    person(engine, "vera", ("viewer",))
    dialect = db_url.split(":", 1)[0].split("+")[0]
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "marta")
        page.click("nav >> text=Reports")
        expect(page.locator("table.reports")).to_contain_text("No report stored")
        form = page.locator("form[data-form=monthly]")
        form.locator("select[name=location]").select_option("site1/CR1")
        form.locator("input[name=month]").fill("2026-13")
        form.locator("button[type=submit]").click()
        expect(page.locator("p.report-error")).to_contain_text("no month 13")
        assert _stored(engine) == 0
        form.locator("input[name=month]").fill("2026-11")
        form.locator("button[type=submit]").click()
        expect(page.locator("p.report-done")).to_contain_text("Generated and stored")
        row = page.locator("tr[data-report]")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("Cold room 1 (CR1), 2026-11")
        expect(row).to_contain_text("Marta Tester")
        shown_hash = row.locator("code.sha256").inner_text()
        shot(page, f"reports-page-{dialect}")
        link = row.locator("a.download").get_attribute("href")
        assert link is not None
        got = page.request.get(site + link)
        assert got.status == 200 and got.headers["content-type"] == "application/pdf"
        assert hashlib.sha256(got.body()).hexdigest() == shown_hash
        context.close()
        # A viewer: the list and the links, no form.
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(site + "/dashboard/reports")
        expect(page.locator("tr[data-report]")).to_have_count(1)
        expect(page.locator("form.report-form")).to_have_count(0)
        reply = page.request.post(
            site + "/dashboard/reports/monthly", form={"location": "site1/CR1", "month": "2026-11"}
        )
        assert reply.status in (403, 422), reply.status  # refused before anything is stored
        context.close()
    assert _stored(engine) == 1


pytestmark = pytest.mark.timeout(300)
