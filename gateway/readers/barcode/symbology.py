"""Split the AIM symbology identifier a scanner puts in front of the data.

A scanner configured to "transmit AIM ID" prefixes every read with ``]`` + a
code character + a modifier (ISO/IEC 15424), e.g. ``]d2``.  The prefix is the
only reliable way to know that the symbol started with FNC1, i.e. that the data
is a GS1 element string and not free text that merely looks like digits.  The
identifier table (which ids mean GS1) is biip's, so it is not repeated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from biip import ParseError
from biip.symbology import GS1Symbology, SymbologyIdentifier

from coldgate.contract.ids import SYMBOLOGY_PATTERN

_CONTRACT_RE: Final = re.compile(SYMBOLOGY_PATTERN)


@dataclass(frozen=True)
class SplitData:
    """The identifier (None when the scanner sent none) and the data after it."""

    symbology: str | None
    data: str
    error: str | None = None


def split_symbology(text: str) -> SplitData:
    """Take a leading AIM identifier off ``text``.

    Text starting with ``]`` that is not a known 3-character identifier is
    reported instead of guessed at: a misconfigured scanner would otherwise
    have its prefix glued onto a lot number.
    """
    if not text.startswith("]"):
        return SplitData(None, text)
    head = text[:3]
    try:
        found = SymbologyIdentifier.extract(text)
    except (ParseError, ValueError, IndexError):
        return SplitData(None, text, f"unknown AIM symbology identifier {head!r}")
    if found.value != head or _CONTRACT_RE.search(head) is None:
        return SplitData(None, text, f"unsupported AIM symbology identifier {found.value!r}")
    return SplitData(head, text[3:])


def _gs1(identifier: str | None) -> GS1Symbology | None:
    if identifier is None:
        return None
    try:
        return SymbologyIdentifier.extract(identifier).gs1_symbology
    except (ParseError, ValueError, IndexError):
        return None


def implies_gs1(identifier: str | None) -> bool:
    """True when the symbol began with FNC1: its data is GS1 element strings.

    ``]C1`` GS1-128, ``]e0`` GS1 DataBar, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR,
    ``]J1`` GS1 DotCode; ``]d1``, ``]C0``, ``]Q1`` are the same symbologies without FNC1.
    """
    return _gs1(identifier) in GS1Symbology.with_gs1_messages()


def carries_gtin(identifier: str | None) -> bool:
    """True for EAN/UPC and ITF-14 (``]E0``, ``]E3``, ``]E4``, ``]I1``): the data is a bare GTIN."""
    return _gs1(identifier) in GS1Symbology.with_gtin()
