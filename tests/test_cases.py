"""QA cases on both dialects (``cloud/alerts/case_store.py``, ``/cases``): stored alerts become cases by
the scheduler's job, folded by cause; a case moves along its flow through the API, each move by the role
that may make it, every move and every refusal in the audit trail; nothing of a case can be edited."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

pytest.importorskip("fastapi", reason="cloud API tests need the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine, exc, select, text

from coldgate.cloud.alerts.case_store import list_cases
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.scheduler import CloudScheduler
from coldgate.contract import examples
from coldgate.contract.items import Severity
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message
from tests.rig.items import alert
from tests.rig.people import bearer, person

T0 = examples.T0
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
ROLES = ("viewer", "dock_operator", "qa", "qa_manager")


def _store(engine: Engine, first_seq: int, *alerts: Any) -> None:
    numbered = [msgspec.structs.replace(a, seq=n) for n, a in enumerate(alerts, start=first_seq)]
    assert ingest(engine, *batch_message("gw01", numbered)).kind == "batch"


def _open(engine: Engine) -> int:
    """One run of the scheduler's job, as the cloud runs it."""
    return CloudScheduler(engine, CloudConfig(), clock=lambda: NOW).open_cases_now()


def _audit(engine: Engine, prefix: str) -> list[Any]:
    with engine.connect() as conn:
        query = select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.seq)
        return conn.execute(query).all()


def _stored_story(engine: Engine) -> None:
    """cr1-t01 flaps (three excursions), cr2-t01 has one, a pre-alarm and an info alert open nothing."""
    _store(
        engine, 1,
        alert(1, ts=T0), alert(2, ts=T0 + 60_000), alert(3, ts=T0 + 120_000),
        alert(4, ts=T0 + 30_000, subject="cr2-t01"),
        alert(5, ts=T0 + 40_000, rule="temperature.pre_high", severity=Severity.WARNING),
        alert(6, ts=T0 + 50_000, rule="calibration.due", severity=Severity.INFO),
    )  # fmt: skip


def test_alerts_become_cases_folded_by_cause(engine: Engine) -> None:
    _stored_story(engine)
    assert _open(engine) == 4
    assert _open(engine) == 0  # each alert is placed once
    with engine.connect() as conn:
        cases = list_cases(conn)
    seen = [(c["subject"], c["alerts"], c["state"], c["severity"], c["site"], c["title"]) for c in cases]
    assert sorted(seen) == [
        ("cr1-t01", 3, "open", "critical", "site1", examples.ALERT.message),
        ("cr2-t01", 1, "open", "critical", "site1", examples.ALERT.message),
    ]
    assert [e.actor_name for e in _audit(engine, "qa_case.opened")] == ["coldgate (system)"] * 2
    # A later excursion of the flapping sensor joins its open case.
    _store(engine, 7, alert(7, ts=T0 + 600_000))
    assert _open(engine) == 1
    with engine.connect() as conn:
        flapping = next(c for c in list_cases(conn) if c["subject"] == "cr1-t01")
        assert flapping["alerts"] == 4 and flapping["last_alert_ts"] == T0 + 600_000
        assert list_cases(conn, state="closed") == [] and len(list_cases(conn, site="site1")) == 2
    assert len(_audit(engine, "qa_case.alert_folded")) == 1


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, dict[str, str]], str]]:
    _stored_story(engine)
    _open(engine)
    headers = {role: bearer(person(engine, role.replace("_", "-"), (role,))[1]) for role in ROLES}
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        listed = client.get("/cases", headers=headers["viewer"])
        assert listed.status_code == 200, listed.text
        case = next(c for c in listed.json()["items"] if c["subject"] == "cr1-t01")
        yield client, headers, case["id"]


def test_a_case_moves_along_its_flow_by_the_right_people_and_refusals_are_audited(
    api: tuple[TestClient, dict[str, dict[str, str]], str], engine: Engine
) -> None:
    client, h, case_id = api
    url = f"/cases/{case_id}/moves"

    def move(role: str, **body: Any) -> Any:
        return client.post(url, json=body, headers=h[role])

    refused = [
        (move("dock_operator", state="investigating"), 409, "from open to investigating"),
        (move("dock_operator", state="nonsense"), 422, "not a case state"),
    ]
    refused.append((move("viewer", state="acknowledged"), 403, "needs the alerts.acknowledge permission"))
    done = move("dock_operator", state="acknowledged")
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "acknowledged" and done.json()["next"] == ["investigating", "cancelled"]
    refused.append((move("dock_operator", state="investigating"), 403, "needs the qa.decide permission"))
    assert move("qa", state="investigating").status_code == 200
    refused.append((move("qa", state="pending_disposition"), 422, "needs a disposition"))
    refused.append((move("qa", state="pending_disposition", disposition="sold"), 422, "not a disposition"))
    proposed = move("qa", state="pending_disposition", disposition="released")
    assert proposed.status_code == 200, proposed.text
    refused.append((move("qa_manager", state="closed", disposition="released"), 422, "is signed (approved)"))
    refused.append((move("qa", state="investigating"), 422, "needs a reason"))
    for reply, status, words in refused:
        assert reply.status_code == status, (reply.status_code, reply.text)
        assert words in reply.text, reply.text
    page = client.get(f"/cases/{case_id}", headers=h["viewer"]).json()
    assert [(s["state"], s["by"], s["disposition"]) for s in page["steps"]] == [
        ("open", "coldgate (system)", None),
        ("acknowledged", "Dock-Operator Tester", None),
        ("investigating", "Qa Tester", None),
        ("pending_disposition", "Qa Tester", "released"),
    ]
    assert page["state"] == "pending_disposition" and len(page["alert_list"]) == 3
    assert page["cause"] == "gw01|temperature.excursion|sensor|cr1-t01"
    moved = _audit(engine, "qa_case.moved")
    assert [(e.actor_name, e.entity_id) for e in moved] == [
        ("Dock-Operator Tester", case_id), ("Qa Tester", case_id), ("Qa Tester", case_id)
    ]  # fmt: skip
    refusals = _audit(engine, "qa_case.move_refused")
    assert len(refusals) == len(refused)
    assert all(e.entity_id == case_id and e.reason for e in refusals)
    assert client.get("/cases/case-nope", headers=h["viewer"]).status_code == 404
    bogus = client.get("/cases?state=bogus", headers=h["viewer"])
    assert bogus.status_code == 422 and bogus.json()["detail"][0]["loc"] == ["query", "state"], bogus.text
    assert len(client.get("/cases?state=all", headers=h["viewer"]).json()["items"]) == 2
    assert client.get("/cases?state=open", headers=h["viewer"]).json()["items"] == [
        c for c in client.get("/cases", headers=h["viewer"]).json()["items"] if c["state"] == "open"
    ]


def test_nothing_of_a_case_can_be_edited(engine: Engine) -> None:
    _stored_story(engine)
    _open(engine)
    for statement in ("UPDATE qa_case_steps SET state = 'closed'", "DELETE FROM qa_case_alerts",
                      "UPDATE qa_cases SET title = 'nothing happened'"):  # fmt: skip
        with pytest.raises(exc.DBAPIError), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert {c["state"] for c in list_cases(conn)} == {"open"}


def test_people_add_notes_by_their_roles(api: tuple[TestClient, dict[str, dict[str, str]], str]) -> None:
    client, h, case_id = api
    url = f"/cases/{case_id}/notes"
    comment = client.post(url, json={"kind": "comment", "text": "display read 9.1 °C at 09:10"},
                          headers=h["dock_operator"])  # fmt: skip
    assert comment.status_code == 200, comment.text
    refused = [
        (client.post(url, json={"kind": "comment", "text": "hi"}, headers=h["viewer"]), 403,
         "alerts.acknowledge"),
        (client.post(url, json={"kind": "root_cause", "text": "door"}, headers=h["dock_operator"]), 403,
         "qa.decide"),
        (client.post(url, json={"kind": "attachment", "text": "photo"}, headers=h["qa"]), 422, "reference"),
        (client.post(url, json={"kind": "gossip", "text": "x"}, headers=h["qa"]), 422, "not a kind of note"),
        (client.post(url, json={"kind": "comment", "text": "  "}, headers=h["qa"]), 422, "must not be empty"),
    ]  # fmt: skip
    attached = client.post(url, json={"kind": "attachment", "text": "logger printout",
                                      "ref": "printout.pdf sha256:9f2c... dms://QA/2026/117"},
                           headers=h["qa"])  # fmt: skip
    assert attached.status_code == 200, attached.text
    notes = attached.json()["notes"]
    assert [(n["kind"], n["by"]) for n in notes] == [
        ("comment", "Dock-Operator Tester"), ("attachment", "Qa Tester")
    ]  # fmt: skip
    for reply, status, words in refused:
        assert reply.status_code == status and words in reply.text, (reply.status_code, reply.text)
