"""Barcode scanner data: framing of the serial stream and parsing of GS1, HIBC and MA codes.

`parse_scan` is the one entry point the scanner source needs; the format
modules are public for tests and for tools that want more than the contract
carries (HIBC labeler code, MA device identifier).
"""

from coldgate.gateway.readers.barcode.framing import Frame, LineFramer
from coldgate.gateway.readers.barcode.parse import ParsedScan, parse_scan

__all__ = ["Frame", "LineFramer", "ParsedScan", "parse_scan"]
