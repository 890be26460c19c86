"""The API's view of what ingest refuses, on both dialects: enrolments, unknown gateway ids, and
each source's dead-letter budget.

The tables are filled the real way, through ``ingest_message`` with the rig's
messages, so these tests also notice when ingest stops counting what the API
shows.  Times are the wall clock's (the API judges budget windows at its own
"now"), with every message placed minutes apart so the order is known.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="cloud API tests need the [cloud] extra")
pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.api.routes.dead_letters import BUDGET_STATE
from coldgate.cloud.identity.enrolment import enrol_gateway, revoke_gateway
from coldgate.cloud.ingest.dead_letter_budget import Budget
from coldgate.cloud.ingest.dead_letters import NOT_ENROLLED_SOURCE
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message
from coldgate.contract.topics import batch_topic
from tests.rig.ingest import ENROLLED, SITE, batch_message, reading

TOKEN = "qa-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: A budget small enough to exceed with a handful of messages (the config's minimum is 10 rows).
SMALL = Budget(window_s=3600.0, rows=2, bytes=1 << 20)
PATHS = ("/gateways/unknown", "/gateways/enrolments", "/dead-letters/budgets")


class Clock:
    """The test's "now", taken when it starts: the API judges windows by the wall clock, so the
    messages must be recent when it asks, however long the session ran before this test."""

    now = datetime.datetime.now(datetime.UTC)

    @classmethod
    def start(cls) -> None:
        cls.now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def ago(minutes: float) -> datetime.datetime:
    return Clock.now - datetime.timedelta(minutes=minutes)


@pytest.fixture(autouse=True)
def _clock() -> None:
    Clock.start()


def ingest(engine: Engine, topic: str, payload: bytes, now: datetime.datetime, budget: Budget = SMALL) -> str:
    with engine.begin() as conn:
        return ingest_message(conn, topic, payload, now, limits=IngestLimits(budget=budget)).kind


def from_unknown(engine: Engine, gateway: str, times: int, minutes_ago: float, *, site: str = SITE) -> None:
    """``times`` batches from ``gateway`` under ``site``'s topics, the last ``minutes_ago``."""
    for n in range(times):
        topic, payload = batch_message(gateway, [reading(n + 1)], site=site)
        kind = ingest(engine, topic, payload, ago(minutes_ago + times - 1 - n))
        assert kind == "not_enrolled", (gateway, kind)


def garbage(engine: Engine, gateway: str, count: int, now: datetime.datetime, budget: Budget = SMALL) -> None:
    """``count`` different payloads that are no batch on ``gateway``'s batch topic: new dead letters."""
    for n in range(count):
        ingest(engine, batch_topic(SITE, gateway), f"garbage {n}".encode(), now, budget)


def when(text: str | None) -> datetime.datetime | None:
    return None if text is None else datetime.datetime.fromisoformat(text)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    app = create_app(engine, ApiTokens((("qa", TOKEN),)))
    with TestClient(app) as client:
        yield client


def get(client: TestClient, path: str, **params: Any) -> Any:
    reply = client.get(path, params=params, headers=AUTH)
    assert reply.status_code == 200, reply.text
    return reply.json()


# ---------------------------------------------------------------- unknown gateway ids


@pytest.fixture
def refused(engine: Engine) -> Engine:
    """Five ids refused for the three reasons ingest knows, one enrolled afterwards; gw07 stores data."""
    with engine.begin() as conn:
        revoke_gateway(conn, "gw05", ago(60))
    from_unknown(engine, "gwX", 3, minutes_ago=30)  # never enrolled: last heard 30 min ago
    from_unknown(engine, "gw05", 2, minutes_ago=10)  # revoked
    from_unknown(engine, "gw06", 1, minutes_ago=20, site="site2")  # enrolled for site1, not site2
    from_unknown(engine, "gwLate", 4, minutes_ago=5)  # enrolled after these, below
    from_unknown(engine, "gwY", 1, minutes_ago=40, site="site2")
    with engine.begin() as conn:
        enrol_gateway(conn, "gwLate", SITE, "certificate", ago(1))
    topic, payload = batch_message("gw07", [reading(1)])
    assert ingest(engine, topic, payload, ago(2)) == "batch"
    return engine


def test_unknown_gateways_newest_first_with_their_counts(client: TestClient, refused: Engine) -> None:
    body = get(client, "/gateways/unknown")
    assert body["total"] == 5
    items = body["items"]
    assert [i["gateway"] for i in items] == ["gwLate", "gw05", "gw06", "gwX", "gwY"]
    by_id = {i["gateway"]: i for i in items}
    size = len(batch_message("gwX", [reading(1)])[1])
    x = by_id["gwX"]
    assert (x["site"], x["messages"], x["enrolled_now"]) == (SITE, 3, False)
    assert x["payload_bytes"] == 3 * size
    assert (when(x["first_seen"]), when(x["last_seen"])) == (ago(32), ago(30))
    assert x["why"].startswith("gateway gwX is not enrolled")
    assert "was revoked at" in by_id["gw05"]["why"]
    assert by_id["gw05"]["messages"] == 2
    assert by_id["gw06"]["site"] == "site2"
    assert by_id["gw06"]["why"] == "gateway gw06 is enrolled for site site1, not site2"
    # Enrolled since: the row stays as history, and says the id is admitted now.
    late = by_id["gwLate"]
    assert (late["messages"], late["enrolled_now"]) == (4, True)
    # Enrolled, but for another site than the one its refused messages named: still refused.
    assert by_id["gw06"]["enrolled_now"] is False


def test_unknown_gateways_filter_and_page(client: TestClient, refused: Engine) -> None:
    everything = [i["gateway"] for i in get(client, "/gateways/unknown")["items"]]
    pages = [get(client, "/gateways/unknown", limit=2, offset=offset) for offset in (0, 2, 4, 6)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    assert {p["total"] for p in pages} == {5}
    assert [i["gateway"] for p in pages for i in p["items"]] == everything
    site2 = get(client, "/gateways/unknown", site="site2")
    assert (site2["total"], [i["gateway"] for i in site2["items"]]) == (2, ["gw06", "gwY"])
    assert get(client, "/gateways/unknown", site="nowhere") == {"total": 0, "items": []}


def test_fixed_gateway_paths_are_not_taken_for_gateway_ids(client: TestClient, refused: Engine) -> None:
    assert get(client, "/gateways/gw07")["id"] == "gw07"
    missing = client.get("/gateways/gwX", headers=AUTH)
    assert (missing.status_code, missing.json()["detail"]) == (404, "no gateway 'gwX'")
    assert "items" in get(client, "/gateways/unknown")
    assert "items" in get(client, "/gateways/enrolments")
    # Only gw07 stored anything: refused ids never become gateways.
    assert [g["id"] for g in get(client, "/gateways")["items"]] == ["gw07"]


# ---------------------------------------------------------------- enrolments


def test_enrolments_by_site_then_id_with_state_and_last_seen(client: TestClient, refused: Engine) -> None:
    with refused.begin() as conn:
        enrol_gateway(conn, "berlin-01", "berlin", "password", ago(3))
    body = get(client, "/gateways/enrolments", limit=1000)
    expected = ["berlin-01", *sorted([*ENROLLED, "gwLate"])]
    assert body["total"] == len(expected) == 32
    assert [e["gateway"] for e in body["items"]] == expected
    by_id = {e["gateway"]: e for e in body["items"]}
    assert by_id["berlin-01"]["site"] == "berlin"
    late = by_id["gwLate"]
    assert (late["credential"], late["active"], late["revoked_at"]) == ("certificate", True, None)
    assert when(late["enrolled_at"]) == ago(1)
    assert late["last_seen"] is None  # refused messages before the enrolment stored nothing
    revoked = by_id["gw05"]
    assert (revoked["active"], when(revoked["revoked_at"])) == (False, ago(60))
    assert when(by_id["gw07"]["last_seen"]) == ago(2)
    assert by_id["gw08"]["last_seen"] is None

    only_revoked = get(client, "/gateways/enrolments", state="revoked")
    assert (only_revoked["total"], [e["gateway"] for e in only_revoked["items"]]) == (1, ["gw05"])
    assert get(client, "/gateways/enrolments", state="active")["total"] == 31
    berlin = get(client, "/gateways/enrolments", site="berlin")
    assert [e["gateway"] for e in berlin["items"]] == ["berlin-01"]
    page = get(client, "/gateways/enrolments", site=SITE, limit=10, offset=25)
    assert page["total"] == 31
    assert [e["gateway"] for e in page["items"]] == expected[26:32]


# ---------------------------------------------------------------- dead-letter budgets


@pytest.fixture
def budgets(engine: Engine) -> Engine:
    """gw01 over its budget now, gw02 under it, gw03 over it in a window that has passed, and the
    budget all ids that are not enrolled share."""
    garbage(engine, "gw01", 5, ago(10))  # kept 2, dropped 3
    garbage(engine, "gw01", 5, ago(9))  # repeats: the two kept are free, the three dropped count again
    garbage(engine, "gw02", 1, ago(5))  # kept 1
    garbage(engine, "gw03", 3, ago(120))  # kept 2, dropped 1, two hours ago
    from_unknown(engine, "gwX", 2, minutes_ago=3)  # only the first is a dead letter
    from_unknown(engine, "gwY", 1, minutes_ago=2)
    return engine


def test_budgets_show_each_window_and_who_is_capped(client: TestClient, budgets: Engine) -> None:
    setattr(client.app.state, BUDGET_STATE, SMALL)  # as the service passes its config's budget
    body = get(client, "/dead-letters/budgets")
    assert body["limits"] == {"window_s": 3600.0, "rows": 2, "bytes": 1 << 20, "configured": True}
    assert body["total"] == 4
    items = body["items"]
    # Capped first, then by source.
    assert [b["source"] for b in items] == [NOT_ENROLLED_SOURCE, "gw01", "gw02", "gw03"]
    by_source = {b["source"]: b for b in items}
    size = len(b"garbage 0")
    gw01 = by_source["gw01"]
    assert {k: gw01[k] for k in ("kept", "kept_bytes", "dropped", "dropped_bytes", "dropped_total")} == {
        "kept": 2,
        "kept_bytes": 2 * size,
        "dropped": 6,
        "dropped_bytes": 6 * size,
        "dropped_total": 6,
    }
    assert (gw01["capped"], gw01["window_open"]) == (True, True)
    assert when(gw01["window_start"]) == ago(10)
    assert when(gw01["window_end"]) == ago(10) + datetime.timedelta(hours=1)
    gw02 = by_source["gw02"]
    assert (gw02["kept"], gw02["dropped"], gw02["capped"], gw02["window_open"]) == (1, 0, False, True)
    # Over its budget two hours ago: its next dead letter starts a new window, so not capped now.
    gw03 = by_source["gw03"]
    assert (gw03["kept"], gw03["dropped"], gw03["dropped_total"]) == (2, 1, 1)
    assert (gw03["capped"], gw03["window_open"]) == (False, False)
    # Two ids' first messages, each a dead letter: every row of the shared budget is spent.
    shared = by_source[NOT_ENROLLED_SOURCE]
    assert (shared["kept"], shared["dropped"], shared["capped"]) == (2, 0, True)


def test_budgets_filter_page_and_new_window(client: TestClient, budgets: Engine) -> None:
    setattr(client.app.state, BUDGET_STATE, SMALL)  # as the service passes its config's budget
    capped = get(client, "/dead-letters/budgets", capped="true")
    assert (capped["total"], [b["source"] for b in capped["items"]]) == (2, [NOT_ENROLLED_SOURCE, "gw01"])
    others = get(client, "/dead-letters/budgets", capped="false")
    assert [b["source"] for b in others["items"]] == ["gw02", "gw03"]
    pages = [get(client, "/dead-letters/budgets", limit=3, offset=offset) for offset in (0, 3)]
    assert [[b["source"] for b in p["items"]] for p in pages] == [
        [NOT_ENROLLED_SOURCE, "gw01", "gw02"],
        ["gw03"],
    ]
    # gw03 refuses again now: a new window with what it kept, and its total dropped kept.
    ingest(budgets, batch_topic(SITE, "gw03"), b"garbage again", ago(0))
    gw03 = next(b for b in get(client, "/dead-letters/budgets")["items"] if b["source"] == "gw03")
    assert (gw03["kept"], gw03["dropped"], gw03["dropped_total"], gw03["window_open"]) == (1, 0, 1, True)
    assert when(gw03["window_start"]) == ago(0)


def test_budgets_without_the_config_judge_by_the_defaults_and_say_so(
    client: TestClient, budgets: Engine
) -> None:
    body = get(client, "/dead-letters/budgets")
    default = Budget()
    assert body["limits"] == {
        "window_s": default.window_s,
        "rows": default.rows,
        "bytes": default.bytes,
        "configured": False,
    }
    # Dropped letters still mean capped; two kept rows of a thousand do not.
    assert [b["source"] for b in body["items"] if b["capped"]] == ["gw01"]


def test_no_budgets_no_unknown_ids_are_empty_lists(client: TestClient) -> None:
    assert get(client, "/gateways/unknown") == {"total": 0, "items": []}
    assert get(client, "/dead-letters/budgets")["items"] == []
    assert get(client, "/gateways/enrolments", limit=1)["total"] == len(ENROLLED)


# ---------------------------------------------------------------- auth, parameters, OpenAPI


def test_every_refusal_endpoint_needs_a_token(client: TestClient) -> None:
    for path in PATHS:
        missing = client.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    # A bad parameter without a token is still 401: nothing is validated for strangers.
    assert client.get("/gateways/unknown", params={"limit": 0}).status_code == 401


BAD_PARAMETERS = [
    ("/gateways/unknown", "limit", "0", "greater than or equal to 1"),
    ("/gateways/unknown", "limit", "1001", "less than or equal to 1000"),
    ("/gateways/unknown", "limit", "ten", "valid integer"),
    ("/gateways/unknown", "offset", "-1", "greater than or equal to 0"),
    ("/gateways/unknown", "offset", "99999999999999999999", "less than or equal to 1000000"),
    ("/gateways/unknown", "site", "s" * 65, "at most 64 characters"),
    ("/gateways/enrolments", "state", "gone", "'active', 'revoked' or 'all'"),
    ("/gateways/enrolments", "offset", "1.5", "valid integer"),
    ("/gateways/enrolments", "limit", "", "valid integer"),
    ("/dead-letters/budgets", "capped", "maybe", "valid boolean"),
    ("/dead-letters/budgets", "limit", "1001", "less than or equal to 1000"),
    ("/dead-letters/budgets", "offset", "1000001", "less than or equal to 1000000"),
]


@pytest.mark.parametrize(("path", "name", "value", "words"), BAD_PARAMETERS)
def test_bad_parameters_are_422_naming_them(
    client: TestClient, path: str, name: str, value: str, words: str
) -> None:
    reply = client.get(path, params={name: value}, headers=AUTH)
    assert reply.status_code == 422, reply.text
    [error] = reply.json()["detail"]
    assert error["loc"] == ["query", name]
    assert words in error["msg"]


def test_openapi_documents_the_refusal_endpoints(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in PATHS:
        assert doc["paths"][path]["get"]["security"] == [{"bearer": []}], path
    params = {p["name"] for p in doc["paths"]["/dead-letters/budgets"]["get"]["parameters"]}
    assert params == {"capped", "limit", "offset"}
    entry = doc["components"]["schemas"]["DeadLetterBudgetEntry"]["properties"]
    assert {"kept", "kept_bytes", "dropped", "dropped_bytes", "dropped_total", "capped"} <= set(entry)
