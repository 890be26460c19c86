"""QA's acceptance of a dock discrepancy is an electronic signature (21 CFR Part 11), as a QA case's
closing is: the person is re-authenticated (a wrong password refused, counted towards the lock and
audited), the signature holds who, printed name, UTC time, meaning and reason and the hash of the
document and the discrepancy as they stood, and every place showing the acceptance (the API's answer,
the reconciliation, the document's page) shows it checked.  Acceptances made before signatures show as
not signed, and one altered behind the application's back as no longer matching."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.models import AuditEntry, DiscrepancyAcceptance, ESignature, User
from coldgate.cloud.documents import dock_decisions
from coldgate.cloud.documents.acceptance_content import signed_content
from coldgate.cloud.identity.signatures import content_sha256
from coldgate.cloud.web.app import create_web_app
from tests.rig.dock_pass import DockPass, pass_at_the_door
from tests.rig.people import PASSWORD, bearer, person

People = dict[str, dict[str, str]]


@pytest.fixture
def dock(engine: Engine) -> DockPass:
    """A receiving note (ASN-7, version 2: released) with one case missing and a foreign case seen."""
    return pass_at_the_door(engine, missing=1)


@pytest.fixture
def people(engine: Engine) -> People:
    roles = {"marta": ("qa_manager",), "dora": ("dock_operator",), "vera": ("viewer",)}
    return {login: bearer(person(engine, login, held)[1]) for login, held in roles.items()}


@pytest.fixture
def api(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


def _gaps(engine: Engine, document: str) -> dict[str, str]:
    """The document's discrepancies now: kind -> key."""
    today = datetime.datetime.now(datetime.UTC).date()
    with engine.connect() as conn:
        return {j.discrepancy.kind: j.key for j in dock_decisions.judged_discrepancies(conn, document, today)}


def _audit(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry.__table__).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(conn.execute(query))


def _accept(key: str, login: str | None = "marta", password: str = PASSWORD) -> dict[str, Any]:
    signature = {"password": password, **({"login": login} if login is not None else {})}
    return {"key": key, "reason": "case 1002 broken in transit, credit note CN-9", "signature": signature}


def test_an_acceptance_through_the_api_is_signed_by_the_re_authenticated_person(
    api: TestClient, people: People, dock: DockPass, engine: Engine
) -> None:
    url = f"/documents/{dock.document}/discrepancies/accept"
    key = _gaps(engine, dock.document)["missing"]
    unsigned = api.post(url, json={"key": key, "reason": "x"}, headers=people["marta"])
    assert unsigned.status_code == 422, unsigned.text
    assert [(e["loc"], e["msg"]) for e in unsigned.json()["detail"]] == [
        (["body", "signature"], "Field required")
    ]
    for who in ("dora", "vera"):  # deciding is QA's, signed or not
        assert api.post(url, json=_accept(key, who), headers=people[who]).status_code == 403
    wrong = api.post(url, json=_accept(key, password="not her password"), headers=people["marta"])
    assert wrong.status_code == 403, wrong.text
    assert wrong.json()["detail"] == "signature.password: signature refused: the password is wrong"
    no_login = api.post(url, json=_accept(key, login=None), headers=people["marta"])
    assert no_login.status_code == 422
    assert "a signature through an API token asks your login as well as your password" in no_login.text
    other = api.post(url, json=_accept(key, login="vera"), headers=people["marta"])
    assert other.status_code == 403 and "you are signed in as marta" in other.text
    with engine.connect() as conn:
        failed = conn.execute(select(User.failed_logins).where(User.login == "marta")).scalar_one()
        assert conn.execute(select(DiscrepancyAcceptance.id)).all() == []  # nothing accepted
    assert failed == 1  # the wrong password counts towards the lock ...
    [refused] = _audit(engine, "user.signature_failed")  # ... and is in the audit trail
    assert refused.actor_id is not None

    done = api.post(url, json=_accept(key), headers=people["marta"])
    assert done.status_code == 201, done.text
    answer = done.json()
    signature = answer.pop("signature")
    assert answer["kind"] == "missing" and answer["accepted_by"] == "Marta Tester"
    assert (signature["meaning"], signature["signer_name"], signature["signer_login"]) == (
        "accepted", "Marta Tester", "marta"
    )  # fmt: skip
    assert signature["reason"] == "case 1002 broken in transit, credit note CN-9" and signature["matches"]
    signed_at = datetime.datetime.fromisoformat(signature["signed_at"])
    assert signed_at.utcoffset() == datetime.timedelta(0)
    twice = api.post(url, json=_accept(key), headers=people["marta"])
    assert twice.status_code == 409 and "was accepted by Marta Tester" in twice.json()["detail"]

    rec = api.get(f"/documents/{dock.document}/reconciliation", headers=people["vera"]).json()
    [accepted] = [d["accepted"] for d in rec["discrepancies"] if d["key"] == key]
    assert accepted["signature"] == signature
    # What was signed: the document as it stood (ASN-7, version 2) and the discrepancy as QA saw it.
    with engine.connect() as conn:
        [row] = conn.execute(select(ESignature.__table__)).all()
        acceptance = conn.execute(select(DiscrepancyAcceptance.__table__)).one()
    [detail] = [d["detail"] for d in rec["discrepancies"] if d["key"] == key]
    assert (row.record_type, row.record_id, row.record_seq, row.action, row.detail) == (
        "document", dock.document, acceptance.id, "accept_discrepancy", "missing"
    )  # fmt: skip
    content = signed_content(dock.document, "ASN-7", 2, key=key, kind="missing", detail=detail)
    assert row.content_sha256 == content_sha256(content, row) == signature["content_sha256"]
    [entry] = _audit(engine, "document.accept_discrepancy")
    assert entry.actor_id is not None and json.loads(entry.after)["signature"]["id"] == signature["id"]


def test_a_signature_no_longer_matches_an_acceptance_altered_and_old_acceptances_show_unsigned(
    api: TestClient, people: People, dock: DockPass, engine: Engine
) -> None:
    gaps = _gaps(engine, dock.document)
    url = f"/documents/{dock.document}/discrepancies/accept"
    assert api.post(url, json=_accept(gaps["missing"]), headers=people["marta"]).status_code == 201
    with engine.begin() as conn:  # an acceptance from before signatures: no version, no detail
        conn.execute(DiscrepancyAcceptance.__table__.insert().values(
            document=dock.document, key=gaps["unexpected"], kind="unexpected", summary="unexpected (no line)",
            reason="saline kept aside", accepted_at=dock.now, accepted_by="Marta Tester",
        ))  # fmt: skip
    rec = api.get(f"/documents/{dock.document}/reconciliation", headers=people["vera"]).json()
    shown = {d["kind"]: d["accepted"] for d in rec["discrepancies"]}
    assert shown["missing"]["signature"]["matches"] is True and shown["unexpected"]["signature"] is None
    assert rec["open"] == 0

    with engine.begin() as conn:  # behind the application's back: the signed detail altered
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE discrepancy_acceptances DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER discrepancy_acceptances_no_update"))
        conn.execute(
            text("UPDATE discrepancy_acceptances SET detail = 'nothing missing' WHERE kind = 'missing'")
        )
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE discrepancy_acceptances ENABLE TRIGGER USER"))
    rec = api.get(f"/documents/{dock.document}/reconciliation", headers=people["vera"]).json()
    [missing] = [d["accepted"] for d in rec["discrepancies"] if d["kind"] == "missing"]
    assert missing["signature"]["matches"] is False

    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as web:
        page = web.get(f"/dashboard/documents/{dock.document}", headers=people["vera"])
    assert page.status_code == 200
    assert "not signed (accepted before signatures)" in page.text
    assert "signed by <strong>Marta Tester</strong> <small>(marta)</small>" in page.text
    assert "no longer matches: the acceptance changed after signing" in page.text


def test_the_page_form_asks_a_signature_and_refuses_a_wrong_one(
    people: People, dock: DockPass, engine: Engine
) -> None:
    key = _gaps(engine, dock.document)["missing"]
    url = f"/dashboard/documents/{dock.document}/accept"
    form = {"key": key, "reason": "credit note CN-9"}
    with TestClient(create_web_app(engine, ApiTokens(())), raise_server_exceptions=False) as web:
        page = web.get(f"/dashboard/documents/{dock.document}", headers=people["marta"])
        assert 'name="password" type="password"' in page.text and 'name="login"' in page.text
        assert "Meaning: <strong>accepted</strong>" in page.text
        unsigned = web.post(url, data=form, headers=people["marta"])
        assert unsigned.status_code == 422
        assert (
            "Refused, nothing changed: signature: an acceptance is signed: give your password"
            in unsigned.text
        )
        wrong = web.post(url, data={**form, "login": "marta", "password": "guess"}, headers=people["marta"])
        assert wrong.status_code == 403 and "signature refused: the password is wrong" in wrong.text
        viewer = web.post(url, data={**form, "login": "vera", "password": PASSWORD}, headers=people["vera"])
        assert viewer.status_code == 403
        done = web.post(url, data={**form, "login": "marta", "password": PASSWORD}, headers=people["marta"],
                        follow_redirects=False)  # fmt: skip
        assert done.status_code == 303, done.text
        page = web.get(done.headers["location"], headers=people["marta"])
    assert "accepted and signed: missing (line 1)" in page.text
    assert "signed by <strong>Marta Tester</strong>" in page.text and "matches the acceptance" in page.text
    assert [e.action for e in _audit(engine, "user.signature_failed")] == ["user.signature_failed"]
    assert len(_audit(engine, "document.accept_discrepancy")) == 1
