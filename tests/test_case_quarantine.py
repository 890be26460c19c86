"""Automatic quarantine on both dialects (``cloud/alerts/case_quarantine.py``), on issue 15's custody story
(``tests/rig/custody_world.py``): an excursion in a cold room opens a case that records what the room held
during the excursion, quarantines its released lots (the gateways' recall list then names them), keeps
its evidence; the case's signed closing gives the lots back, or rejects them; a lot two open cases hold
stays quarantined until the last one closes."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.alerts import case_store
from coldgate.cloud.alerts.case_flow import CaseDuties
from coldgate.cloud.alerts.case_store import add_note, case_detail, move_case, open_cases
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.lots import lot
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.downlink.versions import due_documents
from coldgate.cloud.identity.roles import permissions
from coldgate.cloud.identity.signatures import SignedBy
from coldgate.cloud.identity.users import Forbidden
from coldgate.contract.evidence import Evidence
from tests.rig.cloud_db import ingest
from tests.rig.custody_world import GATEWAY, T0, CustodyWorld, at, custody_world
from tests.rig.documents import QA
from tests.rig.ingest import batch_message
from tests.rig.items import alert
from tests.rig.people import person

NOW = datetime.datetime(2026, 12, 1, 18, tzinfo=datetime.UTC)
LIMITS = msgspec.structs.replace(alert().evidence).limits  # the examples' 2-8 °C limits


@pytest.fixture
def world(engine: Engine) -> CustodyWorld:
    found = custody_world(engine)
    with engine.begin() as conn:
        for sensor, room in (("cr2-t01", "CR2"), ("cr3-t01", "CR3")):
            place(conn, GATEWAY, "sensor", sensor, room, T0 - 3_600_000, reason="installed", by=QA,
                  now=NOW - datetime.timedelta(days=1))  # fmt: skip
    return found


def _excursion(engine: Engine, n: int, sensor: str, start: int, end: int) -> None:
    evidence = Evidence(start=start, end=end, peak=11.2, min=8.4, max=11.2, mean=9.6, mkt=9.8,
                        duration_s=(end - start) // 1000, samples=61, limits=LIMITS)  # fmt: skip
    raised = alert(n, ts=end, subject=sensor, evidence=evidence, message=f"{sensor} above 8.0 °C")
    numbered = msgspec.structs.replace(raised, seq=100 + n)  # past the story's items, in the window
    assert ingest(engine, *batch_message(GATEWAY, [numbered])).kind == "batch"


def _case_of(engine: Engine, sensor: str) -> dict[str, Any]:
    with engine.connect() as conn:
        found = next(c for c in case_store.list_cases(conn, state="all") if c["subject"] == sensor)
        return case_detail(conn, found["id"])


def _status(engine: Engine, product: str, number: str) -> str:
    with engine.connect() as conn:
        return str(lot(conn, product, number)["status"])


def _held(engine: Engine) -> set[tuple[str, str]]:
    """What the gateway's recall list stops at the door: (lot, status) of its lot entries."""
    with engine.begin() as conn:
        recalls = next(d for d in due_documents(conn, NOW, {GATEWAY}) if d.kind == "recall")
    return {(e.lot, e.status.value) for e in recalls.built.document.entries if e.lot}


def _people(engine: Engine) -> dict[str, tuple[Actor, frozenset[str], SignedBy]]:
    found = {}
    for login, role in (("dora", "dock_operator"), ("quentin", "qa"), ("marta", "qa_manager")):
        user_id, _token = person(engine, login, (role,))
        name = f"{login.title()} Tester"
        found[login] = (Actor(name, user_id), permissions([role]), SignedBy(user_id, login, name))
    return found


def _move(engine: Engine, who: tuple[Actor, frozenset[str], SignedBy], case_id: str, to: str,
          sign: bool = False, **more: Any) -> dict[str, Any]:  # fmt: skip
    with engine.begin() as conn:
        return move_case(conn, case_id, to, by=who[0], held=who[1], now=NOW, signer=who[2] if sign else None,
                         **more)  # fmt: skip


def test_an_excursion_quarantines_what_the_room_held_and_a_signed_release_gives_it_back(
    engine: Engine, world: CustodyWorld
) -> None:
    assert (_status(engine, "VX10", "L1"), _status(engine, "PLAIN", "G1")) == ("released", "released")
    _excursion(engine, 1, "cr2-t01", at(9, 0), at(10, 0))  # CR2 held 1001, 1002 and 4 of PLAIN then
    with engine.begin() as conn:
        assert open_cases(conn, NOW) == 1
    case = _case_of(engine, "cr2-t01")
    lines = [(x["product"], x["lot"], x["unit"], x["quantity"], x["status_before"]) for x in case["stock"]]
    assert lines == [
        ("PLAIN", "G1", None, 4, "released"),
        ("VX10", "L1", "serial:VX10/1001", 1, "released"),
        ("VX10", "L1", "serial:VX10/1002", 1, "released"),
    ]
    assert (case["stock_lines"], case["stock_lots"], case["quarantined"]) == (3, 2, ["PLAIN/G1", "VX10/L1"])
    assert (_status(engine, "VX10", "L1"), _status(engine, "PLAIN", "G1")) == ("quarantined", "quarantined")
    assert ("L1", "quarantined") in _held(engine) and ("G1", "quarantined") in _held(engine)
    snapshot = case["evidence"][0]
    assert (snapshot["site"], snapshot["location"]) == ("site1", "CR2")
    assert snapshot["edge_evidence"]["mkt"] == 9.8 and snapshot["edge_evidence"]["limits"]["high"] == 8.0
    assert case["figures"][0]["evidence"]["peak"] == 11.2
    # QA works the case; the findings are notes; two people sign the release.
    people = _people(engine)
    _move(engine, people["dora"], case["id"], "acknowledged")
    _move(engine, people["quentin"], case["id"], "investigating")
    with engine.begin() as conn:
        add_note(conn, case["id"], "root_cause", "door left open during loading", by=people["quentin"][0],
                 held=people["quentin"][1], now=NOW)  # fmt: skip
        with pytest.raises(Forbidden, match=r"root_cause needs the qa\.decide"):
            add_note(conn, case["id"], "root_cause", "?", by=people["dora"][0], held=people["dora"][1],
                     now=NOW)  # fmt: skip
    _move(engine, people["quentin"], case["id"], "pending_disposition", disposition="released")
    release = {"disposition": "released", "reason": "within stability data"}
    half = _move(engine, people["marta"], case["id"], "closed", sign=True, **release)
    assert half["state"] == "pending_disposition" and _status(engine, "VX10", "L1") == "quarantined"
    done = _move(engine, people["quentin"], case["id"], "closed", sign=True, **release)
    assert done["state"] == "closed" and [n["kind"] for n in done["notes"]] == ["root_cause"]
    assert (_status(engine, "VX10", "L1"), _status(engine, "PLAIN", "G1")) == ("released", "released")
    assert not {("L1", "quarantined"), ("G1", "quarantined")} & _held(engine)
    with engine.connect() as conn:
        settled = conn.execute(select(AuditEntry).where(AuditEntry.action == "qa_case.stock_settled")).one()
    assert settled.actor_name == "Quentin Tester"


def test_a_lot_two_cases_hold_stays_quarantined_until_the_last_closes(
    engine: Engine, world: CustodyWorld
) -> None:
    _excursion(engine, 1, "cr2-t01", at(9, 0), at(10, 0))  # L1's 1001, 1002 and PLAIN in CR2
    _excursion(engine, 2, "cr3-t01", at(9, 0), at(10, 0))  # L1's 1003, 1004 and the pallet in CR3
    with engine.begin() as conn:
        assert open_cases(conn, NOW) == 2
    cr2, cr3 = _case_of(engine, "cr2-t01"), _case_of(engine, "cr3-t01")
    # CR2's case opened first (its alert's id is first) and took both lots; CR3's found L1 held already.
    assert (cr2["quarantined"], cr3["quarantined"]) == (["PLAIN/G1", "VX10/L1"], [])
    assert {x["status_before"] for x in cr3["stock"]} == {"quarantined"}
    people = _people(engine)
    marta, quentin = people["marta"], people["quentin"]
    cancel = {"reason": "sensors were being calibrated"}
    # Cancelling gives the stock back, as a release does: two people sign it.
    half = _move(engine, marta, cr2["id"], "cancelled", sign=True, **cancel)
    assert half["state"] == "open" and "releasing stock needs a second" in half["pending"][0]["awaiting"]
    assert _status(engine, "PLAIN", "G1") == "quarantined"
    _move(engine, quentin, cr2["id"], "cancelled", sign=True, **cancel)
    # PLAIN was only CR2's: released; L1 stays quarantined for CR3's case, which still holds it.
    assert (_status(engine, "VX10", "L1"), _status(engine, "PLAIN", "G1")) == ("quarantined", "released")
    _move(engine, marta, cr3["id"], "cancelled", sign=True, **cancel)
    assert _status(engine, "VX10", "L1") == "quarantined"  # CR3's case took L1 over: two sign it too
    _move(engine, quentin, cr3["id"], "cancelled", sign=True, **cancel)
    assert _status(engine, "VX10", "L1") == "released"


def test_no_impact_gives_the_stock_back_with_two_signatures_and_a_type_may_ask_three(
    engine: Engine, world: CustodyWorld
) -> None:
    """Closing as "no impact" releases what the case quarantined: one QA manager alone cannot (it took
    one before); ``[cases.signatures]`` may ask more people for a type of case, never fewer."""
    _excursion(engine, 1, "cr2-t01", at(9, 0), at(10, 0))
    with engine.begin() as conn:
        open_cases(conn, NOW)
    case = _case_of(engine, "cr2-t01")
    assert case["case_type"] == "excursion"
    people = _people(engine)
    quinn_id, _token = person(engine, "quinn", ("qa",))
    name = "Quinn Tester"
    quinn = (Actor(name, quinn_id), permissions(["qa"]), SignedBy(quinn_id, "quinn", name))
    _move(engine, people["dora"], case["id"], "acknowledged")
    _move(engine, people["quentin"], case["id"], "investigating")
    _move(engine, people["quentin"], case["id"], "pending_disposition", disposition="no_impact")
    three = CaseDuties({"excursion": 3})
    close = {"disposition": "no_impact", "reason": "probe in a warm corner", "duties": three}
    half = _move(engine, people["marta"], case["id"], "closed", sign=True, **close)
    assert "releasing stock needs a second" in half["pending"][0]["awaiting"]
    two = _move(engine, people["quentin"], case["id"], "closed", sign=True, **close)
    assert two["state"] == "pending_disposition"
    assert "signed by 3 people (2 so far)" in two["pending"][0]["awaiting"]
    assert _status(engine, "VX10", "L1") == "quarantined"
    done = _move(engine, quinn, case["id"], "closed", sign=True, **close)
    assert done["state"] == "closed" and _status(engine, "VX10", "L1") == "released"


def test_a_rejection_rejects_and_a_room_with_no_sensor_placed_quarantines_nothing(
    engine: Engine, world: CustodyWorld
) -> None:
    _excursion(engine, 1, "cr2-t01", at(9, 0), at(10, 0))
    _excursion(engine, 2, "nowhere-t01", at(9, 0), at(10, 0))  # a sensor no placement puts anywhere
    with engine.begin() as conn:
        assert open_cases(conn, NOW) == 2
    assert _case_of(engine, "nowhere-t01")["stock"] == []
    with engine.connect() as conn:
        unknown = conn.execute(select(AuditEntry).where(AuditEntry.action == "qa_case.stock_unknown")).one()
    assert "placed at no location" in (unknown.reason or "")
    people = _people(engine)
    case_id = _case_of(engine, "cr2-t01")["id"]
    _move(engine, people["dora"], case_id, "acknowledged")
    _move(engine, people["quentin"], case_id, "investigating")
    _move(engine, people["quentin"], case_id, "pending_disposition", disposition="rejected_destroyed")
    _move(engine, people["marta"], case_id, "closed", sign=True, disposition="rejected_destroyed")
    assert (_status(engine, "VX10", "L1"), _status(engine, "PLAIN", "G1")) == ("rejected", "rejected")
