"""Config blocks of the readers: ``[[scanners]]`` (serial barcode scanners).

A scanner in CDC/RS-232 mode, or behind a serial-to-Ethernet converter
(``socket://host:port``), sends one code per line.  The terminator is the one
thing that differs between models and must be configured; everything else
(symbology, GS1/HIBC/MA) is recognised from the data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from coldgate.configfile import ConfigBlock
from coldgate.configtypes import BaudRate, ByteSize, Id, Parity, SerialPort, StopBits

__all__ = ["TERMINATORS", "ScannerConfig"]

#: Names for the terminators scanners are set up with (TOML has no convenient byte escapes).
TERMINATORS: dict[str, bytes] = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n", "TAB": b"\t", "ETX": b"\x03"}


class ScannerConfig(ConfigBlock, kw_only=True):
    """A serial barcode scanner (USB CDC, RS-232, or ``socket://`` for a serial-to-Ethernet
    converter). ``door`` and ``zone`` say where it scans, for batch checks at the door."""

    id: Id
    port: SerialPort
    baudrate: BaudRate = 9600
    parity: Parity = "N"
    stopbits: StopBits = 1
    bytesize: ByteSize = 8
    #: What ends one code: CR (most scanners' default), LF, CRLF, TAB or ETX.
    terminator: Literal["CR", "LF", "CRLF", "TAB", "ETX"] = "CR"
    #: Longer lines are refused (recorded as an unparsed scan) instead of growing memory.
    max_length: Annotated[int, Meta(ge=16, le=4096)] = 4096
    door: Id | None = None
    zone: Id | None = None
    #: Seconds between attempts to (re)open a port that is missing or went away.
    reopen_s: Annotated[float, Meta(ge=0.5, le=600, extra={"unit": "seconds"})] = 5.0
