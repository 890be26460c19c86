"""Master-data change control on both dialects (``cloud/catalog/change_approval.py``,
``change_approvals.py``, ``GET /catalog/changes``, ``POST /catalog/changes/{seq}/approve``): every
change of a class, product, lot, location, placement, calibration or serial awaits a second person's
signed approval; the author never approves their own change; every refused approval is answered with
why, and audited."""

from __future__ import annotations

import dataclasses
import datetime
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.api.auth import CSRF_HEADER, AuthSettings
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog import change_approval as rules
from coldgate.cloud.catalog import change_approvals
from coldgate.cloud.catalog.csv_import import import_csv
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.lots import move_lot, put_lot
from coldgate.cloud.catalog.placements import place, record_calibration
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.catalog.sites import set_time_zone
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db.models import AuditEntry, User
from coldgate.cloud.identity.roles import permissions
from coldgate.cloud.identity.sessions import SessionLimits
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy, content_sha256
from coldgate.cloud.identity.users import UserInputError
from tests.rig.people import PASSWORD, bearer, person

SETTINGS = AuthSettings(max_failed_logins=3, sessions=SessionLimits())
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
People = dict[str, dict[str, str]]
LOT = "/catalog/products/VX10/lots/L1"


def _audit(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return conn.execute(query).all()


def _ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.fixture
def site(engine: Engine) -> Iterator[tuple[TestClient, People]]:
    """Marta (QA manager) changes the catalog through the API: a class, a product, a lot, the class's
    limits, a location; then she quarantines the lot (a QA decision, no master-data change).  Mona is
    a second QA manager, Quentin QA, Vera a viewer, Dora at the dock."""
    roles = {"marta": ("qa_manager",), "mona": ("qa_manager",), "quentin": ("qa",), "vera": ("viewer",),
             "dora": ("dock_operator",)}  # fmt: skip
    people = {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}
    with TestClient(
        create_app(engine, ApiTokens(()), auth=SETTINGS), raise_server_exceptions=False
    ) as client:
        marta = people["marta"]
        _ok(client.put("/catalog/temperature-classes/2-8C", headers=marta,
                       json={"spec": {"low": 2, "high": 8}, "reason": "SOP-12"}))  # fmt: skip
        product = {"name": "Vaccine", "gtin": "04006381333931", "temperature_class": "2-8C", "reason": "new"}
        _ok(client.put("/catalog/products/VX10", headers=marta, json=product))
        _ok(client.put(LOT, headers=marta, json={"expiry": "2027-06-30", "reason": "supplier CoA"}))
        narrower = {"spec": {"low": 2, "high": 6}, "reason": "stability data", "if_version": 1}
        _ok(client.put("/catalog/temperature-classes/2-8C", headers=marta, json=narrower))
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C", "reason": "survey"}
        _ok(client.put("/catalog/sites/site1/locations/cr1", headers=marta, json=room))
        _ok(client.post(LOT + "/quarantine", headers=marta, json={"reason": "deviation DV-7"}))
        yield client, people


def _changes(client: TestClient, who: dict[str, str], state: str = "awaiting") -> dict[str, Any]:
    return _ok(client.get("/catalog/changes", params={"state": state}, headers=who))


def _approve(client: TestClient, seq: int, who: dict[str, str], login: str | None, **more: Any) -> Any:
    signature = {"password": more.pop("password", PASSWORD), **({"login": login} if login else {})}
    return client.post(f"/catalog/changes/{seq}/approve", json={"signature": signature, **more}, headers=who)


def test_changes_await_approval_and_a_lot_status_move_is_none(site: tuple[TestClient, People]) -> None:
    client, h = site
    listed = _changes(client, h["vera"])
    actions = [c["action"] for c in listed["items"]]
    assert actions == ["location.create", "temperature_class.update", "lot.create", "product.create",
                       "temperature_class.create"]  # fmt: skip
    assert listed["total"] == 5
    assert all(c["actor_name"] == "Marta Tester" and not c["approved"] for c in listed["items"])
    limits = listed["items"][1]
    assert limits["what"] == "temperature class changed" and limits["entity_id"] == "2-8C"
    assert limits["reason"] == "stability data"
    assert "spec.high: 8 → 6" in limits["changes"]
    assert limits["before"]["spec"]["high"] == 8 and limits["after"]["spec"]["high"] == 6
    assert listed["items"][-1]["changes"][0] == "created"
    assert _changes(client, h["vera"], "approved") == {"items": [], "total": 0}
    assert _changes(client, h["vera"], "all")["total"] == 5
    bad = client.get("/catalog/changes", params={"state": "pending"}, headers=h["vera"])
    assert bad.status_code == 422 and "one of awaiting, approved, all" in bad.text
    paged = _ok(client.get("/catalog/changes", params={"offset": 4, "limit": 10}, headers=h["vera"]))
    assert [c["action"] for c in paged["items"]] == ["temperature_class.create"] and paged["total"] == 5


def test_another_person_approves_the_change_signed(site: tuple[TestClient, People], engine: Engine) -> None:
    client, h = site
    limits = _changes(client, h["vera"])["items"][1]
    seq = limits["seq"]
    reply = _approve(client, seq, h["mona"], "mona", reason="checked against the stability report")
    approved = _ok(reply)
    assert approved["seq"] == seq and approved["approved"] is True
    [signature] = approved["approvals"]
    assert signature["signer_name"] == "Mona Tester" and signature["signer_login"] == "mona"
    assert signature["meaning"] == "approved" and signature["matches"] is True
    assert signature["reason"] == "checked against the stability report"
    assert len(signature["content_sha256"]) == 64
    assert [c["seq"] for c in _changes(client, h["vera"], "approved")["items"]] == [seq]
    assert seq not in [c["seq"] for c in _changes(client, h["vera"])["items"]]
    assert _changes(client, h["vera"])["total"] == 4
    [entry] = _audit(engine, "catalog.change_approved")
    assert entry.actor_name == "Mona Tester" and entry.entity_type == "catalog_change"
    assert entry.entity_id == str(seq) and entry.reason == "checked against the stability report"
    after = json.loads(entry.after)
    assert after["change"] == "temperature_class.update" and after["author"] == "Marta Tester"
    assert after["signature"] == signature["id"]
    # QA (not a manager) approves a manager's change too: qa.decide.
    _ok(_approve(client, limits["seq"] - 1, h["quentin"], "quentin"))
    # Approving again is a conflict, whoever asks; audited.
    twice = _approve(client, seq, h["quentin"], "quentin")
    assert twice.status_code == 409 and "already approved (by Mona Tester" in twice.text, twice.text
    assert [e.entity_id for e in _audit(engine, "catalog.change_approval_refused")] == [str(seq)]


def test_nobody_approves_their_own_change(site: tuple[TestClient, People], engine: Engine) -> None:
    client, h = site
    seq = _changes(client, h["vera"])["items"][0]["seq"]
    own = _approve(client, seq, h["marta"], "marta")
    assert own.status_code == 403
    assert "you made this change: another person approves it" in own.text
    [refused] = _audit(engine, "catalog.change_approval_refused")
    assert refused.actor_name == "Marta Tester" and refused.entity_id == str(seq)
    assert "another person approves it" in refused.reason
    assert _changes(client, h["vera"])["total"] == 5


def test_refusals_say_why_and_are_audited(site: tuple[TestClient, People], engine: Engine) -> None:
    client, h = site
    seq = _changes(client, h["vera"])["items"][0]["seq"]
    [status_move] = _audit(engine, "lot.status")
    [first_user] = _audit(engine, "user.add")[:1]
    refused = [
        (_approve(client, seq, h["mona"], "mona", password="not my password"), 403,
         "signature refused: the password is wrong"),
        (_approve(client, seq, h["mona"], None), 422, "a signature through an API token asks your login"),
        (_approve(client, seq, h["mona"], "marta"), 403, "you are signed in as mona"),
        (_approve(client, 999_999, h["mona"], "mona"), 404, "no audit entry 999999"),
        (_approve(client, status_move.seq, h["mona"], "mona"), 422,
         "a lot's status move is a QA decision"),
        (_approve(client, first_user.seq, h["mona"], "mona"), 422, "is not a master-data change"),
    ]  # fmt: skip
    for reply, status, words in refused:
        assert reply.status_code == status, (reply.status_code, reply.text)
        assert words in reply.text, reply.text
    assert len(_audit(engine, "catalog.change_approval_refused")) == len(refused)
    failed = _audit(engine, "user.signature_failed")
    assert [(e.actor_name, e.reason) for e in failed] == [("Mona Tester", "wrong password")]
    # A viewer and a dock operator are turned away at the door: the route needs qa.decide.
    for who in ("vera", "dora"):
        assert _approve(client, seq, h[who], who).status_code == 403
    # Body mistakes are 422s, never a 500.
    for body in ({}, {"signature": {}}, {"signature": {"password": 5}}, {"signature": None}):
        reply = client.post(f"/catalog/changes/{seq}/approve", json=body, headers=h["mona"])
        assert reply.status_code == 422, (body, reply.text)
    for path in ("/catalog/changes/0/approve", "/catalog/changes/x/approve", "/catalog/changes/-1/approve"):
        assert (
            client.post(path, json={"signature": {"password": PASSWORD}}, headers=h["mona"]).status_code
            == 422
        )
    assert _changes(client, h["vera"])["total"] == 5  # nothing approved by any of it
    with engine.connect() as conn:
        assert conn.execute(select(User.failed_logins).where(User.login == "mona")).scalar_one() == 1


def test_wrong_passwords_lock_the_approver_out(site: tuple[TestClient, People], engine: Engine) -> None:
    client, h = site
    seq = _changes(client, h["vera"])["items"][0]["seq"]
    replies = [_approve(client, seq, h["mona"], "mona", password=f"guess {n}") for n in (1, 2, 3)]
    assert [r.status_code for r in replies] == [403, 403, 403]
    assert "your account is now locked" in replies[-1].text
    assert len(_audit(engine, "user.lock")) == 1
    assert client.get("/catalog/changes", headers=h["mona"]).status_code == 401


def test_a_session_asks_the_login_at_its_first_signature_only(site: tuple[TestClient, People]) -> None:
    client, h = site
    first, second = (c["seq"] for c in _changes(client, h["vera"])["items"][:2])
    signed_in = client.post("/auth/login", json={"login": "mona", "password": PASSWORD})
    csrf = {CSRF_HEADER: _ok(signed_in)["csrf_token"]}
    asked = _approve(client, first, csrf, None)
    assert asked.status_code == 422 and "your first signature in this session asks your login" in asked.text
    _ok(_approve(client, first, csrf, "mona"))
    again = _ok(_approve(client, second, csrf, None))
    assert again["approvals"][0]["signer_name"] == "Mona Tester"


def test_a_change_made_on_the_host_is_approved_by_a_person(
    site: tuple[TestClient, People], engine: Engine
) -> None:
    """A command on the cloud host has no user id, only its account's name: any QA person approves."""
    client, h = site
    with engine.begin() as conn:
        put_class(conn, "15-25C", {"low": 15, "high": 25}, reason="ambient SOP",
                  by=Actor("ops (coldgate CLI)"), now=NOW)  # fmt: skip
    newest = _changes(client, h["vera"])["items"][0]
    assert newest["actor_id"] is None and newest["actor_name"] == "ops (coldgate CLI)"
    assert _ok(_approve(client, newest["seq"], h["marta"], "marta"))["approved"]


def test_every_writer_of_master_data_makes_a_change_to_approve(engine: Engine) -> None:
    """Each of the catalog's write functions, as the API calls it: its audit action is one the list
    knows (a writer renamed or added without a listed action would slip past approval), and the lot's
    status move and a site's time zone are not."""
    qa = Actor("Marta Tester", "u-marta")
    ms = int(NOW.timestamp() * 1000)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=qa, now=NOW)
        put_class(conn, "2-8C", {"low": 2, "high": 6}, reason="stability", by=qa, now=NOW)
        fields = {
            "name": "Vaccine",
            "gtin": "04006381333931",
            "temperature_class": "2-8C",
            "serialised": True,
        }
        put_product(conn, "VX10", fields, reason="new", by=qa, now=NOW)
        put_product(conn, "VX10", {**fields, "name": "Vaccine X"}, reason="label", by=qa, now=NOW)
        put_lot(conn, "VX10", "L1", {"expiry": "2027-06-30"}, reason="CoA", by=qa, now=NOW)
        put_lot(conn, "VX10", "L1", {"expiry": "2027-07-31"}, reason="CoA corrected", by=qa, now=NOW)
        add_serials(conn, "VX10", "L1", ["000100", "000101"], reason="supplier list", by=qa, now=NOW)
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
        put_location(conn, "site1", "cr1", room, reason="survey", by=qa, now=NOW)
        put_location(conn, "site1", "cr1", {**room, "name": "Cold room one"}, reason="sign", by=qa, now=NOW)
        place(conn, "gw01", "sensor", "cr1-t01", "cr1", ms - 60_000, reason="installed", by=qa, now=NOW)
        certificate = {"certificate": "CAL-1", "calibrated_on": "2026-11-01", "accuracy": "±0.3 °C",
                       "next_due": "2027-11-01"}  # fmt: skip
        record_calibration(conn, "gw01", "cr1-t01", certificate, reason="annual", by=qa, now=NOW)
        import_csv(conn, "lots", b"product,lot,expiry\nVX10,L2,2027-01-02\n", reason="ERP", by=qa, now=NOW)
        move_lot(conn, "VX10", "L1", "quarantined", reason="deviation", by=qa, now=NOW)
        set_time_zone(conn, "site1", "Europe/Berlin", by=qa, now=NOW)
    with engine.connect() as conn:
        listed = change_approvals.changes(conn, state="all", limit=1000)
        assert change_approvals.count(conn, state="awaiting") == len(listed) == 12
    assert {c["action"] for c in listed} == set(rules.MASTER_DATA_ACTIONS)
    assert all(c["actor_name"] == "Marta Tester" and c["changes"] for c in listed)


def test_two_people_approving_at_the_same_moment_approve_it_once(
    site: tuple[TestClient, People], engine: Engine
) -> None:
    """Mona's approval is in a transaction not yet committed when Quentin approves the same change: his
    waits for it (an advisory lock on PostgreSQL, the write lock on SQLite), then sees it and is refused,
    rather than each seeing the change unapproved and signing it twice."""
    client, h = site
    seq = _changes(client, h["vera"])["items"][0]["seq"]
    with engine.connect() as conn:
        ids = dict(conn.execute(select(User.login, User.id)).all())

    def approve(login: str, role: str, conn: Any) -> dict[str, Any]:
        name = f"{login.title()} Tester"
        return change_approvals.approve(
            conn, seq, signer=SignedBy(ids[login], login, name), held=permissions([role]), reason=None,
            by=Actor(name, ids[login]), now=NOW,
        )  # fmt: skip

    second: dict[str, Any] = {}

    def quentin() -> None:
        try:
            with engine.begin() as conn:
                second["done"] = approve("quentin", "qa", conn)
        except UserInputError as refusal:
            second["refused"] = refusal

    with engine.begin() as first:
        assert approve("mona", "qa_manager", first)["approved"]
        thread = threading.Thread(target=quentin)
        thread.start()
        thread.join(0.5)  # he is waiting for her transaction (or has not started yet)
    thread.join(30)
    assert "done" not in second and "already approved (by Mona Tester" in str(second["refused"])
    assert len(_changes(client, h["vera"], "approved")["items"][0]["approvals"]) == 1


# ---------------------------------------------------------------- the pure half

CHANGE = {"seq": 7, "action": "product.update", "actor_id": "u-1", "actor_name": "Marta Tester"}


def test_the_rule_refuses_most_basic_first() -> None:
    held = frozenset({"qa.decide"})

    def check(change: dict[str, Any] = CHANGE, **kw: Any) -> rules.Refusal | None:
        args = {"signer_id": "u-2", "signer_name": "Mona Tester", "held": held, "approvals": [], **kw}
        return rules.check_approval(change, **args)

    assert check() is None
    assert check(signer_id="u-1") == rules.Refusal(
        "forbidden", "you made this change: another person approves it"
    )
    viewer = check(signer_id="u-1", held=frozenset({"catalog.read"}))
    assert (
        viewer is not None
        and viewer.message == "Mona Tester may not approve a master-data change: it needs qa.decide (QA)"
    )
    moved = check({**CHANGE, "action": "lot.status"}, signer_id="u-1")
    assert moved is not None and moved.kind == "not_a_change" and "QA decision" in moved.message
    given_ = [{"signer_name": "Quentin Tester", "signed_at": datetime.datetime(2026, 12, 7, 10, 30)}]
    assert check(approvals=given_) == rules.Refusal(
        "conflict", "change 7 is already approved (by Quentin Tester, 2026-12-07 10:30:00 UTC)"
    )
    host = {**CHANGE, "actor_id": None, "actor_name": "Mona Tester"}
    assert check(host) is not None and check(host, signer_name="Quentin Tester") is None
    assert rules.not_a_change(3, "calibration.add") is None and rules.not_a_change(3, "user.add") is not None
    assert {"lot.status", "site.time_zone", "user.add"}.isdisjoint(rules.MASTER_DATA_ACTIONS)


def test_the_signed_content_is_the_audit_entry_and_binds_the_signature() -> None:
    entry = {"seq": 7, "at": datetime.datetime(2026, 12, 7, 9), "actor_id": "u-1",
             "actor_name": "Marta Tester", "action": "product.update", "entity_type": "product",
             "entity_id": "VX10", "before": '{"name":"A"}', "after": '{"name":"B"}', "reason": "typo",
             "hash": "ab" * 32}  # fmt: skip
    content = rules.signed_content(entry)
    assert content["at"] == "2026-12-07T09:00:00.000000+00:00"
    assert content == rules.signed_content({**entry, "at": entry["at"].replace(tzinfo=datetime.UTC)})
    mark = SignatureMark(rules.RECORD_TYPE, "7", rules.RECORD_SEQ, rules.SIGNED_ACTION, "product.update",
                         rules.MEANING, None, "u-2", "mona", "Mona Tester", NOW)  # fmt: skip
    digest = content_sha256(content, mark)
    others = {
        content_sha256(rules.signed_content({**entry, "after": '{"name":"C"}'}), mark),
        content_sha256(rules.signed_content({**entry, "hash": "cd" * 32}), mark),
        content_sha256(content, dataclasses.replace(mark, record_id="8")),
        content_sha256(content, dataclasses.replace(mark, signer_name="Someone Else")),
    }
    assert digest not in others and len(others) == 4


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(before=st.none() | JSON, after=JSON)
def test_differences_say_something_short_for_any_record(before: Any, after: Any) -> None:
    said = rules.differences(before, after)
    assert said and len(said) <= rules.SHOWN_DIFFERENCES + 2
    assert all(isinstance(line, str) and len(line) < 250 for line in said)
    if before is not None and before == after:
        assert said == ["no field changed"]


def test_differences_of_a_limit_change() -> None:
    before = {"name": "2-8C", "spec": {"low": 2, "high": 8}, "version": 1, "changed_by": "M"}
    after = {"name": "2-8C", "spec": {"low": 2, "high": 6}, "version": 2, "changed_by": "M"}
    assert rules.differences(before, after) == ["spec.high: 8 → 6"]
    made = {"name": "2-8C", "version": 1, "description": "", "retired": False, "serialised": False}
    assert rules.differences(None, made) == ["created", "name: 2-8C", "serialised: no"]
    retired = {**before, "retired": True}
    assert rules.differences(before, retired) == ["retired: — → yes"]
