"""Constrained scalar types shared by every message.

Identifiers end up in MQTT topics, file names and SQL keys, so they are kept
to a topic-safe alphabet (no ``/ + # $``, no spaces, no newline) once, here,
instead of being checked by each consumer.  Every pattern ends in
``$(?!\\n)``: msgspec and ``jsonschema`` match with Python's ``re.search``,
where a bare ``$`` would also accept one trailing newline.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Final

from msgspec import Meta

from coldgate.contract.errors import FieldError


def _whole(body: str) -> str:
    return f"^{body}$(?!\\n)"


ID_BODY: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
ID_PATTERN: Final = _whole(ID_BODY)
BOOT_PATTERN: Final = _whole(r"[0-9a-f][0-9a-f-]{7,63}")
GTIN_PATTERN: Final = _whole(r"[0-9]{14}")
SSCC_PATTERN: Final = _whole(r"[0-9]{18}")
EPC_HEX_PATTERN: Final = _whole(r"(?:[0-9a-f]{4}){1,31}")
SYMBOLOGY_PATTERN: Final = _whole(r"\][A-Za-z][0-9A-Za-z]")
HIBC_PATTERN: Final = _whole(r"[A-Z][A-Z0-9]{3}[A-Z0-9]{1,18}")
#: MA device identifier: the four fields after MA. (country, category, organisation, item) that an MA
#: label's production data units (.L lot, .S serial, .E expiry ...) follow; a whole scanned code with
#: them is not a product id and would never match a scan.
MA_PATTERN: Final = _whole(r"MA\.[0-9A-Za-z_-]{1,16}(?:\.[0-9A-Za-z_-]{1,16}){3}")

_ID_RE: Final = re.compile(ID_PATTERN)

#: Last millisecond of the year 9999: any later "time" is corruption, not a clock.
MAX_EPOCH_MS: Final = 253_402_300_799_999
MAX_SEQ: Final = 2**63 - 1

Id = Annotated[
    str,
    Meta(
        pattern=ID_PATTERN,
        description="Identifier: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit.",
    ),
]
BootId = Annotated[
    str,
    Meta(
        pattern=BOOT_PATTERN,
        description="Boot id: lowercase hex with optional dashes, 8-64 chars "
        "(/proc/sys/kernel/random/boot_id or uuid4().hex).",
    ),
]
StreamId = Annotated[
    str,
    Meta(
        pattern=BOOT_PATTERN,
        description="Outbox stream id: lowercase hex with optional dashes, 8-64 chars (uuid4().hex).",
    ),
]
EpochMs = Annotated[
    int, Meta(ge=0, le=MAX_EPOCH_MS, description="UTC wall time, milliseconds since the epoch.")
]
MonoMs = Annotated[int, Meta(ge=0, le=MAX_SEQ, description="Monotonic clock, milliseconds since the boot.")]
Seq = Annotated[
    int,
    Meta(ge=1, le=MAX_SEQ, description="Gateway sequence number: durable, gateway-unique, >= 1."),
]
DocVersion = Annotated[
    int,
    Meta(ge=1, le=MAX_SEQ, description="Version of a down-link document; only ever increases."),
]
Count = Annotated[int, Meta(ge=0, le=MAX_SEQ)]
Gtin = Annotated[str, Meta(pattern=GTIN_PATTERN, description="GTIN-14: 14 digits with a valid check digit.")]
Sscc = Annotated[str, Meta(pattern=SSCC_PATTERN, description="SSCC: 18 digits with a valid check digit.")]
EpcHex = Annotated[
    str,
    Meta(pattern=EPC_HEX_PATTERN, description="EPC bank contents as lowercase hex, 16-bit words."),
]
EpcUri = Annotated[
    str, Meta(pattern=_whole(r"urn:epc:[!-~]{1,247}"), description="EPC pure identity or tag URI.")
]
Symbology = Annotated[
    str, Meta(pattern=SYMBOLOGY_PATTERN, description="AIM symbology identifier such as ]d2.")
]
Text = Annotated[str, Meta(max_length=1000)]
ShortText = Annotated[str, Meta(max_length=200)]
Key = Annotated[str, Meta(min_length=1, max_length=64)]
Scalar = str | int | float | bool
Details = Annotated[
    dict[Key, Scalar],
    Meta(max_length=64, description="Free-form key/value facts; values are scalars."),
]


def is_id(value: object) -> bool:
    """True when ``value`` is a valid identifier (usable in a topic)."""
    return isinstance(value, str) and _ID_RE.search(value) is not None


def gs1_check_digit(body: str) -> str:
    """GS1's mod-10 check digit of the digits ``body`` (weights 3, 1, 3, ... from the right)."""
    return str(-(3 * sum(map(int, body[-1::-2])) + sum(map(int, body[-2::-2]))) % 10)


def gs1_check_digit_ok(digits: str) -> bool:
    """GS1 mod-10 check over a GTIN, SSCC, or any GS1 key of digits."""
    return gs1_check_digit(digits[:-1]) == digits[-1]


def gs1_key_of(prefix: str, reference: str) -> str:
    """The GS1 key an EPC's company prefix and reference spell (TDS 2.1 §7): the reference's first digit
    (a GTIN's indicator, an SSCC's extension digit), the prefix, the rest of the reference, and the check
    digit.  The GTIN-14 of an SGTIN (13 digits before the check), the SSCC of an SSCC (17)."""
    body = reference[0] + prefix + reference[1:]
    return body + gs1_check_digit(body)


def check_gs1_key(value: str | None, field: str) -> None:
    """Reject a wrong check digit: a mistyped GTIN would silently never match a recall."""
    if value is not None and not gs1_check_digit_ok(value):
        raise FieldError(field, f"check digit of {value} is wrong")


def check_finite(value: float | None, field: str) -> None:
    """JSON has no NaN or infinity (msgspec would write them as null), so refuse them."""
    if value is not None and not math.isfinite(value):
        raise FieldError(field, f"{value} is not a finite number")


def check_details(details: dict[str, Any], field: str) -> None:
    for key, value in details.items():
        if isinstance(value, float):
            check_finite(value, f"{field}.{key}")


def doc(text: str) -> Meta:
    """Field description, carried into the JSON Schema and docs/contract.md."""
    return Meta(description=text)


Lot = Annotated[
    str, Meta(min_length=1, max_length=64, description="Batch/lot number as printed (GS1 AI 10).")
]
Serial = Annotated[str, Meta(min_length=1, max_length=64, description="Serial number (GS1 AI 21).")]
#: HIBC: labeler identification code (a letter, three letters or digits) + product code (1-18 letters or
#: digits), as the primary data carries them, without the unit-of-measure digit (added 2026-12-06).
Hibc = Annotated[
    str,
    Meta(
        pattern=HIBC_PATTERN,
        description="HIBC labeler code + product code, e.g. A123PROD1 (no unit of measure).",
    ),
]
HibcUom = Annotated[int, Meta(ge=0, le=9, description="HIBC unit-of-measure digit (0: the unit of use).")]
#: An MA (IDcode) device identifier: ``MA.`` and its dot-separated fields (added 2026-12-06).
MaId = Annotated[
    str,
    Meta(
        pattern=MA_PATTERN,
        description="MA (IDcode) device identifier, e.g. MA.156.M0.100001.0001A.",
    ),
]


#: What each pattern means, for error messages people can act on.
PATTERN_HELP: Final = {
    ID_PATTERN: "an id: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit",
    BOOT_PATTERN: "a boot id: 8-64 lowercase hex digits and dashes",
    GTIN_PATTERN: "a GTIN-14: 14 digits",
    SSCC_PATTERN: "an SSCC: 18 digits",
    EPC_HEX_PATTERN: "EPC hex: lowercase hex digits in groups of 4",
    SYMBOLOGY_PATTERN: "an AIM symbology identifier such as ]d2",
    HIBC_PATTERN: "an HIBC labeler code and product code such as A123PROD1",
    MA_PATTERN: "an MA device identifier such as MA.156.M0.100001.0001A",
}
