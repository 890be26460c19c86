"""The alerts and gaps pages: filtered by site, gateway, rule, severity and a time typed in the site's
zone, each row linked to its sensor's chart at that time, open gaps first with their durations; and
whatever is typed into the filters is a page (a 200, or a 422 saying what was wrong), never a 500.

The pure helpers behind them (``cloud/web/list_filters.py``) are tested here too."""

from __future__ import annotations

import datetime
import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.api.queries_sites import ZoneBook
from coldgate.cloud.api.routes import MAX_RANGE_MS
from coldgate.cloud.api.schemas import AlertEntry, GapEntry
from coldgate.cloud.time_text import duration
from coldgate.cloud.web.app import create_web_app
from coldgate.cloud.web.list_filters import (
    CHART_MARGIN_MS,
    alert_chart_link,
    alert_span,
    gap_chart_link,
    lasting,
    list_zone,
    span_link,
    typed_window,
)
from coldgate.cloud.web.ranges import form_value
from coldgate.cloud.web.times import RangeError
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import AlertAction, GapCause, Severity, SubjectType
from tests.rig import items
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message, enrol
from tests.rig.people import bearer, person

MIN = 60_000
HOUR = 60 * MIN
BERLIN = "Europe/Berlin"


# ---------------------------------------------------------------- the pure helpers


@pytest.mark.parametrize(
    ("ms", "words"),
    [(0, "0 s"), (59_999, "59 s"), (MIN, "1 min"), (59 * MIN, "59 min"), (HOUR, "1 h"),
     (HOUR + 5 * MIN, "1 h 05 min"), (47 * HOUR + 59 * MIN, "47 h 59 min"), (48 * HOUR, "2 d"),
     (3 * 24 * HOUR + 4 * HOUR, "3 d 04 h"), (-5, "0 s")],
)  # fmt: skip
def test_durations_in_words(ms: int, words: str) -> None:
    assert duration(ms // 1000, brief=True) == words


def test_lasting_says_still_open_and_so_far() -> None:
    assert lasting(1_000, None, 1_000 + 3 * HOUR) == "still open, 3 h so far"
    assert lasting(1_000, 1_000 + HOUR + 5 * MIN, 0) == "1 h 05 min"


def link_range(link: str) -> tuple[int, int]:
    query = parse_qs(urlsplit(link).query)
    assert query["range"] == ["custom"]
    return int(query["from"][0]), int(query["to"][0])


def test_span_links_leave_a_margin_and_keep_within_a_chart() -> None:
    t = 1_795_000_000_000
    link = span_link("gw 01", "cr1/t01", t, t + HOUR)
    assert link.startswith("/dashboard/sensor?gateway=gw+01&sensor=cr1%2Ft01&range=custom&")
    assert link_range(link) == (t - CHART_MARGIN_MS, t + HOUR + CHART_MARGIN_MS)
    # A tenth of a long span each side; past the longest chart, the end and the time before it.
    assert link_range(span_link("g", "s", t, t + 10 * 86_400_000)) == (t - 86_400_000, t + 11 * 86_400_000)
    start, end = link_range(span_link("g", "s", t - 5 * 365 * 86_400_000, t))
    assert end - start == MAX_RANGE_MS and end > t
    assert link_range(span_link("g", "s", 1_000, 2_000))[0] == 0


def alert_entry(**fields: Any) -> AlertEntry:
    base: dict[str, Any] = dict(
        gateway="gw01", alert_id="a-1", open=False, last_action="cleared", raised_at=10 * HOUR,
        updated_at=11 * HOUR, steps=2, rule="temperature.excursion", subject_type="sensor",
        subject="cr1-t01", severity="critical", message="m", evidence={"start": 10 * HOUR - 10 * MIN},
    )  # fmt: skip
    return AlertEntry(**(base | fields))


def test_an_alert_spans_from_its_evidence_start_to_its_clearing_or_now() -> None:
    now = 20 * HOUR
    assert alert_span(alert_entry(), now) == (10 * HOUR - 10 * MIN, 11 * HOUR)
    assert alert_span(alert_entry(open=True, last_action="raised"), now) == (10 * HOUR - 10 * MIN, now)
    # Evidence is the gateway's JSON: anything not a time is ignored, never a failed page.
    for odd in ({"start": "soon"}, {"start": True}, {"start": -1}, {"start": 10**20}, {}):
        assert alert_span(alert_entry(evidence=odd), now) == (10 * HOUR, 11 * HOUR)
    assert alert_span(alert_entry(evidence={"end": 12 * HOUR}), now) == (10 * HOUR, 12 * HOUR)
    link = alert_chart_link(alert_entry(), now)
    assert link is not None and link_range(link) == (10 * HOUR - 25 * MIN, 11 * HOUR + 15 * MIN)
    for subject_type in ("gateway", "reader", "door"):
        assert alert_chart_link(alert_entry(subject_type=subject_type), now) is None


def test_a_gap_links_its_sensor_chart_until_now_while_open() -> None:
    gap = GapEntry(gateway="gw01", subject_type="sensor", subject="cr1-h01", cause="sensor_offline",
                   start=5 * HOUR, end=None, open=True, detail="", reports=1)  # fmt: skip
    link = gap_chart_link(gap, 6 * HOUR)
    assert link is not None and link_range(link) == (5 * HOUR - 15 * MIN, 6 * HOUR + 15 * MIN)
    assert gap_chart_link(gap.model_copy(update={"subject_type": "gateway"}), 6 * HOUR) is None


def test_the_time_filter_is_read_in_the_zone_and_either_end_may_be_empty() -> None:
    # 2026-12-06 10:00 in Berlin (winter, +01:00) is 09:00 UTC.
    nine_utc = int(datetime.datetime(2026, 12, 6, 9, tzinfo=datetime.UTC).timestamp() * 1000)
    assert typed_window("2026-12-06T10:00", None, BERLIN) == (nine_utc, None)
    assert typed_window("", "2026-12-06T10:00", BERLIN) == (None, nine_utc)
    assert typed_window(str(nine_utc - 1), "2026-12-06T09:00:00Z", BERLIN) == (nine_utc - 1, nine_utc)
    assert typed_window(None, None, BERLIN) == (None, None)
    assert typed_window(" ", "2026-12-06T10:00+01:00", "UTC") == (None, nine_utc)
    refusals = [
        (("2026-03-29T02:30", None), "from: 2026-03-29 02:30 does not exist in Europe/Berlin"),
        (("soon", None), "from: 'soon' is not a date and time"),
        ((None, "1969-12-31T23:00"), "to: '1969-12-31T23:00' is before 1970"),
        (("2026-12-06T10:00", "2026-12-06T09:00"), "to: the end must be after the start"),
        (("999999999999999", None), "from: '999999999999999' is outside the times the cloud keeps"),
    ]
    for (start, end), words in refusals:
        with pytest.raises(RangeError, match=re.escape(words)):
            typed_window(start, end, BERLIN)


def test_a_list_is_typed_in_the_chosen_site_or_gateway_zone() -> None:
    zones = ZoneBook({"s1": BERLIN, "s2": "America/New_York"}, {"gw01": "s1", "gw40": "s2"})
    assert list_zone(zones, "s2", "gw01") == "America/New_York"
    assert list_zone(zones, None, "gw01") == BERLIN
    assert list_zone(zones, None, None) == "UTC"  # two zones: none of them
    assert list_zone(ZoneBook({"s1": BERLIN}, {}), None, None) == BERLIN


# ---------------------------------------------------------------- the pages


def _numbered(seq: int, item: msgspec.Struct) -> msgspec.Struct:
    return msgspec.structs.replace(item, seq=seq)


def seed(engine: Engine, now: int) -> None:
    """gw01 (site1, Berlin): an open excursion on cr1-t01 since 15 min ago; a closed one on cr1-t03 from
    26 h 05 min to 25 h ago; a door alert 2 h ago, cleared 10 min later; a gap of cr1-h01 open for
    5 min and one of cr1-t01 that lasted 1 h 05 min.  gw40 (site2, UTC): a gateway gap and an alert."""
    excursion = items.alert(1, ts=now - 20_000, subject="cr1-t01")
    excursion = msgspec.structs.replace(
        excursion, evidence=msgspec.structs.replace(excursion.evidence, start=now - 15 * MIN)
    )
    old_start = now - 26 * HOUR - 5 * MIN
    old = msgspec.structs.replace(excursion.evidence, start=old_start, peak=8.9)
    raised = items.alert(
        3, ts=now - 26 * HOUR, subject="cr1-t03", evidence=old, message="Cold room 1 t03 above"
    )
    cleared = msgspec.structs.replace(raised, ts=now - 25 * HOUR, action=AlertAction.CLEARED)
    door = items.alert(4, ts=now - 2 * HOUR, rule="door.open", subject_type=SubjectType.DOOR, subject="dock1",
                       severity=Severity.WARNING, message="Dock 1 door open",
                       evidence=Evidence(start=now - 2 * HOUR))  # fmt: skip
    door_shut = msgspec.structs.replace(door, ts=now - 110 * MIN, action=AlertAction.CLEARED)
    gap = msgspec.structs.replace(items.priority_items(now - 10_000)[1], subject="cr1-h01",
                                  start=now - 5 * MIN, end=None)  # fmt: skip
    earlier = msgspec.structs.replace(gap, subject="cr1-t01", start=now - 3 * HOUR, end=now - 115 * MIN)
    history = [items.reading(5.0 + k / 10, sensor="cr1-t03", ts=now - 27 * HOUR + k * 10 * MIN)
               for k in range(18)]  # fmt: skip
    batch = [excursion, raised, cleared, door, door_shut, gap, earlier, *history]
    numbered = [_numbered(n, item) for n, item in enumerate(batch, start=1)]
    assert ingest(engine, *batch_message("gw01", numbered)).kind == "batch"
    enrol(engine, ["gw40"], site="site2")
    down = msgspec.structs.replace(gap, subject_type=SubjectType.GATEWAY, subject="gw40",
                                   cause=GapCause.GATEWAY_OFFLINE, start=now - 40 * MIN, end=now - 30 * MIN)
    other = items.alert(1, ts=now - HOUR, alert_id="gw40-a-000001", subject="cr9-t01",
                        evidence=Evidence(start=now - HOUR - 5 * MIN))  # fmt: skip
    assert ingest(engine, *batch_message("gw40", [_numbered(1, down), _numbered(2, other)], site="site2")
                  ).kind == "batch"  # fmt: skip


@pytest.fixture
def pages(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str], int]]:
    now = int(time.time() * 1000)
    seed(engine, now)
    _, admin = person(engine, "ada", ("admin",))
    _, token = person(engine, "quinn", ("qa_manager",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        zone = client.put("/sites/site1/time-zone", json={"time_zone": BERLIN}, headers=bearer(admin))
        assert zone.status_code == 200, zone.text
        yield client, bearer(token), now


def rows(page: str, kind: str) -> list[str]:
    """The ``data-alert`` / ``data-gap`` of each row, in order."""
    return re.findall(rf'data-{kind}="([^"]+)"', page)


def chart_links(page: str) -> list[str]:
    return [html.unescape(href) for href in re.findall(r'class="chart-link" href="([^"]+)"', page)]


def test_alerts_filtered_by_site_rule_severity_and_time_typed_in_the_sites_zone(
    pages: tuple[TestClient, dict[str, str], int],
) -> None:
    client, headers, now = pages

    def shown(**params: Any) -> tuple[int, str]:
        reply = client.get("/dashboard/alerts", params=params, headers=headers)
        return reply.status_code, reply.text

    status, page = shown()
    assert status == 200 and rows(page, "alert") == ["gw01/gw01-a-000001", "gw40/gw40-a-000001"]
    [link, _] = chart_links(page)
    assert link_range(link) == (now - 30 * MIN, link_range(link)[1]) and link_range(link)[1] >= now + 15 * MIN
    everything = ["gw01/gw01-a-000001", "gw40/gw40-a-000001", "gw01/gw01-a-000004", "gw01/gw01-a-000003"]
    assert rows(shown(state="all")[1], "alert") == everything
    assert rows(shown(state="all", site="site2")[1], "alert") == ["gw40/gw40-a-000001"]
    status, page = shown(state="all", rule="door.open")
    assert rows(page, "alert") == ["gw01/gw01-a-000004"] and chart_links(page) == []
    assert "dock1 <small>(door)</small>" in page and "lasted 10 min" in page
    assert rows(shown(state="all", severity="warning")[1], "alert") == ["gw01/gw01-a-000004"]
    # From 27 h to 24 h ago, typed as Berlin's wall time: only the old excursion, its chart link around it.
    typed = {"from": form_value(now - 27 * HOUR, BERLIN), "to": form_value(now - 24 * HOUR, BERLIN)}
    status, page = shown(state="all", **typed)
    assert status == 200 and rows(page, "alert") == ["gw01/gw01-a-000003"]
    assert f'value="{typed["from"]}"' in page and f'value="{typed["to"]}"' in page
    [link] = chart_links(page)
    start = now - 26 * HOUR - 5 * MIN
    assert link_range(link) == (start - 15 * MIN, now - 25 * HOUR + 15 * MIN)
    assert "cr1-t03" in parse_qs(urlsplit(link).query)["sensor"]
    # The link lands on the sensor page showing that time, the alert marked on its chart.
    sensor = client.get(link, headers=headers)
    assert sensor.status_code == 200 and "range-error" not in sensor.text
    chart = json.loads(re.search(r'id="chart-data">(.*?)</script>', sensor.text, re.S).group(1))  # type: ignore[union-attr]
    assert chart["from"] * 1000 == start - 15 * MIN and len(chart["alerts"]) == 1
    assert "Cold room 1 t03 above" in sensor.text
    assert "No alert for these filters" in shown(state="all", site="site1", rule="no.such.rule")[1]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"from": "2026-03-29T02:30"}, "from: 2026-03-29 02:30 does not exist in Europe/Berlin"),
        ({"from": "2026-12-06T10:00", "to": "2026-12-05T10:00"}, "to: the end must be after the start"),
        ({"to": "next week"}, "to: &#39;next week&#39; is not a date and time like 2026-12-06T16:05"),
        ({"severity": "panic"}, "severity: &#39;panic&#39; is none of critical, warning, info"),
    ],
)
def test_a_bad_filter_is_said_on_the_page_and_the_rest_still_applies(
    pages: tuple[TestClient, dict[str, str], int], params: dict[str, str], words: str
) -> None:
    client, headers, _ = pages
    reply = client.get("/dashboard/alerts", params={"site": "site1", **params}, headers=headers)
    assert reply.status_code == 422
    assert f"Filter not applied: {words}" in reply.text
    assert rows(reply.text, "alert") == ["gw01/gw01-a-000001"]  # the site filter still applied
    if "severity" not in params:
        gaps = client.get("/dashboard/gaps", params={"site": "site1", **params}, headers=headers)
        assert gaps.status_code == 422 and f"Filter not applied: {words}" in gaps.text


def test_gaps_open_first_with_their_durations_and_chart_links(
    pages: tuple[TestClient, dict[str, str], int],
) -> None:
    client, headers, now = pages
    reply = client.get("/dashboard/gaps", headers=headers)
    assert reply.status_code == 200
    order = [row.split("/")[1] for row in rows(reply.text, "gap")]
    assert order == ["cr1-h01", "gw40", "cr1-t01"]  # open first, then newest start
    lasted = re.findall(r'<td class="lasted">([^<]+)</td>', reply.text)
    assert lasted[0] in ("still open, 5 min so far", "still open, 4 min so far")
    assert lasted[1:] == ["10 min", "1 h 05 min"]
    assert '<a class="gateway-link" href="/dashboard/gateways">' in reply.text  # gw40's own gap
    links = chart_links(reply.text)
    assert [link_range(link)[0] for link in links] == [now - 20 * MIN, now - 3 * HOUR - 15 * MIN]
    # Typed in Berlin: 4 h to 1 h ago holds only the closed one.
    typed = {"from": form_value(now - 4 * HOUR, BERLIN), "to": form_value(now - HOUR, BERLIN)}
    window = client.get("/dashboard/gaps", params={"site": "site1", **typed}, headers=headers)
    assert [row.split("/")[1] for row in rows(window.text, "gap")] == ["cr1-t01"]
    opened = client.get("/dashboard/gaps", params={"state": "open", "site": "site2"}, headers=headers)
    assert rows(opened.text, "gap") == [] and "No gap open for these filters" in opened.text


typed_text = (
    st.none()
    | st.text(max_size=40)
    | st.integers(-5, 10**17).map(str)
    | st.datetimes().map(str)
    | st.datetimes().map(lambda d: d.isoformat(timespec="minutes"))
    | st.sampled_from(["site1", "site2", "gw01", "door.open", "open", "all", "critical", "2026-03-29T02:30"])
)
PAGE_PARAMS = ("site", "gateway", "rule", "severity", "state", "from", "to")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(["alerts", "gaps"]), values=st.fixed_dictionaries({}, optional=dict.fromkeys(
    PAGE_PARAMS, typed_text)))  # fmt: skip
def test_any_filter_is_a_page(
    pages: tuple[TestClient, dict[str, str], int], page: str, values: dict[str, str | None]
) -> None:
    client, headers, _ = pages
    params = {k: v for k, v in values.items() if v is not None}
    reply = client.get(f"/dashboard/{page}", params=params, headers=headers)
    assert reply.status_code in (200, 422), (params, reply.text[:300])
