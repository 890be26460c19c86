"""HIBC LIC: the Health Industry Bar Code supplier labelling format, parsed by hand.

No maintained Python library parses HIBC, so this follows the standard itself:
ANSI/HIBC 2.6, *The Health Industry Supplier Labeling Standard* (HIBCC, 2016),
sections "Data Structure – Primary Data", "Data Structure – Secondary Data",
"Concatenated Primary and Secondary Data", "Supplemental Data" and the appendix
"Check Character Calculation" (modulus 43).  The examples of that standard
(e.g. ``+X999123ABC0/$$05191234AB/S5678EDFG/16D20151001A``) are in the tests.

Rules implemented (each is one function or branch below):

* Character set: the 43 Code 39 characters ``0-9 A-Z - . space $ / + %``; the
  check character is the sum of their values (0-9, A-Z = 10-35, ``-`` 36,
  ``.`` 37, space 38, ``$`` 39, ``/`` 40, ``+`` 41, ``%`` 42) over every
  character from the leading ``+`` on, modulo 43.  A space can be a check
  character, so trailing spaces are data, never trimmed.
* Primary data: ``+`` flag, Labeler Identification Code (4 characters, the
  first a letter), product/catalogue number (1-18 alphanumerics), unit of
  measure (1 digit), check character.
* Secondary data as its own symbol: ``+`` flag, secondary data, link character
  (= the check character of the primary symbol it belongs to), check
  character.  Pairing a secondary with its primary needs both scans, so the
  link character is returned (``HibcCode.link``) for the caller to match.
* Concatenated: primary data, ``/``, secondary data, one check character over
  everything; no link character (both halves are in one symbol).
* Secondary data formats: ``YYJJJ`` + lot (first character a digit);
  ``$`` + lot; ``$$`` + date + lot; ``$+`` + serial; ``$$+`` + date + serial;
  ``$$8`` + 2-digit quantity or ``$$9`` + 5-digit quantity before the date.
  Date formats after ``$$``: first digit 0/1 = ``MMYY`` (no flag), ``2``
  ``MMDDYY``, ``3`` ``YYMMDD``, ``4`` ``YYMMDDHH``, ``5`` ``YYJJJ``, ``6``
  ``YYJJJHH``, ``7`` no date.  Lot and serial are 1-18 characters.
* Supplemental data after a further ``/`` (concatenated form): ``S`` serial,
  ``14D`` expiry ``YYYYMMDD``, ``16D`` manufacture ``YYYYMMDD``.

Our interpretations: two-digit years are 20YY; ``MMYY`` expires on the last
day of that month (as GS1's day ``00``); the hour of ``…HH`` formats is kept
in ``expiry_hour`` and goes to the scan's ``expiry_hour`` (contract
2026-12-06), as ``16D`` goes to ``produced`` and the ``$$8``/``$$9``
quantity to ``quantity``; labeler code + product code become the scan's
``hibc`` and the unit-of-measure digit its ``hibc_uom``, which is how a door
finds the product in master data.

Deliberately not supported (reported as errors, data kept in ``raw``): the
HIBC Provider Applications Standard (``*`` flag), HIBC UPN (``+/``), ISO/IEC
15434 envelopes, supplemental data identifiers other than S/14D/16D, and
lower-case data (the standard's character set has none).
"""

from __future__ import annotations

import calendar
import datetime
import re
from dataclasses import dataclass, field
from typing import Final

CHARSET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
_VALUE: Final = {char: value for value, char in enumerate(CHARSET)}
MAX_FIELD: Final = 18
_LIC_RE: Final = re.compile(r"[A-Z][A-Z0-9]{3}")
_ALNUM_RE: Final = re.compile(r"[A-Z0-9]+")


def check_character(data: str) -> str:
    """Mod-43 check character over ``data`` (flag included); ValueError outside the set."""
    try:
        return CHARSET[sum(_VALUE[char] for char in data) % 43]
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not an HIBC character") from None


@dataclass
class HibcCode:
    """What one HIBC symbol says; ``errors`` lists what could not be read or did not check out."""

    lic: str | None = None
    product: str | None = None
    unit_of_measure: int | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: datetime.date | None = None
    expiry_hour: int | None = None
    manufactured: datetime.date | None = None
    quantity: int | None = None
    link: str | None = None
    check: str | None = None
    errors: list[str] = field(default_factory=list)


class _Bad(ValueError):
    """A rule of the standard is broken; the message says which."""


def _yy(text: str) -> int:
    return 2000 + int(text)


def _julian(yy: str, jjj: str) -> datetime.date:
    year, day = _yy(yy), int(jjj)
    if not 1 <= day <= (366 if calendar.isleap(year) else 365):
        raise _Bad(f"day of year {jjj} does not exist in {year}")
    return datetime.date(year, 1, 1) + datetime.timedelta(days=day - 1)


def _date(year: int, month: int, day: int) -> datetime.date:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise _Bad(f"date {year:04d}-{month:02d}-{day:02d} does not exist") from None


def _digits(text: str, count: int, what: str) -> str:
    head = text[:count]
    if len(head) != count or not head.isdigit():
        raise _Bad(f"{what} needs {count} digits, got {head!r}")
    return head


def _expiry(code: HibcCode, text: str) -> str:
    """Read the date format after ``$$`` (and quantity); return what follows it."""
    if not text:
        raise _Bad("date format missing after $$")
    flag = text[0]
    if flag in "01":
        mmyy = _digits(text, 4, "MMYY date")
        year, month = _yy(mmyy[2:]), int(mmyy[:2])
        if not 1 <= month <= 12:
            raise _Bad(f"month {mmyy[:2]} does not exist")
        code.expiry = datetime.date(year, month, calendar.monthrange(year, month)[1])
        return text[4:]
    body = text[1:]
    if flag == "2":
        d = _digits(body, 6, "MMDDYY date")
        code.expiry = _date(_yy(d[4:]), int(d[:2]), int(d[2:4]))
        return body[6:]
    if flag in "34":
        size = 6 if flag == "3" else 8
        d = _digits(body, size, "YYMMDD date" if flag == "3" else "YYMMDDHH date")
        code.expiry = _date(_yy(d[:2]), int(d[2:4]), int(d[4:6]))
        if flag == "4":
            code.expiry_hour = _hour(d[6:8])
        return body[size:]
    if flag in "56":
        size = 5 if flag == "5" else 7
        d = _digits(body, size, "YYJJJ date" if flag == "5" else "YYJJJHH date")
        code.expiry = _julian(d[:2], d[2:5])
        if flag == "6":
            code.expiry_hour = _hour(d[5:7])
        return body[size:]
    if flag == "7":
        return body
    raise _Bad(f"unknown date format {flag!r} after $$")


def _hour(hh: str) -> int:
    if int(hh) > 23:
        raise _Bad(f"hour {hh} does not exist")
    return int(hh)


def _field(text: str, what: str) -> str:
    if not text:
        raise _Bad(f"{what} is empty")
    if len(text) > MAX_FIELD:
        raise _Bad(f"{what} is {len(text)} characters, more than {MAX_FIELD}")
    if _ALNUM_RE.fullmatch(text) is None:
        raise _Bad(f"{what} {text!r} is not alphanumeric")
    return text


def _secondary(code: HibcCode, data: str) -> None:
    """Secondary data without flag, link or check character."""
    if data[:1].isdigit():
        code.expiry = _julian(_digits(data, 5, "YYJJJ date")[:2], data[2:5])
        code.lot = _field(data[5:], "lot")
    elif data.startswith("$$+"):
        code.serial = _field(_expiry(code, data[3:]), "serial")
    elif data.startswith("$$"):
        rest = data[2:]
        if rest[:1] in ("8", "9"):
            size = 2 if rest[0] == "8" else 5
            code.quantity = int(_digits(rest[1:], size, "quantity"))
            rest = rest[1 + size :]
        code.lot = _field(_expiry(code, rest), "lot")
    elif data.startswith("$+"):
        code.serial = _field(data[2:], "serial")
    elif data.startswith("$"):
        code.lot = _field(data[1:], "lot")
    else:
        raise _Bad(f"secondary data {data[:8]!r} starts with neither a digit nor $")


def _yyyymmdd(text: str, what: str) -> datetime.date:
    d = _digits(text, 8, what)
    if len(text) != 8:
        raise _Bad(f"{what} has extra characters {text[8:]!r}")
    return _date(int(d[:4]), int(d[4:6]), int(d[6:8]))


def _supplemental(code: HibcCode, data: str) -> None:
    if data.startswith("S"):
        serial = _field(data[1:], "serial")
        if code.serial is not None and code.serial != serial:
            raise _Bad(f"two different serials {code.serial!r} and {serial!r}")
        code.serial = serial
    elif data.startswith("14D"):
        expiry = _yyyymmdd(data[3:], "14D expiry")
        if code.expiry is not None and code.expiry != expiry:
            raise _Bad(f"14D expiry {expiry} differs from {code.expiry}")
        code.expiry = expiry
    elif data.startswith("16D"):
        code.manufactured = _yyyymmdd(data[3:], "16D manufacture date")
    else:
        raise _Bad(f"supplemental data {data[:8]!r} not supported")


def _primary(code: HibcCode, data: str) -> None:
    if _LIC_RE.fullmatch(data[:4]) is None:
        raise _Bad(f"labeler code {data[:4]!r} is not a letter and 3 alphanumerics")
    code.lic = data[:4]
    rest = data[4:]
    if len(rest) < 2 or not rest[-1].isdigit():
        raise _Bad("primary data needs a product number and a unit-of-measure digit")
    code.product = _field(rest[:-1], "product number")
    code.unit_of_measure = int(rest[-1])


def parse_hibc(text: str) -> HibcCode:
    """Read one HIBC LIC symbol (``+`` flag first); never raises, problems go to ``errors``.

    A wrong check character leaves every field empty: the data may be
    misread, and a wrong lot is worse than none.
    """
    code = HibcCode()
    if not text.startswith("+"):
        code.errors.append("HIBC data must start with '+'")
        return code
    if text.startswith("+/"):
        code.errors.append("HIBC UPN ('+/') is not supported")
        return code
    if len(text) < 3:
        code.errors.append("HIBC data too short")
        return code
    body, code.check = text[:-1], text[-1]
    try:
        check_character(text)  # every character, the check character too, must be in the set
        expected = check_character(body)
    except ValueError as exc:
        code.errors.append(f"{exc}; cannot check")
        code.check = None
        return code
    if expected != code.check:
        code.errors.append(f"HIBC check character is {code.check!r}, expected {expected!r}")
        return code
    content = body[1:]
    try:
        if content[:1].isalpha():
            primary, *rest = content.split("/")
            _primary(code, primary)
            if rest:
                _secondary(code, rest[0])
                for extra in rest[1:]:
                    _supplemental(code, extra)
        else:
            if len(content) < 2:
                raise _Bad("secondary symbol needs data and a link character")
            code.link = content[-1]
            secondary, *rest = content[:-1].split("/")
            _secondary(code, secondary)
            for extra in rest:
                _supplemental(code, extra)
    except _Bad as exc:
        code.errors.append(str(exc))
    return code
