"""Electronic signatures on QA cases, on both dialects (``cloud/identity/signatures.py``,
``cloud/api/signing.py``, ``POST /cases/{id}/moves``): closing and cancelling are signed by
re-authenticated people, a release by two of them, each signature bound by its hash to what the case
held; every refused signature is counted, audited and answered with what was wrong."""

from __future__ import annotations

import dataclasses
import datetime
import json
import threading
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, exc, select, text

from coldgate.cloud.alerts.case_content import signed_content
from coldgate.cloud.alerts.case_store import move_case
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.api.auth import CSRF_HEADER, AuthSettings
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.models import AuditEntry, User
from coldgate.cloud.identity.roles import permissions
from coldgate.cloud.identity.sessions import SessionLimits
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy, content_sha256
from coldgate.cloud.scheduler import CloudScheduler
from coldgate.contract import examples
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message
from tests.rig.items import alert
from tests.rig.people import PASSWORD, bearer, person

T0 = examples.T0
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
SETTINGS = AuthSettings(max_failed_logins=3, sessions=SessionLimits())
People = dict[str, dict[str, str]]


def _store(engine: Engine, first_seq: int, *alerts: Any) -> None:
    numbered = [msgspec.structs.replace(a, seq=n) for n, a in enumerate(alerts, start=first_seq)]
    assert ingest(engine, *batch_message("gw01", numbered)).kind == "batch"


def _open(engine: Engine) -> int:
    return CloudScheduler(engine, CloudConfig(), clock=lambda: NOW).open_cases_now()


def _audit(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return conn.execute(query).all()


@pytest.fixture
def site(engine: Engine) -> Iterator[tuple[TestClient, People, str]]:
    """Two excursion cases (cr1-t01's is the one used), and the people: Dora acknowledges at the dock,
    Quentin (QA) investigates, Marta (QA manager) approves; Mona is a second QA manager, Vera a viewer."""
    _store(engine, 1, alert(1, ts=T0), alert(2, ts=T0 + 60_000, subject="cr2-t01"))
    assert _open(engine) == 2
    roles = {"dora": ("dock_operator",), "quentin": ("qa",), "marta": ("qa_manager",),
             "mona": ("qa_manager",), "vera": ("viewer",)}  # fmt: skip
    people = {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}
    with TestClient(
        create_app(engine, ApiTokens(()), auth=SETTINGS), raise_server_exceptions=False
    ) as client:
        listed = client.get("/cases", headers=people["vera"]).json()["items"]
        case_id = next(c["id"] for c in listed if c["subject"] == "cr1-t01")
        yield client, people, case_id


def _move(client: TestClient, case_id: str, who: dict[str, str], **body: Any) -> Any:
    return client.post(f"/cases/{case_id}/moves", json=body, headers=who)


def _to_pending(client: TestClient, h: People, case_id: str, disposition: str = "released") -> None:
    for who, body in (("dora", {"state": "acknowledged"}), ("quentin", {"state": "investigating"}),
                      ("quentin", {"state": "pending_disposition", "disposition": disposition})):  # fmt: skip
        reply = _move(client, case_id, h[who], **body)
        assert reply.status_code == 200, reply.text


def _sign(login: str, password: str = PASSWORD, **more: Any) -> dict[str, Any]:
    return {"login": login, "password": password, **more}


def test_a_release_is_signed_by_two_people_each_re_authenticated(
    site: tuple[TestClient, People, str], engine: Engine
) -> None:
    client, h, case_id = site
    _to_pending(client, h, case_id)
    release = {"state": "closed", "disposition": "released", "reason": "product within stability data"}
    refused = [
        (_move(client, case_id, h["marta"], **release), 422, "is signed (approved)"),
        (_move(client, case_id, h["marta"], **release, signature={"password": PASSWORD}), 422,
         "a signature through an API token asks your login"),
        (_move(client, case_id, h["marta"], **release, signature=_sign("mona")), 403,
         "you are signed in as marta"),
        (_move(client, case_id, h["marta"], **release, signature=_sign("marta", "not my password")), 403,
         "signature refused: the password is wrong"),
        (_move(client, case_id, h["dora"], **release, signature=_sign("dora")), 403,
         "Dora Tester may not sign this: it needs qa.review"),
    ]  # fmt: skip
    first = _move(client, case_id, h["marta"], **release, signature=_sign("marta"))
    assert first.status_code == 200, first.text
    case = first.json()
    assert case["state"] == "pending_disposition"
    assert case["pending"] == [{
        "to": "closed", "disposition": "released", "signed_by": ["Marta Tester"],
        "awaiting": "releasing stock needs a second signature by another person holding qa.decide",
    }]  # fmt: skip
    refused.append((_move(client, case_id, h["marta"], **release, signature=_sign("marta")), 422,
                    "the same person cannot sign twice"))  # fmt: skip
    second = _move(client, case_id, h["quentin"], **release, signature=_sign("quentin"))
    assert second.status_code == 200, second.text
    case = second.json()
    assert case["state"] == "closed" and case["pending"] == [] and case["next"] == []
    assert case["steps"][-1]["disposition"] == "released"
    signed = [
        (s["signer_name"], s["meaning"], s["action"], s["detail"], s["matches"]) for s in case["signatures"]
    ]
    assert signed == [
        ("Marta Tester", "approved", "closed", "released", True),
        ("Quentin Tester", "approved", "closed", "released", True),
    ]
    assert all(len(s["content_sha256"]) == 64 and s["record_seq"] == 4 for s in case["signatures"])
    assert case["signatures"][0]["content_sha256"] != case["signatures"][1]["content_sha256"]
    for reply, status, words in refused:
        assert reply.status_code == status, (reply.status_code, reply.text)
        assert words in reply.text, reply.text
    # Every refusal in the audit trail; the wrong password also as a failed signing, counted.
    assert len(_audit(engine, "qa_case.move_refused")) == len(refused)
    failed = _audit(engine, "user.signature_failed")
    assert [(e.actor_name, e.reason) for e in failed] == [("Marta Tester", "wrong password")]
    with engine.connect() as conn:
        counts = dict(conn.execute(select(User.login, User.failed_logins)).all())
    assert counts["marta"] == 0  # her good signature after the failure started the count again
    moved = _audit(engine, "qa_case.moved")[-1]
    assert moved.actor_name == "Quentin Tester" and len(json.loads(moved.after)["signatures"]) == 2
    assert [e.actor_name for e in _audit(engine, "qa_case.signed")] == ["Marta Tester", "Quentin Tester"]


def test_a_signature_no_longer_matches_once_the_case_holds_more_and_then_no_longer_counts(
    site: tuple[TestClient, People, str], engine: Engine
) -> None:
    client, h, case_id = site
    _to_pending(client, h, case_id)
    release = {"state": "closed", "disposition": "released"}
    assert _move(client, case_id, h["marta"], **release, signature=_sign("marta")).status_code == 200
    _store(engine, 3, alert(3, ts=T0 + 900_000))  # the sensor goes out again: the alert joins the case
    assert _open(engine) == 1
    case = client.get(f"/cases/{case_id}", headers=h["vera"]).json()
    assert [s["matches"] for s in case["signatures"]] == [False] and case["pending"] == []
    # Quentin's signature alone does not release: Marta must sign what the case now holds.
    waiting = _move(client, case_id, h["quentin"], **release, signature=_sign("quentin")).json()
    assert waiting["state"] == "pending_disposition"
    assert (
        waiting["pending"][0]["awaiting"] == "Quentin Tester signed; a person holding qa.review must sign too"
    )
    done = _move(client, case_id, h["marta"], **release, signature=_sign("marta"))
    assert done.status_code == 200 and done.json()["state"] == "closed", done.text
    assert [s["matches"] for s in done.json()["signatures"]] == [False, True, True]


def test_a_session_asks_the_login_at_its_first_signature_only(
    site: tuple[TestClient, People, str], engine: Engine
) -> None:
    client, h, case_id = site
    signed_in = client.post("/auth/login", json={"login": "mona", "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    csrf = {CSRF_HEADER: signed_in.json()["csrf_token"]}
    cancel = {"state": "cancelled", "reason": "opened for a sensor under maintenance"}
    first = _move(client, case_id, csrf, **cancel, signature={"password": PASSWORD})
    assert first.status_code == 422 and "your first signature in this session asks your login" in first.text
    assert _move(client, case_id, csrf, **cancel, signature=_sign("mona")).status_code == 200
    # The second case of the site, in the same session: the password is enough now.
    other = next(
        c["id"] for c in client.get("/cases", headers=h["vera"]).json()["items"] if c["id"] != case_id
    )
    again = _move(client, other, csrf, **cancel, signature={"password": PASSWORD})
    assert again.status_code == 200 and again.json()["state"] == "cancelled", again.text
    meanings = [s["meaning"] for s in again.json()["signatures"]]
    assert meanings == ["cancelled"]


def test_wrong_passwords_at_signing_lock_the_account(
    site: tuple[TestClient, People, str], engine: Engine
) -> None:
    client, h, case_id = site
    cancel = {"state": "cancelled", "reason": "duplicate"}
    replies = [_move(client, case_id, h["marta"], **cancel, signature=_sign("marta", "guess " * n))
               for n in (1, 2, 3)]  # fmt: skip
    assert [r.status_code for r in replies] == [403, 403, 403]
    assert "your account is now locked" in replies[-1].text
    assert [e.action for e in _audit(engine, "user.lock")] == ["user.lock"]
    # Locked: her token no longer signs her in; nothing was cancelled.
    assert client.get(f"/cases/{case_id}", headers=h["marta"]).status_code == 401
    assert client.get(f"/cases/{case_id}", headers=h["vera"]).json()["state"] == "open"


def test_a_signature_is_bound_to_its_record_its_step_and_its_content() -> None:
    """The hash covers the case's content and the signature's own fields: another record, another
    step, another printed name or a changed alert each give another hash."""
    case = {"id": "case-1", "site": "site1", "gateway": "gw01", "rule": "temperature.excursion",
            "subject_type": "sensor", "subject": "cr1-t01", "cause": "c", "title": "t",
            "opened_at": NOW}  # fmt: skip
    alerts = [{"gateway": "gw01", "alert_id": "a1", "severity": "critical", "raised_ts": T0, "message": "m"}]
    steps = [{"seq": 1, "state": "open", "at": NOW, "by_name": "system", "by_id": None, "reason": None,
              "disposition": None}]  # fmt: skip
    mark = SignatureMark("qa_case", "case-1", 1, "cancelled", None, "cancelled", "dup", "u-1", "marta",
                         "Marta Tester", NOW)  # fmt: skip
    record = signed_content(case, alerts, steps, 1)
    digest = content_sha256(record, mark)
    assert digest == content_sha256(signed_content(dict(case), list(alerts), list(steps), 1), mark)
    naive = {**case, "opened_at": NOW.replace(tzinfo=None)}  # SQLite hands times back naive
    assert content_sha256(signed_content(naive, alerts, steps, 1), mark) == digest
    others = [
        content_sha256(signed_content({**case, "id": "case-2"}, alerts, steps, 1), mark),
        content_sha256(record, dataclasses.replace(mark, record_id="case-2")),
        content_sha256(record, dataclasses.replace(mark, record_seq=2)),
        content_sha256(record, dataclasses.replace(mark, signer_name="Someone Else")),
        content_sha256(signed_content(case, [{**alerts[0], "message": "edited"}], steps, 1), mark),
    ]
    assert digest not in others and len(set(others)) == len(others)


def test_signatures_are_never_edited(site: tuple[TestClient, People, str], engine: Engine) -> None:
    client, h, case_id = site
    cancel = {"state": "cancelled", "reason": "duplicate"}
    assert _move(client, case_id, h["marta"], **cancel, signature=_sign("marta")).status_code == 200
    for statement in ("UPDATE e_signatures SET signer_name = 'Someone Else'", "DELETE FROM e_signatures"):
        with pytest.raises(exc.DBAPIError), engine.begin() as conn:
            conn.execute(text(statement))
    assert client.get(f"/cases/{case_id}", headers=h["vera"]).json()["signatures"][0]["matches"] is True


def test_two_people_signing_a_release_at_the_same_moment_close_it(
    site: tuple[TestClient, People, str], engine: Engine
) -> None:
    """Marta's signature is in a transaction not yet committed when Quentin signs: his waits for it (the
    case's row is locked on PostgreSQL, the write lock is SQLite's), then sees it and completes the
    release, rather than each seeing only their own and leaving the case awaiting what it has."""
    client, h, case_id = site
    _to_pending(client, h, case_id)
    with engine.connect() as conn:
        ids = dict(conn.execute(select(User.login, User.id)).all())
    roles = {"marta": ("qa_manager",), "quentin": ("qa",)}
    who = {login: (Actor(f"{login.title()} Tester", ids[login]), permissions(roles[login]),
                   SignedBy(ids[login], login, f"{login.title()} Tester")) for login in roles}  # fmt: skip
    release = {"disposition": "released", "reason": "stability data"}

    def sign(login: str, conn: Any) -> dict[str, Any]:
        actor, held, signer = who[login]
        return move_case(conn, case_id, "closed", by=actor, held=held, now=NOW, signer=signer, **release)

    second: dict[str, Any] = {}
    with engine.begin() as first:
        assert sign("marta", first)["state"] == "pending_disposition"
        quentin = threading.Thread(target=lambda: second.update(_in_own_transaction(engine, sign, "quentin")))
        quentin.start()
        quentin.join(0.5)  # he is waiting for her transaction (or has not started yet)
    quentin.join(30)
    assert second["state"] == "closed", second["pending"]


def _in_own_transaction(engine: Engine, sign: Any, login: str) -> dict[str, Any]:
    with engine.begin() as conn:
        return dict(sign(login, conn))
