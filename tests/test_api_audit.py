"""Reading the audit trail through the API: filters, paging, and the CSV export an inspector opens,
whose rows still verify as a chain."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.chain import Entry, first_break
from tests.rig.people import bearer, person

TOKENS = ApiTokens((("erp", "legacy-token-0123456789abcdef"),))


@pytest.fixture
def setup(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "mia", ("qa_manager", "admin"))
    with TestClient(create_app(engine, TOKENS), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_filters_narrow_and_page(setup: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = setup
    for login in ("ola", "per"):
        body = {"login": login, "printed_name": login.title(), "email": f"{login}@example.org",
                "password": "long enough password"}  # fmt: skip
        assert client.post("/users", json=body, headers=auth).status_code == 201
    everything = client.get("/audit", headers=auth).json()
    assert everything["total"] == len(everything["items"]) >= 2
    seqs = [e["seq"] for e in everything["items"]]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    users = client.get("/audit", params={"entity_type": "user"}, headers=auth).json()
    assert users["total"] >= 1 and all(e["entity_type"] == "user" for e in users["items"])
    by_prefix = client.get("/audit", params={"action": "token."}, headers=auth).json()
    assert by_prefix["total"] >= 1 and all(e["action"].startswith("token.") for e in by_prefix["items"])
    page = client.get("/audit", params={"limit": 1, "offset": 1}, headers=auth).json()
    assert page["items"][0]["seq"] == seqs[1] and page["total"] == everything["total"]
    actor = everything["items"][0]["actor_name"]
    mine = client.get("/audit", params={"actor": actor}, headers=auth).json()
    assert mine["total"] >= 1 and all(actor in (e["actor_name"], e["actor_id"]) for e in mine["items"])
    later = client.get("/audit", params={"from": "2999-01-01T00:00:00Z"}, headers=auth).json()
    assert later == {"total": 0, "items": []}
    backwards = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    reversed_range = client.get("/audit", params=backwards, headers=auth)
    assert reversed_range.status_code == 422 and reversed_range.json()["detail"][0]["loc"] == ["query", "to"]
    no_zone = client.get("/audit", params={"from": "2026-01-01T00:00:00"}, headers=auth)
    assert no_zone.status_code == 422 and no_zone.json()["detail"][0]["loc"] == ["query", "from"]


def test_the_csv_holds_every_field_and_its_rows_still_chain(setup: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = setup
    reply = client.get("/audit.csv", headers=auth)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    assert "attachment" in reply.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(reply.text)))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["seq", "at", "actor_id", "actor_name"] and header[-2:] == ["prev_hash", "hash"]
    api = client.get("/audit", params={"limit": 1000}, headers=auth).json()
    assert len(body) == api["total"]
    # Oldest first, and the exported rows recompute to the same chain (empty cells were nulls).
    entries = [Entry(int(r[0]), r[1], *(None if c == "" else c for c in r[2:])) for r in body]
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert first_break(iter(entries)) is None


def test_formula_cells_are_defused_in_the_csv_only(setup: tuple[TestClient, dict[str, str]]) -> None:
    """A login typed as "=1+1" must not run in the inspector's spreadsheet; the JSON keeps it as typed."""
    client, auth = setup
    body = {"login": "eve", "printed_name": "Eve", "email": "eve@example.org"}
    body["password"] = "long enough password"
    assert client.post("/users", json=body, headers=auth).status_code == 201
    for _ in range(5):
        client.post("/auth/login", json={"login": "eve", "password": "wrong password!"})
    text = client.get("/audit.csv", params={"action": "user.lock"}, headers=auth).text
    api = client.get("/audit", params={"action": "user.lock"}, headers=auth).json()
    [row] = list(csv.reader(io.StringIO(text)))[1:]
    assert api["items"][0]["reason"] == "5 failed logins in a row"
    assert row[9] == "5 failed logins in a row"  # nothing to defuse
    malformed = client.post("/auth/login", json={"login": "=1+1", "password": "x"})
    assert malformed.status_code == 401
    text = client.get("/audit.csv", params={"action": "user.login_failed"}, headers=auth).text
    cells = [r[6] for r in list(csv.reader(io.StringIO(text)))[1:]]
    assert "'=1+1" in cells
    stored = client.get("/audit", params={"entity_id": "=1+1"}, headers=auth).json()["items"]
    assert stored and stored[0]["entity_id"] == "=1+1"
