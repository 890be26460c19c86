"""The dashboard in a real browser: Debian's Chromium driven by playwright against the cloud's app
served by uvicorn, on a database filled through ingest (as gateways fill it).

A QA manager is sent to sign in, signs in, sees the overview's tiles in the states the data
gives (an excursion, a sensor offline in a gap, a gateway gone silent, one in range), watches a
new excursion turn a tile red without reloading, signs out, and is sent to sign in again.
Screenshots of each page are saved under ``build/screenshots/`` for a person to look at.
"""

from __future__ import annotations

import datetime
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
import uvicorn
from sqlalchemy import Engine

pytest.importorskip("playwright", reason="the browser tests need playwright (the [test] extra)")

from playwright.sync_api import Browser, Page, expect

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.downlink.versions import due_documents
from coldgate.cloud.web.app import create_web_app
from coldgate.cloud.web.ranges import form_value
from coldgate.cloud.web.times import local_time
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Gap, Severity, SubjectType
from coldgate.contract.uplink import DocumentVersions, State
from tests.rig import items
from tests.rig.catalog import seed_catalog
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.gap_verdicts import judged_delayed
from tests.rig.ingest import batch_message, status_message
from tests.rig.people import PASSWORD, bearer, person
from tests.rig.ports import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LATE_BOOT = "0b2c4d6e8f0a1b2c3d4e5f6071829304"
DAY = 86_400_000
HOUR = 3_600_000
MINUTE = 60_000
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _numbered(seq: int, item: msgspec.Struct) -> msgspec.Struct:
    return msgspec.structs.replace(item, seq=seq)


def past_alerts(now: int) -> list[msgspec.Struct]:
    """Alerts of the past for the alerts page's filters: an excursion of cr1-t03 from 26 h 05 min to
    25 h ago (outside the sensor page's default 24 h, with the readings around it), and a door left
    open 2 h ago, shut 10 min later (another rule, a subject that is not a sensor)."""
    evidence = msgspec.structs.replace(items.alert(3).evidence, start=now - 26 * HOUR - 5 * MINUTE, peak=8.9)
    raised = items.alert(3, ts=now - 26 * HOUR, subject="cr1-t03", evidence=evidence,
                         message="Cold room 1 (t03) above 8.0 °C")  # fmt: skip
    door = items.alert(4, ts=now - 2 * HOUR, rule="door.open", subject_type=SubjectType.DOOR,
                       subject="dock1", severity=Severity.WARNING, message="Dock 1 door left open",
                       evidence=Evidence(start=now - 2 * HOUR))  # fmt: skip
    # Every 10 min from 27 h ago: in range, rising from 26 h 10 min ago, above 8 °C from 26 h ago (peak
    # 8.9 °C) until it falls back 25 h ago.
    values = [5.4, 5.5, 5.3, 5.6, 5.5, 7.2, 8.3, 8.6, 8.8, 8.9, 8.7, 8.4, 7.5, 6.1, 5.6, 5.5, 5.4, 5.5]
    around = [items.reading(v, sensor="cr1-t03", ts=now - 27 * HOUR + k * 10 * MINUTE)
              for k, v in enumerate(values)]  # fmt: skip
    return [
        raised, msgspec.structs.replace(raised, ts=now - 25 * HOUR, action=AlertAction.CLEARED),
        door, msgspec.structs.replace(door, ts=now - 110 * MINUTE, action=AlertAction.CLEARED), *around,
    ]  # fmt: skip


def seed(engine: Engine) -> None:
    """gw01 online with four sensors (cr1-t01 in excursion, cr1-h01 in an open gap, cr1-t02 and
    cr1-t03 in range); gw02 heard, then its last will (offline).  cr1-t02's reading was stamped by a
    clock not yet synchronised (five days behind) and is corrected by the cloud from a synchronised
    reading of the same boot."""
    now = _now_ms()
    for gateway in ("gw01", "gw02"):
        assert ingest(engine, *status_message(gateway, ts=now - 60_000, last_seq=10)).kind == "status"
    readings = [
        items.reading(9.4, sensor="cr1-t01", ts=now - 30_000, mono=None),
        items.reading(5.1, sensor="cr1-t03", ts=now - 30_000),
        # Another boot: the unsynchronised reading is placed by the synchronised one's (mono, ts).
        items.reading(4.6, sensor="cr1-t02", ts=now - 5 * DAY, boot=LATE_BOOT, mono=50_000, synced=False),
        items.reading(5.1, sensor="cr1-t03", ts=now - 30_000, boot=LATE_BOOT, mono=50_000),
        items.reading(61.0, sensor="cr1-h01", ts=now - 600_000, quantity="humidity"),
    ]
    alert = items.alert(1, ts=now - 20_000, subject="cr1-t01")
    evidence = msgspec.structs.replace(alert.evidence, start=now - 900_000)  # left its limits 15 min ago
    alert = msgspec.structs.replace(alert, evidence=evidence)
    gap = msgspec.structs.replace(
        items.priority_items(now - 10_000)[1], subject="cr1-h01", start=now - 300_000, end=None
    )
    assert isinstance(alert, Alert) and isinstance(gap, Gap)
    earlier = msgspec.structs.replace(
        gap, subject="cr1-t01", start=now - 3 * 3_600_000, end=now - 2 * 3_600_000
    )
    history = [
        items.reading(4.0 + k / 10, sensor="cr1-t01", ts=now - 6 * 3_600_000 + k * 600_000) for k in range(20)
    ]
    batch = [*readings, alert, gap, earlier, *history, *past_alerts(now)]
    batch = [_numbered(n, item) for n, item in enumerate(batch, start=1)]
    assert ingest(engine, *batch_message("gw01", batch)).kind == "batch"
    other = [_numbered(1, items.reading(3.9, sensor="cr2-t01", ts=now - 40_000))]
    assert ingest(engine, *batch_message("gw02", other)).kind == "batch"
    will = status_message("gw02", ts=now - 120_000, state=State.OFFLINE, will=True)
    assert ingest(engine, *will).kind == "status"


@pytest.fixture
def site(engine: Engine, db_url: str) -> Iterator[str]:
    """The cloud's app on a free port over a seeded database, reading and writing through engines of
    their own as the service does (a reader streaming a CSV must not hold SQLite's writer); its URL."""
    from coldgate.cloud.db.engine import make_engine

    seed(engine)
    person(engine, "quinn", ("qa_manager",))
    port = free_port()
    reader = make_engine(db_url)
    app = create_web_app(reader, ApiTokens(()), writer=engine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    reader.dispose()


def shot(page: Page, name: str, dialect: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{dialect}.png"), full_page=True)


def tile(page: Page, sensor: str) -> object:
    return page.locator(f'li.tile[data-sensor="{sensor}"]')


def test_sign_in_see_the_overview_live_and_sign_out(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    dialect = db_url.split(":", 1)[0].split("+")[0]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(site + "/")
    expect(page).to_have_url(site + "/login?next=/")
    shot(page, "login", dialect)
    page.fill("input[name=login]", "quinn")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("sign-in refused")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(site + "/")
    expect(page.locator(".who")).to_contain_text("Quinn Tester")
    expect(tile(page, "gw01/cr1-t01")).to_have_attribute("data-state", "excursion")
    expect(tile(page, "gw01/cr1-t01")).to_contain_text("9.4")
    expect(tile(page, "gw01/cr1-h01")).to_have_attribute("data-state", "offline")
    expect(tile(page, "gw01/cr1-t02")).to_have_attribute("data-state", "in range")
    expect(tile(page, "gw02/cr2-t01")).to_have_attribute("data-state", "gateway offline")
    expect(page.locator('tr[data-gateway="gw02"]')).to_contain_text("offline")
    expect(page.locator(".counts")).to_contain_text("1 open alert")
    shot(page, "overview", dialect)
    # At the cold-room door (a tablet held upright) the tiles reflow, nothing wider than the screen;
    # printed, the sign-out form, the links and the refresh note are gone, the time it is as of stays.
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 768
    shot(page, "overview-tablet", dialect)
    page.emulate_media(media="print")
    expect(page.locator(".bar form")).to_be_hidden()
    expect(page.locator(".stamp .live")).to_be_hidden()
    expect(page.locator(".stamp")).to_contain_text("As of")
    shot(page, "overview-print", dialect)
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1280, "height": 800})
    # A new excursion turns its tile red without a reload (the page polls every 5 s).
    marker = page.evaluate("() => (window.__kept = 'same page')")
    now = _now_ms()
    raised = _numbered(100, items.alert(2, ts=now, subject="cr1-t02", message="Cold room 1 above 8.0 °C"))
    assert ingest(engine, *batch_message("gw01", [raised])).kind == "batch"
    expect(tile(page, "gw01/cr1-t02")).to_have_attribute("data-state", "excursion", timeout=10_000)
    assert page.evaluate("() => window.__kept") == marker  # not reloaded
    # A form post without its CSRF token is refused; signing out with the form works.
    refused = page.request.post(site + "/logout", form={"csrf_token": "forged"})
    assert refused.status == 403
    page.click(".who button[type=submit]")
    expect(page).to_have_url(site + "/login")
    page.goto(site + "/")
    expect(page).to_have_url(site + "/login?next=/")
    context.close()


def sign_in_as(page: Page, site: str, login: str) -> None:
    page.goto(site + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(site + "/")


def berlin_offset() -> str:
    """Berlin's UTC offset now (+01:00 in winter, +02:00 in summer), as the pages write it."""
    return local_time(_now_ms(), "Europe/Berlin")[-6:]


def test_alerts_gaps_and_audit_pages_and_a_viewer_refused(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    dialect = db_url.split(":", 1)[0].split("+")[0]
    _, token = person(engine, "ada", ("admin",))
    # The admin sets the site's zone through the API; every page then shows the site's times in it.
    set_zone = httpx.put(site + "/sites/site1/time-zone", json={"time_zone": "Europe/Berlin"},
                         headers=bearer(token))  # fmt: skip
    assert set_zone.status_code == 200, set_zone.text
    offset = berlin_offset()
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_as(page, site, "quinn")
    # The overview: the limits the gateway applied on the excursion's tile, the corrected time marked.
    expect(page.locator(".stamp")).to_contain_text(offset)
    expect(tile(page, "gw01/cr1-t01").locator(".limits")).to_contain_text("limits 2.0 to 8.0 °C")
    expect(tile(page, "gw01/cr1-t01").locator(".limits")).to_contain_text("pre-alarm 3.0 to 7.0 °C")
    mark = tile(page, "gw01/cr1-t02").locator(".corrected")
    expect(mark.locator("sup.mark")).to_have_text("c")
    expect(mark).to_have_attribute("title", re.compile(r"clock-corrected by the cloud; the gateway said .*"
                                                       + re.escape(offset)))  # fmt: skip
    expect(page.locator(".times-legend")).to_contain_text("clock-corrected by the cloud")
    shot(page, "overview-berlin", dialect)
    page.click("nav >> text=Alerts")
    row = page.locator('tr[data-alert="gw01/gw01-a-000001"]')
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text("peak 9.4 °C")
    expect(row).to_contain_text("limits 2.0 to 8.0 °C")
    expect(row).to_contain_text(offset)
    shot(page, "alerts", dialect)
    filter_alerts_and_follow_the_chart_link(page, dialect, offset)
    # gw03 went unheard for 250 s an hour before the others were last heard; its backlog then arrived
    # whole: judged delayed, nothing missing.
    unheard_at = int(RECEIVED.timestamp() * 1000) - HOUR
    judged_delayed(engine, "gw03", unheard_at)
    page.click("nav >> text=Gaps")
    delayed = page.locator(f'tr[data-gap="gw03/gw03/{unheard_at}"]')
    expect(delayed.locator(".verdict.delayed")).to_have_text("delayed, nothing missing")
    expect(delayed).to_contain_text("Verdict: delayed, nothing missing")
    gap = page.locator("tr.open").first
    expect(gap).to_contain_text("cr1-h01")
    expect(gap).to_contain_text("still open")
    expect(gap).to_contain_text(offset)
    see_open_gaps_first_with_durations(page)
    shot(page, "gaps", dialect)
    see_a_delayed_gap_on_its_chart(page, site, unheard_at, dialect)
    page.click("nav >> text=Audit trail")
    expect(page.locator("table.audit")).to_contain_text("session.start")
    page.fill("input[name=action]", "user.login")
    page.click("form.filters button[type=submit]")
    rows = page.locator("table.audit tbody tr")
    expect(rows.first).to_contain_text("Quinn Tester")
    assert all("user.login" in text for text in rows.all_inner_texts())
    with page.expect_download() as download:
        page.click("text=Download CSV")
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv_text.startswith("seq,at,actor_id") and "user.login" in csv_text
    shot(page, "audit", dialect)
    # The excursion sensor's history: chart drawn with the excursion and the gap shaded, the gap
    # labelled in its table, the statistics of the range, and the raw CSV the same as the API's.
    page.goto(site + "/")
    page.click('li.tile[data-sensor="gw01/cr1-t01"] a')
    expect(page.locator("h1")).to_contain_text("cr1-t01")
    expect(page.locator("#chart")).to_have_attribute("data-drawn", "22")  # 21 readings and the gap's break
    chart = page.evaluate("() => JSON.parse(document.getElementById('chart-data').textContent)")
    assert len(chart["excursions"]) == 1 and len(chart["gaps"]) == 1
    assert "sensor_offline" in chart["gaps"][0][2]
    expect(page.locator("table.gaps-in-range")).to_contain_text("sensor_offline")
    expect(page.locator("[data-stat=max]")).to_contain_text("9.4")
    expect(page.locator("[data-stat=min]")).to_contain_text("4.0")
    # In Berlin's time, the alert marked at its raising, the limits drawn and said where they come from.
    expect(page.locator(".shown-range")).to_contain_text(offset)
    expect(page.locator("#chart")).to_have_attribute("data-marks", "1")
    expect(page.locator("#chart")).to_have_attribute("data-bands", "4")
    assert [{k: band[k] for k in ("low", "high", "pre_low", "pre_high")} for band in chart["limits"]] == [
        {"low": 2.0, "high": 8.0, "pre_low": 3.0, "pre_high": 7.0}
    ]  # one stretch over the whole range: the sensor is not placed, so what the gateway applied
    assert chart["limits"][0]["from"] == chart["from"] and chart["limits"][0]["to"] == chart["to"]
    assert chart["alerts"][0][1] == "critical"
    expect(page.locator(".limits-source")).to_contain_text(
        "as gateway gw01 applied them in alert gw01-a-000001 raised at"
    )
    shot(page, "sensor", dialect)
    sensor_url = page.url
    # A custom range, typed in the site's zone (to the minute): from 3 h 55 min ago it holds the history's
    # last 7 readings (one each 10 minutes from 3 h 50 min until 2 h 50 min ago), the 9.4 and the gap's
    # break.  Not 4 h: the reading 4 h before the history was written fell out of a window typed a
    # minute-truncated 4 h before a later "now" whenever the test ran slowly (a CI failure, 9 not 10).
    now = _now_ms()
    page.fill("input[name=from]", form_value(now - 4 * 3_600_000 + 300_000, "Europe/Berlin"))
    page.fill("input[name=to]", form_value(now + 120_000, "Europe/Berlin"))
    page.click("form.custom-range button[type=submit]")
    expect(page).to_have_url(re.compile(r"range=custom"))
    expect(page.locator("#chart")).to_have_attribute("data-drawn", "9")
    expect(page.locator(".shown-range")).to_contain_text(offset)
    expect(page.locator("#chart")).to_have_attribute("data-marks", "1")
    expect(page.locator(".range-error")).to_have_count(0)
    shot(page, "sensor-custom-range", dialect)
    # A range ending before it starts is said on the page (the last 24 h are shown instead), never a 500.
    page.fill("input[name=from]", "2026-03-02T10:00")
    page.fill("input[name=to]", "2026-03-01T10:00")
    with page.expect_response(lambda r: "range=custom" in r.url) as answer:
        page.click("form.custom-range button[type=submit]")
    assert answer.value.status == 422
    expect(page.locator(".range-error")).to_contain_text("to: the end must be after the start")
    expect(page.locator("#chart")).to_have_attribute("data-drawn", "22")
    shot(page, "sensor-bad-range", dialect)
    page.goto(sensor_url)
    with page.expect_download() as download:
        page.click("text=Download raw readings (CSV)")
    rows = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("ts,ts_iso,ts_corrected") and len(rows) == 1 + 21
    context.close()
    # A viewer sees no audit link, and the page itself is a 403 page, not a stack trace.
    person(engine, "vera", ("viewer",))
    viewer = browser.new_context(viewport={"width": 1280, "height": 800})
    page = viewer.new_page()
    sign_in_as(page, site, "vera")
    expect(page.locator("nav")).not_to_contain_text("Audit trail")
    reply = page.goto(site + "/dashboard/audit")
    assert reply is not None and reply.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".error")).to_contain_text("audit.read")
    shot(page, "forbidden", dialect)
    viewer.close()


def filter_alerts_and_follow_the_chart_link(page: Page, dialect: str, offset: str) -> None:
    """On the alerts page: filter by rule, then by a time typed in Berlin's wall time, and follow the
    chart link of the alert found to the sensor page showing that alert's time."""
    rows = page.locator("table.alerts tbody tr[data-alert]")
    expect(rows).to_have_count(1)  # open ones only, by default
    page.select_option("select[name=state]", "all")
    page.select_option("select[name=rule]", "door.open")
    page.click("form.alert-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"rule=door\.open"))
    expect(rows).to_have_count(1)
    door = page.locator('tr[data-alert="gw01/gw01-a-000004"]')
    expect(door).to_contain_text("Dock 1 door left open")
    expect(door.locator(".lasted")).to_have_text("lasted 10 min")
    expect(door.locator("a.chart-link")).to_have_count(0)  # a door has no chart
    shot(page, "alerts-by-rule", dialect)
    # From 27 h to 24 h ago, typed in the site's zone: only cr1-t03's old excursion.
    now = _now_ms()
    page.select_option("select[name=rule]", "")
    page.fill("input[name=from]", form_value(now - 27 * HOUR, "Europe/Berlin"))
    page.fill("input[name=to]", form_value(now - 24 * HOUR, "Europe/Berlin"))
    page.click("form.alert-filters button[type=submit]")
    expect(rows).to_have_count(1)
    old = page.locator('tr[data-alert="gw01/gw01-a-000003"]')
    expect(old.locator(".lasted")).to_have_text("lasted 1 h")  # raised 26 h ago, cleared 25 h ago
    expect(old).to_contain_text("peak 8.9 °C")
    expect(old).to_contain_text(offset)
    shot(page, "alerts-by-time", dialect)
    # At the cold-room door (a tablet held upright) the filters wrap and the page is no wider than it.
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 768
    shot(page, "alerts-tablet", dialect)
    page.set_viewport_size({"width": 1280, "height": 800})
    link = old.locator("a.chart-link")
    window = parse_qs(urlsplit(link.get_attribute("href") or "").query)
    start = int(window["from"][0])
    assert abs(start - (now - 26 * HOUR - 20 * MINUTE)) < 60_000  # 15 min before the excursion began
    link.click()
    expect(page.locator("h1")).to_contain_text("cr1-t03")
    expect(page.locator(".shown-range")).to_contain_text(local_time(start, "Europe/Berlin"))
    expect(page.locator("form.custom-range button.current")).to_have_count(1)
    expect(page.locator("#chart")).to_have_attribute("data-marks", "1")
    expect(page.locator("table.alerts-in-range")).to_contain_text("Cold room 1 (t03) above 8.0 °C")
    expect(page.locator("[data-stat=max]")).to_contain_text("8.9")
    shot(page, "alert-chart", dialect)


def see_a_delayed_gap_on_its_chart(page: Page, site: str, start: int, dialect: str) -> None:
    """gw03's unheard gap judged delayed: a hatched band said in the legend, no grey gap, no line broken."""
    query = f"gateway=gw03&sensor=cr1-t01&range=custom&from={start - 5 * MINUTE}&to={start + 10 * MINUTE}"
    page.goto(f"{site}/dashboard/sensor?{query}")
    expect(page.locator("#chart")).to_have_attribute("data-delayed", "1")
    expect(page.locator("#chart")).to_have_attribute("data-drawn", "260")  # every reading, no null added
    expect(page.locator(".legend").first).to_contain_text("delayed, nothing missing")
    expect(page.locator("table.gaps-in-range .verdict.delayed")).to_have_text("delayed, nothing missing")
    shot(page, "sensor-delayed-gap", dialect)
    page.goto(f"{site}/dashboard/gaps")


def see_open_gaps_first_with_durations(page: Page) -> None:
    """Open gaps come first, each saying how long so far; a closed one says how long it lasted."""
    states = page.locator("table.gaps tbody tr td:first-child").all_inner_texts()
    assert states == sorted(states, key=lambda s: s != "open") and states[0] == "open", states
    expect(page.locator("tr.open td.lasted").first).to_contain_text(re.compile(r"still open, \d+ min so far"))
    closed = page.locator('tr.closed[data-gap^="gw01/cr1-t01/"]')
    expect(closed.locator("td.lasted")).to_have_text("1 h")
    expect(closed.locator("a.chart-link")).to_have_count(1)


def publish_documents_gw01_applies_only_the_master(engine: Engine) -> None:
    """Master data v1 and recall list v1 published to gw01 and gw02; gw01's next status says it applied
    the master only (gw02 has said nothing since its last will)."""
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=Actor("QA"), now=now)
        due_documents(conn, now, {"gw01", "gw02"})
    status = status_message("gw01", ts=_now_ms(), last_seq=10, versions=DocumentVersions(master=1))
    assert ingest(engine, *status).kind == "status"


def test_gateways_and_users_pages_for_an_admin(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    dialect = db_url.split(":", 1)[0].split("+")[0]
    person(engine, "ada", ("admin",))
    publish_documents_gw01_applies_only_the_master(engine)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_as(page, site, "ada")
    page.click("nav >> text=Gateways")
    expect(page.locator('table.gateways-registry tr[data-gateway="gw02"]')).to_contain_text("offline")
    expect(page.locator("table.enrolments")).to_contain_text("gw29")
    gw01 = page.locator('table.downlink tr[data-downlink="gw01"]')
    expect(gw01.locator("td[data-kind=master]")).to_have_text("master data v1 in force")
    expect(gw01.locator("td[data-kind=recall]")).to_have_text(
        re.compile(r"behind since \d{4}-\d\d-\d\d \d\d:\d\d \+00:00 \(v1 published, none in force\)")
    )
    expect(page.locator('table.downlink tr[data-downlink="gw02"] td[data-kind=recall]')).to_contain_text(
        "not reported"
    )
    shot(page, "gateways", dialect)
    page.click("nav >> text=Users")
    expect(page.locator('tr[data-login="ada"] form.roles button')).to_have_count(0)  # not her own roles
    form = page.locator("form.add-user")
    form.locator("input[name=login]").fill("nina")
    form.locator("input[name=printed_name]").fill("Nina Novak")
    form.locator("input[name=email]").fill("nina@example.org")
    form.locator("input[name=password]").fill("short")
    form.locator("input[value=qa]").check()
    form.locator("button[type=submit]").click()
    expect(page.locator(".error")).to_contain_text("password: is 5 characters")
    expect(page.locator('tr[data-login="nina"]')).to_have_count(0)
    form = page.locator("form.add-user")
    for name, value in (("login", "nina"), ("printed_name", "Nina Novak"), ("email", "nina@example.org"),
                        ("password", "a long enough passphrase")):  # fmt: skip
        form.locator(f"input[name={name}]").fill(value)
    form.locator("input[value=qa]").check()
    form.locator("button[type=submit]").click()
    expect(page.locator(".done")).to_contain_text("added nina")
    row = page.locator('tr[data-login="nina"]')
    expect(row.locator("input[value=qa]")).to_be_checked()
    row.locator("input[value=viewer]").check()
    row.locator("form.roles button").click()
    expect(page.locator('tr[data-login="nina"] input[value=viewer]')).to_be_checked()
    page.locator('tr[data-login="nina"] >> text=Disable').click()
    expect(page.locator('tr[data-login="nina"]')).to_contain_text("disabled")
    shot(page, "users", dialect)
    forged = page.request.post(site + "/dashboard/users/quinn/disable", form={"csrf_token": "forged"})
    assert forged.status == 403
    context.close()
    with engine.connect() as conn:
        from coldgate.cloud.audit.log import verify
        from coldgate.cloud.identity.users import find_user

        assert find_user(conn, "quinn")["active"] is True  # the forged post changed nothing
        assert find_user(conn, "nina")["roles"] == ["qa", "viewer"]
        checked, broken = verify(conn)
    assert broken is None and checked > 0


def test_the_catalog_filtered_to_recalled_lots_and_a_lots_history(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    """A viewer (everyone may read the catalog) opens it from the menu, narrows the lots to the recalled
    ones and reads that lot's history: who recalled it, when (in the site's zone), why, what changed.
    The catalog fits a tablet held upright and prints without its links and buttons."""
    dialect = db_url.split(":", 1)[0].split("+")[0]
    seed_catalog(engine)
    person(engine, "vera", ("viewer",))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_as(page, site, "vera")
    page.click("nav >> text=Catalog")
    expect(page.locator("h1")).to_contain_text("Catalog")
    lots = page.locator("table.catalog-lots tbody tr[data-lot]")
    expect(lots).to_have_count(3)
    expect(page.locator('tr[data-lot="IN20/B7"]')).to_contain_text("expired")
    expect(page.locator('tr[data-class="2-8C"]')).to_contain_text("2.0 to 8.0 °C")
    expect(page.locator('tr[data-product="VX10"]')).to_contain_text("GTIN 04006381333931")
    shot(page, "catalog", dialect)
    page.select_option("select[name=status]", "recalled")
    page.click("form.catalog-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=recalled"))
    expect(lots).to_have_count(1)
    recalled = page.locator('tr[data-lot="VX10/L1"]')
    expect(recalled.locator(".lot-status")).to_have_text("recalled")
    shot(page, "catalog-recalled", dialect)
    page.set_viewport_size({"width": 768, "height": 1024})
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 768
    shot(page, "catalog-tablet", dialect)
    page.set_viewport_size({"width": 1280, "height": 800})
    recalled.locator("a.history-link").click()
    expect(page.locator("h1")).to_contain_text("Lot L1 of product VX10")
    newest = page.locator('table.catalog-history tr[data-version="2"]')
    expect(newest).to_contain_text("Rita Recall")
    expect(newest).to_contain_text("FSN 2026-07: potency")
    expect(newest).to_contain_text("status: released → recalled")
    expect(newest).to_contain_text("2026-12-01 11:00:00 +00:00")
    expect(page.locator('table.catalog-history tr[data-version="1"]')).to_contain_text("created")
    shot(page, "catalog-lot-history", dialect)
    page.emulate_media(media="print")
    expect(page.locator("a.back-link")).to_be_hidden()
    expect(page.locator(".bar nav")).to_be_hidden()
    expect(newest).to_be_visible()
    shot(page, "catalog-lot-history-print", dialect)
    page.goto(site + "/dashboard/catalog?status=recalled")
    expect(page.locator("a.history-link").first).to_be_hidden()
    expect(page.locator("form.catalog-filters button")).to_be_hidden()
    shot(page, "catalog-print", dialect)
    context.close()


def test_a_sensor_moved_between_rooms_is_judged_by_each_rooms_class(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    """cr1-t01 watched Cold room 1 (2-8C) and was moved to the ambient store (15-25C) 3 hours ago: its
    chart draws each room's limits over the time it was there with a mark where it moved, the page
    says which class held when, and its tile shows the limits of the room it is in now."""
    from coldgate.cloud.catalog.locations import put_location
    from coldgate.cloud.catalog.placements import place

    dialect = db_url.split(":", 1)[0].split("+")[0]
    seed_catalog(engine)
    qa, now = Actor("Quinn Tester", "u-quinn"), datetime.datetime.now(datetime.UTC)
    moved = _now_ms() - 3 * HOUR
    cold = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
    ambient = {"name": "Ambient store", "kind": "ambient_store", "temperature_class": "15-25C"}
    with engine.begin() as conn:
        put_location(conn, "site1", "cr1", cold, reason="layout", by=qa, now=now)
        put_location(conn, "site1", "amb1", ambient, reason="layout", by=qa, now=now)
        place(conn, "gw01", "sensor", "cr1-t01", "cr1", moved - 30 * HOUR, reason="installed", by=qa, now=now)
        place(conn, "gw01", "sensor", "cr1-t01", "amb1", moved, reason="logger moved", by=qa, now=now)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_as(page, site, "quinn")
    page.goto(site + "/")
    limits = tile(page, "gw01/cr1-t01").locator(".limits")  # type: ignore[attr-defined]
    expect(limits).to_contain_text("15.0 to 25.0")
    expect(limits).to_have_attribute("title", "class 15-25C of Ambient store")
    page.click('li.tile[data-sensor="gw01/cr1-t01"] a')
    expect(page.locator("#chart")).to_have_attribute("data-moves", "1")
    chart = page.evaluate("() => JSON.parse(document.getElementById('chart-data').textContent)")
    assert [(band["low"], band["high"], band["pre_low"], band["pre_high"]) for band in chart["limits"]] == [
        (2.0, 8.0, 3.0, 7.0), (15.0, 25.0, 15.5, 24.5)
    ]  # fmt: skip
    assert chart["limits"][0]["to"] == chart["limits"][1]["from"] == moved / 1000
    assert chart["moves"] == [[moved / 1000, "class 15-25C of Ambient store"]]
    stretches = page.locator("ul.limits-source li")
    expect(stretches).to_have_count(2)
    expect(stretches.nth(0)).to_contain_text("class 2-8C of Cold room 1")
    expect(stretches.nth(0)).to_contain_text("after 900 s outside")
    expect(stretches.nth(1)).to_contain_text("class 15-25C of Ambient store")
    expect(page.locator("table.placements")).to_contain_text("logger moved")
    shot(page, "sensor-moved", dialect)
    page.close()


def test_an_offline_logger_and_an_overdue_calibration_show_on_the_overview_and_the_alerts_page(
    browser: Browser, site: str, engine: Engine, db_url: str
) -> None:
    """cr1-t03's gateway raised ``source.offline`` at the edge (it fires with the uplink down too:
    tests/test_gateway_offline_alerts.py) and cr1-t02's certificate ran out 5 days ago, which the
    cloud's calibration watch turns into an alert: both tiles say so, and both alerts are listed."""
    from coldgate.cloud.alerts.calibration_due_watch import check_calibrations
    from coldgate.cloud.catalog.placements import record_calibration

    dialect = db_url.split(":", 1)[0].split("+")[0]
    now = _now_ms()
    silent = items.alert(90, ts=now - 5 * MINUTE, rule="source.offline", subject="cr1-t03",
                         message="sensor cr1-t03 offline for 5 min (Cold room 1)",
                         evidence=Evidence(start=now - 10 * MINUTE))  # fmt: skip
    assert ingest(engine, *batch_message("gw01", [_numbered(200, silent)])).kind == "batch"
    today = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    certificate = {"certificate": "CAL-2025-77", "calibrated_on": (today - 370 * day).date(),
                   "accuracy": "±0.3 °C", "next_due": (today - 5 * day).date()}  # fmt: skip
    with engine.begin() as conn:
        record_calibration(conn, "gw01", "cr1-t02", {k: str(v) for k, v in certificate.items()},
                           reason="annual", by=Actor("Quinn Tester", "u-quinn"), now=today)  # fmt: skip
    [raised] = check_calibrations(engine, today, 30)
    assert raised.sensor == "cr1-t02"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in_as(page, site, "quinn")
    page.goto(site + "/")
    offline = tile(page, "gw01/cr1-t03")
    expect(offline).to_have_attribute("data-state", "offline")  # type: ignore[arg-type]
    expect(offline).to_contain_text("sensor cr1-t03 offline for 5 min")  # type: ignore[arg-type]
    overdue = tile(page, "gw01/cr1-t02")
    expect(overdue).to_have_attribute("data-state", "calibration overdue")  # type: ignore[arg-type]
    expect(overdue).to_contain_text("calibration overdue since")  # type: ignore[arg-type]
    shot(page, "overview-offline-calibration", dialect)
    page.goto(site + "/dashboard/alerts")
    expect(page.locator("body")).to_contain_text("sensor cr1-t03 offline for 5 min")
    expect(page.locator("body")).to_contain_text("calibration overdue since")
    page.close()
