"""Turn one scanned frame into the fields of a `contract.items.Scan`.

Dispatch is by what the scanner told us (the AIM symbology identifier) and
then by the data's own flag: FNC1 symbologies are GS1, ``+`` is HIBC,
``MA.`` is an MA code, ``(`` is GS1 in human-readable form, leading digits
are tried as GS1 element strings.  Whatever is not understood stays
``raw`` with the reason in ``errors``; the original bytes always survive in
``raw`` so a scan can be re-parsed later by better code.

The product identifiers of all three schemes become fields a door check can
look up in master data: ``gtin`` (GS1), ``hibc`` + ``hibc_uom`` (HIBC primary
data) and ``ma`` (the MA device identifier).  A value the contract cannot
carry (a field of an MA id longer than the contract allows, a quantity of 0)
is left out with the reason in ``errors``: the Scan must always validate,
because a scan the outbox refuses is a scan nobody sees.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Final

from coldgate.contract.ids import HIBC_PATTERN, MA_PATTERN
from coldgate.contract.items import Scheme
from coldgate.gateway.readers.barcode import gs1, hibc, ma
from coldgate.gateway.readers.barcode.symbology import carries_gtin, implies_gs1, split_symbology

MAX_RAW: Final = 4096  # contract.items.Scan.raw
MAX_ERRORS: Final = 32
MAX_ERROR_TEXT: Final = 200
MAX_KEY_TEXT: Final = 64  # contract Lot / Serial
_UNEXPECTED_RE: Final = re.compile(r"[^\x20-\x7e\x1d]")
_HIBC_RE: Final = re.compile(HIBC_PATTERN)
_MA_RE: Final = re.compile(MA_PATTERN)
MAX_QUANTITY: Final = 99_999_999  # contract.items.Scan.quantity


@dataclass(frozen=True)
class ParsedScan:
    """Exactly the parsed fields of `contract.items.Scan`: ``Scan(**asdict(parsed), ...)``."""

    raw: str
    symbology: str | None = None
    scheme: Scheme = Scheme.RAW
    gtin: str | None = None
    lot: str | None = None
    expiry: datetime.date | None = None
    serial: str | None = None
    sscc: str | None = None
    errors: list[str] = field(default_factory=list)
    hibc: str | None = None
    hibc_uom: int | None = None
    ma: str | None = None
    expiry_hour: int | None = None
    best_before: datetime.date | None = None
    produced: datetime.date | None = None
    quantity: int | None = None


def _errors(found: list[str]) -> list[str]:
    """Keep the contract's limits: at most 32 texts of at most 200 characters."""
    texts = [e if len(e) <= MAX_ERROR_TEXT else e[: MAX_ERROR_TEXT - 1] + "…" for e in found]
    if len(texts) > MAX_ERRORS:
        texts = [*texts[: MAX_ERRORS - 1], f"{len(texts) - MAX_ERRORS + 1} more errors"]
    return texts


def _text(value: str | None, name: str, errors: list[str]) -> str | None:
    if value is not None and len(value) > MAX_KEY_TEXT:
        errors.append(f"{name} longer than {MAX_KEY_TEXT} characters")
        return None
    return value or None


def _hibc(code: object, errors: list[str]) -> tuple[str | None, int | None]:
    """Labeler code + product code, and the unit of measure, when the symbol had primary data."""
    lic, product = getattr(code, "lic", None), getattr(code, "product", None)
    if lic is None or product is None:
        return None, None
    hibc = lic + product
    uom = getattr(code, "unit_of_measure", None)
    if _HIBC_RE.fullmatch(hibc) is None:
        errors.append(f"HIBC code {hibc[:30]!r} does not fit the contract's pattern")
        return None, None
    return hibc, uom if isinstance(uom, int) and 0 <= uom <= 9 else None


def _ma(code: object, errors: list[str]) -> str | None:
    """``MA.<country>.<category>.<organisation>.<item>`` when all four device-id fields were read."""
    fields = [getattr(code, name, None) for name in ("country", "category", "organisation", "item")]
    if any(f is None for f in fields):
        return None
    ma_id = "MA." + ".".join(str(f) for f in fields)
    if _MA_RE.fullmatch(ma_id) is None:
        errors.append("MA device id has a field longer than 16 characters: not kept")
        return None
    return ma_id


def _quantity(value: object, errors: list[str]) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 1 <= value <= MAX_QUANTITY:
        errors.append(f"quantity {value} is not 1..{MAX_QUANTITY}: not kept")
        return None
    return value


def _build(raw: str, symbology: str | None, scheme: Scheme, found: object, errors: list[str]) -> ParsedScan:
    lot = _text(getattr(found, "lot", None), "lot", errors)
    serial = _text(getattr(found, "serial", None), "serial", errors)
    hibc, hibc_uom = _hibc(found, errors)
    expiry = getattr(found, "expiry", None)
    hour = getattr(found, "expiry_hour", None)
    produced = getattr(found, "produced", None) or getattr(found, "manufactured", None)
    return ParsedScan(
        raw=raw,
        symbology=symbology,
        scheme=scheme,
        gtin=getattr(found, "gtin", None),
        lot=lot,
        expiry=expiry,
        serial=serial,
        sscc=getattr(found, "sscc", None),
        hibc=hibc,
        hibc_uom=hibc_uom,
        ma=_ma(found, errors),
        expiry_hour=hour if expiry is not None and isinstance(hour, int) and 0 <= hour <= 23 else None,
        best_before=getattr(found, "best_before", None),
        produced=produced,
        quantity=_quantity(getattr(found, "quantity", None), errors),
        errors=_errors(errors),
    )


def _raw(raw: str, symbology: str | None, *errors: str) -> ParsedScan:
    return ParsedScan(raw=raw, symbology=symbology, errors=_errors(list(errors)))


def parse_scan(data: bytes) -> ParsedScan:
    """Parse one frame (terminator already removed); never raises, whatever the bytes."""
    raw = data[:MAX_RAW].decode("latin-1")
    try:
        return _parse(data, raw)
    except Exception as exc:  # the scanner loop must survive a parser bug; the bytes are kept
        return _raw(raw, None, f"parser failed: {type(exc).__name__}: {exc}")


def _parse(data: bytes, raw: str) -> ParsedScan:
    if len(data) > MAX_RAW:
        return _raw(raw, None, f"scan is {len(data)} bytes, longer than {MAX_RAW}: kept the first {MAX_RAW}")
    text = raw.rstrip("\r\n")
    if not text:
        return _raw(raw, None, "empty scan")
    split = split_symbology(text)
    if split.error is not None:
        return _raw(raw, None, split.error)
    symbology, body = split.symbology, split.data
    if not body:
        return _raw(raw, symbology, "no data after the symbology identifier")
    odd = _UNEXPECTED_RE.search(body)
    if odd is not None:
        where = odd.start() + len(text) - len(body)
        return _raw(raw, symbology, f"byte 0x{ord(odd.group()):02x} at {where} is not printable ASCII or GS")

    if implies_gs1(symbology):
        return _gs1(raw, symbology, gs1.parse_element_strings(body))
    if carries_gtin(symbology):
        return _gs1(raw, symbology, gs1.parse_gtin(body))
    if body.startswith("+"):
        code = hibc.parse_hibc(body)
        return _build(raw, symbology, Scheme.HIBC, code, code.errors)
    if body.startswith(ma.PREFIX):
        found = ma.parse_ma(body)
        return _build(raw, symbology, Scheme.MA, found, found.errors)
    if symbology is not None:
        return _raw(raw, symbology, f"{symbology} is not a GS1 symbology and the data is neither HIBC nor MA")
    if body.startswith("("):
        return _gs1(raw, None, gs1.parse_hri(body))
    if body[0].isdigit() or body[0] == gs1.GS:
        if body.isdigit() and len(body) in (8, 12, 13, 14):
            # no AIM id: a bare EAN/UPC/ITF-14 with a valid check digit is read as a GTIN
            bare = gs1.parse_gtin(body)
            if bare.gtin is not None:
                return _gs1(raw, None, bare)
        return _gs1(raw, None, gs1.parse_element_strings(body))
    return _raw(raw, None, "not GS1, HIBC or MA data")


def _gs1(raw: str, symbology: str | None, result: gs1.Gs1Result) -> ParsedScan:
    """A GS1 reading with no element understood at all is raw: nothing in it can be trusted."""
    if result.elements == 0:
        return _raw(raw, symbology, *(result.errors or ["no GS1 element strings"]))
    return _build(raw, symbology, Scheme.GS1, result, result.errors)
