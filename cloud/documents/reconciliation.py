"""Reconciliation at the dock: per line and per document, what was expected and what was seen.

Pure and derived (DESIGN.md principles 2 and 9): a function of one document, the bindings of the
items bound to it (``binding.py``), the catalog in force and the day it is judged on (passed in,
never read from a clock), so it can be recomputed at any time with the same result.

Counting.  Every physical unit is counted once: a pallet by its SSCC, a case by product and serial,
an unserialised scan by the item itself (its ``quantity`` units).  The same unit seen again (a second
pass of the pallet, a scan of a case the portal already read) is a *duplicate*: reported, never
counted twice; the same item delivered twice (same gateway, stream and seq) is the same record and
not even a duplicate.  So no count ever exceeds the distinct units seen.

A line is judged at the strongest level it states:

* serials listed: instance level.  Every serial seen is ``completeness_verified``; each serial not
  seen is *missing*; a case of the line's product whose serial is not listed is *unexpected*
  (``mismatch_instance``).  The difference in count is fully explained by those, so no quantity
  discrepancy is added on top.  An expected SSCC not read while every case was is not reported (the
  pallet tag is evidence of the cases, not a unit of its own).
* SSCCs listed but no serials: the pallet.  Every SSCC seen and no case of the line read singly is
  ``completeness_inferred`` (the line's quantity is taken from the pallet's stated contents); a missing
  SSCC is *missing*.  When cases were read singly, they are counted instead.
* neither: quantity level.  Units are summed; fewer is *under_quantity* (*missing* when none),
  more is *over_quantity*, both ``mismatch_quantity``.

Each unit bound to the document is also checked against the catalog: a lot *recalled*, *quarantined*
or *rejected*; *expired* or *short_dated* (fewer than ``short_dated_days`` days left); a unit of a lot
other than the line's (*wrong_lot*, ``mismatch_class``: the lot is part of the class in EPCIS);
*lot_unknown* where a line asks for a lot and the unit's cannot be told; and per line, a product whose
temperature class is not the one kept inside the document's door (*temperature_class*).  A unit on no
line is *unexpected* (``mismatch_class``: a product the document does not list), an item that names
nothing in the catalog *unidentified*.

Words.  Where GS1's Core Business Vocabulary has one, the discrepancy carries it in ``cbv``: the
dispositions ``completeness_verified``, ``completeness_inferred``, ``mismatch_instance``,
``mismatch_class``, ``mismatch_quantity``, ``recalled`` and ``expired`` of the CBV 2.0 Disposition
vocabulary (GS1 Core Business Vocabulary Standard, Release 2.0, June 2022, section 7.2: the list was
checked against a copy of its disposition list; the meanings here are our paraphrase: *verified*, every
expected instance checked; *inferred*, complete because the container's contents are trusted;
*mismatch_instance/class/quantity*, the contents differ from what was expected by instance, by class,
or by quantity of a class).  CBV has no word for quarantine, short dating or a temperature class
mismatch, so those carry none rather than a borrowed one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from coldgate.cloud.documents.binding import Binding, ItemKey
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.documents.model import Document, Line

__all__ = ["INFO_KINDS", "KINDS", "Discrepancy", "LineResult", "Reconciliation", "reconcile"]

#: Every discrepancy kind and its CBV 2.0 disposition word, or None where the CBV has none.
KINDS: Final = {
    "missing": "mismatch_instance",
    "unexpected": "mismatch_class",
    "unexpected_instance": "mismatch_instance",
    "under_quantity": "mismatch_quantity",
    "over_quantity": "mismatch_quantity",
    "wrong_lot": "mismatch_class",
    "lot_unknown": None,
    "duplicate": None,
    "recalled": "recalled",
    "quarantined": None,
    "rejected": None,
    "expired": "expired",
    "short_dated": None,
    "temperature_class": None,
    "unidentified": None,
}
#: Kinds that tell the dock something but do not keep a document from being complete.
INFO_KINDS: Final = frozenset({"duplicate"})
_LOT_STATUSES: Final = ("recalled", "quarantined", "rejected")
#: How the judging helpers report: (kind, line, product, lot, expected, seen, units, detail).
_Add = Callable[[str, Line | None, str | None, str | None, int | None, int | None, Iterable[str], str], None]


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """What a person at the dock needs: which line, product and lot, expected vs seen, and which units
    (SSCC, product/serial, or the item key of an unserialised scan), sorted."""

    kind: str
    cbv: str | None
    line: int | None
    product: str | None
    lot: str | None
    expected: int | None
    seen: int | None
    units: tuple[str, ...]
    detail: str

    @property
    def key(self) -> str:
        """Names this discrepancy as it stands, for an acceptance to point at: the kind and line, and a
        digest of what it is about (product, lot, counts and units), so accepting "3 cases missing"
        does not also accept a fourth found missing later: that is a discrepancy with another key."""
        about = [self.kind, self.line, self.product, self.lot, self.expected, self.seen, list(self.units)]
        digest = hashlib.sha256(json.dumps(about, separators=(",", ":")).encode()).hexdigest()[:20]
        return f"{self.kind}:{self.line if self.line is not None else '-'}:{digest}"


@dataclass(frozen=True, slots=True)
class LineResult:
    number: int
    product: str
    lot: str | None
    expected: int
    seen: int
    complete: bool
    completeness: str | None  # completeness_verified | completeness_inferred | None


@dataclass(frozen=True, slots=True)
class Reconciliation:
    document: str
    lines: tuple[LineResult, ...]
    discrepancies: tuple[Discrepancy, ...]
    expected: int
    seen: int
    units_seen: int  # distinct units (and unserialised items) bound to the document
    duplicates: int  # sightings of a unit already counted
    complete: bool
    completeness: str | None


@dataclass(slots=True)
class _Unit:
    """One distinct unit bound to the document, with the first binding that saw it."""

    name: str
    binding: Binding
    sightings: int = 1


def _units(document: Document, bindings: Iterable[Binding]) -> tuple[list[_Unit], int]:
    """The document's bindings as distinct units, deterministic whatever the order they come in."""
    seen_items: dict[ItemKey, Binding] = {}
    for b in bindings:
        if b.document == document.id:
            seen_items.setdefault(b.item, b)
    units: dict[str, _Unit] = {}
    duplicates = 0
    for key in sorted(seen_items):
        b = seen_items[key]
        name = b.observed.identified.unit or f"item:{key}"
        if name in units:
            units[name].sightings += 1
            duplicates += 1
        else:
            units[name] = _Unit(name, b)
    return [units[n] for n in sorted(units)], duplicates


def _line_label(line: Line) -> str:
    return f"line {line.number} ({line.product}{' lot ' + line.lot if line.lot else ''})"


def reconcile(
    document: Document,
    bindings: Iterable[Binding],
    index: CatalogIndex,
    today: datetime.date,
    *,
    short_dated_days: int = 0,
) -> Reconciliation:
    """The document's state of play on ``today`` (the dock's local date, passed in)."""
    units, duplicates = _units(document, bindings)
    found: list[Discrepancy] = []

    def add(
        kind: str,
        line: Line | None,
        product: str | None,
        lot: str | None,
        expected: int | None,
        seen: int | None,
        names: Iterable[str],
        detail: str,
    ) -> None:
        number = line.number if line is not None else None
        found.append(
            Discrepancy(kind, KINDS[kind], number, product, lot, expected, seen, tuple(sorted(names)), detail)
        )

    on_line: dict[int, list[_Unit]] = defaultdict(list)
    loose: list[_Unit] = []
    for unit in units:
        if unit.binding.line is None:
            loose.append(unit)
        else:
            on_line[unit.binding.line].append(unit)

    results: list[LineResult] = []
    for line in sorted(document.lines, key=lambda ln: ln.number):
        results.append(_judge_line(line, on_line.get(line.number, []), add))
        _check_class(line, document, index, on_line.get(line.number, []), add)

    _check_loose(loose, add)
    _check_units(units, index, today, short_dated_days, {ln.number: ln for ln in document.lines}, add)
    _check_repeats(units, {ln.number: ln for ln in document.lines}, add)

    discrepancies = tuple(sorted(found, key=lambda d: (d.line or 0, d.kind, d.product or "", d.lot or "")))
    complete = all(r.complete for r in results) and all(d.kind in INFO_KINDS for d in discrepancies)
    words = {r.completeness for r in results}
    completeness = None
    if complete and results:
        completeness = (
            "completeness_verified" if words == {"completeness_verified"} else "completeness_inferred"
        )
    return Reconciliation(
        document=document.id,
        lines=tuple(results),
        discrepancies=discrepancies,
        expected=sum(r.expected for r in results),
        seen=sum(r.seen for r in results),
        units_seen=len(units),
        duplicates=duplicates,
        complete=complete,
        completeness=completeness,
    )


def _fits_lot(line: Line, unit: _Unit) -> bool | None:
    """True when the unit is of the line's lot (or the line names none), False when of another, None
    when the unit's lot is not known."""
    found = unit.binding.observed.identified
    if line.lot is None or (found.sscc is not None and found.product is None):
        return True  # a pallet tag's lot is its cases' lot
    lot = found.lot
    return None if lot is None else lot == line.lot


def _judge_line(line: Line, units: list[_Unit], add: _Add) -> LineResult:
    label = _line_label(line)
    fitting = [u for u in units if _fits_lot(line, u) is not False]
    wrong = [u for u in units if _fits_lot(line, u) is False]
    unknown = [u for u in units if _fits_lot(line, u) is None]
    if wrong:
        lots = ", ".join(sorted({u.binding.observed.identified.lot or "?" for u in wrong}))
        add(
            "wrong_lot",
            line,
            line.product,
            line.lot,
            None,
            len(wrong),
            [u.name for u in wrong],
            f"{label}: {len(wrong)} unit(s) of lot {lots}",
        )
    if unknown:
        add(
            "lot_unknown",
            line,
            line.product,
            line.lot,
            None,
            len(unknown),
            [u.name for u in unknown],
            f"{label}: {len(unknown)} unit(s) whose lot could not be told",
        )

    if line.serials:
        expected = {f"serial:{line.product}/{s}" for s in line.serials}
        names = {u.name for u in fitting}
        missing = sorted(expected - names)
        foreign = [
            u for u in fitting if u.name not in expected and u.binding.observed.identified.sscc is None
        ]
        seen = len(expected & names)
        if missing:
            add(
                "missing",
                line,
                line.product,
                line.lot,
                len(expected),
                seen,
                missing,
                f"{label}: {len(missing)} of {len(expected)} expected case(s) not seen",
            )
        if foreign:
            add(
                "unexpected_instance",
                line,
                line.product,
                line.lot,
                0,
                len(foreign),
                [u.name for u in foreign],
                f"{label}: {len(foreign)} case(s) of the product not listed on the line",
            )
        complete = not missing and not foreign
        return LineResult(
            line.number,
            line.product,
            line.lot,
            len(expected),
            seen + len(foreign),
            complete,
            "completeness_verified" if complete else None,
        )

    pallets = [u for u in fitting if u.binding.observed.identified.sscc is not None]
    singles = [u for u in fitting if u.binding.observed.identified.sscc is None]
    if line.ssccs and not singles:
        expected_ssccs = {f"sscc:{s}" for s in line.ssccs}
        missing = sorted(expected_ssccs - {u.name for u in pallets})
        if missing:
            add(
                "missing",
                line,
                line.product,
                line.lot,
                len(expected_ssccs),
                len(expected_ssccs) - len(missing),
                missing,
                f"{label}: {len(missing)} of {len(expected_ssccs)} expected pallet(s) not seen",
            )
            return LineResult(line.number, line.product, line.lot, line.quantity, 0, False, None)
        return LineResult(
            line.number, line.product, line.lot, line.quantity, line.quantity, True, "completeness_inferred"
        )

    seen = sum(u.binding.observed.identified.quantity for u in singles)
    names = [u.name for u in singles]
    if seen == 0:
        add("missing", line, line.product, line.lot, line.quantity, 0, [], f"{label}: nothing seen")
    elif seen < line.quantity:
        add(
            "under_quantity",
            line,
            line.product,
            line.lot,
            line.quantity,
            seen,
            names,
            f"{label}: {seen} of {line.quantity} {line.unit}",
        )
    elif seen > line.quantity:
        add(
            "over_quantity",
            line,
            line.product,
            line.lot,
            line.quantity,
            seen,
            names,
            f"{label}: {seen} {line.unit} for {line.quantity} expected",
        )
    complete = seen == line.quantity
    return LineResult(
        line.number,
        line.product,
        line.lot,
        line.quantity,
        seen,
        complete,
        "completeness_verified" if complete else None,
    )


def _check_class(line: Line, document: Document, index: CatalogIndex, units: list[_Unit], add: _Add) -> None:
    kept = index.door_class(document.door)
    wanted = index.product_classes.get(line.product)
    if units and kept is not None and wanted is not None and kept != wanted:
        add(
            "temperature_class",
            line,
            line.product,
            line.lot,
            None,
            len(units),
            [u.name for u in units],
            f"{_line_label(line)}: the product keeps {wanted}, door {document.door}'s inside keeps {kept}",
        )


def _check_loose(loose: list[_Unit], add: _Add) -> None:
    """Units bound to the document but to none of its lines, grouped per product and lot."""
    groups: dict[tuple[str | None, str | None], list[_Unit]] = defaultdict(list)
    pallets: list[str] = []
    for unit in loose:
        found = unit.binding.observed.identified
        if found.product is None and found.sscc is not None:
            pallets.append(unit.name)
        else:
            groups[(found.product, found.lot)].append(unit)
    if pallets:
        add("unexpected", None, None, None, 0, len(pallets), pallets, f"{len(pallets)} pallet(s) on no line")
    for (product, lot), members in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        names = [u.name for u in members]
        if product is None:
            reasons = sorted({r.reason for u in members for r in u.binding.observed.identified.unresolved})
            labels = sorted({u.binding.observed.identified.label for u in members})
            add(
                "unidentified",
                None,
                None,
                None,
                0,
                len(members),
                names,
                f"{len(members)} item(s) naming nothing in the catalog ({', '.join(labels)}): "
                f"{'; '.join(reasons) or 'no identifier'}",
            )
        else:
            add(
                "unexpected",
                None,
                product,
                lot,
                0,
                len(members),
                names,
                f"{len(members)} unit(s) of {product}{' lot ' + lot if lot else ''} on no line",
            )


def _check_units(
    units: list[_Unit],
    index: CatalogIndex,
    today: datetime.date,
    short_dated_days: int,
    lines: dict[int, Line],
    add: _Add,
) -> None:
    """Lot status and shelf life of every unit bound to the document, grouped per line, product and lot."""
    groups: dict[tuple[str, int | None, str, str], list[str]] = defaultdict(list)
    for unit in units:
        found = unit.binding.observed.identified
        if found.product is None:
            continue
        lot = found.lot or ""
        info = index.lot(found.product, found.lot)
        if info is not None and info.status in _LOT_STATUSES:
            groups[(info.status, unit.binding.line, found.product, lot)].append(unit.name)
        expiry = found.expiry if found.expiry is not None else (info.expiry if info else None)
        if expiry is not None:
            if expiry < today:
                groups[("expired", unit.binding.line, found.product, lot)].append(unit.name)
            elif (expiry - today).days < short_dated_days:
                groups[("short_dated", unit.binding.line, found.product, lot)].append(unit.name)
    for (kind, number, product, lot), names in sorted(groups.items(), key=lambda kv: (kv[0][1] or 0, kv[0])):
        line = lines.get(number) if number is not None else None
        what = {"expired": "past expiry", "short_dated": f"fewer than {short_dated_days} days to expiry"}
        add(
            kind,
            line,
            product,
            lot or None,
            None,
            len(names),
            names,
            f"{len(names)} unit(s) of {product} lot {lot or '?'}: {what.get(kind, 'lot ' + kind)}",
        )


def _check_repeats(units: list[_Unit], lines: dict[int, Line], add: _Add) -> None:
    """Units seen more than once, per line, product and lot: told, never counted again."""
    groups: dict[tuple[int, str, str], list[_Unit]] = defaultdict(list)
    for unit in units:
        if unit.sightings > 1:
            found = unit.binding.observed.identified
            groups[(unit.binding.line or 0, found.product or "", found.lot or "")].append(unit)
    for (number, product, lot), members in sorted(groups.items()):
        extra = sum(u.sightings - 1 for u in members)
        names = [u.name for u in members]
        detail = f"{len(members)} unit(s) seen {extra} more time(s), counted once"
        add("duplicate", lines.get(number), product or None, lot or None, None, extra, names, detail)
