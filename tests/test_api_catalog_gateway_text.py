"""A placement's or a calibration's gateway that no database can hold is a 422 naming ``gateway``, not
a 500 (found by the schemathesis pass on PostgreSQL, tests/test_api_schemathesis.py): the gateway was
looked up before it was judged, and PostgreSQL refuses a NUL in text with a DataError."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from tests.rig.ingest import NOW_MS
from tests.rig.people import bearer, person

CALIBRATION = {"sensor": "s1", "certificate": "CAL-1", "calibrated_on": "2026-01-05", "accuracy": "±0.5 °C",
               "next_due": "2027-01-05", "reason": "yearly calibration"}  # fmt: skip
PLACEMENT = {"device_kind": "sensor", "device": "s1", "location": None, "valid_from": NOW_MS,
             "reason": "installed"}  # fmt: skip
WRITES = [("/catalog/calibrations", CALIBRATION), ("/catalog/placements", PLACEMENT)]
#: A NUL (PostgreSQL's text cannot hold it), a lone surrogate (no UTF-8 encodes it), a newline.
BAD = {"NUL": "gw01\u0000", "lone surrogate": "gw\ud800", "newline": "gw01\n"}


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "quinn", ("qa_manager",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


@pytest.mark.parametrize("path, body", WRITES)
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_gateway_no_database_can_hold_is_a_422(
    api: tuple[TestClient, dict[str, str]], path: str, body: dict[str, object], bad: str
) -> None:
    client, headers = api
    sent = json.dumps({**body, "gateway": bad})  # json escapes the surrogate as \ud800, as a client would
    reply = client.post(path, content=sent, headers={**headers, "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["body", "gateway"]


@pytest.mark.parametrize("path, body", WRITES)
def test_a_good_gateway_still_reaches_the_catalog(
    api: tuple[TestClient, dict[str, str]], path: str, body: dict[str, object]
) -> None:
    """An unknown gateway is still the catalog's 404; an enrolled one is recorded."""
    client, headers = api
    assert client.post(path, json={**body, "gateway": "gw-none"}, headers=headers).status_code == 404
    reply = client.post(path, json={**body, "gateway": "gw01"}, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["gateway"] == "gw01"
