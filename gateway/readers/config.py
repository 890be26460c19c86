"""Config blocks of the readers: ``[[readers]]`` (LLRP RFID dock portals) and ``[[scanners]]``
(serial barcode scanners).

A scanner in CDC/RS-232 mode, or behind a serial-to-Ethernet converter
(``socket://host:port``), sends one code per line.  The terminator is the one
thing that differs between models and must be configured; everything else
(symbology, GS1/HIBC/MA) is recognised from the data.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from coldgate.configfile import ConfigBlock
from coldgate.configtypes import BaudRate, ByteSize, Host, Id, Parity, SerialPort, StopBits, TcpPort

__all__ = ["TERMINATORS", "DoorChecksConfig", "ReaderConfig", "ScannerConfig"]

SECONDS = {"unit": "seconds"}
MILLISECONDS = {"unit": "milliseconds"}
Antenna = Annotated[int, Meta(ge=1, le=65535)]


class ReaderConfig(ConfigBlock, kw_only=True):
    """An LLRP RFID reader guarding one dock door: which antennas face outside and inside, and
    the timing that turns reads into one movement per tag and pass (see gateway/rules/dock_portal.py)."""

    id: Id
    host: Host
    port: TcpPort = 5084
    door: Id
    #: The zone the door opens into (the dock): a cold product on an ambient dock starts its
    #: time-out-of-refrigeration clock.
    zone: Id | None = None
    outside_antennas: Annotated[tuple[Antenna, ...], Meta(min_length=1, max_length=32)]
    inside_antennas: Annotated[tuple[Antenna, ...], Meta(min_length=1, max_length=32)]
    #: Index into the reader's transmit power table; 0 is the reader's maximum.
    tx_power: Annotated[int, Meta(ge=0, le=255)] = 0
    #: Gen2 session: 2 or 3 keep tags quiet between reads of one pass (fewer collisions).
    session: Literal[0, 1, 2, 3] = 2
    #: Impinj readers only: search mode 1 (single target), 2 (dual target) or 3 (single target with
    #: suppression); needs the reader's Impinj LLRP extensions. Leave unset for other makes.
    impinj_search_mode: Literal[1, 2, 3] | None = None
    #: Tags expected in the field at once (a pallet of cases: a few hundred).
    tag_population: Annotated[int, Meta(ge=1, le=65535)] = 256
    presence_reads: Annotated[int, Meta(ge=1, le=100)] = 2
    presence_window_ms: Annotated[int, Meta(ge=10, le=60_000, extra=MILLISECONDS)] = 1000
    depart_after_ms: Annotated[int, Meta(ge=100, le=600_000, extra=MILLISECONDS)] = 2000
    stray_max_dwell_ms: Annotated[int, Meta(ge=1000, le=86_400_000, extra=MILLISECONDS)] = 30_000
    #: Reads weaker than this (dBm) are ignored: cross-reads from the next door.
    min_rssi: Annotated[float, Meta(ge=-120, le=0)] | None = None
    #: Seconds the reader is asked to send a keepalive; three missed ones count as a dead link.
    keepalive_s: Annotated[float, Meta(ge=1, le=600, extra=SECONDS)] = 10.0
    #: Longest wait between reconnection attempts (exponential backoff with jitter up to this).
    reconnect_max_s: Annotated[float, Meta(ge=1, le=3600, extra=SECONDS)] = 30.0


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
    #: A picking scanner at a dispatch door: what it scans is leaving, so a recalled, quarantined or
    #: expired lot is judged as an outbound movement is (critical: it drives the stack light), not as a
    #: scan of unknown direction (a warning).
    outbound: bool = False
    #: Seconds between attempts to (re)open a port that is missing or went away.
    reopen_s: Annotated[float, Meta(ge=0.5, le=600, extra={"unit": "seconds"})] = 5.0


class DoorChecksConfig(ConfigBlock, kw_only=True):
    """Batch checks at the doors (recalled, quarantined, expired, near expiry, unknown GTIN, time
    out of refrigeration), against the master data and recall list the cloud pushes. A violation at
    an outbound door is critical: it drives the local alarm (stack light) when [alarm] min_severity
    is critical."""

    near_expiry_days: Annotated[int, Meta(ge=0, le=3650)] = 30
    #: How long a cold product may stay on an ambient dock before an alert.
    tor_budget_s: Annotated[float, Meta(ge=60, le=86_400, extra=SECONDS)] = 1800.0
    #: A door alert is cleared after this long (its record stays: raised, then cleared).
    hold_s: Annotated[float, Meta(ge=10, le=86_400, extra=SECONDS)] = 600.0
    #: Item alerts of one product lot at one door, each raised within this long of the previous
    #: one, are one alert (one pallet is one event for QA, not 200); 0 keeps one alert per item.
    group_window_s: Annotated[float, Meta(ge=0, le=3600, extra=SECONDS)] = 30.0
