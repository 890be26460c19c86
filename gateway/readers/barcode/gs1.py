"""GS1 element strings (GS1 General Specifications, section 3 and 7.8) via biip.

biip knows the AI table, fixed/variable lengths, dates (including day ``00`` =
last day of the month, section 7.12, for every date AI: 11, 15 and 17 alike)
and check digits; this module only
walks the element strings itself so that a failure half-way keeps what was
read before it, and turns biip's per-element errors into short texts.  A wrong
check digit is never a key: a mistyped GTIN must not silently miss a recall.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Final

from biip import ParseError
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

GS: Final = "\x1d"
#: AIs whose presence right after a variable-length field suggests a forgotten GS.
_STRONG_AIS: Final = frozenset({"00", "01", "17"})


@dataclass
class Gs1Result:
    """What the gateway keeps of a GS1 message; ``elements`` counts the element strings read.

    ``expiry_time`` is AI 7003 as read, merged into ``expiry``/``expiry_hour`` by ``_settle`` once the
    whole message is read, because AI 17 may come before or after it.
    """

    gtin: str | None = None
    lot: str | None = None
    expiry: datetime.date | None = None
    serial: str | None = None
    sscc: str | None = None
    expiry_hour: int | None = None
    best_before: datetime.date | None = None
    produced: datetime.date | None = None
    quantity: int | None = None
    expiry_time: tuple[datetime.date, int] | None = None
    elements: int = 0
    errors: list[str] = field(default_factory=list)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set(result: Gs1Result, name: str, value: object, ai: str) -> None:
    """Keep the first value of a field; a repeated AI with another value is a contradiction."""
    current = getattr(result, name)
    if current is None:
        setattr(result, name, value)
    elif current != value:
        result.errors.append(f"AI {ai} appears twice with different values")


def _take(result: Gs1Result, element: GS1ElementString) -> None:
    result.elements += 1
    ai = element.ai.ai
    if ai == "01":
        if element.gtin is not None:
            _set(result, "gtin", element.gtin.as_gtin_14(), ai)
        else:
            result.errors.append(_short(f"AI 01: {element.gtin_error}"))
    elif ai == "00":
        if element.sscc is not None:
            _set(result, "sscc", element.sscc.value, ai)
        else:
            result.errors.append(_short(f"AI 00: {element.sscc_error}"))
    elif ai == "10":
        _set(result, "lot", element.value, ai)
    elif ai == "17":
        _set(result, "expiry", element.date, ai)
    elif ai == "21":
        _set(result, "serial", element.value, ai)
    elif ai == "15":
        _set(result, "best_before", element.date, ai)
    elif ai == "11":
        _set(result, "produced", element.date, ai)
    elif ai in ("30", "37"):
        _quantity(result, element.value, ai)
    elif ai == "7003" and element.datetime is not None:
        _set(result, "expiry_time", (element.datetime.date(), element.datetime.hour), ai)


def _quantity(result: Gs1Result, value: str, ai: str) -> None:
    """AI 30 (variable count) and AI 37 (count of trade items) are both the scan's quantity.

    A count of 0 is not a quantity the contract can carry (``quantity >= 1``): it is reported, not kept.
    """
    count = int(value) if value.isdigit() else 0
    if count < 1:
        result.errors.append(f"AI {ai} count {value} is not a quantity of at least 1")
        return
    if result.quantity is not None and result.quantity != count:
        result.errors.append(f"AI {ai} count {count} differs from quantity {result.quantity}")
        return
    result.quantity = count


def _settle(result: Gs1Result) -> Gs1Result:
    """Merge AI 7003 (expiry date and time, ``YYMMDDHHMM``) into ``expiry`` and ``expiry_hour``.

    The minutes are dropped: the unit is taken to expire at the start of its hour, which moves the
    expiry earlier, the safe side.  When AI 17 and AI 7003 give different dates the earlier counts,
    with an error, for the same reason.
    """
    timed, result.expiry_time = result.expiry_time, None
    if timed is None:
        return result
    date, hour = timed
    if result.expiry is not None and result.expiry != date:
        result.errors.append(f"AI 7003 expiry {date} differs from AI 17 expiry {result.expiry}")
        if result.expiry < date:
            return result
    result.expiry, result.expiry_hour = date, hour
    return result


def _swallowed_ai(element: GS1ElementString) -> str | None:
    """The AI a variable-length value seems to have eaten, when its tail is a valid message.

    Without GS after a variable field, biip (rightly) reads to the end; if
    the tail of the value parses completely as element strings with a GTIN,
    SSCC or expiry date, the scanner or printer most likely dropped the GS.
    """
    if not element.ai.separator_required:
        return None
    value = element.value
    for start in range(1, len(value) - 3):
        try:
            tail = GS1Message.parse(value[start:])
        except (ParseError, ValueError):
            continue
        first = tail.element_strings[0]
        if first.ai.ai in _STRONG_AIS and first.gtin_error is None and first.sscc_error is None:
            return first.ai.ai
    return None


def parse_element_strings(text: str) -> Gs1Result:
    """Read FNC1 data (AIs, GS after variable-length fields) into a result; never raises.

    An error's "at N" counts characters of ``text``, i.e. after any AIM identifier.
    """
    result = Gs1Result()
    rest = text.lstrip(GS)  # some scanners send the leading FNC1 as GS too
    last: GS1ElementString | None = None
    while rest:
        try:
            element = GS1ElementString.extract(rest)
        except (ParseError, ValueError) as exc:
            where = len(text) - len(rest)
            result.errors.append(_short(f"at {where}: {exc}"))
            return _settle(result)
        _take(result, element)
        last = element
        rest = rest[len(element) :].lstrip(GS)
    if last is not None:
        swallowed = _swallowed_ai(last)
        if swallowed is not None:
            result.errors.append(f"AI {last.ai.ai} value may contain AI {swallowed}: GS missing?")
    return _settle(result)


def parse_hri(text: str) -> Gs1Result:
    """Read the human-readable ``(01)…(17)…`` form that some scanners or keyboards send."""
    result = Gs1Result()
    try:
        message = GS1Message.parse_hri(text)
    except (ParseError, ValueError) as exc:
        result.errors.append(_short(str(exc)))
        return result
    for element in message.element_strings:
        _take(result, element)
    return _settle(result)


def parse_gtin(text: str) -> Gs1Result:
    """Read a bare GTIN-8/12/13/14 (EAN/UPC, ITF-14) and widen it to GTIN-14."""
    result = Gs1Result()
    try:
        gtin = Gtin.parse(text)
    except (ParseError, ValueError) as exc:
        result.errors.append(_short(str(exc)))
        return result
    result.gtin = gtin.as_gtin_14()
    result.elements = 1
    return result
