"""Issue 16's acceptance end to end on real parts: from a compressor failure at the edge to two people
signing the release of what the room held.

The real cloud (``CloudService``: ingest, scheduler with its binding, QA cases and notify jobs, down-link
publisher, HTTP API, SQLite), a private Mosquitto, a local SMTP server (aiosmtpd), and one site with two
real gateways: ``cold`` polls the cold room's logger on the simulator's Modbus farm (its siren on one
relay board), ``dock`` guards the dock door into that room with the simulator's LLRP reader (its stack
light on another).  Two gateways, because a gateway has one local alarm output: the siren sounding for
the excursion must not be taken for the stack light stopping a case at the door.

The story, as people work it through the API:

1. QA enters the catalog (class, room, yard, door, product, two lots and their serials; where the
   logger and the reader are); the dock operator's receiving note brings 12 cases of lot L2026-10 on a
   pallet through the door into cold room CR1 (lot L2026-11 is never received).
2. The room's compressor fails (the farm's scenario clock was held at a cold moment until then): the
   cold gateway raises the excursion, the cloud opens a case, quarantines lot L2026-10 (what CR1 held
   during the excursion) and not L2026-11, and pushes the list: both gateways hold it.
3. Three people (QA, the QA manager, the dock operator) get e-mail within 10 s of the alert reaching the
   cloud.  A case of the lot is carried out through the door: the stack light comes on.
4. Nobody acknowledges: after the policy's minute the admin (second level) is told, not before.  In that
   minute the refusals: a viewer acknowledging, an illegal move, releasing the lot by hand.
5. QA acknowledges and investigates; a wrong password at signing is refused (audited); the QA manager
   signs the release, signing it again is refused; QA signs it too: the case closes, the lot is released,
   both gateways receive the list without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sllurp", reason="the LLRP tests need the [gateway] extra (sllurp)")
pytest.importorskip("aiosmtpd", reason="the mailbox needs the [cloud] extra (aiosmtpd)")

from sqlalchemy import select

from coldgate.cloud.config import cloud_config_from_document
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.db.models import Alert, AuditEntry
from coldgate.cloud.service import CloudService
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.background import FarmThread
from coldgate.simulator.clock import ScenarioClock
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread
from coldgate.simulator.rfid_scenarios import pallet_pass, sscc96_hex
from tests.rig.ingest import enrol
from tests.rig.mailbox import Mailbox
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import PASSWORD, person
from tests.rig.ports import free_port
from tests.rig.site_world import DoorPasses, GatewaySite, HeldClock, People
from tests.rig.sites import cold_room_site
from tests.rig.waiting import wait_until

pytestmark = pytest.mark.timeout(420)

SITE, COLD, DOCK = "site-e2e-16", "cold-e2e-16", "dock-e2e-16"
ROOM, YARD, DOOR = "CR1", "YARD", "DOCK-2"
SENSOR, READER = "cr1-t1", "dock2-r1"  # the logger's id is cold_room_site's
PRODUCT, LOT, OTHER_LOT = "VAX-10", "L2026-10", "L2026-11"
COMPANY, ITEM, PALLET_REF = "4006381", "033393", "0000004716"
CASES, FIRST = 12, 1001
#: The class as the catalog pushes it and both gateways start with (a pushed class equal to the gateway's
#: own changes nothing, so the dock's reader is not restarted by the master data's arrival).
CLASS = {"low": 2.0, "high": 8.0, "alarm_delay_s": 2.0}
AMBIENT = {"low": 15.0, "high": 25.0}
CLASSES = [{"name": "2-8C", **CLASS}, {"name": "15-25C", **AMBIENT}]
ESCALATE_MIN = 1
#: The room: cold (about 5 °C) while the scenario clock is held at 0; once released, at x60 the compressor
#: stops 1 s later and the room passes 8 °C about 2 s after that.
FARM = FarmConfig(
    (LoggerSpec(1, "xy-md02", "compressor_failure", params={"failure_s": 60.0, "tau_s": 600.0}),), speed=60
)
WAIT_S = 60.0


def _gtin() -> str:
    found = decode_epc(sgtin(FIRST)).gtin
    assert found is not None
    return found


def sgtin(serial: int) -> str:
    from coldgate.simulator.rfid_scenarios import sgtin96_hex

    return sgtin96_hex(COMPANY, ITEM, serial)


def _catalog(people: People) -> None:
    """Marta's master data through the API, as the QA manager enters it."""
    now_ms = int(time.time() * 1000)
    people.ok("marta", "PUT", "/catalog/temperature-classes/2-8C", {"spec": CLASS, "reason": "SOP-12"})
    rooms = ((ROOM, "Cold room 1", "cold_room", "2-8C"), (YARD, "Yard", "ambient_store", "15-25C"))
    people.ok("marta", "PUT", "/catalog/temperature-classes/15-25C",
              {"spec": AMBIENT, "reason": "SOP-12"})  # fmt: skip
    for key, name, kind, klass in rooms:
        body = {"name": name, "kind": kind, "temperature_class": klass, "reason": "site survey"}
        people.ok("marta", "PUT", f"/catalog/sites/{SITE}/locations/{key}", body)
    door = {"name": "Dock door 2", "kind": "dock_door", "inside": ROOM, "outside": YARD, "reason": "survey"}
    people.ok("marta", "PUT", f"/catalog/sites/{SITE}/locations/{DOOR}", door)
    product = {"name": "Vaccine X 10 x 0.5 ml", "gtin": _gtin(), "temperature_class": "2-8C",
               "serialised": True, "reason": "new product"}  # fmt: skip
    people.ok("marta", "PUT", f"/catalog/products/{PRODUCT}", product)
    for lot, first in ((LOT, FIRST), (OTHER_LOT, FIRST + 1000)):
        people.ok("marta", "PUT", f"/catalog/products/{PRODUCT}/lots/{lot}",
                  {"expiry": "2028-10-31", "reason": "supplier's lot list"})  # fmt: skip
        ranges = [{"first": str(first), "last": str(first + CASES - 1)}]
        people.ok("marta", "POST", f"/catalog/products/{PRODUCT}/lots/{lot}/serials",
                  {"ranges": ranges, "reason": "supplier's serial list"})  # fmt: skip
    for gateway, kind, device, where in ((COLD, "sensor", SENSOR, ROOM), (DOCK, "reader", READER, DOOR)):
        body = {"gateway": gateway, "device_kind": kind, "device": device, "location": where,
                "valid_from": now_ms - 3_600_000, "reason": "installed"}  # fmt: skip
        people.ok("marta", "POST", "/catalog/placements", body)


def _cold_config(data_dir: Path, broker: MosquittoBroker, farm_port: int) -> Callable[[int], GatewayConfig]:
    def make(relay_port: int) -> GatewayConfig:
        document = cold_room_site(
            data_dir, farm_port, relay_port, gateway=COLD, site=SITE, zone=ROOM,
            uplink={"broker": broker.url, "ack_timeout_s": 5, "heartbeat_s": 5},
            outbox={"commit_interval_ms": 20},
        )  # fmt: skip
        document["temperature_classes"] = CLASSES
        return gateway_config_from_document(document, "cold.toml")

    return make


def _dock_config(data_dir: Path, broker: MosquittoBroker, reader_port: int) -> Callable[[int], GatewayConfig]:
    def make(relay_port: int) -> GatewayConfig:
        return gateway_config_from_document(
            {
                "gateway": {"id": DOCK, "site": SITE, "data_dir": str(data_dir)},
                "uplink": {"broker": broker.url, "heartbeat_s": 5, "ack_timeout_s": 5},
                "temperature_classes": CLASSES,
                "outbox": {"commit_interval_ms": 20},
                "modbus_lines": [{"id": "lights", "transport": "tcp", "host": "127.0.0.1",
                                  "port": relay_port, "timeout_s": 0.5}],
                "readers": [{"id": READER, "host": "127.0.0.1", "port": reader_port, "door": DOOR,
                             "outside_antennas": [1], "inside_antennas": [2], "keepalive_s": 2}],
                "alarm": {"relay": {"line": "lights", "unit": 1, "coil": 0}},
            },
            "dock.toml",
        )  # fmt: skip

    return make


def _cloud(url: str, broker: MosquittoBroker, mailbox: Mailbox) -> CloudService:
    """The cloud as an operator configures it: a critical case tells QA, the QA manager and the dock at
    once, the admin after ``ESCALATE_MIN`` minutes unacknowledged; no reminders (they would blur the
    escalation's count)."""
    api_port = free_port()
    levels = [{"after_min": 0, "roles": ["qa", "qa_manager", "dock_operator"]},
              {"after_min": ESCALATE_MIN, "roles": ["admin"]}]  # fmt: skip
    document = {
        "database": {"url": url},
        "mqtt": {"broker": broker.url, "client_id": "cloud-e2e-16", "workers": 1},
        "api": {"host": "127.0.0.1", "port": api_port},
        "gateways": {"heartbeat_timeout_s": 600},
        "notify": {
            "smtp_host": "127.0.0.1", "smtp_port": mailbox.port, "smtp_security": "none",
            "mail_from": "coldgate@site-e2e.invalid", "base_url": f"http://127.0.0.1:{api_port}",
            "policy": {"critical": {"channels": ["email"], "reminder_every_min": 0, "levels": levels}},
        },
    }  # fmt: skip
    return CloudService(cloud_config_from_document(document, "e2e-16"), watchdog_interval_s=1.0)


def test_a_compressor_failure_becomes_a_case_that_quarantines_tells_people_and_is_released_by_two(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    migrate(url)
    engine = make_engine(url, writer=True)
    enrol(engine, [COLD, DOCK], site=SITE)
    roles = {
        "quentin": "qa", "marta": "qa_manager", "dora": "dock_operator", "ada": "admin", "vera": "viewer"
    }  # fmt: skip
    tokens = {login: person(engine, login, (role,))[1] for login, role in roles.items()}
    held_clock = HeldClock()
    door = DoorPasses()
    with (
        Mailbox() as mailbox,
        FarmThread(FARM, tcp=[("127.0.0.1", 0)], clock=ScenarioClock(60, monotonic=held_clock)) as farm,
        LlrpReaderThread(LlrpReader(door, port=0)) as reader,
    ):
        cloud = _cloud(url, mosquitto_own, mailbox).start()
        try:
            people = People(cloud.api_url, tokens)
            _catalog(people)
            configs = {
                "cold": _cold_config(tmp_path / "cold", mosquitto_own, farm.tcp[0].port),
                "dock": _dock_config(tmp_path / "dock", mosquitto_own, reader.port),
            }
            with GatewaySite(configs) as site:
                _story(engine, people, site, door, held_clock, mailbox)
        finally:
            cloud.stop()
            engine.dispose()


def _story(
    engine: Any, people: People, site: GatewaySite, door: DoorPasses, held_clock: HeldClock, mailbox: Mailbox
) -> None:
    gtin = _gtin()
    for name in ("cold", "dock"):
        wait_until(lambda name=name: site.holds_product(name, gtin), WAIT_S,
                   f"the {name} gateway holds the catalog's master data")  # fmt: skip

    # 1. The receipt: 12 cases of the lot on a pallet, through the door into CR1.
    sscc = decode_epc(sscc96_hex(COMPANY, PALLET_REF)).sscc
    line = {"product": PRODUCT, "lot": LOT, "quantity": CASES, "ssccs": [sscc],
            "serials": [str(FIRST + n) for n in range(CASES)]}  # fmt: skip
    note = people.ok("dora", "POST", "/documents", {"kind": "receiving", "site": SITE, "reference": "ASN-16",
                     "party": "Vaxo Pharma GmbH", "lines": [line], "reason": "ship notice"})  # fmt: skip
    people.ok("dora", "POST", f"/documents/{note['id']}/release", {"door": DOOR, "reason": "truck at door 2"})
    people.ok("dora", "POST", f"/documents/{note['id']}/start", {"reason": "unloading"})
    door.drive(pallet_pass("in", cases=CASES, company_prefix=COMPANY, item_ref=ITEM, first_serial=FIRST,
                           pallet_serial_ref=PALLET_REF, seed=16))  # fmt: skip

    def received() -> bool:
        rec = people.ok("vera", "GET", f"/documents/{note['id']}/reconciliation")
        return bool(rec["complete"])

    wait_until(received, WAIT_S, "the receipt reconciled complete in the cloud")
    put_away = {"reason": "ASN-16 received, put away in CR1"}
    people.ok("dora", "POST", f"/documents/{note['id']}/complete", put_away)
    assert not site.lit("dock"), "a receipt of released stock lit the stack light"
    assert site.held("dock") == set(), "nothing is held before the excursion"

    # 2. The compressor fails; the excursion reaches the cloud, which opens a case and quarantines.
    held_clock.release()

    def excursion_stored() -> bool:
        with engine.connect() as conn:
            query = select(Alert.alert_id).where(Alert.gateway == COLD, Alert.rule == "temperature.high",
                                           Alert.action == "raised")  # fmt: skip
            return conn.execute(query).first() is not None

    wait_until(excursion_stored, WAIT_S, "the excursion reached the cloud")
    stored_at = time.monotonic()
    wait_until(lambda: people.ok("vera", "GET", "/cases")["items"], 20, "a case opened")
    [card] = people.ok("vera", "GET", "/cases")["items"]
    case_id = card["id"]
    case = people.ok("vera", "GET", f"/cases/{case_id}")
    assert (case["state"], case["subject"], case["quarantined"]) == ("open", SENSOR, [f"{PRODUCT}/{LOT}"])
    assert {(x["location"], x["lot"]) for x in case["stock"]} == {(ROOM, LOT)}
    assert case["stock_lines"] == CASES + 1  # every case and the pallet
    lot_status = lambda lot: people.ok("vera", "GET", f"/catalog/products/{PRODUCT}/lots/{lot}")["status"]  # noqa: E731
    assert (lot_status(LOT), lot_status(OTHER_LOT)) == ("quarantined", "released")
    for name in ("cold", "dock"):
        wait_until(lambda name=name: (LOT, "quarantined") in site.held(name), 30, f"the {name} list")
    assert site.held("dock") == {(LOT, "quarantined")}

    # 3. Three people told by e-mail within 10 s of the alert reaching the cloud.
    first = mailbox.wait_for(3, timeout=15)
    told = {m.to[0].split("@")[0]: m for m in first}
    assert set(told) == {"quentin", "marta", "dora"}, [m.to for m in first]
    late = max(m.at for m in first) - stored_at
    assert late <= 10, f"the third e-mail came {late:.1f} s after the alert reached the cloud"
    assert case_id in told["marta"].subject and f"/dashboard/cases/{case_id}?ack=" in told["marta"].text
    print(f"\nexcursion stored -> 3 e-mails in {late:.2f} s")

    # A case of the quarantined lot is carried out through the door: the stack light stops it.
    door.drive(pallet_pass("out", cases=1, with_pallet_tag=False, company_prefix=COMPANY, item_ref=ITEM,
                           first_serial=FIRST, seed=17))  # fmt: skip
    wait_until(lambda: site.lit("dock"), WAIT_S, "the stack light came on for the quarantined case")

    def door_alert() -> bool:
        with engine.connect() as conn:
            query = select(Alert.message).where(Alert.gateway == DOCK, Alert.rule == "door.quarantined")
            return any(LOT in m for m in conn.execute(query).scalars())

    wait_until(door_alert, WAIT_S, "the door's alert reached the cloud")
    # The door's alert is a case of its own (a quarantined lot leaving), told to the same three people:
    # raised as a warning as the case is seen at the door, critical once it leaves outbound.
    wait_until(lambda: len(people.ok("vera", "GET", "/cases")["items"]) == 2, 20, "the door's case")
    [door_case] = [c for c in people.ok("vera", "GET", "/cases")["items"] if c["id"] != case_id]
    assert (door_case["rule"], door_case["state"]) == ("door.quarantined", "open")
    wait_until(lambda: people.ok("vera", "GET", f"/cases/{door_case['id']}")["severity"] == "critical", 20,
               "the door's case critical")  # fmt: skip
    mailbox.wait_for(7, timeout=15)  # the excursion's 3, the door's warning to QA, its critical 3
    door_mail = [m for m in mailbox.messages if door_case["id"] in m.subject and "CRITICAL" in m.subject]
    assert sorted(m.to[0].split("@")[0] for m in door_mail) == ["dora", "marta", "quentin"]

    # 4. Nobody acknowledges: the refusals meanwhile, each audited; the admin is told after a minute.
    moves = f"/cases/{case_id}/moves"
    people.refused("vera", "POST", moves, {"state": "acknowledged"}, 403, "acknowledged")
    people.refused("marta", "POST", moves, {"state": "closed", "disposition": "released"}, 409, "open")
    by_hand = {"reason": "looks fine to me"}
    people.refused("marta", "POST", f"/catalog/products/{PRODUCT}/lots/{LOT}/release", by_hand, 409, case_id)
    assert lot_status(LOT) == "quarantined"

    def to_admin() -> list[Any]:
        return [m for m in mailbox.messages if m.to[0].startswith("ada@") and case_id in m.subject]

    assert not to_admin(), "the admin was told before the escalation was due"
    wait_until(lambda: bool(to_admin()), ESCALATE_MIN * 60 + 30, "the admin told (level 2)")
    [escalated] = to_admin()
    after = escalated.at - stored_at
    assert "Escalated to level 2" in escalated.text and after >= ESCALATE_MIN * 60 - 1, after
    print(f"escalated to the admin {after:.1f} s after the alert reached the cloud")

    # 5. QA works the case; two people sign the release.
    people.ok("quentin", "POST", moves, {"state": "acknowledged"})
    people.ok("quentin", "POST", moves, {"state": "investigating"})
    found = {"kind": "root_cause", "text": "compressor contactor failed; alarm answered in 40 min"}
    people.ok("quentin", "POST", f"/cases/{case_id}/notes", found)
    people.ok("quentin", "POST", moves, {"state": "pending_disposition", "disposition": "released"})
    release = {"state": "closed", "disposition": "released", "reason": "within the product's stability data"}
    wrong = {**release, "signature": {"login": "marta", "password": "not her password"}}
    people.refused("marta", "POST", moves, wrong, 403, "password is wrong")
    twice = {**release, "signature": {"login": "marta", "password": PASSWORD}}
    half = people.ok("marta", "POST", moves, twice)
    assert half["state"] == "pending_disposition" and lot_status(LOT) == "quarantined"
    people.refused("marta", "POST", moves, twice, 422, "the same person cannot sign twice")
    done = people.ok("quentin", "POST", moves,
                     {**release, "signature": {"login": "quentin", "password": PASSWORD}})  # fmt: skip
    assert done["state"] == "closed"
    assert sorted((s["signer_login"], s["meaning"], s["matches"]) for s in done["signatures"]) == [
        ("marta", "approved", True), ("quentin", "approved", True)
    ]
    assert (lot_status(LOT), lot_status(OTHER_LOT)) == ("released", "released")
    for name in ("cold", "dock"):
        freed = lambda name=name: (LOT, "quarantined") not in site.held(name)  # noqa: E731
        wait_until(freed, 30, f"the {name} list again")

    # Every refusal is in the audit trail, with why.
    with engine.connect() as conn:
        audit = conn.execute(select(AuditEntry.action, AuditEntry.reason, AuditEntry.actor_name)).all()
    refused = [(a.actor_name, a.reason) for a in audit if a.action == "qa_case.move_refused"]
    assert [name for name, _ in refused] == ["Vera Tester", "Marta Tester", "Marta Tester", "Marta Tester"]
    assert [a.action for a in audit].count("user.signature_failed") == 1
