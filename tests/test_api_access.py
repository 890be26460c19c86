"""The role matrix, from the outside: every route of the OpenAPI document, called with no
credentials, with the old tokens file, with a machine token and with a person of each role, answers
as ``cloud/api/access.py`` declares: 401, 403, or past the door (anything else)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, access, create_app
from coldgate.cloud.identity.roles import ROLES
from coldgate.cloud.identity.tokens import create_machine_token
from tests.rig.people import SETUP, bearer, person

FILE_TOKEN = "legacy-token-0123456789abcdef"
TOKENS = ApiTokens((("erp", FILE_TOKEN),))
#: A value for every path parameter; none of them names anything that exists.
PATH_VALUES = {"gateway": "gw-none", "sensor": "s-none", "login": "nobody", "token_id": "t-000000000000",
               "site": "site-none", "name": "class-none", "product": "p-none", "lot": "lot-none",
               "serial": "serial-none", "location": "loc-none", "document_id": "doc-none",
               "door": "door-none", "gtin": "04006381333931", "unit_id": "unit-none",
               "report_id": "report-none",
               "case_id": "case-none", "seq": "999999999", "recall_id": "recall-none",
               "customer": "customer-none"}
QUERY_VALUES = {"from": "1795000000000", "to": "1795000060000"}


def _operations() -> list[tuple[str, str]]:
    doc = create_app(_unused_engine(), TOKENS).openapi()
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method in item)


def _unused_engine() -> Engine:
    from sqlalchemy import create_engine

    return create_engine("sqlite://")


OPERATIONS = _operations()
CALLERS = ["nobody", "tokens_file", "machine", *ROLES]


def _held(caller: str) -> frozenset[str] | None:
    """The permissions a caller holds (None: not signed in)."""
    if caller == "nobody":
        return None
    if caller in ("tokens_file", "machine"):
        return ROLES["viewer"] - {"tokens.own"}
    return ROLES[caller]


def expected(caller: str, method: str, path: str) -> str:
    need = access.required(method, path)
    held = _held(caller)
    if need == access.PUBLIC:
        return "in"
    if held is None:
        return "401"
    if need == access.SIGNED_IN or need in held:
        return "in"
    return "403"


@pytest.fixture
def callers(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    headers: dict[str, dict[str, str]] = {"nobody": {}, "tokens_file": bearer(FILE_TOKEN)}
    for role in ROLES:
        headers[role] = bearer(person(engine, role.replace("_", "-"), (role,))[1])
    with engine.begin() as conn:
        now = datetime.datetime.now(datetime.UTC)
        issued = create_machine_token(
            conn, "erp", ["viewer"], label="ERP", days=7, by=SETUP, now=now
        )
    headers["machine"] = bearer(issued.token)
    with TestClient(create_app(engine, TOKENS), raise_server_exceptions=False) as client:
        yield client, headers


def _url(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"add a value for {path} to PATH_VALUES"
    return path


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers, "params": QUERY_VALUES if "readings" in path else None}
    if method in ("POST", "PUT"):
        kwargs["json"] = {}
    return client.request(method, _url(path), **kwargs)


def test_every_route_is_declared_and_every_caller_is_covered() -> None:
    assert set(OPERATIONS) == set(access.ROUTES)
    assert len(OPERATIONS) >= 29
    # Each declared permission is held by someone, and strangers are refused everywhere but the door.
    refused_somewhere = set()
    for (method, path), need in access.ROUTES.items():
        if need != access.PUBLIC:
            answers = {expected(c, method, path) for c in CALLERS}
            assert {"in", "401"} <= answers, (method, path)
            if "403" in answers:
                refused_somewhere.add(need)
    assert {"users.manage", "audit.read", "tokens.own"} <= refused_somewhere


def test_the_matrix(callers: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    """One test over every (route, caller) pair, so the people are made once per dialect."""
    client, headers = callers
    wrong: list[str] = []
    for method, path in OPERATIONS:
        for caller in CALLERS:
            reply = call(client, method, path, headers[caller])
            want = expected(caller, method, path)
            got = str(reply.status_code) if reply.status_code in (401, 403) else "in"
            if reply.status_code >= 500 or got != want:
                wrong.append(
                    f"{caller:18} {method} {path}: {reply.status_code} (want {want}) {reply.text[:120]}"
                )
    assert not wrong, "\n".join(wrong)


def test_refusals_do_not_tell_whether_the_thing_exists(
    callers: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine
) -> None:
    client, headers = callers
    # "admin" exists (made by the fixture), "nobody" does not: a viewer and a stranger hear the same.
    for who, status in (("viewer", 403), ("nobody", 401)):
        there = client.get("/users/admin", headers=headers[who])
        absent = client.get("/users/nobody", headers=headers[who])
        assert there.status_code == absent.status_code == status
        assert there.json() == absent.json()
    # With the permission, the difference is the answer.
    assert client.get("/users/admin", headers=headers["admin"]).status_code == 200
    assert client.get("/users/nobody", headers=headers["admin"]).status_code == 404


def test_the_table_says_what_was_decided() -> None:
    """The matrix test holds the app to the table; this holds the table to the decisions of issue 12,
    so a slip in the table (a route made public, people management opened to a reader) fails too."""
    routes = access.ROUTES
    public = {route for route, need in routes.items() if need == access.PUBLIC}
    assert public == {("GET", "/health"), ("POST", "/auth/login")}
    for (method, path), need in routes.items():
        if path.startswith(("/users", "/tokens")):
            assert need == "users.manage", (method, path)
        if path.startswith("/audit"):
            assert need == "audit.read", (method, path)
        if method != "GET" and not path.startswith("/auth/") and (method, path) not in access.RECORD_CHECKED:
            assert need not in ROLES["viewer"], (method, path)
    assert access.RECORD_CHECKED == {
        ("POST", "/cases/{case_id}/moves"), ("POST", "/dashboard/cases/{case_id}/move")
    }  # fmt: skip
    readers = [role for role in ROLES if "audit.read" in ROLES[role]]
    assert readers == ["qa_manager", "admin"]
