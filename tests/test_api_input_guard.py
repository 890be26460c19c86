"""Text PostgreSQL cannot hold never reaches a query: NUL and invalid UTF-8 in any path or query
parameter of any route are a 422 naming that parameter, on both dialects (issue 12).

The routes and their parameters come from the app's own OpenAPI document, so a route added later
is tried without anyone remembering to add it here.  Before the guard, a ``%00`` in any of the
12 free-text parameters that are looked up (all but the time parameters, which parse_time refused)
came back from PostgreSQL as a 500 (``psycopg.DataError``); ``%ff`` was turned into U+FFFD by
Starlette and silently looked up, on both dialects.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine

from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.moves import move_document
from coldgate.cloud.reports.periodic_store import CSV, store_report
from coldgate.cloud.reports.recall_store import open_recall
from tests.rig.cloud_db import ingest
from tests.rig.ingest import NOW_MS, batch_message, reading
from tests.rig.items import alert
from tests.rig.people import ALL_ROLES, bearer, person

TOKEN = "qa-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TOKENS = ApiTokens((("qa", TOKEN),))
READINGS = "/gateways/gw01/sensors/cr1-t01/readings"

#: A value for every parameter the API has, by name, under which a seeded database answers 200.
VALID = {
    "gateway": "gw01",
    "sensor": "cr1-t01",
    "site": "site1",
    "from": str(NOW_MS),
    "to": str(NOW_MS + 3_600_000),
    "quantity": "temperature",
    "state": "all",
    "severity": "warning",
    "rule": "temperature.excursion",
    "capped": "false",
    "open": "true",
    "limit": "10",
    "offset": "0",
    "max_points": "100",
    "login": "dana",
    "token_id": "t-000000000000",
    "entity_type": "user",
    "entity_id": "u-000000000000",
    "actor": "Dana Tester",
    "action": "user.",
    "retired": "false",
    "gtin": "04006381333931",
    "product": "VX10",
    "status": "recalled",
    "name": "2-8C",
    "lot": "L1",
    "serial": "000100",
    "reason": "supplier file of 2026-12-06",
    "location": "cr1",
    "device": "cr1-t01",
    "document_id": "doc-000000000001",
    "kind": "receiving",
    "door": "D1",
    "unit_id": "04006381333931.000100",  # a serial of lot L1 the catalog knows: its (empty) custody chain
    "at": str(NOW_MS),
    "as_of": str(NOW_MS),
    "case_id": "case-000000000001",
    "view": "all",
    "seq": "1",  # a master-data change's audit entry (only approving takes it: no GET route answers it)
    "report_id": "RPT-20261207-0000000001",
    "recall_id": "recall-000000000001",
    "customer": "Pharmacy A",
}

#: Percent-escapes a new user might type, each appended to a valid value: NUL, NUL mid-value, a
#: byte that starts no UTF-8 character, a UTF-8-encoded surrogate, and Java's overlong NUL.
POISONS = ("%00", "a%00b", "%ff", "%ED%A0%80", "%C0%80")


def _openapi() -> dict[str, Any]:
    """The document as the app serves it (nothing connects: the engine is never used)."""
    return create_app(create_engine("sqlite://"), TOKENS).openapi()


DOC = _openapi()


def _parameters(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]


OPERATIONS = [(method.upper(), path) for path, ops in DOC["paths"].items() for method in ops]
ROUTES = [path for method, path in OPERATIONS if method == "GET"]
CASES = [
    (method, path, parameter["in"], parameter["name"])
    for method, path in OPERATIONS
    for parameter in _parameters(DOC["paths"][path][method.lower()])
]
SECURED = [(m, path) for m, path in OPERATIONS if DOC["paths"][path][m.lower()].get("security")]


def url(
    path: str, poisoned: tuple[str, str] | None = None, *, optional: bool = False, method: str = "GET"
) -> str:
    """``path`` with valid values for its path and required query parameters (and the optional
    ones too if ``optional``), ``poisoned`` = (name, raw escapes) appended to that one's value."""
    where, bad = poisoned if poisoned else ("", "")
    query: list[str] = []
    for parameter in _parameters(DOC["paths"][path][method.lower()]):
        name = parameter["name"]
        assert name in VALID, f"add a valid value for {path} {name!r} to VALID"
        value = quote(VALID[name], safe="") + (bad if name == where else "")
        if parameter["in"] == "path":
            path = path.replace("{" + name + "}", value)
        elif parameter.get("required") or optional or name == where:
            query.append(f"{quote(name)}={value}")
    return path + ("?" + "&".join(query) if query else "")


@pytest.fixture
def client(engine: Engine, db_url: str) -> Iterator[TestClient]:
    """The app reading through an engine of its own and writing through ``engine``, as the service
    runs: reading through the writer (BEGIN IMMEDIATE on SQLite) made the CSV stream wait a minute for
    the write lock the request itself held."""
    from coldgate.cloud.db.engine import make_engine

    reader = make_engine(db_url)
    try:
        with TestClient(create_app(reader, TOKENS, writer=engine), raise_server_exceptions=False) as client:
            yield client
    finally:
        reader.dispose()


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """gw01 with one reading of cr1-t01 and an excursion alert (a QA case), a class, a product and a
    lot: every route has something to find."""
    excursion = msgspec.structs.replace(alert(1), seq=2)
    topic, payload = batch_message("gw01", [reading(1), excursion])
    assert ingest(engine, topic, payload).kind == "batch"
    qa, now = Actor("QA"), datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=qa, now=now)
        product = {"name": "Vaccine", "gtin": VALID["gtin"], "temperature_class": "2-8C", "serialised": True}
        put_product(conn, "VX10", product, reason="new", by=qa, now=now)
        put_lot(conn, "VX10", "L1", {"expiry": "2027-06-30"}, status="recalled", reason="FSN", by=qa, now=now)
        add_serials(conn, "VX10", "L1", [VALID["serial"]], reason="supplier list", by=qa, now=now)
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
        put_location(conn, VALID["site"], VALID["location"], room, reason="survey", by=qa, now=now)
        sides = {"inside": VALID["location"], "outside": VALID["location"]}
        door = {"name": "Dock door 1", "kind": "dock_door", **sides}
        put_location(conn, VALID["site"], VALID["door"], door, reason="survey", by=qa, now=now)
        lines = [{"product": "VX10", "lot": "L1", "quantity": 1}]
        fields = {"kind": VALID["kind"], "site": VALID["site"], "reference": "ASN-1", "lines": lines}
        create_document(conn, fields, reason="ASN", by=qa, now=now, document_id=VALID["document_id"])
        release = {"door": VALID["door"], "reason": "at the dock", "by": qa, "now": now}
        move_document(conn, VALID["document_id"], "released", **release)
        assert open_cases(conn, now, new_id=lambda: VALID["case_id"]) == 1
        store_report(conn, kind="calibration_status", parameters={"site": VALID["site"]}, title="Calibration",
                     filename="calibration.csv", content_type=CSV, body=b"gateway,sensor\r\n", by=qa, now=now,
                     site=VALID["site"], report_id=VALID["report_id"])  # fmt: skip
        open_recall(conn, recall_class="II", reason="FSN", lots=[("VX10", "L1")], by=qa,
                    held=frozenset({"recall.run"}), now=now, new_id=lambda: VALID["recall_id"])  # fmt: skip
    return engine


@pytest.fixture
def auth(seeded: Engine) -> dict[str, str]:
    """Dana holds every role, so every route lets her past its permission to the guard."""
    _, token = person(seeded, "dana", ALL_ROLES)
    return bearer(token)


@pytest.fixture
def unseeded_auth(engine: Engine) -> dict[str, str]:
    """Dana with every role on an empty database: enough for refusals, which come before any lookup (a
    fifth of the seeded fixture's cost, over some 300 cases)."""
    _, token = person(engine, "dana", ALL_ROLES)
    return bearer(token)


def refusal(reply: Any) -> dict[str, Any]:
    """The one error of a 422 in FastAPI's shape."""
    assert reply.status_code == 422, (reply.status_code, reply.text)
    [error] = reply.json()["detail"]
    assert set(error) >= {"loc", "msg", "type"}
    return error


def _free_text(parameter: dict[str, Any]) -> bool:
    """A string parameter without an enum: what a database lookup takes as given."""
    schema = parameter.get("schema", {})
    schema = next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)
    return schema.get("type") == "string" and "enum" not in schema


def test_the_document_has_the_routes_and_parameters_of_the_issue() -> None:
    """Every parameter is tried below, not only the free-text ones that reached PostgreSQL."""
    assert len(ROUTES) >= 11 and len(CASES) >= 31
    free_text = {
        (path, p["name"]) for path in ROUTES for p in _parameters(DOC["paths"][path]["get"]) if _free_text(p)
    }
    assert len(free_text) >= 15
    assert ("/gateways/{gateway}", "gateway") in free_text
    assert ("/gateways/{gateway}/sensors/{sensor}/readings", "from") in free_text


#: Each route's parameters, tried in one test per route (a test's set-up, a database and an app, costs
#: half a second; per parameter it was some 150 set-ups a dialect).
BY_ROUTE: dict[tuple[str, str], list[tuple[str, str]]] = {}
for _method, _path, _where, _name in CASES:
    BY_ROUTE.setdefault((_method, _path), []).append((_where, _name))


@pytest.mark.parametrize(("method", "path"), list(BY_ROUTE), ids=[f"{m} {p}" for m, p in BY_ROUTE])
def test_every_parameter_of_every_route_refuses_nul_and_invalid_utf8(
    client: TestClient, unseeded_auth: dict[str, str], method: str, path: str
) -> None:
    for where, name in BY_ROUTE[(method, path)]:
        for poison in POISONS:
            poisoned = url(path, (name, poison), method=method)
            error = refusal(client.request(method, poisoned, headers=unseeded_auth))
            assert error["loc"] == [where, name], (name, poison, error)
            expected = "NUL" if "00" in poison and poison != "%C0%80" else "UTF-8"
            assert expected in error["msg"], (name, poison, error)


def test_every_route_answers_valid_values(client: TestClient, auth: dict[str, str]) -> None:
    """Every GET route, with its required parameters and then with all of them, on one seeded database
    (they only read): every failure listed, not only the first."""
    failed = []
    for path in ROUTES:
        for full in (url(path), url(path, optional=True)):
            reply = client.get(full, headers=auth)
            if reply.status_code != 200:
                failed.append((full, reply.status_code, reply.text[:300]))
    assert not failed, failed


def test_strangers_hear_401_before_422(client: TestClient) -> None:
    """Nothing about parameters is said to a caller without a token, as for every other check (every
    secured route, each failure listed)."""
    failed = []
    for method, path in SECURED:
        declared = _parameters(DOC["paths"][path][method.lower()])
        poisoned = url(path, (declared[0]["name"], "%00"), method=method) if declared else path + "?x=%00"
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}):
            reply = client.request(method, poisoned, headers=headers)
            if reply.status_code != 401 or reply.headers.get("WWW-Authenticate") != "Bearer":
                failed.append((method, poisoned, reply.status_code, reply.text[:200]))
    assert not failed, failed


def test_parameters_no_route_declares_are_refused_too(client: TestClient) -> None:
    """An unknown parameter is never read, but one rule is easier to state (and to trust)."""
    assert refusal(client.get("/gateways?bogus=%00", headers=AUTH))["loc"] == ["query", "bogus"]
    assert refusal(client.get("/health?x=%ff"))["loc"] == ["query", "x"]
    named = refusal(client.get("/gateways?si%00te=site1", headers=AUTH))
    assert named["loc"] == ["query", "si\x00te"] and "name" in named["msg"]
    # The second of two values under one name.
    assert refusal(client.get("/gateways?site=site1&site=x%00", headers=AUTH))["loc"] == ["query", "site"]


def test_the_bad_path_parameter_is_named_not_its_neighbour(client: TestClient, seeded: Engine) -> None:
    window = f"from={NOW_MS}&to={NOW_MS + 1000}"
    sensor = refusal(client.get(f"/gateways/gw01/sensors/cr%ff/readings?{window}", headers=AUTH))
    assert sensor["loc"] == ["path", "sensor"]
    gateway = refusal(client.get(f"/gateways/g%ffw/sensors/cr1-t01/readings?{window}", headers=AUTH))
    assert gateway["loc"] == ["path", "gateway"]
    # All bad at once: each named, path before query, in the template's order.
    both = client.get(f"/gateways/g%00/sensors/s%ff/readings?{window}&quantity=%00", headers=AUTH)
    assert both.status_code == 422
    assert [e["loc"] for e in both.json()["detail"]] == [
        ["path", "gateway"],
        ["path", "sensor"],
        ["query", "quantity"],
    ]


def test_real_non_ascii_text_is_not_refused(client: TestClient, seeded: Engine) -> None:
    """Only what cannot be text is refused: é, a real U+FFFD, an emoji and a %2F are looked up."""
    for raw in ("caf%C3%A9", "%EF%BF%BD", "%F0%9F%A7%8A", "a%2Fb", "%01%1f%7f"):
        assert client.get(f"/gateways?site={raw}", headers=AUTH).json() == {"items": []}, raw
        reply = client.get(f"/gateways/gw{raw}", headers=AUTH)
        assert reply.status_code == 404, (raw, reply.text)


def test_the_refusal_does_not_echo_what_json_cannot_carry(client: TestClient) -> None:
    reply = client.get("/gateways?site=%ff%fe", headers=AUTH)
    error = refusal(reply)
    assert error["input"] == "\ufffd\ufffd"  # what the route would have seen


# ---------------------------------------------------------------- arbitrary text


def _escape(text: str) -> str:
    """Percent-escapes of ``text``'s UTF-8, lone surrogates as the bytes of their code points
    (what a careless encoder sends; no correct one can send a surrogate at all)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)


def _unstorable(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=ANY_TEXT, raw=st.binary(max_size=12))
def test_arbitrary_text_and_bytes_are_never_a_500(
    client: TestClient, seeded: Engine, value: str, raw: bytes
) -> None:
    window = urlencode({"from": VALID["from"], "to": VALID["to"]})
    requests = [
        (f"/gateways?site={_escape(value)}", ["query", "site"]),
        (f"/gateways/{_escape(value)}", ["path", "gateway"]),
        (f"{READINGS}?{window}&quantity={_escape(value)}", ["query", "quantity"]),
        (f"/alerts?gateway={_escape(value)}", ["query", "gateway"]),
        (f"{READINGS}?from={_escape(value)}&to=1", ["query", "from"]),
    ]
    for full, loc in requests:
        reply = client.get(full, headers=AUTH)
        assert reply.status_code in (200, 404, 405, 422), (full, reply.status_code, reply.text)
        # A path value with a "/" makes a path no route has: 404 whatever else it holds.
        if _unstorable(value) and not (loc[0] == "path" and "/" in value):
            assert reply.status_code == 422 and loc in [e["loc"] for e in reply.json()["detail"]], full
    reply = client.get(f"/sensors?gateway={quote(raw, safe='')}", headers=AUTH)
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        assert refusal(reply)["loc"] == ["query", "gateway"], raw
    else:
        assert reply.status_code == 200, (raw, reply.text)
