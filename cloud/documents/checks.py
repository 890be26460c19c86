"""The checks of a document's fields and lines: pure, so the API, the import and the tests share one set
of rules and words.

The catalog is handed in as a snapshot (``Catalog``: products in force and whether retired, the lots of
each), read once by the caller, so checking a 500-line document or an import file of many documents costs
two reads, not one per line.  Every refusal is a :class:`UserInputError` naming the field by its path in
the document's JSON (``lines[3].lot``, ``lines[0].ssccs[2]``): the sender finds the value without
counting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coldgate.cloud.catalog.temperature_classes import check_name
from coldgate.cloud.documents.model import DocumentKind, Line
from coldgate.cloud.identity.users import UserInputError, checked_text
from coldgate.contract.ids import gs1_check_digit_ok

__all__ = [
    "HEADER_FIELDS", "LINE_FIELDS", "MAX_LINES", "MAX_SERIALS", "UNITS", "Catalog", "check_header",
    "check_line", "check_lines",
]  # fmt: skip

#: The units a quantity may be counted in: what a portal or scanner can count (a unit, an inner pack, a
#: shipping case, a pallet).
UNITS = ("each", "pack", "case", "pallet")
HEADER_FIELDS = ("kind", "site", "reference", "party", "lines")
LINE_FIELDS = ("number", "product", "lot", "quantity", "unit", "ssccs", "serials")
MAX_LINES = 2000
MAX_SERIALS = 20_000
MAX_SSCCS = 2000
MAX_QUANTITY = 10_000_000
_SSCC = re.compile(r"\d{18}")


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the line checks need of the catalog: product id → retired, and the (product, lot) pairs."""

    products: dict[str, bool]
    lots: frozenset[tuple[str, str]]


def check_header(fields: dict[str, Any]) -> dict[str, Any]:
    """kind, site, reference and party checked (not the lines: ``check_lines``)."""
    unknown = sorted(set(fields) - set(HEADER_FIELDS))
    if unknown:
        raise UserInputError(unknown[0], f"is not a document field (fields: {', '.join(HEADER_FIELDS)})")
    kind = fields.get("kind")
    if not isinstance(kind, str) or kind not in set(DocumentKind):
        raise UserInputError("kind", f"{kind!r} is not a kind of document ({', '.join(DocumentKind)})")
    try:
        site = check_name(fields.get("site"))
    except UserInputError as exc:
        raise UserInputError("site", str(exc).removeprefix("name: ")) from None
    reference = checked_text("reference", fields.get("reference"), max_len=64).strip()
    if not reference:
        raise UserInputError("reference", "must name the sender's number (ship notice, order)")
    party = fields.get("party")
    if party is not None:
        party = checked_text("party", party, max_len=200).strip() or None
    return {"kind": DocumentKind(kind).value, "site": site, "reference": reference, "party": party}


def _count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        raise UserInputError(field, f"{value!r} is not a whole number from 1 to {MAX_QUANTITY}")
    return value


def _texts(field: str, value: object, most: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise UserInputError(field, "must be a list")
    if len(value) > most:
        raise UserInputError(field, f"has {len(value)} entries, more than {most}")
    return value


def check_line(at: str, position: int, line: object, catalog: Catalog) -> Line:
    """One line (``at``: its path, e.g. ``lines[3]``; ``position``: its place, the number it gets when it
    names none)."""
    if not isinstance(line, dict):
        raise UserInputError(at, "must be an object with product, quantity, ...")
    unknown = sorted(set(line) - set(LINE_FIELDS))
    if unknown:
        raise UserInputError(f"{at}.{unknown[0]}", f"is not a line field (fields: {', '.join(LINE_FIELDS)})")
    number = line.get("number")
    number = position + 1 if number is None else _count(f"{at}.number", number)
    product = checked_text(f"{at}.product", line.get("product"), max_len=64)
    if product not in catalog.products:
        raise UserInputError(f"{at}.product", f"no product {product!r} in the catalog")
    if catalog.products[product]:
        raise UserInputError(f"{at}.product", f"product {product!r} is retired")
    lot = line.get("lot")
    if lot is not None:
        lot = checked_text(f"{at}.lot", lot, max_len=64)
        if (product, lot) not in catalog.lots:
            raise UserInputError(f"{at}.lot", f"no lot {lot!r} of product {product!r} in the catalog")
    quantity = _count(f"{at}.quantity", line.get("quantity"))
    unit = line.get("unit", "case")
    if unit not in UNITS:
        raise UserInputError(f"{at}.unit", f"{unit!r} is not a unit ({', '.join(UNITS)})")
    ssccs: list[str] = []
    for n, value in enumerate(_texts(f"{at}.ssccs", line.get("ssccs"), MAX_SSCCS)):
        where = f"{at}.ssccs[{n}]"
        text = checked_text(where, value, max_len=18) if isinstance(value, str) else value
        if not isinstance(text, str) or not _SSCC.fullmatch(text):
            raise UserInputError(where, f"{value!r} is not an SSCC (18 digits)")
        if not gs1_check_digit_ok(text):
            raise UserInputError(where, f"the check digit of SSCC {text} is wrong")
        if text in ssccs:
            raise UserInputError(where, f"SSCC {text} is also {at}.ssccs[{ssccs.index(text)}]")
        ssccs.append(text)
    serials: list[str] = []
    seen: dict[str, int] = {}
    for n, value in enumerate(_texts(f"{at}.serials", line.get("serials"), MAX_SERIALS)):
        where = f"{at}.serials[{n}]"
        text = checked_text(where, value, max_len=20)
        if not text.strip() or text != text.strip():
            raise UserInputError(where, f"{text!r} is not a serial (no spaces at its ends, not empty)")
        if text in seen:
            raise UserInputError(where, f"serial {text!r} is also {at}.serials[{seen[text]}]")
        seen[text] = n
        serials.append(text)
    return Line(number=number, product=product, quantity=quantity, unit=unit, lot=lot, ssccs=tuple(ssccs),
                serials=tuple(serials))  # fmt: skip


def check_lines(lines: object, catalog: Catalog) -> tuple[Line, ...]:
    """Every line checked, then together: line numbers unique, a serial of a product on one line only."""
    found = _texts("lines", lines, MAX_LINES)
    checked = [check_line(f"lines[{n}]", n, line, catalog) for n, line in enumerate(found)]
    numbers: dict[int, int] = {}
    serials: dict[tuple[str, str], int] = {}
    for n, line in enumerate(checked):
        if line.number in numbers:
            raise UserInputError(f"lines[{n}].number", f"{line.number} is also lines[{numbers[line.number]}]")
        numbers[line.number] = n
        for s, serial in enumerate(line.serials):
            other = serials.setdefault((line.product, serial), n)
            if other != n:
                raise UserInputError(
                    f"lines[{n}].serials[{s}]",
                    f"serial {serial!r} of {line.product!r} is also on lines[{other}]",
                )
    return tuple(sorted(checked, key=lambda line: line.number))
