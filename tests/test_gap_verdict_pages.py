"""A gateway gap judged "delayed, nothing missing" as the API, the gaps page and the sensor chart show
it, on both dialects: a real unheard gap (the watchdog) whose backlog arrives through ingest, the
verdict written by ``decide_gaps``, read back through the same ``queries.gaps`` the pages use."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.alerts.gap_verdicts import DELAYED
from coldgate.cloud.alerts.gap_verdicts_watch import decide_gaps
from coldgate.cloud.alerts.gateway_unheard_watch import check_gateways
from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import batch_message, enrol, reading, status_message
from tests.rig.people import bearer, person

T = int(RECEIVED.timestamp() * 1000)


def judged_delayed(engine: Engine, gateway: str = "gw01", start: int = T) -> None:
    """``gateway`` heard at ``start`` (up an hour, ten readings), unheard past the 180 s timeout, heard
    again at ``start`` + 250 s still running, its backlog (readings 11..260 of cr1-t01) then delivered and
    the gap judged delayed.  The browser test calls this too, for a gateway of its own, before the other
    gateways were last heard (``RECEIVED``) so the watchdog finds only this one unheard."""
    at = _moment(start)
    enrol(engine, [gateway])
    ingest(engine, *status_message(gateway, ts=start, last_seq=10, uptime_s=3600), now=at(0))
    heard = [reading(n, ts=start - (10 - n) * 1000) for n in range(1, 11)]
    ingest(engine, *batch_message(gateway, heard), now=at(0))
    [opened] = check_gateways(engine, at(200), 180.0)
    back = status_message(gateway, ts=start + 250_000, last_seq=260, uptime_s=3600 + 250)
    ingest(engine, *back, now=at(250))
    [closed] = check_gateways(engine, at(251), 180.0)
    assert (opened.start, closed.start, closed.end) == (start, start, start + 250_000)  # type: ignore[union-attr]
    backlog = [reading(n, ts=start + (n - 10) * 1000) for n in range(11, 261)]
    ingest(engine, *batch_message(gateway, backlog), now=at(253))
    [(_, verdict)] = decide_gaps(engine, at(254))
    assert verdict.verdict == DELAYED


def _moment(start: int) -> Callable[[float], datetime.datetime]:
    return lambda seconds: datetime.datetime.fromtimestamp(start / 1000 + seconds, datetime.UTC)


@pytest.fixture
def client(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    judged_delayed(engine)
    _, token = person(engine, "quinn", ("qa_manager",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_get_gaps_carries_the_verdict_of_a_cloud_unheard_gap(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    web, headers = client
    reply = web.get("/gaps", params={"gateway": "gw01"}, headers=headers)
    assert reply.status_code == 200, reply.text
    [gap] = [g for g in reply.json()["items"] if g["subject_type"] == "gateway"]
    assert (gap["start"], gap["end"], gap["cause"]) == (T, T + 250_000, "gateway_offline")
    assert gap["verdict"] == "delayed" and "nothing missing" in gap["verdict_detail"]
    assert gap["reports"] == 2  # the opening and closing rows, the verdict joined beside them


def test_the_gaps_page_says_delayed_and_the_chart_breaks_no_line(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    web, headers = client
    page = web.get("/dashboard/gaps", headers=headers)
    assert page.status_code == 200
    pattern = rf'<tr class="closed verdict-delayed" data-gap="gw01/gw01/{T}">(.*?)</tr>'
    row = re.search(pattern, page.text, re.S)
    assert row is not None and 'class="verdict delayed"' in row.group(1)
    assert "delayed, nothing missing" in row.group(1) and "Verdict: delayed, nothing missing" in row.group(1)
    sensor = web.get(
        "/dashboard/sensor",
        params={"gateway": "gw01", "sensor": "cr1-t01", "range": "custom", "from": T - 60_000,
                "to": T + 300_000},
        headers=headers,
    )  # fmt: skip
    assert sensor.status_code == 200, sensor.text
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', sensor.text, re.S)
    assert found is not None
    chart = json.loads(found.group(1))
    assert chart["gaps"] == [] and len(chart["delayed"]) == 1
    assert chart["delayed"][0][:2] == [T / 1000, (T + 250_000) / 1000]
    assert None not in chart["mean"]  # every reading arrived: the line runs through the gap
    assert "delayed, nothing missing" in sensor.text
