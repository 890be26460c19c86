"""Decode the EPC a dock portal reads into GS1 keys (SGTIN-96, SSCC-96, GIAI-96) or keep it raw with a reason.

Why a wrapper around epcpy instead of calling it where reads arrive:

* A reader reports whatever is in a tag's EPC bank: unprogrammed tags, other
  schemes, 128/144-bit encodings, vendor test data.  A case whose EPC the
  gateway cannot decode is still a physical case that passed the door, so the
  movement must be kept (principle 7: nothing else is lost).  ``decode_epc``
  therefore never raises; it returns ``scheme="unknown"`` with a ``reason`` that
  says what was wrong (not hex, wrong length, header of a scheme we do not
  bind, or epcpy's own complaint about a field).
* epcpy is lenient about length (it decodes a 96-bit scheme from the first 96
  bits of a longer string and ignores the rest).  A 96-bit scheme with trailing
  bits is not what the tag carries, so the length is checked here first.
* The cloud binds movements by GTIN + serial (cases) and SSCC (pallets); GIAI is
  for returnable assets (roll cages, data-logger shells).  Other GS1 schemes
  are named in the reason so an operator knows what the tag actually is.
* A well-formed SGTIN-96 or SSCC-96, nearly every tag a portal reads, is decoded
  here by slicing its bits (TDS 2.1 tables 14-2 and 14-5) instead: the cloud
  decodes every stored movement again each time it binds, and epcpy's object
  per tag costs about ten times more.  Anything out of the ordinary
  (partition 7, a field past its digits, reserved bits set) still goes to
  epcpy, so its reasons stay the only ones; ``tests/test_epc.py`` checks the
  two agree on every partition and on random 96-bit values.

An EPC is normalised once, where the read enters the gateway
(``normalise_epc`` in the LLRP source): whitespace dropped and the edge's one
letter case (``rules.dock_portal.epc_key``: upper, as TDS and epcpy write
hex).  The portal keys tags by it, ``decode_epc`` is called once per decided
pass (``gateway.dock.passage``) and its ``DecodedEpc`` travels with the
movement to the door checks; only the contract's wire form is lower case.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from epcpy import hex_to_tag_encodable
from epcpy.epc_schemes import GIAI, SGTIN, SSCC

from coldgate.contract.ids import gs1_key_of
from coldgate.gateway.rules.dock_portal import epc_key

Scheme = Literal["sgtin-96", "sscc-96", "giai-96", "unknown"]

#: 96 bits, the only length of the three schemes the gateway binds.
EPC96_HEX_DIGITS = 24
_HEX_DIGITS = frozenset(string.hexdigits)

#: EPC header byte -> (scheme the gateway decodes, or None, and the TDS name); used for precise reasons.
_HEADERS: dict[str, tuple[Scheme | None, str]] = {
    "00": (None, "unprogrammed tag (header 0x00)"),
    "2C": (None, "GDTI-96"),
    "2D": (None, "GSRN-96"),
    "2E": (None, "GSRNP-96"),
    "2F": (None, "USDOD-96"),
    "30": ("sgtin-96", "SGTIN-96"),
    "31": ("sscc-96", "SSCC-96"),
    "32": (None, "SGLN-96"),
    "33": (None, "GRAI-96"),
    "34": ("giai-96", "GIAI-96"),
    "35": (None, "GID-96"),
    "36": (None, "SGTIN-198"),
    "37": (None, "GRAI-170"),
    "38": (None, "GIAI-202"),
    "39": (None, "SGLN-195"),
    "3B": (None, "ADI-var"),
    "3C": (None, "CPI-96"),
    "3D": (None, "CPI-var"),
    "3E": (None, "GDTI-174"),
    "3F": (None, "SGCN-96"),
    "40": (None, "ITIP-110"),
    "41": (None, "ITIP-212"),
}


class DecodedEpc(msgspec.Struct, frozen=True):
    """What an EPC says, as far as the gateway binds it.

    ``hex`` is the EPC as read (upper-cased, whitespace stripped) so an
    undecoded tag can still be matched and shown; ``reason`` is set exactly
    when ``scheme == "unknown"``.
    """

    hex: str
    scheme: Scheme
    uri: str | None = None
    gtin: str | None = None
    serial: str | None = None
    sscc: str | None = None
    giai: str | None = None
    reason: str | None = None

    @property
    def decoded(self) -> bool:
        """True when the EPC is one of the three schemes the gateway binds."""
        return self.scheme != "unknown"


#: Partition value -> (company prefix bits, its digits, the other field's bits), TDS 2.1 tables 14-2
#: (SGTIN: item reference with indicator, 13 digits in all) and 14-5 (SSCC: serial reference with
#: extension digit, 17 digits in all).
_SGTIN_PARTITIONS: dict[int, tuple[int, int, int]] = {
    0: (40, 12, 4), 1: (37, 11, 7), 2: (34, 10, 10), 3: (30, 9, 14), 4: (27, 8, 17), 5: (24, 7, 20),
    6: (20, 6, 24),
}  # fmt: skip
_SSCC_PARTITIONS: dict[int, tuple[int, int, int]] = {
    0: (40, 12, 18), 1: (37, 11, 21), 2: (34, 10, 24), 3: (30, 9, 28), 4: (27, 8, 31), 5: (24, 7, 34),
    6: (20, 6, 38),
}  # fmt: skip


def _prefix_and_reference(
    value: int, table: dict[int, tuple[int, int, int]], low_bits: int, key_digits: int
) -> tuple[str, str] | None:
    """The company prefix and reference of a 96-bit EPC as digits (their partition from ``table``, the
    ``low_bits`` below them the serial or reserved bits, ``key_digits`` the two fields' digits in all);
    None when the partition is not in the table or a field is wider than its digits."""
    found = table.get((value >> 82) & 0b111)
    if found is None:
        return None
    company_bits, digits, reference_bits = found
    company = (value >> (low_bits + reference_bits)) & ((1 << company_bits) - 1)
    reference = (value >> low_bits) & ((1 << reference_bits) - 1)
    if company >= 10**digits or reference >= 10 ** (key_digits - digits):
        return None
    return f"{company:0{digits}d}", f"{reference:0{key_digits - digits}d}"


def _sliced(text: str, scheme: Scheme) -> DecodedEpc | None:
    """A well-formed SGTIN-96 or SSCC-96 decoded from its bits; None for anything epcpy must judge."""
    value = int(text, 16)
    if scheme == "sgtin-96":
        fields = _prefix_and_reference(value, _SGTIN_PARTITIONS, 38, 13)
        if fields is None:
            return None
        prefix, reference = fields
        serial = str(value & ((1 << 38) - 1))
        uri = f"urn:epc:id:sgtin:{prefix}.{reference}.{serial}"
        return DecodedEpc(text, scheme, uri, gtin=gs1_key_of(prefix, reference), serial=serial)
    fields = None if value & 0xFFFFFF else _prefix_and_reference(value, _SSCC_PARTITIONS, 24, 17)
    if fields is None:
        return None
    prefix, reference = fields
    uri = f"urn:epc:id:sscc:{prefix}.{reference}"
    return DecodedEpc(text, scheme, uri, sscc=gs1_key_of(prefix, reference))


def _unknown(epc_hex: str, reason: str) -> DecodedEpc:
    return DecodedEpc(hex=epc_hex, scheme="unknown", reason=reason)


def normalise_epc(text: str) -> str:
    """The EPC as the edge keys it: whitespace dropped, the edge's one letter case."""
    return epc_key("".join(text.split()))


def decode_epc(epc_hex: str) -> DecodedEpc:
    """Decode ``epc_hex`` (the EPC bank's EPC, hex) as SGTIN-96, SSCC-96 or GIAI-96; never raises."""
    if not isinstance(epc_hex, str):
        return _unknown(repr(epc_hex), f"EPC must be a hex string, got {type(epc_hex).__name__}")
    text = normalise_epc(epc_hex)
    if not text:
        return _unknown(text, "empty EPC")
    bad = next((c for c in text if c not in _HEX_DIGITS), None)
    if bad is not None:
        return _unknown(text, f"not hex: {bad!r} at position {text.index(bad)}")
    if len(text) < 2:
        return _unknown(text, f"EPC of {len(text) * 4} bits is too short for an 8-bit header")
    scheme, name = _HEADERS.get(text[:2], (None, f"unknown EPC header 0x{text[:2]}"))
    if scheme is None:
        return _unknown(text, f"{name} ({len(text) * 4}-bit EPC): not SGTIN-96, SSCC-96 or GIAI-96")
    if len(text) != EPC96_HEX_DIGITS:
        return _unknown(text, f"{name} header but {len(text) * 4} bits instead of 96")
    if scheme != "giai-96":
        sliced = _sliced(text, scheme)
        if sliced is not None:
            return sliced
    return _by_epcpy(text, scheme, name)


def _by_epcpy(text: str, scheme: Scheme, name: str) -> DecodedEpc:
    """A 96-bit EPC of a scheme the gateway binds, decoded (or refused with its reason) by epcpy."""
    try:
        tag = hex_to_tag_encodable(text)
        uri = tag.epc_uri
        if isinstance(tag, SGTIN):
            return DecodedEpc(text, scheme, uri, gtin=tag.gtin(), serial=uri.rsplit(".", 1)[1])
        if isinstance(tag, SSCC):
            return DecodedEpc(text, scheme, uri, sscc=tag.gs1_key())
        if isinstance(tag, GIAI):
            return DecodedEpc(text, scheme, uri, giai=tag.gs1_key())
        return _unknown(text, f"{name} header decoded by epcpy as {type(tag).__name__}")
    except Exception as exc:  # epcpy raises ConvertException, ValueError, KeyError, ... on bad fields
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return _unknown(text, f"invalid {name}: {detail}")


def report_epc_hex(report: Mapping[str, Any]) -> str | None:
    """The EPC of one sllurp tag report as hex text, or None when it carries none.

    sllurp puts a 96-bit EPC under ``EPC-96`` and any other length under
    ``EPC`` (both as lower-case hex bytes), returned as reported; the LLRP
    source normalises it (``normalise_epc``) before the portal sees it, so a
    128/144-bit EPC reaches the gateway as "unknown" rather than being dropped.
    """
    value = report.get("EPC-96") or report.get("EPC")
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", errors="replace")
    return str(value)
