"""Recall runs (issue 17) on both dialects: issue 15's custody story with one more dispatch, so that lot
G1 of PLAIN went to two customers in different quantities with some left in the cold room, and VX10 lot
L1 to the same two.  A recall of both lots sets them recalled (audited, the gateways nudged), lists
both customers with their dispatches and the stock left, records notifications, acknowledgements and
returns, refuses what a recall manager would refuse (a precise 404, 409 or 422), and closes with a
re-authenticated signature over exactly what was signed.  The pure rules alone, with hypothesis."""

from __future__ import annotations

import csv
import datetime
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text, update

from coldgate.cloud.api import ApiTokens
from coldgate.cloud.api.app import create_app
from coldgate.cloud.catalog.lots import lot
from coldgate.cloud.db.models import AuditEntry, DocumentVersion, RecallEvent
from coldgate.cloud.identity.users import Forbidden
from coldgate.cloud.reports import recall as rules
from coldgate.cloud.reports import recall_store
from coldgate.contract.ids import gs1_check_digit_ok
from tests.rig.browser import SHOTS, serve_web_app
from tests.rig.custody_world import GTIN, PALLET, at
from tests.rig.documents import DOCK
from tests.rig.people import PASSWORD, bearer, person
from tests.rig.recall_world import dispatch_at_the_door, recall_world

NOW = datetime.datetime(2026, 12, 2, 9, tzinfo=datetime.UTC)


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], list[str]]]:
    recall_world(engine)
    people = {"rita": ("recall_coordinator",), "vera": ("viewer",), "marta": ("qa_manager",)}
    headers = {login: bearer(person(engine, login, roles)[1]) for login, roles in people.items()}
    nudged: list[str] = []
    app = create_app(engine, ApiTokens(()))
    app.state.catalog_changed = lambda: nudged.append("sent")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, headers, nudged


OPEN = {
    "recall_class": "II",
    "reason": "FSN 2026-12: sterility not assured",
    "lots": [{"product": GTIN, "lot": "L1"}, {"product": "PLAIN", "lot": "G1"}],
}


def _open(client: TestClient, headers: dict[str, str], **changes: Any) -> dict[str, Any]:
    reply = client.post("/recalls", json={**OPEN, **changes}, headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def _customer(recall: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in recall["customers"] if c["customer"] == name)


def test_a_recall_lists_both_customers_with_their_quantities_and_the_stock_left(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]], engine: Engine
) -> None:
    client, headers, nudged = api
    recall = _open(client, headers["rita"])
    assert nudged == ["sent"]
    assert recall["state"] == "open" and recall["recall_class"] == "II"
    assert [(i["product"], i["lot"], i["status_before"], i["status"]) for i in recall["items"]] == [
        ("VX10", "L1", "released", "recalled"),
        ("PLAIN", "G1", "released", "recalled"),
    ]
    with engine.connect() as conn:
        assert lot(conn, "PLAIN", "G1")["status"] == "recalled"
        moved = conn.execute(select(AuditEntry).where(AuditEntry.action == "lot.status")).all()
        assert {r.entity_id for r in moved} == {"VX10/L1", "PLAIN/G1"}
        assert all(recall["id"] in (r.reason or "") for r in moved)
    assert [c["customer"] for c in recall["customers"]] == ["Hospital B", "Pharmacy A"]
    lines = {
        (c["customer"], d["lot"], d["reference"]): (d["pallets"], d["cases"], d["quantity"], d["at"])
        for c in recall["customers"]
        for d in c["dispatches"]
    }
    assert lines == {
        ("Hospital B", "L1", "SO-2"): (0, 2, 0, at(13, 1)),
        ("Hospital B", "G1", "SO-2"): (0, 0, 8, at(13, 2)),
        ("Pharmacy A", "L1", "SO-1"): (0, 2, 0, at(12, 1)),
        ("Pharmacy A", "G1", "SO-3"): (0, 0, 1, at(14, 1)),
    }
    stock = sorted(
        (s["lot"], s["site"], s["location"], s["pallets"], s["cases"], s["quantity"]) for s in recall["stock"]
    )
    assert stock == [("G1", "site1", "CR2", 0, 0, 1), ("L1", "site1", "CR3", 1, 0, 0)]
    assert recall["response"]["blocked_at"] == recall["opened_at"]
    assert recall["response"]["to_notified_s"] is None and recall["response"]["to_blocked_s"] == 0
    # Anyone who reads custody reads the recall; only the coordinator runs it.
    assert client.get(f"/recalls/{recall['id']}", headers=headers["vera"]).status_code == 200
    assert client.post("/recalls", json=OPEN, headers=headers["vera"]).status_code == 403
    listed = client.get("/recalls", params={"state": "open"}, headers=headers["vera"]).json()["items"]
    assert [(x["id"], x["items"]) for x in listed] == [(recall["id"], ["VX10 lot L1", "PLAIN lot G1"])]


def test_the_customer_list_as_csv_and_pdf(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]], engine: Engine
) -> None:
    client, headers, _ = api
    recall = _open(client, headers["rita"])
    reply = client.get(f"/recalls/{recall['id']}/customers.csv", headers=headers["vera"])
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["customer"], r["lot"], r["reference"], r["cases"], r["quantity"]) for r in rows] == [
        ("Hospital B", "L1", "SO-2", "2", "0"),
        ("Hospital B", "G1", "SO-2", "0", "8"),
        ("Pharmacy A", "L1", "SO-1", "2", "0"),
        ("Pharmacy A", "G1", "SO-3", "0", "1"),
    ]
    assert rows[0]["gtin"] == GTIN and rows[0]["dispatched_at"] == "2026-12-01T13:01:00+00:00"
    printed = client.get(f"/recalls/{recall['id']}/customers.pdf", headers=headers["vera"])
    assert printed.status_code == 200 and printed.content.startswith(b"%PDF")
    assert printed.headers["content-type"] == "application/pdf"
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is not None:  # for a person to look at, as the web pages' screenshots
        SHOTS.mkdir(parents=True, exist_ok=True)
        source = SHOTS / f"recall-customers-{engine.dialect.name}.pdf"
        source.write_bytes(printed.content)
        page_one = ["-png", "-r", "80", "-f", "1", "-l", "1", str(source), str(source.with_suffix(""))]
        subprocess.run([pdftoppm, *page_one], check=True)


def _post(client: TestClient, url: str, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post(url, json=body, headers=headers)


def test_notify_acknowledge_return_and_close_with_a_signature(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]], engine: Engine
) -> None:
    client, headers, _ = api
    rita = headers["rita"]
    recall = _open(client, rita, initiated_at="2026-12-02T08:00:00Z")
    base = f"/recalls/{recall['id']}"
    # Acknowledging before being notified, an unknown customer, a closing before anyone was told.
    early = _post(client, f"{base}/customers/Pharmacy%20A/acknowledged", rita, {})
    assert early.status_code == 409 and "no notification recorded" in early.json()["detail"]
    unknown = _post(client, f"{base}/customers/Nobody/notified", rita, {"channel": "email"})
    assert unknown.status_code == 404 and "'Nobody' is not a customer" in unknown.json()["detail"]
    sign = {"password": PASSWORD, "login": "rita"}
    shut = _post(client, f"{base}/close", rita, {"reason": "done", "signature": sign})
    assert shut.status_code == 409 and "2 customer(s) not notified yet: Hospital B, Pharmacy A" in shut.text
    with engine.connect() as conn:
        tried = conn.execute(select(AuditEntry).where(AuditEntry.action == "recall.refused")).one()
        assert tried.entity_id == recall["id"] and "not notified yet" in (tried.reason or "")
    # Notified, one of them acknowledges; returns in two goes.
    for name, when in (("Pharmacy A", "2026-12-02T08:30:00Z"), ("Hospital B", "2026-12-02T08:45:00Z")):
        told = _post(client, f"{base}/customers/{name}/notified", rita, {"channel": "phone", "at": when})
        assert told.status_code == 200, told.text
    assert told.json()["state"] == "notifying"
    assert told.json()["response"]["to_notified_s"] == 45 * 60
    ack = _post(client, f"{base}/customers/Pharmacy A/acknowledged", rita, {"note": "quarantined on receipt"})
    assert ack.status_code == 200, ack.text
    again = _post(client, f"{base}/customers/Pharmacy A/acknowledged", rita, {})
    assert again.status_code == 409 and "already acknowledged" in again.text
    for quantity in (1, 1):
        back = _post(
            client, f"{base}/returns", rita, {"customer": "Pharmacy A", "lot": "L1", "quantity": quantity}
        )
        assert back.status_code == 200, back.text
    which = _post(client, f"{base}/returns", rita, {"customer": "Pharmacy A", "quantity": 1})
    assert which.status_code == 422 and "name the one returned" in which.text
    pharmacy = _customer(back.json(), "Pharmacy A")
    assert pharmacy["returned"] == [{"product": "VX10", "lot": "L1", "quantity": 2}]
    assert pharmacy["acknowledged_by"] == "Rita Tester" and pharmacy["channels"] == ["phone"]
    # Hospital B is silent: the closing says so, and goes through only when told why.
    shut = _post(client, f"{base}/close", rita, {"reason": "all stock back", "signature": sign})
    assert shut.status_code == 409
    assert "1 customer(s) have not acknowledged: Hospital B" in shut.json()["detail"]
    wrong = _post(
        client,
        f"{base}/close",
        rita,
        {
            "reason": "x",
            "unacknowledged": "3 reminders unanswered",
            "signature": {**sign, "password": "nope"},
        },
    )
    assert wrong.status_code == 403 and "password is wrong" in wrong.text
    unsigned = _post(client, f"{base}/close", rita, {"reason": "x", "unacknowledged": "no answer"})
    assert unsigned.status_code == 422 and unsigned.json()["detail"][0]["loc"] == ["body", "signature"]
    closed = _post(
        client,
        f"{base}/close",
        rita,
        {"reason": "all stock back", "signature": sign, "unacknowledged": "three reminders unanswered"},
    )
    assert closed.status_code == 200, closed.text
    done = closed.json()
    assert done["state"] == "closed" and done["closing"]["unacknowledged"] == "three reminders unanswered"
    [signature] = done["signatures"]
    assert signature["matches"] and signature["signer_login"] == "rita" and signature["meaning"] == "approved"
    assert done["response"]["to_closed_s"] is not None and done["response"]["to_acknowledged_s"] is None
    after = _post(client, f"{base}/customers/Hospital B/acknowledged", rita, {})
    assert after.status_code == 409 and "closed" in after.text
    # The records are append-only, and the signature covers what was signed: a note changed behind the
    # application's back (the trigger dropped, as an intruder would) no longer matches.
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(update(RecallEvent).where(RecallEvent.recall_id == recall["id"]).values(note="x"))
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER recall_events_no_update"))
        else:
            conn.execute(text("ALTER TABLE recall_events DISABLE TRIGGER recall_events_append_only"))
        conn.execute(
            update(RecallEvent)
            .where(RecallEvent.recall_id == recall["id"], RecallEvent.seq == 3)
            .values(note="forged")
        )
    forged = client.get(base, headers=rita).json()
    assert not forged["signatures"][0]["matches"]


def test_bad_input_is_named_never_a_500(api: tuple[TestClient, dict[str, dict[str, str]], list[str]]) -> None:
    client, headers, _ = api
    rita = headers["rita"]

    def refused(body: dict[str, Any]) -> tuple[int, Any]:
        reply = client.post("/recalls", json={**OPEN, **body}, headers=rita)
        return reply.status_code, reply.json()["detail"]

    code, detail = refused({"lots": [{"product": "04006381333932", "lot": "L1"}]})
    assert code == 422 and detail[0]["loc"] == ["body", "lots[0].gtin"] and "check digit" in detail[0]["msg"]
    code, detail = refused({"lots": [{"product": GTIN, "lot": "NOPE"}]})
    assert code == 404 and "'NOPE'" in detail
    code, detail = refused({"recall_class": "IV"})
    assert code == 422 and detail[0]["loc"] == ["body", "recall_class"]
    code, detail = refused({"lots": []})
    assert code == 422 and "at least one lot" in detail[0]["msg"]
    code, detail = refused({"lots": [OPEN["lots"][0], OPEN["lots"][0]]})
    assert code == 422 and "named twice" in detail[0]["msg"]
    code, detail = refused({"initiated_at": "2999-01-01T00:00:00Z"})
    assert code == 422 and "in the future" in detail[0]["msg"]
    code, detail = refused({"serials": [PALLET], "lots": []})
    assert code == 422 and "is a pallet" in detail[0]["msg"]
    assert client.get("/recalls/recall-none", headers=rita).status_code == 404
    assert client.get("/recalls", params={"state": "gone"}, headers=rita).status_code == 422


gtin_like = st.sampled_from((8, 12, 13, 14)).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(gtin_like, st.text(max_size=70)),
    st.text(max_size=70),
    st.lists(st.text(max_size=80), max_size=2),
)
def test_any_lot_or_serial_typed_is_answered_never_a_500(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]],
    product: str,
    number: str,
    serials: list[str],
) -> None:
    """Whatever a coordinator types: 201, or a 404 or 422 saying what is wrong (a GTIN's check digit by
    name), never a 500."""
    client, headers, _ = api
    body = {**OPEN, "lots": [{"product": product, "lot": number}], "serials": serials}
    reply = client.post("/recalls", json=body, headers=headers["rita"])
    assert reply.status_code in (201, 404, 409, 422), reply.text
    if product.isdigit() and len(product) in (8, 12, 13, 14) and not gs1_check_digit_ok(product):
        assert reply.status_code == 422 and "check digit" in reply.text


def test_a_customer_named_with_a_slash_and_a_percent_is_addressed_in_the_path(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]], engine: Engine, db_url: str
) -> None:
    """A customer's name is the dispatch order's party, any text: ``/`` and ``%`` go as ``%252F`` and
    ``%2525`` (decoded once more, as a unit id's serial)."""
    client, headers, _ = api
    with engine.connect() as conn:
        so3 = conn.execute(select(DocumentVersion.id).where(DocumentVersion.reference == "SO-3")).scalar()
    assert so3 is not None
    dispatch_at_the_door(engine, so3, "Apotheke A/B 100%", "SO-4", 1, 10, 19)
    recall = _open(client, headers["rita"], lots=[{"product": "PLAIN", "lot": "G1"}])
    assert [c["customer"] for c in recall["customers"]] == ["Apotheke A/B 100%", "Hospital B", "Pharmacy A"]
    assert recall["stock"] == []
    # Over a real server: the test client decodes a path twice, uvicorn (as any server) once.
    path = quote(quote("Apotheke A/B 100%", safe=""), safe="")
    with serve_web_app(engine, db_url) as site:
        url = f"{site}/recalls/{recall['id']}/customers/{path}/notified"
        told = httpx.post(url, json={"channel": "fax"}, headers=headers["rita"], timeout=30)
    assert told.status_code == 200, told.text
    assert _customer(told.json(), "Apotheke A/B 100%")["channels"] == ["fax"]


def test_a_serial_is_recalled_alone_and_its_lot_stays_as_it_was(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]], engine: Engine
) -> None:
    client, headers, _ = api
    recall = _open(client, headers["rita"], lots=[], serials=[f"{GTIN}.1003"], recall_class="I")
    assert [(i["kind"], i["serial"], i["lot"], i["blocked_at_door"]) for i in recall["items"]] == [
        ("serial", "1003", "L1", False)
    ]
    assert [(c["customer"], c["dispatches"][0]["cases"]) for c in recall["customers"]] == [("Pharmacy A", 1)]
    with engine.connect() as conn:
        assert lot(conn, "VX10", "L1")["status"] == "released"


def test_an_already_recalled_lot_and_one_without_customers(
    api: tuple[TestClient, dict[str, dict[str, str]], list[str]],
) -> None:
    """A second recall of a recalled lot (a class raised) is taken as it is; a lot nobody got counts as
    notified at once."""
    client, headers, _ = api
    _open(client, headers["rita"], lots=[{"product": "VX10", "lot": "L2"}])
    second = _open(client, headers["rita"], lots=[{"product": "VX10", "lot": "L2"}], recall_class="I")
    assert second["items"][0]["status_before"] == "recalled" and second["customers"] == []
    assert second["response"]["to_notified_s"] == 0
    closed = _post(
        client,
        f"/recalls/{second['id']}/close",
        headers["rita"],
        {"reason": "never dispatched", "signature": {"password": PASSWORD, "login": "rita"}},
    )
    assert closed.status_code == 200, closed.text


# The pure rules.


def _status(name: str, notified: bool, acknowledged: bool) -> rules.CustomerStatus:
    moment = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)
    return rules.CustomerStatus(
        name,
        (),
        notified_at=moment if notified else None,
        acknowledged_at=moment if acknowledged and notified else None,
    )


customers_st = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.booleans(), st.booleans()),
    max_size=6,
    unique_by=lambda c: c[0],
)


@settings(max_examples=200, deadline=None)
@given(customers_st, st.one_of(st.none(), st.text(min_size=1, max_size=20)))
def test_closing_is_refused_exactly_while_someone_is_untold_or_silent_without_a_word(
    found: list[tuple[str, bool, bool]], unacknowledged: str | None
) -> None:
    statuses = [_status(*c) for c in found]
    verdict = rules.check_close(rules.RecallState.NOTIFYING, statuses, unacknowledged)
    untold = [s.customer for s in statuses if s.notified_at is None]
    silent = [s.customer for s in statuses if s.acknowledged_at is None]
    if untold:
        assert verdict is not None and verdict.kind == "state" and all(n in verdict.message for n in untold)
    elif silent and not unacknowledged:
        assert verdict is not None and verdict.field == "unacknowledged"
    elif unacknowledged and not silent:
        assert verdict is not None and verdict.kind == "field"
    else:
        assert verdict is None
    assert rules.check_close(rules.RecallState.CLOSED, statuses, unacknowledged) is not None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=8))
def test_all_notified_is_the_last_customers_first_notification(minutes: list[int]) -> None:
    start = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)
    statuses = [
        rules.CustomerStatus(f"c{n}", (), notified_at=start + datetime.timedelta(minutes=m))
        for n, m in enumerate(minutes)
    ]
    times = rules.response_times(start, start, statuses, None)
    assert times["to_notified_s"] == max(minutes) * 60 and times["to_acknowledged_s"] is None
    assert (
        rules.response_times(start, start, [*statuses, _status("x", False, False)], None)["to_notified_s"]
        is None
    )


def test_the_csv_defuses_formulas() -> None:
    line = rules.Dispatch("=HYPERLINK(1)", "P", "L", "d", "SO-1", "site1", 0, 0, 0, 3)
    text = rules.customer_csv([rules.CustomerStatus("=HYPERLINK(1)", (line,))], {})
    assert "\r\n'=HYPERLINK(1)," in text


def test_the_pure_half_is_pure() -> None:
    source = Path(rules.__file__ or "").read_text(encoding="utf-8")
    for word in ("sqlalchemy", "apscheduler", "import time", "datetime.now", "open("):
        assert word not in source


def test_the_store_refuses_without_the_permission(engine: Engine) -> None:
    recall_world(engine)
    with engine.begin() as conn, pytest.raises(Forbidden):
        recall_store.open_recall(
            conn,
            recall_class="I",
            reason="x",
            lots=[("VX10", "L1")],
            by=DOCK,
            held=frozenset({"documents.read"}),
            now=NOW,
        )
