"""The pages answer whatever is typed into the sensor page's range, and whatever limits an alert's
evidence holds, with a page (a 200, or a 422 saying what was wrong), never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.web.app import create_web_app
from coldgate.contract.evidence import Limits
from tests.rig import items
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message
from tests.rig.people import bearer, person


@pytest.fixture
def pages(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    now = int(time.time() * 1000)
    alert = items.alert(1, ts=now - 10_000, subject="cr1-t01")
    only_high = msgspec.structs.replace(alert.evidence, limits=Limits(high=8.0))  # no low, no pre-alarm
    batch = [
        msgspec.structs.replace(items.reading(4.5, sensor="cr1-t01", ts=now - 60_000), seq=1),
        msgspec.structs.replace(alert, seq=2, evidence=only_high),
    ]
    assert ingest(engine, *batch_message("gw01", batch)).kind == "batch"
    _, token = person(engine, "quinn", ("qa_manager",))
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_partial_limits_are_shown_as_far_as_they_go(pages: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = pages
    alerts = client.get("/dashboard/alerts", headers=headers)
    assert alerts.status_code == 200 and "limits not above 8.0 °C" in alerts.text
    sensor = client.get("/dashboard/sensor", params={"gateway": "gw01", "sensor": "cr1-t01"}, headers=headers)
    assert sensor.status_code == 200
    assert "Limits not above 8.0 °C: as gateway gw01 applied them in alert gw01-a-000001" in sensor.text
    overview = client.get("/", headers=headers)
    assert overview.status_code == 200 and "limits not above 8.0 °C" in overview.text


typed = st.none() | st.text(max_size=40) | st.integers(-5, 10**17).map(str) | st.datetimes().map(str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(range_=st.sampled_from(["24h", "custom", "1y"]) | st.text(max_size=12), start=typed, end=typed)
def test_any_range_is_a_page(
    pages: tuple[TestClient, dict[str, str]], range_: str, start: str | None, end: str | None
) -> None:
    client, headers = pages
    params = {"gateway": "gw01", "sensor": "cr1-t01", "range": range_}
    params |= {k: v for k, v in (("from", start), ("to", end)) if v is not None}
    reply = client.get("/dashboard/sensor", params=params, headers=headers)
    assert reply.status_code in (200, 422), reply.text[:300]
    if reply.status_code == 422 and "range-error" in reply.text:
        assert "Showing the last 24 h instead" in reply.text
