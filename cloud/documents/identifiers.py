"""What a movement or scan names (pallet, product, lot, serial, expiry), resolved against the catalog.

Binding and reconciliation compare documents with *catalog* keys (a line names a product by the
catalog's id and a lot by its number), while the edge reports what a label or tag carries: a
GTIN-14 and serial from an SGTIN tag, an SSCC from a pallet tag, a GS1, HIBC or MA barcode.  This
module is the one place where the one becomes the other, so the two pure steps after it never see a
label scheme.

Why these choices:

* Pure (DESIGN.md principle 2): the caller builds a :class:`CatalogIndex` from the catalog in force
  (products, lots, lot serials, locations, doors) and passes it in; nothing here reads a database, so
  re-running binding after a catalog correction gives the answer the corrected catalog implies.
* Nothing is dropped (principle 7): an identifier that resolves to nothing is kept as it was read
  and named in :attr:`Identified.unresolved` with a reason a person at the dock can act on; the item
  still binds to its door (and shows as unidentified) rather than vanishing.
* An SGTIN tag carries no lot.  The lot comes from the lot's serials (``cloud.catalog.serials``:
  single serials and numeric ranges of one width), so the index holds both forms.
* The EPC is decoded from its hex by the gateway's own decoder (``gateway.readers.epc``), not from
  ``epc_uri``: the hex is always present, the URI was derived from it, and one decoder means the
  edge and the cloud can never disagree about what a tag is.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from coldgate.contract.items import Movement, Scan
from coldgate.gateway.readers.epc import decode_epc

__all__ = [
    "CatalogIndex", "Identified", "LotInfo", "SerialSpan", "Unresolved", "identify", "identify_movement",
    "identify_scan", "identify_tag",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class LotInfo:
    """A lot as reconciliation judges it: its status (``cloud.catalog.lots.STATUSES``) and expiry."""

    status: str = "released"
    expiry: datetime.date | None = None
    expiry_hour: int | None = None


@dataclass(frozen=True, slots=True)
class SerialSpan:
    """A numeric range of serials of one width (``first``..``last`` as text) that belong to ``lot``;
    a span of one holds any serial."""

    first: str
    last: str
    lot: str

    def holds(self, serial: str) -> bool:
        if self.first == self.last:
            return serial == self.first
        return serial.isdigit() and len(serial) == len(self.first) and self.first <= serial <= self.last


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """The catalog in force, as lookups: everything identification and reconciliation need, nothing else.

    ``hibc`` is keyed by (labeler + product code, unit of measure or None); a product stored with no
    unit of measure matches a label of any.  ``serial_spans`` per product are sorted by ``first`` (the
    builder sorts them; :meth:`build` does).  ``door_locations`` maps a dock door to the location on its
    inside, whose temperature class a receipt's goods must keep (a door itself keeps no class).
    """

    gtins: Mapping[str, str] = field(default_factory=dict)
    hibc: Mapping[tuple[str, int | None], str] = field(default_factory=dict)
    ma: Mapping[str, str] = field(default_factory=dict)
    serial_lots: Mapping[tuple[str, str], str] = field(default_factory=dict)
    serial_spans: Mapping[str, tuple[SerialSpan, ...]] = field(default_factory=dict)
    lots: Mapping[tuple[str, str], LotInfo] = field(default_factory=dict)
    product_classes: Mapping[str, str] = field(default_factory=dict)
    location_classes: Mapping[str, str] = field(default_factory=dict)
    door_locations: Mapping[str, str] = field(default_factory=dict)

    def product_of_hibc(self, code: str, uom: int | None) -> str | None:
        found = self.hibc.get((code, uom))
        return found if found is not None else self.hibc.get((code, None))

    def lot_of_serial(self, product: str, serial: str) -> str | None:
        found = self.serial_lots.get((product, serial))
        if found is not None:
            return found
        spans = self.serial_spans.get(product, ())
        # The last span starting at or before the serial is the only one that can hold it (spans of one
        # product never overlap; the catalog refuses overlaps).
        i = bisect.bisect_right(spans, serial, key=lambda s: s.first) - 1
        for span in spans[max(i, 0) : i + 1]:
            if span.holds(serial):
                return span.lot
        return None

    def lot(self, product: str | None, lot: str | None) -> LotInfo | None:
        if product is None or lot is None:
            return None
        return self.lots.get((product, lot))

    def door_class(self, door: str | None) -> str | None:
        """The temperature class kept on the inside of ``door``, when the catalog knows it."""
        location = self.door_locations.get(door) if door is not None else None
        return self.location_classes.get(location) if location is not None else None


class Unresolved(msgspec.Struct, frozen=True):
    """One identifier that named nothing in the catalog (or could not be read), and why."""

    field: str
    value: str
    reason: str


class Identified(msgspec.Struct, frozen=True):
    """What one item names, in catalog terms.  ``label`` is the identifier as read (for people);
    ``quantity`` is how many units the item stands for (1 for a tag; a scan's AI 30 / HIBC Q)."""

    label: str
    sscc: str | None = None
    product: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: datetime.date | None = None
    expiry_hour: int | None = None
    quantity: int = 1
    unresolved: tuple[Unresolved, ...] = ()

    @property
    def unit(self) -> str | None:
        """The one physical unit this item is, when it names one (pallet by SSCC, case by product and
        serial, or by its label when the product is unknown); None for an unserialised scan, which is
        counted per item instead."""
        if self.sscc is not None:
            return f"sscc:{self.sscc}"
        if self.serial is not None and self.product is not None:
            return f"serial:{self.product}/{self.serial}"
        if self.serial is not None:
            # A serialised label of a product the catalog lacks: the label itself is the unit.
            return f"label:{self.label}"
        return None


def _lot_and_expiry(
    index: CatalogIndex, product: str | None, lot: str | None, serial: str | None
) -> tuple[str | None, LotInfo | None, list[Unresolved]]:
    problems: list[Unresolved] = []
    if product is not None and lot is None and serial is not None:
        lot = index.lot_of_serial(product, serial)
        if lot is None:
            problems.append(Unresolved("serial", serial, f"serial {serial} of {product} is in no known lot"))
    info = index.lot(product, lot)
    if product is not None and lot is not None and info is None:
        problems.append(Unresolved("lot", lot, f"lot {lot} of {product} is not in the catalog"))
    return lot, info, problems


def identify_movement(movement: Movement, index: CatalogIndex) -> Identified:
    """A portal movement: an SSCC tag is a pallet, an SGTIN tag a case (product, serial, lot by serial)."""
    return identify_tag(movement.epc, movement.epc_uri, index)


def identify_tag(epc: str, epc_uri: str | None, index: CatalogIndex) -> Identified:
    """A movement's tag (its EPC as stored, and the URI the gateway sent, if any) in catalog terms."""
    decoded = decode_epc(epc)
    label = decoded.uri or epc_uri or epc
    if decoded.sscc is not None:
        return Identified(label=label, sscc=decoded.sscc)
    if decoded.gtin is None or decoded.serial is None:
        why = decoded.reason or f"a {decoded.scheme} tag names no goods (a returnable asset, not a case)"
        return Identified(label=label, unresolved=(Unresolved("epc", epc, why),))
    product = index.gtins.get(decoded.gtin)
    if product is None:
        why = f"GTIN {decoded.gtin} is not a product in the catalog"
        return Identified(
            label=label, serial=decoded.serial, unresolved=(Unresolved("gtin", decoded.gtin, why),)
        )
    lot, info, problems = _lot_and_expiry(index, product, None, decoded.serial)
    return Identified(
        label=label, product=product, lot=lot, serial=decoded.serial,
        expiry=info.expiry if info else None, expiry_hour=info.expiry_hour if info else None,
        unresolved=tuple(problems),
    )  # fmt: skip


def _scan_product(scan: Scan, index: CatalogIndex) -> tuple[str | None, list[Unresolved]]:
    if scan.gtin is not None:
        found = index.gtins.get(scan.gtin)
        why = f"GTIN {scan.gtin} is not a product in the catalog"
        return found, [] if found else [Unresolved("gtin", scan.gtin, why)]
    if scan.hibc is not None:
        found = index.product_of_hibc(scan.hibc, scan.hibc_uom)
        uom = "" if scan.hibc_uom is None else f" (unit of measure {scan.hibc_uom})"
        why = f"HIBC {scan.hibc}{uom} is not a product in the catalog"
        return found, [] if found else [Unresolved("hibc", scan.hibc, why)]
    if scan.ma is not None:
        found = index.ma.get(scan.ma)
        return found, [] if found else [
            Unresolved("ma", scan.ma, f"MA {scan.ma} is not a product in the catalog")
        ]
    return None, []


def identify_scan(scan: Scan, index: CatalogIndex) -> Identified:
    """A barcode: an SSCC label is a pallet; otherwise GTIN, HIBC or MA names the product, and the
    label's lot and expiry win over the catalog's (the label is what the unit carries; a lot the
    catalog does not know is reported, not replaced)."""
    label = scan.raw
    if scan.sscc is not None and scan.gtin is None and scan.hibc is None and scan.ma is None:
        return Identified(label=label, sscc=scan.sscc)
    product, problems = _scan_product(scan, index)
    if product is None and not problems:
        why = "; ".join(scan.errors) or f"a {scan.scheme} barcode that names no product"
        problems = [Unresolved("raw", scan.raw, why)]
    lot, info, lot_problems = _lot_and_expiry(index, product, scan.lot, scan.serial)
    expiry = scan.expiry if scan.expiry is not None else (info.expiry if info else None)
    hour = scan.expiry_hour if scan.expiry is not None else (info.expiry_hour if info else None)
    return Identified(
        label=label, sscc=scan.sscc, product=product, lot=lot, serial=scan.serial, expiry=expiry,
        expiry_hour=hour, quantity=scan.quantity or 1, unresolved=(*problems, *lot_problems),
    )  # fmt: skip


def identify(item: Movement | Scan, index: CatalogIndex) -> Identified:
    """Either kind of item; the database side calls this for each stored movement and scan."""
    if isinstance(item, Movement):
        return identify_movement(item, index)
    return identify_scan(item, index)
