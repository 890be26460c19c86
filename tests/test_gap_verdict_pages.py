"""A gateway gap judged "delayed, nothing missing" as the API, the gaps page and the sensor chart show
it, on both dialects: a real unheard gap (the watchdog) whose backlog arrives through ingest, the
verdict written by ``decide_gaps``, read back through the same ``queries.gaps`` the pages use."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from tests.rig.gap_verdicts import T, judged_delayed
from tests.rig.people import bearer, person


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
