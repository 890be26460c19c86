"""Builders for binding and reconciliation (the documents' pure parts): a small catalog, tags and scans
at a dock door, documents, and the runner of ``tests/testcases/documents/`` cases.

One site, one door (``dock1``, whose inside is the 2-8 °C room ``CR-A``; ``dock2`` opens on the
ambient store) and a handful of products, each named the way its labels name it: SGTIN cases of
``INSULIN``, ``VACCINE`` and ``SALINE`` (GS1 company prefix 0614141), pallets by SSCC, an HIBC product
(``SYRINGE``) and an MA product (``STENT``).  Lots of ``INSULIN``: ``L1`` (released, cases 1-500),
``L2`` (released, 501-1000), ``LR`` recalled (1001-1100), ``LQ`` quarantined (1101-1200), ``LX``
expired (1201-1300); case ``n`` has serial ``1000 + n``.  Movements and scans are built from the
contract's own examples with only what a case varies replaced, so they are what ingest stores.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import msgspec

from coldgate.cloud.documents.binding import (
    Direction,
    ItemKey,
    Observed,
    bind_all,
    observed_movement,
    observed_scan,
)
from coldgate.cloud.documents.identifiers import CatalogIndex, LotInfo, SerialSpan
from coldgate.cloud.documents.model import Document, DocumentKind, DocumentState, Line
from coldgate.cloud.documents.reconciliation import reconcile
from coldgate.contract import examples
from coldgate.contract.items import Direction as ContractDirection
from coldgate.contract.items import Movement, Scan, Scheme
from coldgate.gateway.readers.epc import decode_epc
from coldgate.simulator.rfid_scenarios import sgtin96_hex, sscc96_hex

T0 = examples.T0
TODAY = datetime.date(2026, 12, 6)
DOOR = "dock1"
GATEWAY = "gw01"
PREFIX = "0614141"
ITEM_REFS = {"INSULIN": "812345", "VACCINE": "812346", "SALINE": "812347"}
HIBC_PRODUCT = "SYRINGE"
HIBC_CODE = "A123SYR10"
MA_PRODUCT = "STENT"
MA_ID = "MA.156.M0.100001.0001A"
#: A discrepancy in a case's summary lists its units one by one up to this many; beyond, only how many.
LISTED_UNITS = 12


@cache
def gtin(product: str) -> str:
    """The GTIN-14 an SGTIN tag of ``product`` decodes to."""
    decoded = decode_epc(sgtin96_hex(PREFIX, ITEM_REFS[product], 1))
    assert decoded.gtin is not None
    return decoded.gtin


@cache
def sscc(serial_ref: int) -> str:
    """The SSCC of pallet ``serial_ref``, as its SSCC-96 tag decodes."""
    decoded = decode_epc(sscc96_hex(PREFIX, f"{serial_ref:010d}"))
    assert decoded.sscc is not None
    return decoded.sscc


def serial(n: int) -> str:
    """Case ``n``'s serial: four digits (an SGTIN-96 serial has no leading zeros)."""
    return str(1000 + n)


def index(**changes: Any) -> CatalogIndex:
    """The site's catalog as binding and reconciliation see it; keywords replace a field."""
    fields: dict[str, Any] = {
        "gtins": {gtin(p): p for p in ITEM_REFS},
        "hibc": {(HIBC_CODE, None): HIBC_PRODUCT},
        "ma": {MA_ID: MA_PRODUCT},
        "serial_lots": {("VACCINE", serial(7)): "V1", ("SALINE", serial(1)): "S1"},
        "serial_spans": {
            "INSULIN": (
                SerialSpan("1001", "1500", "L1"),
                SerialSpan("1501", "2000", "L2"),
                SerialSpan("2001", "2100", "LR"),
                SerialSpan("2101", "2200", "LQ"),
                SerialSpan("2201", "2300", "LX"),
            ),
        },
        "lots": {
            ("INSULIN", "L1"): LotInfo("released", datetime.date(2028, 1, 31)),
            ("INSULIN", "L2"): LotInfo("released", datetime.date(2027, 1, 10)),
            ("INSULIN", "LR"): LotInfo("recalled", datetime.date(2028, 1, 31)),
            ("INSULIN", "LQ"): LotInfo("quarantined", datetime.date(2028, 1, 31)),
            ("INSULIN", "LX"): LotInfo("released", datetime.date(2026, 11, 30)),
            ("VACCINE", "V1"): LotInfo("released", datetime.date(2028, 6, 30)),
            ("SALINE", "S1"): LotInfo("released", datetime.date(2028, 6, 30)),
            ("SYRINGE", "H1"): LotInfo("released", datetime.date(2029, 1, 1)),
            ("STENT", "M1"): LotInfo("released", datetime.date(2029, 1, 1)),
        },
        "product_classes": {
            "INSULIN": "2-8C", "VACCINE": "2-8C", "SALINE": "15-25C", "SYRINGE": "15-25C", "STENT": "15-25C",
        },
        "location_classes": {"CR-A": "2-8C", "AMB-1": "15-25C"},
        "door_locations": {DOOR: "CR-A", "dock2": "AMB-1"},
    }  # fmt: skip
    fields.update(changes)
    return CatalogIndex(**fields)


def _movement(seq: int, epc_hex: str, door: str, direction: str, at: int) -> Movement:
    decoded = decode_epc(epc_hex)
    return msgspec.structs.replace(
        examples.MOVEMENT, seq=seq, ts=at, door=door, direction=ContractDirection(direction),
        epc=epc_hex.lower(), epc_uri=decoded.uri, first_seen=at, last_seen=at + 50,
    )  # fmt: skip


def case_movement(
    seq: int,
    n: int,
    *,
    product: str = "INSULIN",
    door: str = DOOR,
    direction: str = "in",
    at: int = T0 + 1000,
) -> Movement:
    """Case ``n`` (serial ``serial(n)``) of ``product`` passing ``door``."""
    return _movement(seq, sgtin96_hex(PREFIX, ITEM_REFS[product], int(serial(n))), door, direction, at)


def pallet_movement(
    seq: int, serial_ref: int, *, door: str = DOOR, direction: str = "in", at: int = T0 + 1000
) -> Movement:
    """Pallet ``serial_ref``'s SSCC tag passing ``door``."""
    return _movement(seq, sscc96_hex(PREFIX, f"{serial_ref:010d}"), door, direction, at)


def scan(seq: int, *, at: int = T0 + 2000, **fields: Any) -> Scan:
    """A scan with only the parsed fields given (gtin, lot, serial, hibc, ma, sscc, expiry, quantity...)."""
    base: dict[str, Any] = {
        "gtin": None, "lot": None, "serial": None, "expiry": None, "sscc": None, "hibc": None,
        "hibc_uom": None, "ma": None, "quantity": None, "scheme": Scheme.GS1,
    }  # fmt: skip
    base.update(fields)
    return msgspec.structs.replace(examples.SCAN, seq=seq, ts=at, **base)


def observe_movements(
    movements: Iterable[Movement], catalog: CatalogIndex, *, gateway: str = GATEWAY
) -> list[Observed]:
    return [observed_movement(ItemKey(gateway, "items", m.seq), m, catalog) for m in movements]


def observe_scans(
    scans: Iterable[Scan], catalog: CatalogIndex, *, door: str = DOOR, direction: Direction = "out",
    gateway: str = GATEWAY,
) -> list[Observed]:  # fmt: skip
    return [
        observed_scan(ItemKey(gateway, "items", s.seq), s, catalog, door=door, direction=direction)
        for s in scans
    ]


def document(
    lines: Sequence[Line], *, id: str = "RN-1", kind: DocumentKind = DocumentKind.RECEIVING,
    door: str | None = DOOR, state: DocumentState = DocumentState.IN_PROGRESS, opened_at: int | None = T0,
    closed_at: int | None = None,
) -> Document:  # fmt: skip
    return Document(
        id=id, kind=kind, site="site1", state=state, reference=f"REF-{id}", lines=tuple(lines), door=door,
        opened_at=opened_at, closed_at=closed_at,
    )  # fmt: skip


def pallet_note(cases: int = 200, *, first: int = 1, pallet: int = 1, id: str = "RN-1") -> Document:
    """The issue's receiving note: ``cases`` INSULIN cases of lot L1 on one pallet, SSCC and serials known."""
    serials = tuple(serial(first + i) for i in range(cases))
    line = Line(number=1, product="INSULIN", quantity=cases, lot="L1", ssccs=(sscc(pallet),), serials=serials)
    return document([line], id=id)


def pallet_pass(
    cases: Iterable[int],
    *,
    pallet: int | None = 1,
    first_seq: int = 1,
    at: int = T0 + 1000,
    direction: str = "in",
) -> list[Movement]:
    """One pass of a pallet through the portal: its SSCC tag (unless None) and a tag per case."""
    out: list[Movement] = []
    seq = first_seq
    if pallet is not None:
        out.append(pallet_movement(seq, pallet, at=at, direction=direction))
        seq += 1
    for n in cases:
        out.append(case_movement(seq, n, at=at, direction=direction))
        seq += 1
    return out


# --- reconciliation cases as data (tests/testcases/documents/<case>/) -------------------------------------


def _line(spec: dict[str, Any]) -> Line:
    first, last = spec.get("cases", [1, 0])
    return Line(
        number=spec["number"], product=spec["product"], quantity=spec["quantity"],
        unit=spec.get("unit", "case"), lot=spec.get("lot"),
        ssccs=tuple(sscc(p) for p in spec.get("pallets", [])),
        serials=tuple(serial(n) for n in range(first, last + 1)),
    )  # fmt: skip


def case_items(passes: Sequence[dict[str, Any]], catalog: CatalogIndex) -> list[Observed]:
    """A case's passes as observed items.  Each pass: ``pallet`` (its SSCC tag), ``cases``
    [[first, last], ...] of ``product`` (INSULIN), ``foreign`` [[product, case], ...], ``scans`` (Scan
    fields, ``gtin`` given as a product name), at ``door`` in ``direction``; every item the next seq."""
    out: list[Observed] = []
    seq = 0
    for number, spec in enumerate(passes):
        at = T0 + 10_000 * (number + 1)
        direction, door = spec.get("direction", "in"), spec.get("door", DOOR)
        movements: list[Movement] = []
        if "pallet" in spec:
            seq += 1
            movements.append(pallet_movement(seq, spec["pallet"], door=door, direction=direction, at=at))
        product = spec.get("product", "INSULIN")
        for first, last in spec.get("cases", []):
            for n in range(first, last + 1):
                seq += 1
                movements.append(
                    case_movement(seq, n, product=product, door=door, direction=direction, at=at)
                )
        for other, n in spec.get("foreign", []):
            seq += 1
            movements.append(case_movement(seq, n, product=other, door=door, direction=direction, at=at))
        out += observe_movements(movements, catalog)
        scans = []
        for given in spec.get("scans", []):
            seq += 1
            fields = dict(given)
            if "gtin" in fields:
                fields["gtin"] = gtin(fields["gtin"])
            if "expiry" in fields:
                fields["expiry"] = datetime.date.fromisoformat(fields["expiry"])
            scans.append(scan(seq, at=at, **fields))
        out += observe_scans(scans, catalog, door=door, direction=direction)
    return out


def case_document(spec: dict[str, Any]) -> Document:
    lines = [_line(line) for line in spec["lines"]]
    return document(lines, id=spec.get("id", "RN-1"), kind=DocumentKind(spec.get("kind", "receiving")),
                    door=spec.get("door", DOOR))  # fmt: skip


def _units(names: Sequence[str]) -> list[str] | str:
    return list(names) if len(names) <= LISTED_UNITS else f"{len(names)} units"


def run_case(data: dict[str, Any]) -> dict[str, Any]:
    """Bind a case's passes to its document and reconcile it: the summary its ``expected.json`` holds."""
    catalog = index()
    doc = case_document(data["document"])
    bindings = bind_all(case_items(data["passes"], catalog), [doc])
    today = datetime.date.fromisoformat(data.get("today", TODAY.isoformat()))
    result = reconcile(doc, bindings, catalog, today, short_dated_days=data.get("short_dated_days", 0))
    return {
        "unbound": sum(1 for b in bindings if b.document is None),
        "complete": result.complete,
        "completeness": result.completeness,
        "expected": result.expected,
        "seen": result.seen,
        "units_seen": result.units_seen,
        "duplicates": result.duplicates,
        "lines": [
            {"line": r.number, "expected": r.expected, "seen": r.seen, "complete": r.complete,
             "completeness": r.completeness}
            for r in result.lines
        ],
        "discrepancies": [
            {"kind": x.kind, "cbv": x.cbv, "line": x.line, "product": x.product, "lot": x.lot,
             "expected": x.expected, "seen": x.seen, "units": _units(x.units)}
            for x in result.discrepancies
        ],
    }  # fmt: skip
