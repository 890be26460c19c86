"""Issue 15's custody story at site1, stored through the real ingest path and bound by the binding store:
what the custody store, its API and its pages are tested against.

The dock of ``tests/rig/documents.py`` (door D1 with cold room CR1 inside it) and two more cold rooms,
CR2 and CR3, each with a put-away scanner; a scanner at the door too.  On 1 December 2026 (UTC):

* 08:00 receiving note ASN-9 from Acme Pharma GmbH released to D1: VX10 lot L1, four serialised cases
  (1001-1004) on pallet ``sscc(1)``, and 10 each of PLAIN lot G1 (an MA label, counted by quantity);
* 08:01 the pallet's tag and the four cases' tags pass in, 1 s apart; 08:02 the PLAIN label is scanned
  at the door (10); 08:20 the note is completed;
* put-away: 1001 and 1002 scanned in CR2 at 08:30 and 08:31, 1003 and 1004 in CR3 at 08:40 and 08:41,
  the pallet's label in CR3 at 08:42, 4 of PLAIN in CR2 at 08:45;
* 12:00 dispatch order SO-1 to Pharmacy A released; 12:01 cases 1001 and 1003 pass out (1 s apart);
* 13:00 dispatch order SO-2 to Hospital B released; 13:01 cases 1002 and 1004 pass out, 13:02 8 of
  PLAIN scanned at the door.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Engine

from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.documents.binding_store import bind_pending
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.moves import move_document
from coldgate.contract import examples
from coldgate.contract.items import Direction, Item, Movement, Scan, Scheme
from coldgate.simulator.rfid_scenarios import sgtin96_hex, sscc96_hex
from tests.rig.cloud_db import ingest
from tests.rig.documents import DOCK, QA, SITE, sscc, stock_the_dock
from tests.rig.ingest import batch_message

__all__ = ["GATEWAY", "GTIN", "MIN", "PALLET", "PLAIN_MA", "T0", "CustodyWorld", "at", "custody_world"]

GATEWAY = "gw01"
GTIN = "04006381333931"  # VX10 (tests/rig/catalog.py)
PLAIN_MA = "MA.156.M0.100002.GAUZE1"
PALLET = sscc(1)
#: 2026-12-01 08:00 UTC.
T0 = int(datetime.datetime(2026, 12, 1, 8, tzinfo=datetime.UTC).timestamp() * 1000)
MIN = 60_000


def at(hour: int, minute: int, second: int = 0) -> int:
    """Epoch ms of ``hour:minute:second`` UTC on the story's day."""
    return T0 + ((hour - 8) * 60 + minute) * MIN + second * 1000


def _when(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


@dataclass(frozen=True, slots=True)
class CustodyWorld:
    receipt: str  # document ids
    to_pharmacy: str
    to_hospital: str


def _stamp(seq: int, ms: int) -> dict[str, Any]:
    return {"seq": seq, "ts": ms, "boot": examples.BOOT, "mono": 1000 + seq, "synced": True}


def _tag(seq: int, ms: int, epc: str, direction: Direction) -> Movement:
    return Movement(**_stamp(seq, ms), reader="r1", door="D1", direction=direction, epc=epc.lower(),
                    first_seen=ms, last_seen=ms + 500, read_count=4)  # fmt: skip


def case_tag(seq: int, ms: int, serial: int, direction: Direction = Direction.IN) -> Movement:
    return _tag(seq, ms, sgtin96_hex("4006381", "033393", serial), direction)


def scan(seq: int, ms: int, scanner: str, **fields: Any) -> Scan:
    """A scan by ``scanner`` with only the parsed fields given."""
    base: dict[str, Any] = {"gtin": None, "lot": None, "serial": None, "expiry": None, "sscc": None,
                            "quantity": None, "scheme": Scheme.GS1, "symbology": None,
                            "raw": "label"}  # fmt: skip
    return msgspec.structs.replace(examples.SCAN, **_stamp(seq, ms), scanner=scanner, **{**base, **fields})


def _document(engine: Engine, fields: dict[str, Any], released: int) -> str:
    with engine.begin() as conn:
        made = create_document(conn, {"site": SITE, **fields}, reason="order", by=DOCK, now=_when(released))
        move_document(conn, made["id"], "released", door="D1", reason="at door 1", by=DOCK,
                      now=_when(released))  # fmt: skip
    return str(made["id"])


def _complete(engine: Engine, document: str, done: int) -> None:
    """Done at the door (no discrepancy left open, as completion asks): the door is free again."""
    with engine.begin() as conn:
        for state in ("in_progress", "completed"):
            move_document(conn, document, state, reason="loaded", by=DOCK, now=_when(done))


def _pass(engine: Engine, items: list[Item], now: datetime.datetime) -> None:
    """Items ingested as one batch (the rig's stream, numbered by their seq) and bound."""
    assert ingest(engine, *batch_message(GATEWAY, items, first_seq=items[0].seq), now=now).kind == "batch"
    with engine.begin() as conn:
        assert bind_pending(conn, now) == len(items)


def receive_case(engine: Engine, reference: str, serial: int, ms: int, seq: int) -> str:
    """One case of VX10 lot L1 received at door D1 at ``ms`` on receiving note ``reference`` (released a
    minute before), ingested as item ``seq`` of the rig's stream and bound; the note's id."""
    line = {"product": "VX10", "lot": "L1", "quantity": 1, "serials": [str(serial)]}
    document = _document(engine, {"kind": "receiving", "reference": reference, "party": "Acme Pharma GmbH",
                                  "lines": [line]}, ms - MIN)  # fmt: skip
    _pass(engine, [case_tag(seq, ms, serial)], _when(ms + MIN))
    return document


def transfer_by_scanning(world: CustodyWorld, engine: Engine, party: str, scans: list[Scan], ms: int) -> str:
    """The story's last dispatch done at D1, then transfer TR-1 to ``party`` released there a minute
    before ``ms`` and worked by its scanner (``scans`` by ``s-d1``: no direction), ingested and bound;
    the transfer's id."""
    _complete(engine, world.to_hospital, ms - 2 * MIN)
    reference = "TR-1"
    line = {"product": "VX10", "lot": "L1", "quantity": len(scans)}
    document = _document(engine, {"kind": "transfer", "reference": reference, "party": party,
                                  "lines": [line]}, ms - MIN)  # fmt: skip
    _pass(engine, list(scans), _when(ms + MIN))
    return document


def custody_world(engine: Engine) -> CustodyWorld:
    """The story above, ingested and bound one stretch at a time, as the dock works it."""
    stock_the_dock(engine)
    now = datetime.datetime(2026, 12, 1, 18, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        for room in ("CR2", "CR3"):
            fields = {"name": f"Cold room {room[-1]}", "kind": "cold_room", "temperature_class": "2-8C"}
            put_location(conn, SITE, room, fields, reason="survey", by=QA, now=_when(T0 - 86_400_000))
        add_serials(conn, "VX10", "L1", [], [("1000", "1019")], reason="ASN", by=QA, now=_when(T0))
        for scanner, where in (("s-d1", "D1"), ("s-cr2", "CR2"), ("s-cr3", "CR3")):
            place(conn, GATEWAY, "scanner", scanner, where, T0 - 3_600_000, reason="installed", by=QA,
                  now=_when(T0 - 3_600_000))  # fmt: skip
    cases = [{"product": "VX10", "lot": "L1", "quantity": 4, "ssccs": [PALLET],
              "serials": ["1001", "1002", "1003", "1004"]},
             {"product": "PLAIN", "lot": "G1", "quantity": 10, "unit": "each"}]  # fmt: skip
    note = {"kind": "receiving", "reference": "ASN-9", "party": "Acme Pharma GmbH", "lines": cases}
    receipt = _document(engine, note, T0)
    items: list[Item] = [_tag(1, at(8, 1), sscc96_hex("4006381", "0000000001"), Direction.IN)]
    items += [case_tag(2 + n, at(8, 1, 1 + n), 1001 + n) for n in range(4)]
    items.append(scan(6, at(8, 2), "s-d1", ma=PLAIN_MA, lot="G1", quantity=10, scheme=Scheme.MA))
    _pass(engine, items, now)
    _complete(engine, receipt, at(8, 20))
    _pass(engine, [
        scan(7, at(8, 30), "s-cr2", gtin=GTIN, lot="L1", serial="1001"),
        scan(8, at(8, 31), "s-cr2", gtin=GTIN, lot="L1", serial="1002"),
        scan(9, at(8, 40), "s-cr3", gtin=GTIN, lot="L1", serial="1003"),
        scan(10, at(8, 41), "s-cr3", gtin=GTIN, lot="L1", serial="1004"),
        scan(11, at(8, 42), "s-cr3", sscc=PALLET),
        scan(12, at(8, 45), "s-cr2", ma=PLAIN_MA, lot="G1", quantity=4, scheme=Scheme.MA),
    ], now)  # fmt: skip
    two = {"product": "VX10", "lot": "L1", "quantity": 2}
    order = {"kind": "dispatch", "reference": "SO-1", "party": "Pharmacy A",
             "lines": [{**two, "serials": ["1001", "1003"]}]}  # fmt: skip
    pharmacy = _document(engine, order, at(12, 0))
    _pass(engine, [case_tag(13, at(12, 1), 1001, Direction.OUT), case_tag(14, at(12, 1, 1), 1003,
                                                                     Direction.OUT)], now)  # fmt: skip
    _complete(engine, pharmacy, at(12, 20))
    order = {"kind": "dispatch", "reference": "SO-2", "party": "Hospital B",
             "lines": [{**two, "serials": ["1002", "1004"]},
                       {"product": "PLAIN", "lot": "G1", "quantity": 8, "unit": "each"}]}  # fmt: skip
    hospital = _document(engine, order, at(13, 0))
    _pass(engine, [
        case_tag(15, at(13, 1), 1002, Direction.OUT), case_tag(16, at(13, 1, 1), 1004, Direction.OUT),
        scan(17, at(13, 2), "s-d1", ma=PLAIN_MA, lot="G1", quantity=8, scheme=Scheme.MA),
    ], now)  # fmt: skip
    return CustodyWorld(receipt, pharmacy, hospital)
