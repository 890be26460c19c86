"""The door answers before the body is judged, even a body FastAPI cannot parse (found by the security
pass, tests/test_api_schemathesis.py): FastAPI decodes the JSON before any dependency runs, so a caller
without credentials who sent ``{"a":`` heard a 422 describing their body where every other request
of theirs hears 401, and a reader without the route's permission heard 422 instead of 403."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from tests.rig.people import bearer, person

BROKEN = [b'{"a":', b"[1", b'{"reason": "\xff"}']
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    headers = {"nobody": {}, "wrong token": bearer("cg_not-a-token")}
    for role in ("viewer", "dock_operator"):
        headers[role] = bearer(person(engine, role.replace("_", "-"), (role,))[1])
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, headers


@pytest.mark.parametrize("body", BROKEN, ids=["cut short", "unclosed list", "not UTF-8"])
def test_the_door_answers_before_an_unparsable_body(
    api: tuple[TestClient, dict[str, dict[str, str]]], body: bytes
) -> None:
    client, headers = api
    answers = {
        caller: client.post("/documents", content=body, headers={**JSON, **headers[caller]})
        for caller in headers
    }
    assert answers["nobody"].status_code == 401, answers["nobody"].text
    assert answers["nobody"].headers["WWW-Authenticate"] == "Bearer"
    assert answers["wrong token"].status_code == 401, answers["wrong token"].text
    assert answers["viewer"].status_code == 403, answers["viewer"].text
    assert "documents.manage" in answers["viewer"].json()["detail"]
    # Past the door, the body's fault is named as before.
    allowed = answers["dock_operator"]
    assert allowed.status_code == 422, allowed.text
    assert allowed.json()["detail"][0]["type"] == "json_invalid"


def test_a_public_route_still_names_the_bodys_fault(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, _ = api
    reply = client.post("/auth/login", content=b'{"login":', headers=JSON)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["type"] == "json_invalid"
