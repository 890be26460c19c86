"""Issue 17's acceptance end to end on real parts: the story of one lot from the supplier's truck to two
customers, then its batch history (JSON, CSV, PDF, EPCIS 2.0) and its recall run.

The real cloud (``CloudService``: ingest, scheduler with its binding and QA-case jobs, down-link
publisher, HTTP API, SQLite), a private Mosquitto, and one site with two real gateways
(``tests/rig/site_world.py``): ``cold`` polls the loggers of cold rooms CR1 and CR2 on the simulator's
Modbus farm; ``dock`` guards dock door DOCK-2 (the yard outside, CR1 inside) with the simulator's LLRP
reader and has a put-away scanner in CR2 on a pseudo-terminal.

The story, as people work it through the API:

1. QA enters the catalog; the dock operator's receiving note brings 12 cases of lot L2026-17 on a pallet
   from Vaxo Pharma GmbH through the door into CR1.
2. CR1's door is held open (the farm's scenario clock waited until the stock was in): the room passes
   8 °C for about ten seconds; the excursion becomes a QA case that quarantines the lot.  Soon after,
   CR1's logger stops answering for 30 s: a sensor outage (a gap), not an alarm.
3. QA investigates and two people sign the release: the case closes, the lot is released.
4. Four cases are scanned into CR2 (put away there); three cases leave through the door for Pharmacy A
   (dispatch SO-17A), two of CR2's for Hospital B (SO-17B).
5. The batch history says where the lot was (the supplier, CR1, CR2, the two customers), CR1's excursion
   with its case and both signatures, the 30 unmonitored seconds, MKT and the time out of range, in each
   format; checked against the readings, the gap and the alert the cloud stored.
6. The recall coordinator recalls the lot: the run lists both customers with their cases and the stock
   left in CR1 and CR2; both gateways hold the lot as recalled.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sllurp", reason="the LLRP tests need the [gateway] extra (sllurp)")

from sqlalchemy import Engine, select

from coldgate.cloud.config import cloud_config_from_document
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.db.models import Alert, Gap, Reading
from coldgate.cloud.service import CloudService
from coldgate.cloud.time_text import duration
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.background import FarmThread
from coldgate.simulator.clock import ScenarioClock
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread
from coldgate.simulator.rfid_scenarios import pallet_pass, sgtin96_hex, sscc96_hex
from coldgate.simulator.scanner import ScannerEmulator
from tests.rig.epcis import valid
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import PASSWORD, person
from tests.rig.ports import free_port
from tests.rig.site_world import DoorPasses, GatewaySite, HeldClock, People
from tests.rig.sites import cold_room_site
from tests.rig.waiting import wait_until

pytestmark = pytest.mark.timeout(480)

SITE, COLD, DOCK = "site-e2e-17", "cold-e2e-17", "dock-e2e-17"
ROOM, ROOM2, YARD, DOOR = "CR1", "CR2", "YARD", "DOCK-2"
SENSOR, SENSOR2, READER, SCANNER = "cr1-t1", "cr2-t1", "dock2-r1", "cr2-s1"  # SENSOR is cold_room_site's
PRODUCT, LOT = "VAX-17", "L2026-17"
COMPANY, ITEM, PALLET_REF = "4006381", "033394", "0000001717"
SUPPLIER, PHARMACY, HOSPITAL = "Vaxo Pharma GmbH", "Pharmacy A", "Hospital B"
CASES, FIRST = 12, 1001
TO_CR2 = [1009, 1010, 1011, 1012]
TO_PHARMACY = [1001, 1002, 1003]  # from CR1
TO_HOSPITAL = [1009, 1010]  # from CR2
CLASS = {"low": 2.0, "high": 8.0, "alarm_delay_s": 2.0}
AMBIENT = {"low": 15.0, "high": 25.0}
CLASSES = [{"name": "2-8C", **CLASS}, {"name": "15-25C", **AMBIENT}]
#: CR1, in scenario seconds from the held clock's release (the farm runs in real time): its door opens at
#: 2 s for 10 s (the room warms toward 5 + 8 °C with a 2 s time constant: above 8 °C from about 3 s to
#: 14 s), then its logger goes silent from 25 s to 55 s.  CR2 is a steady room.
DOOR_OPEN = {"scenario": "door_open", "first_s": 2.0, "every_s": 100_000.0, "open_s": 10.0, "rise_c": 8.0,
             "tau_s": 2.0}  # fmt: skip
OUTAGE_S = (25.0, 30.0)
FARM = FarmConfig(
    (
        LoggerSpec(1, "xy-md02", "dropout",
                   params={"start_s": OUTAGE_S[0], "duration_s": OUTAGE_S[1], "inner": DOOR_OPEN}),
        LoggerSpec(2, "xy-md02", "steady", seed=2),
    ),
    speed=1,
)
WAIT_S = 60.0
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"


def gtin() -> str:
    found = decode_epc(sgtin96_hex(COMPANY, ITEM, FIRST)).gtin
    assert found is not None
    return found


def _catalog(people: People) -> None:
    """Marta's master data through the API, as the QA manager enters it."""
    now_ms = int(time.time() * 1000)
    people.ok("marta", "PUT", "/catalog/temperature-classes/2-8C", {"spec": CLASS, "reason": "SOP-12"})
    people.ok("marta", "PUT", "/catalog/temperature-classes/15-25C", {"spec": AMBIENT, "reason": "SOP-12"})
    rooms = ((ROOM, "Cold room 1", "cold_room", "2-8C"), (ROOM2, "Cold room 2", "cold_room", "2-8C"),
             (YARD, "Yard", "ambient_store", "15-25C"))  # fmt: skip
    for key, name, kind, klass in rooms:
        body = {"name": name, "kind": kind, "temperature_class": klass, "reason": "site survey"}
        people.ok("marta", "PUT", f"/catalog/sites/{SITE}/locations/{key}", body)
    door = {"name": "Dock door 2", "kind": "dock_door", "inside": ROOM, "outside": YARD, "reason": "survey"}
    people.ok("marta", "PUT", f"/catalog/sites/{SITE}/locations/{DOOR}", door)
    product = {"name": "Vaccine X 10 x 0.5 ml", "gtin": gtin(), "temperature_class": "2-8C",
               "serialised": True, "tor_budget_s": 3600, "reason": "new product"}  # fmt: skip
    people.ok("marta", "PUT", f"/catalog/products/{PRODUCT}", product)
    people.ok("marta", "PUT", f"/catalog/products/{PRODUCT}/lots/{LOT}",
              {"expiry": "2028-10-31", "reason": "supplier's lot list"})  # fmt: skip
    ranges = [{"first": str(FIRST), "last": str(FIRST + CASES - 1)}]
    people.ok("marta", "POST", f"/catalog/products/{PRODUCT}/lots/{LOT}/serials",
              {"ranges": ranges, "reason": "supplier's serial list"})  # fmt: skip
    devices = ((COLD, "sensor", SENSOR, ROOM), (COLD, "sensor", SENSOR2, ROOM2),
               (DOCK, "reader", READER, DOOR), (DOCK, "scanner", SCANNER, ROOM2))  # fmt: skip
    for gateway, kind, device, where in devices:
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
        document["zones"].append({"id": ROOM2, "temperature_class": "2-8C", "recording_interval_s": 60})
        document["sensors"].append({**document["sensors"][0], "id": SENSOR2, "unit": 2, "zone": ROOM2})
        return gateway_config_from_document(document, "cold.toml")

    return make


def _dock_config(
    data_dir: Path, broker: MosquittoBroker, reader_port: int, scanner: str
) -> Callable[[int], GatewayConfig]:
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
                "scanners": [{"id": SCANNER, "port": scanner, "reopen_s": 0.5}],
                "alarm": {"relay": {"line": "lights", "unit": 1, "coil": 0}},
            },
            "dock.toml",
        )  # fmt: skip

    return make


def _cloud(url: str, broker: MosquittoBroker) -> CloudService:
    document = {
        "database": {"url": url},
        "mqtt": {"broker": broker.url, "client_id": "cloud-e2e-17", "workers": 1},
        "api": {"host": "127.0.0.1", "port": free_port()},
        "gateways": {"heartbeat_timeout_s": 600},
    }
    return CloudService(cloud_config_from_document(document, "e2e-17"), watchdog_interval_s=1.0)


def test_a_lots_story_from_supplier_to_two_customers_gives_its_history_and_recall_run(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    migrate(url)
    engine = make_engine(url, writer=True)
    enrol(engine, [COLD, DOCK], site=SITE)
    roles = {"quentin": "qa", "marta": "qa_manager", "dora": "dock_operator", "rico": "recall_coordinator",
             "vera": "viewer"}  # fmt: skip
    tokens = {login: person(engine, login, (role,))[1] for login, role in roles.items()}
    held_clock = HeldClock()
    door = DoorPasses()
    with (
        FarmThread(FARM, tcp=[("127.0.0.1", 0)], clock=ScenarioClock(1, monotonic=held_clock)) as farm,
        LlrpReaderThread(LlrpReader(door, port=0)) as reader,
        ScannerEmulator() as scanner,
    ):
        cloud = _cloud(url, mosquitto_own).start()
        try:
            people = People(cloud.api_url, tokens)
            _catalog(people)
            configs = {
                "cold": _cold_config(tmp_path / "cold", mosquitto_own, farm.tcp[0].port),
                "dock": _dock_config(tmp_path / "dock", mosquitto_own, reader.port, scanner.device),
            }
            with GatewaySite(configs) as site:
                _story(engine, people, site, door, scanner, held_clock, tmp_path)
        finally:
            cloud.stop()
            engine.dispose()


def _story(
    engine: Engine, people: People, site: GatewaySite, door: DoorPasses, scanner: ScannerEmulator,
    held_clock: HeldClock, tmp_path: Path,
) -> None:  # fmt: skip
    for name in ("cold", "dock"):
        wait_until(lambda name=name: site.holds_product(name, gtin()), WAIT_S,
                   f"the {name} gateway holds the catalog's master data")  # fmt: skip

    # 1. The receipt: 12 cases on a pallet from the supplier, through the door into CR1.
    sscc = decode_epc(sscc96_hex(COMPANY, PALLET_REF)).sscc
    line = {"product": PRODUCT, "lot": LOT, "quantity": CASES, "ssccs": [sscc],
            "serials": [str(FIRST + n) for n in range(CASES)]}  # fmt: skip
    note = _document(people, "receiving", "ASN-17", SUPPLIER, [line], "truck at door 2")
    door.drive(pallet_pass("in", cases=CASES, company_prefix=COMPANY, item_ref=ITEM, first_serial=FIRST,
                           pallet_serial_ref=PALLET_REF, seed=17))  # fmt: skip
    _done(people, note, "ASN-17 received, put away in CR1")

    # 2. CR1's door held open: an excursion, a case that quarantines the lot; then the logger's outage.
    held_clock.release()
    wait_until(lambda: _alert(engine, "raised") is not None, WAIT_S, "the excursion reached the cloud")
    wait_until(lambda: _excursion_case(people) is not None, 30, "the excursion's case opened")
    case_id = _excursion_case(people)
    assert case_id is not None
    lot_path = f"/catalog/products/{PRODUCT}/lots/{LOT}"
    wait_until(lambda: people.ok("vera", "GET", lot_path)["status"] == "quarantined", 30, "the lot held")
    wait_until(lambda: _alert(engine, "cleared") is not None, WAIT_S, "the excursion ended")
    wait_until(lambda: _gap(engine) is not None, WAIT_S + OUTAGE_S[0] + OUTAGE_S[1], "the outage closed")

    # 3. QA investigates; the QA manager and QA sign the release.
    moves = f"/cases/{case_id}/moves"
    for state in ("acknowledged", "investigating"):
        people.ok("quentin", "POST", moves, {"state": state})
    people.ok("quentin", "POST", f"/cases/{case_id}/notes",
              {"kind": "root_cause", "text": "door of CR1 held open 10 s by a pallet; closed"})  # fmt: skip
    people.ok("quentin", "POST", moves, {"state": "pending_disposition", "disposition": "released"})
    release = {"state": "closed", "disposition": "released",
               "reason": "10 s above 8 °C, within stability data"}  # fmt: skip
    for login in ("marta", "quentin"):
        people.ok(login, "POST", moves, {**release, "signature": {"login": login, "password": PASSWORD}})
    assert people.ok("vera", "GET", lot_path)["status"] == "released"
    for name in ("cold", "dock"):
        wait_until(lambda name=name: (LOT, "quarantined") not in site.held(name), 30, f"the {name} list")

    # 4. Four cases put away in CR2 by scanning; two dispatches through the door.
    for serial in TO_CR2:
        scanner.send(f"]d201{gtin()}10{LOT}\x1d21{serial}".encode())
    wait_until(lambda: _in_room(people, ROOM2) == len(TO_CR2), WAIT_S, "the put-away scans reached custody")
    for reference, party, serials in (("SO-17A", PHARMACY, TO_PHARMACY), ("SO-17B", HOSPITAL, TO_HOSPITAL)):
        line = {"product": PRODUCT, "lot": LOT, "quantity": len(serials),
                "serials": [str(s) for s in serials]}  # fmt: skip
        order = _document(people, "dispatch", reference, party, [line], "customer order")
        # The forklift reaches the door a few seconds after the order is released.  (A pass written from 0
        # starts its reads a second or two in, so the simulated reader's clock runs up to that far ahead;
        # the gateway learns the largest lead, and a pass with a shorter one lands as much in the past,
        # inside the previous order's window if it came at once.)
        time.sleep(3)
        for first, count in _runs(serials):
            door.drive(pallet_pass("out", cases=count, with_pallet_tag=False, company_prefix=COMPANY,
                                   item_ref=ITEM, first_serial=first, seed=first))  # fmt: skip
        _done(people, order, f"{reference} loaded")
    assert not site.lit("dock"), "a released lot's cases lit the stack light"

    # 5. The batch history, checked against what the cloud stored.
    _history(engine, people, case_id, tmp_path)

    # 6. The recall run.
    recall = people.ok("rico", "POST", "/recalls", {"recall_class": "II", "reason": "FSN-17: seal defect",
                                                    "lots": [{"product": gtin(), "lot": LOT}]})  # fmt: skip
    listed = {
        (c["customer"], d["reference"]): (d["pallets"], d["cases"], d["quantity"])
        for c in recall["customers"] for d in c["dispatches"]
    }  # fmt: skip
    assert listed == {(PHARMACY, "SO-17A"): (0, 3, 0), (HOSPITAL, "SO-17B"): (0, 2, 0)}, listed
    stock = {(s["location"], s["pallets"], s["cases"]) for s in recall["stock"]}
    left_in_cr1 = CASES - len(TO_CR2) - len(TO_PHARMACY)
    assert stock == {(ROOM, 1, left_in_cr1), (ROOM2, 0, len(TO_CR2) - len(TO_HOSPITAL))}, recall["stock"]
    assert people.ok("vera", "GET", lot_path)["status"] == "recalled"
    for name in ("cold", "dock"):
        wait_until(lambda name=name: (LOT, "recalled") in site.held(name), 30, f"the {name} gateway's recall")
    customers_csv = people.fetch("vera", f"/recalls/{recall['id']}/customers.csv").decode()
    assert PHARMACY in customers_csv and HOSPITAL in customers_csv


def _document(people: People, kind: str, reference: str, party: str, lines: list[dict[str, Any]],
              reason: str) -> str:  # fmt: skip
    """A document made, released to the door and started by the dock operator; its id."""
    body = {"kind": kind, "site": SITE, "reference": reference, "party": party, "lines": lines,
            "reason": reason}  # fmt: skip
    made = str(people.ok("dora", "POST", "/documents", body)["id"])
    people.ok("dora", "POST", f"/documents/{made}/release", {"door": DOOR, "reason": reason})
    people.ok("dora", "POST", f"/documents/{made}/start", {"reason": reason})
    return made


def _done(people: People, document: str, reason: str) -> None:
    """Once the cloud has reconciled ``document`` complete, the dock operator completes it."""
    path = f"/documents/{document}/reconciliation"
    try:
        wait_until(lambda: people.ok("vera", "GET", path)["complete"], WAIT_S, f"{document} reconciled")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {people.ok('vera', 'GET', path)}") from None
    people.ok("dora", "POST", f"/documents/{document}/complete", {"reason": reason})


def _runs(serials: list[int]) -> list[tuple[int, int]]:
    """Consecutive serials as (first, count) runs: one pass through the door each."""
    runs: list[tuple[int, int]] = []
    for serial in serials:
        if runs and runs[-1][0] + runs[-1][1] == serial:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((serial, 1))
    return runs


def _alert(engine: Engine, action: str) -> Any:
    with engine.connect() as conn:
        query = select(Alert).where(Alert.gateway == COLD, Alert.rule == "temperature.high",
                                    Alert.action == action)  # fmt: skip
        return conn.execute(query).first()


def _gap(engine: Engine) -> Any:
    """CR1's logger's outage, once closed."""
    with engine.connect() as conn:
        query = select(Gap).where(Gap.gateway == COLD, Gap.subject == SENSOR, Gap.end.is_not(None))
        return conn.execute(query).first()


def _excursion_case(people: People) -> str | None:
    cases = people.ok("vera", "GET", "/cases")["items"]
    found = [c["id"] for c in cases if c["rule"] == "temperature.high"]
    return found[0] if found else None


def _in_room(people: People, room: str) -> int:
    """How many of the lot's cases the history places in ``room`` now."""
    history = people.ok("vera", "GET", f"/lots/{gtin()}/{LOT}/history")
    return sum(s["cases"] for s in history["segments"] if s["location"] == room and s["end"] is None)


def _readings(engine: Engine, sensor: str, start: int, end: int) -> list[tuple[int, float]]:
    with engine.connect() as conn:
        query = select(Reading.ts, Reading.value).where(
            Reading.gateway == COLD, Reading.sensor == sensor, Reading.quantity == "temperature",
            Reading.quality == "ok", Reading.ts >= start, Reading.ts <= end,
        ).order_by(Reading.ts)  # fmt: skip
        return [(int(ts), float(value)) for ts, value in conn.execute(query)]


def _mkt(values: list[float]) -> float:
    """USP <1079.2>'s mean kinetic temperature (ΔH/R = 10,000 K), computed here from the readings."""
    kelvin = [v + 273.15 for v in values]
    return 10_000 / -math.log(sum(math.exp(-10_000 / k) for k in kelvin) / len(kelvin)) - 273.15


def _history(engine: Engine, people: People, case_id: str, tmp_path: Path) -> None:
    path = f"/lots/{gtin()}/{LOT}/history"
    history = people.ok("vera", "GET", path)
    where = [(s["custody"], s["location"] or s["party"]) for s in history["segments"]]
    assert where[0] == ("supplier", SUPPLIER), where
    assert {("ours", ROOM), ("ours", ROOM2), ("customer", PHARMACY), ("customer", HOSPITAL)} <= set(where)
    assert all(custody in ("supplier", "ours", "customer") for custody, _ in where)
    cr1 = next(s for s in history["segments"] if s["location"] == ROOM)
    cr2 = next(s for s in history["segments"] if s["location"] == ROOM2)
    assert [x["sensor"] for x in cr1["sensors"]] == [SENSOR]
    assert [x["sensor"] for x in cr2["sensors"]] == [SENSOR2]
    assert "ASN-17" in cr1["references"] and "SO-17B" in cr2["references"]

    # The excursion, with its case and both signatures; none in CR2.
    [excursion] = cr1["excursions"]
    raised, cleared = _alert(engine, "raised"), _alert(engine, "cleared")
    assert (excursion["rule"], excursion["case_id"], excursion["case_state"], excursion["disposition"]) == (
        "temperature.high", case_id, "closed", "released"
    )
    signed = sorted(excursion["signatures"])  # "<name> (<meaning>, <when>)"
    assert [(x.split(" (")[0], "(approved," in x) for x in signed] == [("Marta Tester", True),
                                                                         ("Quentin Tester", True)]
    assert cr2["excursions"] == []

    # Figures against the readings the cloud stored: the peak, the time above 8 °C, MKT.
    readings = _readings(engine, SENSOR, cr1["start_ms"], cr1["end_ms"] or cr1["start_ms"] + 3_600_000)
    above = [ts for ts, value in readings if value > CLASS["high"]]
    assert cr1["temperature"]["max"] == max(v for _, v in readings) > CLASS["high"]
    span_s = (above[-1] - above[0]) / 1000
    assert span_s - 2 <= cr1["temperature"]["above_s"] <= span_s + 2, (cr1["temperature"], span_s)
    assert 5 <= cr1["temperature"]["above_s"] <= 20 and cr2["temperature"]["above_s"] == 0
    # The excursion runs from the first reading above the limit (the alarm is raised after its delay).
    assert above[0] - 1500 <= excursion["start_ms"] <= raised.ts <= above[-1] < cleared.ts
    totals = history["totals"]
    assert totals["out_of_range_s"] == cr1["temperature"]["above_s"]  # every case was in CR1 then
    assert totals["budget_s"] == 3600 and totals["budget_exceeded"] is False
    assert totals["excursions"] == 1
    values = [v for _, v in readings]
    assert abs(cr1["temperature"]["mkt"] - _mkt(values)) <= 0.05, (cr1["temperature"]["mkt"], _mkt(values))
    assert cr1["temperature"]["min"] <= totals["mkt"] <= totals["max"]

    # The outage: the gap's seconds, unmonitored, in CR1 and in the totals.
    gap = _gap(engine)
    outage_s = (gap.end - gap.start) / 1000
    assert 25 <= outage_s <= 35, outage_s
    assert abs(cr1["unmonitored_s"] - outage_s) <= 2, (cr1["unmonitored_s"], outage_s, cr1["unmonitored"])
    assert cr2["unmonitored_s"] == 0 and totals["unmonitored_s"] == cr1["unmonitored_s"]

    # CSV: a row per segment and sensor, then the totals.
    rows = list(csv.DictReader(io.StringIO(people.fetch("vera", f"{path}.csv").decode())))
    [cr1_row] = [r for r in rows if r["location"] == ROOM]
    assert (cr1_row["sensor"], float(cr1_row["above_s"])) == (SENSOR, cr1["temperature"]["above_s"])
    assert excursion["alert_id"] in cr1_row["excursions"]
    assert rows[-1]["custody"] == "totals" and float(rows[-1]["unmonitored_s"]) == totals["unmonitored_s"]

    # PDF: rendered to PNG to be looked at; its text names the story.
    pdf = people.fetch("vera", f"{path}.pdf")
    assert pdf.startswith(b"%PDF")
    pdftoppm, pdftotext = shutil.which("pdftoppm"), shutil.which("pdftotext")
    if pdftoppm is not None and pdftotext is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        (tmp_path / "history.pdf").write_bytes(pdf)
        subprocess.run([pdftoppm, "-png", "-r", "70", str(tmp_path / "history.pdf"),
                        str(SHOTS / "e2e_history_L2026-17")], check=True)  # fmt: skip
        text = subprocess.run([pdftotext, str(tmp_path / "history.pdf"), "-"], check=True,
                              capture_output=True, text=True).stdout  # fmt: skip
        words = " ".join(text.split())
        for seen in ("Batch history", LOT, SUPPLIER, PHARMACY, HOSPITAL, ROOM, ROOM2, "temperature.high",
                     "ASN-17", "SO-17A", "Marta Tester", "Quentin Tester", "page 1 of"):  # fmt: skip
            assert seen in words, seen
        # A narrow table cell wraps the case id at its hyphen, which pdftotext then drops.
        assert case_id.replace("-", "") in "".join(text.split()).replace("-", ""), case_id
        assert duration(cr1["temperature"]["above_s"], nearest=True) in words  # "11 s", not "0 min"

    # EPCIS 2.0, valid against GS1's schema: receiving, storing, both shipments, each room's sensors.
    document = valid(people.ok("vera", "GET", f"{path}.epcis.json"))
    events = document["epcisBody"]["eventList"]
    steps = [e.get("bizStep") for e in events]
    assert {"receiving", "shipping", "sensor_reporting"} <= set(steps), steps
    assert len([e for e in events if e.get("bizStep") == "shipping"]) >= 2
    elements = [element for e in events for element in e.get("sensorElementList", ())]
    reports = [r for element in elements for r in element["sensorReport"]]
    peaks = [r["maxValue"] for r in reports if "Temperature" in r.get("type", "") and "maxValue" in r]
    assert max(peaks) == cr1["temperature"]["max"], reports
