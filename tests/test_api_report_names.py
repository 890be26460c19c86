"""A report's site or location that no database can hold is a 422 naming the field, not a 500 (found
by the schemathesis pass on PostgreSQL, tests/test_api_schemathesis.py): the reports looked the name up
before judging it, and PostgreSQL refuses a NUL in text with a DataError."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from tests.rig.people import bearer, person

MONTHLY = {"site": "site1", "location": "CR1", "month": "2026-11", "format": "csv"}
EXCURSIONS = {"site": "site1", "location": "CR1", "start": "2026-11-01", "end": "2026-11-30", "format": "csv"}
#: (route, body, the field made bad)
CASES = [
    ("/reports/monthly", MONTHLY, "site"),
    ("/reports/monthly", MONTHLY, "location"),
    ("/reports/excursions", EXCURSIONS, "site"),
    ("/reports/excursions", EXCURSIONS, "location"),
    ("/reports/calibration", {"format": "csv"}, "site"),
]
BAD = {"NUL": "site1\u0000", "lone surrogate": "site\ud800", "newline": "site1\n"}


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "marta", ("qa",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


@pytest.mark.parametrize("path, body, field", CASES, ids=[f"{p} {f}" for p, _, f in CASES])
@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_a_name_no_database_can_hold_is_a_422(
    api: tuple[TestClient, dict[str, str]], path: str, body: dict[str, str], field: str, bad: str
) -> None:
    client, headers = api
    sent = json.dumps({**body, field: bad})
    reply = client.post(path, content=sent, headers={**headers, "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["body", field]
    assert client.get("/reports", headers=headers).json() == []  # nothing stored


def test_every_site_is_still_none(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    reply = client.post("/reports/calibration", json={"site": None, "format": "csv"}, headers=headers)
    assert reply.status_code == 201, reply.text
    assert reply.json()["site"] is None
