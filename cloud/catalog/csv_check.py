"""The rows of an import file checked against each other and against a snapshot of what is stored.

Pure: ``csv_import.py`` reads the snapshot (one read per table) and writes the plan.  Each row goes
through the API's own checks (``check_product``, ``check_lot``, ``check_span``), so a value the API
refuses is refused here with the same words; on top, duplicates within the file and clashes with what
is stored (an identifier another product holds, a lot stored with other dates, an overlapping serial)
are found in memory, every one of them, not just the first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from coldgate.cloud.catalog.csv_read import Problems, Row
from coldgate.cloud.catalog.lots import STATUSES, _lot_number, check_lot
from coldgate.cloud.catalog.products import FIELDS, _identifiers, check_product
from coldgate.cloud.catalog.serials import Span, check_span, clashes
from coldgate.cloud.catalog.temperature_classes import check_name
from coldgate.cloud.identity.users import UserInputError

__all__ = ["COLUMNS", "Plan", "StoredLot", "check_lot_rows", "check_product_rows", "check_serial_rows"]

#: Each kind's (required, optional) columns.
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "products": (("id", "name", "temperature_class"),
                 ("gtin", "hibc_lic", "hibc_pcn", "hibc_uom", "ma_id", "tor_budget_s", "serialised",
                  "retention")),
    "lots": (("product", "lot"), ("expiry", "expiry_hour", "manufactured", "status")),
    "serials": (("product", "lot", "first"), ("last",)),
}  # fmt: skip
_INTEGER = re.compile(r"[+-]?\d{1,12}")
_TRUE = {"true", "yes", "1", "y", "x"}
_FALSE = {"false", "no", "0", "n"}


@dataclass(slots=True)
class Plan:
    """What to write: new records (``created``), next versions of changed ones (``updated``, with their
    next version number), rows equal to what is stored (``unchanged``, written nowhere)."""

    created: list[Any] = field(default_factory=list)
    updated: list[tuple[Any, int]] = field(default_factory=list)
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class StoredLot:
    expiry: Any
    expiry_hour: int | None
    manufactured: Any
    status: str


def _number(cell: str | None) -> object:
    """A whole number when the cell is one, else the cell itself (for the check to name)."""
    return int(cell) if cell is not None and _INTEGER.fullmatch(cell) else cell


def _flag(cell: str | None) -> object:
    if cell is None:
        return False
    word = cell.strip().lower()
    return True if word in _TRUE else False if word in _FALSE else cell


def _refused(problems: Problems, row: Row, exc: UserInputError, column: str | None = None) -> None:
    name = column or exc.field
    why = str(exc).removeprefix(f"{exc.field}: ")
    problems.add(row.line, name, row.cells.get(name), why)


def check_product_rows(
    rows: list[Row],
    problems: Problems,
    class_names: set[str],
    stored: dict[str, dict[str, Any]],
    holders: dict[tuple[str, str], str],
) -> Plan:
    """Products to make or change.  ``stored``: each product's version in force (its fields, ``version``,
    ``retired``); ``holders``: (scheme, value) → product of every identifier claimed now."""
    plan = Plan()
    seen: dict[str, int] = {}
    claims: dict[tuple[str, str], tuple[str, int]] = {}
    checked_rows: list[tuple[Row, str, dict[str, Any]]] = []
    for row in rows:
        c = row.cells
        try:
            key = check_name(c.get("id"))
        except UserInputError as exc:
            _refused(problems, row, exc, "id")
            continue
        if key in seen:
            problems.add(row.line, "id", key, f"product {key!r} is also on line {seen[key]}")
            continue
        seen[key] = row.line
        fields = {
            "name": c.get("name"), "gtin": c.get("gtin"), "hibc_lic": c.get("hibc_lic"),
            "hibc_pcn": c.get("hibc_pcn"), "hibc_uom": _number(c.get("hibc_uom")), "ma_id": c.get("ma_id"),
            "temperature_class": c.get("temperature_class"), "tor_budget_s": _number(c.get("tor_budget_s")),
            "serialised": _flag(c.get("serialised")),
            # No cell: the category in force stays (a file without the column must not shorten retention).
            "retention": c.get("retention") or stored.get(key, {}).get("retention"),
        }  # fmt: skip
        try:
            checked = check_product(fields, class_names)
        except UserInputError as exc:
            _refused(problems, row, exc)
            continue
        if stored.get(key, {}).get("retired"):
            problems.add(row.line, "id", key, f"product {key!r} is retired: bring it back through the API")
            continue
        checked_rows.append((row, key, checked))
    for row, key, checked in checked_rows:
        clash = False
        for scheme, value, column in _identifiers(checked):
            shown = value.replace("|", " ").strip()
            other = claims.get((scheme, value))
            holder = holders.get((scheme, value))
            if other is not None:
                problems.add(row.line, column, row.cells.get(column),
                             f"{shown} also names product {other[0]!r} on line {other[1]}")  # fmt: skip
                clash = True
            elif holder is not None and holder != key and holder not in seen:
                problems.add(row.line, column, row.cells.get(column),
                             f"{shown} already names product {holder!r}")  # fmt: skip
                clash = True
            else:
                claims[(scheme, value)] = (key, row.line)
        if clash:
            continue
        before = stored.get(key)
        if before is None:
            plan.created.append((key, checked))
        elif any(before[name] != checked[name] for name in FIELDS):
            plan.updated.append(((key, checked), before["version"] + 1))
        else:
            plan.unchanged += 1
    return plan


def check_lot_rows(
    rows: list[Row], problems: Problems, products: dict[str, bool], stored: dict[tuple[str, str], StoredLot]
) -> Plan:
    """New lots.  ``products``: each product in force → retired; ``stored``: lots in force.  A lot stored
    with the same values is unchanged; with other values it is refused (a change goes through the API,
    one lot at a time with its own reason, as a status move must)."""
    plan = Plan()
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        c = row.cells
        owner = c.get("product") or ""
        if owner not in products:
            problems.add(row.line, "product", owner, f"no product {owner!r}")
            continue
        if products[owner]:
            problems.add(row.line, "product", owner, f"product {owner!r} is retired: it takes no new lots")
            continue
        try:
            number = _lot_number(c.get("lot"))
            fields = check_lot({"expiry": c.get("expiry"), "expiry_hour": _number(c.get("expiry_hour")),
                                "manufactured": c.get("manufactured")})  # fmt: skip
        except UserInputError as exc:
            _refused(problems, row, exc)
            continue
        status = c.get("status") or "released"
        if status not in STATUSES:
            why = f"{status!r} is not a lot status ({', '.join(STATUSES)})"
            problems.add(row.line, "status", status, why)
            continue
        key = (owner, number)
        if key in seen:
            problems.add(row.line, "lot", number, f"lot {number!r} of {owner!r} is also on line {seen[key]}")
            continue
        seen[key] = row.line
        now = StoredLot(fields["expiry"], fields["expiry_hour"], fields["manufactured"], status)
        before = stored.get(key)
        if before is None:
            plan.created.append((key, now))
        elif before == now:
            plan.unchanged += 1
        else:
            column, was, is_ = next(
                (name, getattr(before, name), getattr(now, name))
                for name in ("expiry", "expiry_hour", "manufactured", "status")
                if getattr(before, name) != getattr(now, name)
            )
            problems.add(row.line, column, c.get(column),
                         f"lot {number!r} of {owner!r} is stored with {column} {was}, not {is_}: "
                         "change a stored lot through the API")  # fmt: skip
    return plan


def check_serial_rows(
    rows: list[Row],
    problems: Problems,
    serialised: dict[str, bool],
    lots: set[tuple[str, str]],
    stored: list[Span],
) -> Plan:
    """Spans to add.  ``serialised``: each product in force → whether its units carry serials; ``lots``:
    the lots in force; ``stored``: the stored spans of the file's products.  A span stored exactly so for
    the same lot is unchanged; any other overlap, in the file or with what is stored, is refused."""
    plan = Plan()
    spans: list[Span] = []
    for row in rows:
        c = row.cells
        owner, number = c.get("product") or "", c.get("lot") or ""
        if owner not in serialised:
            problems.add(row.line, "product", owner, f"no product {owner!r}")
            continue
        if not serialised[owner]:
            problems.add(row.line, "product", owner, f"product {owner!r} is not serialised")
            continue
        if (owner, number) not in lots:
            problems.add(row.line, "lot", number, f"no lot {number!r} of product {owner!r}")
            continue
        try:
            first, last = check_span(c.get("first"), c.get("last"))
        except UserInputError as exc:
            _refused(problems, row, exc)
            continue
        spans.append(Span(owner, first, last, number, row.line))
    by_line = {s.origin: s for s in spans}
    refused: set[int | None] = set()
    for span, _, why in clashes([*stored, *spans]):
        column = "first" if span.first == span.last else "last"
        problems.add(span.origin or 0, column, span.first if column == "first" else span.last, why)
        refused.add(span.origin)
    held = {(s.product, s.first, s.last) for s in stored}
    for line, span in by_line.items():
        if line in refused:
            continue
        if (span.product, span.first, span.last) in held:
            plan.unchanged += 1
        else:
            plan.created.append(span)
    return plan
