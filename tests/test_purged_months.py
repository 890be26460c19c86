"""Reports over a month whose readings retention purged (``cloud/db/purge.py``): the batch history a recall
team asks for (JSON, CSV, PDF, the page) names the month, the date, the rule and the archive's hash, and
counts that time as purged, never as unmonitored; recorded gaps in it stay gaps.  The sensor series says
the same.  On PostgreSQL (only it archives and purges); the selection of purges also runs on SQLite,
where the table is there and empty.

The world is ``tests/test_retention_purge.py``'s: the batch-history story of ``tests/rig/history_world.py``
(December 2026), archived, then purged once the standard term has passed."""

from __future__ import annotations

import csv
import datetime
import io
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.api.app import create_app
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.db.archive import archive_month
from coldgate.cloud.db.partitions import ensure_partitions
from coldgate.cloud.db.purge import Purged, purge_month
from coldgate.cloud.db.retention import RetentionPolicy
from coldgate.cloud.db.selections import purged_months
from coldgate.cloud.reports.history_json import history_content
from coldgate.cloud.reports.history_store import lot_history
from coldgate.cloud.reports.monthly_record import monthly_csv
from coldgate.cloud.reports.periodic_store import monthly_pdf, monthly_report
from tests.rig.browser import SHOTS, serve_web_app, shot, sign_in
from tests.rig.custody_world import GTIN, at
from tests.rig.epcis import valid
from tests.rig.history_world import AS_OF, history_world
from tests.rig.people import bearer, person
from tests.rig.retention import categorise

DECEMBER = datetime.date(2026, 12, 1)
ARCHIVED = datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC)
DUE = datetime.datetime(2032, 1, 1, 9, tzinfo=datetime.UTC)
OPERATOR = Actor("Ola Operator")
LOT = f"/lots/{GTIN}/L1/history"
WHEN = {"as_of": str(AS_OF)}
DEC_1, JAN_1 = at(0, 0), at(0, 0) + 31 * 86_400_000

postgres_only = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _purge(engine: Engine) -> tuple[dict[str, Any], Purged]:
    """The story, December archived and purged; with the lot's history as it read before the purge."""
    with engine.begin() as conn:
        ensure_partitions(conn, DECEMBER, DECEMBER)
    history_world(engine)
    for product_id in ("VX10", "PLAIN"):  # categorised, as QA does; a product without one is kept for ever
        categorise(engine, "standard", product_id=product_id)
    with engine.begin() as conn:
        archive_month(conn, DECEMBER, now=ARCHIVED, actor=OPERATOR, after_months=0)
    with engine.connect() as conn:
        before = history_content(lot_history(conn, GTIN, "L1", as_of=AS_OF))
    with engine.begin() as conn:
        done = purge_month(conn, DECEMBER, policy=RetentionPolicy(), now=DUE, actor=OPERATOR)
    return before, done


@pytest.fixture
def purged(engine: Engine) -> tuple[Engine, dict[str, Any], Purged]:
    before, done = _purge(engine)
    return engine, before, done


@pytest.fixture
def api(purged: tuple[Engine, dict[str, Any], Purged]) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    engine, before, done = purged
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token), (before, done)


def test_no_purge_no_purged_month_on_either_dialect(engine: Engine) -> None:
    """The selection runs on SQLite too (the table exists, empty): a history there carries no purge."""
    history_world(engine)
    with engine.connect() as conn:
        assert purged_months(conn, 0, 2**62) == []
        content = history_content(lot_history(conn, GTIN, "L1", as_of=AS_OF))
    assert content["purged_months"] == [] and content["totals"]["purged_s"] == 0
    assert all(s["purged"] == [] for s in content["segments"] if s["custody"] == "ours")


@postgres_only
def test_the_purges_overlapping_a_range_are_the_months_it_touches(
    purged: tuple[Engine, dict[str, Any], Purged],
) -> None:
    engine, _, done = purged
    with engine.connect() as conn:
        [month] = purged_months(conn, at(12, 0), at(13, 0))
        assert (month.month, month.start, month.end) == (DECEMBER, DEC_1, JAN_1)
        assert (month.sha256, month.rule, month.readings) == (done.sha256, done.rule, done.readings)
        assert month.purged_at == DUE and month.purge_from == datetime.date(2032, 1, 1)
        assert purged_months(conn, DEC_1 - 60_000, DEC_1) == []  # ends as December begins
        assert purged_months(conn, JAN_1, JAN_1 + 60_000) == []  # begins as December ends
        assert [m.month for m in purged_months(conn, JAN_1 - 1, JAN_1 + 1)] == [DECEMBER]
        assert [m.month for m in purged_months(conn, 0, 2**50)] == [DECEMBER]
        assert purged_months(conn, at(12, 0), at(12, 0)) == []


@postgres_only
def test_the_lots_history_names_the_purged_month_and_does_not_call_it_a_gap(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, headers, (before, done) = api
    reply = client.get(LOT, headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    history = reply.json()
    [month] = history["purged_months"]
    assert month["month"] == "2026-12" and month["sha256"] == done.sha256 and month["rule"] == done.rule
    assert (month["start"], month["end"]) == ("2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z")
    assert month["purged_at"] == "2032-01-01T09:00:00.000Z" and month["readings"] == done.readings
    note = next(n for n in history["notes"] if "purged by retention" in n)
    assert f"Readings of 2026-12 were purged by retention on 2032-01-01 ({done.rule}" in note
    assert done.sha256[:12] in note and "not as a monitoring gap" in note
    totals = history["totals"]
    # Nothing went unmonitored that was not before: the purged time is its own category.
    assert totals["unmonitored_s"] == before["totals"]["unmonitored_s"] == 1800.0
    assert totals["readings"] == 0 and before["totals"]["readings"] > 0
    assert totals["purged_s"] == totals["in_custody_s"] - totals["unmonitored_s"] > 0
    ours = [s for s in history["segments"] if s["custody"] == "ours"]
    for segment, then in zip(ours, [s for s in before["segments"] if s["custody"] == "ours"], strict=True):
        assert segment["unmonitored"] == then["unmonitored"], segment["location"]
        assert segment["purged"] and segment["purged_s"] > 0
    cr3 = next(s for s in ours if s["location"] == "CR3")
    # The sensor's recorded gap is a record still held: a gap, not purged.
    gap = {"start": "2026-12-01T11:00:00.000Z", "start_ms": at(11, 0),
           "end": "2026-12-01T11:30:00.000Z", "end_ms": at(11, 30)}  # fmt: skip
    assert gap in cr3["unmonitored"]
    assert all(p["end_ms"] <= gap["start_ms"] or p["start_ms"] >= gap["end_ms"] for p in cr3["purged"])
    # The excursion alert is a record of its own, still held: the history still lists it.
    cr2 = next(s for s in ours if s["location"] == "CR2")
    assert [x["alert_id"] for x in cr2["excursions"]] == ["gw01-a-cr2-high"]


@postgres_only
def test_the_lots_history_as_csv_and_pdf_say_purged(api: tuple[TestClient, dict[str, str], Any]) -> None:
    client, headers, (_, done) = api
    reply = client.get(f"{LOT}.csv", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    ours = [r for r in rows if r["custody"] == "ours"]
    assert ours and all(r["purged_months"] == "2026-12" and float(r["purged_s"]) > 0 for r in ours)
    totals = rows[-1]
    assert totals["custody"] == "totals" and totals["unmonitored_s"] == "1800.0"
    assert "Readings of 2026-12 were purged by retention on 2032-01-01" in totals["purged_months"]
    assert done.sha256[:12] in totals["purged_months"]
    pdf = client.get(f"{LOT}.pdf", headers=headers, params=WHEN)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "history_lot_L1_purged.pdf").write_bytes(pdf.content)
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is not None:  # the pages as PNG, for a person to look at
        out = str(SHOTS / "history_lot_L1_purged")
        subprocess.run(
            [pdftoppm, "-png", "-r", "70", str(SHOTS / "history_lot_L1_purged.pdf"), out], check=True
        )
    text = subprocess.run([pdftotext, "-", "-"], input=pdf.content, check=True, capture_output=True).stdout
    words = " ".join(text.decode().split())
    assert "Readings purged by retention (not a monitoring gap)" in words
    assert done.sha256[:12] in words and "2026-12" in words and "the standard term" in words


@postgres_only
def test_the_lots_epcis_says_the_readings_were_purged_not_missing(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, headers, (_, done) = api
    reply = client.get(f"{LOT}.epcis.json", headers=headers, params=WHEN)
    assert reply.status_code == 200, reply.text
    document = valid(reply.json())
    events = document["epcisBody"]["eventList"]
    reports = [r for e in events for el in e.get("sensorElementList", ()) for r in el["sensorReport"]]
    assert reports and all(r.get("exception") == "ERROR_CONDITION" for r in reports)
    expected = (
        f"readings of 2026-12 purged by retention on 2032-01-01 ({done.rule}), archive SHA-256 {done.sha256}"
    )
    assert {r["stringValue"] for r in reports} == {expected}


@postgres_only
def test_the_sensor_series_says_which_months_in_range_were_purged(
    api: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, headers, (_, done) = api
    path = "/gateways/gw01/sensors/t-cr2/readings"
    reply = client.get(path, headers=headers, params={"from": str(at(7, 0)), "to": str(at(14, 0))})
    assert reply.status_code == 200, reply.text
    series = reply.json()
    assert series["count"] == 0 and series["mode"] == "raw" and series["points"] == []
    [month] = series["purged"]
    assert (month["month"], month["start_ms"], month["end_ms"]) == ("2026-12", DEC_1, JAN_1)
    assert (month["sha256"], month["rule"], month["purged_at"]) == (
        done.sha256, done.rule, "2032-01-01T09:00:00.000Z",
    )  # fmt: skip
    later = client.get(path, headers=headers, params={"from": str(JAN_1), "to": str(JAN_1 + 3_600_000)})
    assert later.status_code == 200 and later.json()["purged"] == []


@postgres_only
def test_the_monthly_record_of_a_purged_month_says_its_readings_went(
    purged: tuple[Engine, dict[str, Any], Purged],
) -> None:
    """The GSP monthly record reads whole hours from the hourly summaries (still held) and says that the
    readings behind them were purged, by which rule, with the hash; the purge adds no gap."""
    engine, _, done = purged
    now = datetime.datetime(2032, 2, 1, tzinfo=datetime.UTC)
    with engine.connect() as conn:
        record, pieces = monthly_report(conn, "site1", "CR2", "2026-12", now=now)
    [month] = record["purged_months"]
    assert (month["month"], month["sha256"], month["rule"]) == ("2026-12", done.sha256, done.rule)
    assert record["gaps"] == [] and record["summary"]["temperature"]["readings"] > 0
    assert "# purged_by_retention" in monthly_csv(record) and done.sha256[:12] in monthly_csv(record)
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    pdf = monthly_pdf(record, pieces, now)
    text = subprocess.run([pdftotext, "-", "-"], input=pdf, check=True, capture_output=True).stdout
    words = " ".join(text.decode().split())
    assert (
        "Readings of 2026-12 purged by retention (not a monitoring gap)" in words
        and done.sha256[:12] in words
    )


@postgres_only
def test_the_history_page_shows_the_purged_month_as_a_band_of_its_own(
    browser: Any, purged: tuple[Engine, dict[str, Any], Purged], db_url: str
) -> None:
    from playwright.sync_api import expect

    engine, _, done = purged
    person(engine, "vera", ("viewer",))
    with serve_web_app(engine, db_url) as site:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, site, "vera")
        page.goto(site + "/dashboard/lots/VX10/L1/history")
        box = page.locator("div.purged-months")
        expect(box).to_contain_text("Readings purged by retention (not a monitoring gap)")
        expect(box).to_contain_text("2026-12")
        expect(box).to_contain_text(done.sha256[:12])
        expect(box).to_contain_text("the standard term: 5 years after 2026-12")
        for room in ("CR1", "CR2", "CR3"):  # a band in every room's chart (CR3's split by its gap)
            expect(
                page.locator("section.segment", has_text=f"{room} (site1)").locator("svg rect.purged").first
            ).to_be_attached()
        cr3 = page.locator("section.segment", has_text="CR3 (site1)")
        expect(cr3).to_contain_text("2026-12-01 11:00 to 2026-12-01 11:30")  # its recorded gap, still one
        expect(cr3.locator("p.note.purged")).to_contain_text("2026-12 purged 2032-01-01")
        # Silent since its last reading (14:00), with no gap on record: still not monitored, as before the
        # purge, from the end of the last hour its summaries hold readings in.
        expect(cr3).to_contain_text("Not monitored here")
        expect(cr3.locator("p.note").first).to_contain_text("2026-12-01 15:00 to")
        shot(page, "history-lot-purged-month")
        page.goto(f"{site}/dashboard/sensor?gateway=gw01&sensor=t-cr2&range=custom"
                  "&from=2026-12-01T07:00&to=2026-12-01T14:00")  # fmt: skip
        note = page.locator("div.purged-months")
        expect(note).to_contain_text("Readings purged by retention (not a monitoring gap)")
        expect(note).to_contain_text("2026-12 (2026-12-01 00:00")
        expect(note).to_contain_text(done.sha256[:12])
        expect(page.locator("table.gaps-in-range")).to_contain_text("None recorded (the months above whose")
        shot(page, "sensor-purged-month")
        context.close()
