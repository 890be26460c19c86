"""MA codes (IDcode): identifiers issued under ISO/IEC 15459 issuing agency code ``MA``.

The agency is the Zhongguancun Industry & Information Research Institute of
Two-dimensional Code Technology (ZIIOT), registered with AIM as issuing agency
"MA"; China's NMPA accepts MA codes as medical-device UDI carriers beside
GS1 and HIBC.  An MA code is text of dot-separated fields starting ``MA.``.

What is implemented, and how sure we are:

* Production-identifier data units, from the published "MA二维码编码规则"
  (MA two-dimensional code coding rules, as reproduced by the UDI portal of a
  registrar, udi.cp-sy.cn): each is a separator ``.`` + a letter + the field —
  ``.L`` batch/lot (alphanumeric, variable), ``.S`` serial (alphanumeric,
  variable), ``.M`` manufacture date, ``.V`` validity date (有效期), ``.E``
  expiry date (失效期) — the dates 6 or 8 digits, ``YYMMDD`` or
  ``YYYYMMDD`` — and ``.D`` sterilisation batch.  ``.E`` becomes the scan's
  expiry and ``.M`` its ``produced`` date; ``.V`` and ``.D`` are read and
  checked but the contract has no field for them.
* Device identifier: ``MA.<country>.<category>.<organisation>.<item>`` — the
  four fields after ``MA`` as seen on NMPA-registered labels (e.g. country
  ``156``, category ``M0`` for medical devices).  We could not source the
  IDcode standard text that defines these sub-fields (nor a check
  character), so they are split and kept, not validated beyond being
  non-empty; the item field is the last DI field before the first data unit.
  The four joined (``MA.156.M0.100001.0001A``) are the scan's ``ma``, the
  device identifier master data lists a product by.

Not supported (reported as errors): data units with other letters, ISO/IEC
15434 envelopes, and the IDcode URL form (``http://…/MA.…``).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Final

PREFIX: Final = "MA."
DI_FIELDS: Final = 4
_FIELD_RE: Final = re.compile(r"[0-9A-Za-z_-]+")
_DATE_UNITS: Final = {"M": "manufacture date", "V": "validity date", "E": "expiry date"}


@dataclass
class MaCode:
    """An MA code split into its device identifier fields and production data units."""

    country: str | None = None
    category: str | None = None
    organisation: str | None = None
    item: str | None = None
    lot: str | None = None
    serial: str | None = None
    expiry: datetime.date | None = None
    validity: datetime.date | None = None
    manufactured: datetime.date | None = None
    sterilisation_lot: str | None = None
    errors: list[str] = field(default_factory=list)


def _date(text: str, what: str) -> datetime.date:
    if not text.isdigit() or len(text) not in (6, 8):
        raise ValueError(f"{what} {text!r} is not 6 or 8 digits")
    if len(text) == 6:
        text = "20" + text
    try:
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise ValueError(f"{what} {text!r} does not exist") from None


def _unit(code: MaCode, unit: str) -> None:
    letter, value = unit[0], unit[1:]
    if letter in _DATE_UNITS:
        date = _date(value, _DATE_UNITS[letter])
        name = {"M": "manufactured", "V": "validity", "E": "expiry"}[letter]
    elif letter in "LSD" and value:
        date = None
        name = {"L": "lot", "S": "serial", "D": "sterilisation_lot"}[letter]
    else:
        raise ValueError(f"MA data unit {unit[:12]!r} not understood")
    new = date if date is not None else value
    if getattr(code, name) not in (None, new):
        raise ValueError(f"MA data unit .{letter} appears twice with different values")
    setattr(code, name, new)


def parse_ma(text: str) -> MaCode:
    """Split an ``MA.`` code; never raises, problems go to ``errors``."""
    code = MaCode()
    if not text.startswith(PREFIX):
        code.errors.append("MA code must start with 'MA.'")
        return code
    fields = text[len(PREFIX) :].split(".")
    bad = next((f for f in fields if _FIELD_RE.fullmatch(f) is None), None)
    if bad is not None:
        code.errors.append(f"MA field {bad[:12]!r} is empty or has characters outside 0-9 A-Z a-z _ -")
        return code
    if len(fields) < DI_FIELDS:
        code.errors.append(f"MA code has {len(fields)} fields after MA, not the {DI_FIELDS} of a device id")
        return code
    code.country, code.category, code.organisation, code.item = fields[:DI_FIELDS]
    for unit in fields[DI_FIELDS:]:
        try:
            _unit(code, unit)
        except ValueError as exc:
            code.errors.append(str(exc))
    return code
