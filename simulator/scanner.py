"""A serial barcode scanner in software: codes written to a pseudo-terminal, as a USB scanner in CDC
mode sends them (one code per line, ended by the configured terminator, with the AIM symbology
identifier in front).

``CODES`` is a day at a dock in miniature: GS1 DataMatrix with GS-separated variable fields, a
GS1-128 pallet label (SSCC), HIBC primary+secondary, a China MA code, an EAN-13, a code with a
wrong check digit, and garbage, so the gateway's parser sees good and bad input alike.
"""

from __future__ import annotations

import os
import time
import tty
from collections.abc import Iterable, Iterator
from itertools import cycle

__all__ = ["CODES", "ScannerEmulator"]

GS = "\x1d"

#: (what it is, the bytes the scanner sends before the terminator).
CODES: tuple[tuple[str, bytes], ...] = (
    ("GS1 DataMatrix: GTIN, expiry, lot, serial", f"]d201095060001343521726123110LOT42{GS}21SN7".encode()),
    ("GS1 DataMatrix: GTIN, lot, expiry", f"]d2010950600013435210LOT7{GS}17270630".encode()),
    ("GS1-128 pallet label: SSCC", b"]C100106141411234567897"),
    ("HIBC primary + secondary (expiry, lot)", b"+A123BJC5D6E71/$$3271231LOTA1N"),
    ("MA (IDcode) UDI", b"MA.156.M0.100001.1A2B3C.L2405A1.E20270531.S000123"),
    ("EAN-13", b"]E09506000134352"),
    ("GS1 DataMatrix with a wrong GTIN check digit", b"]d20109506000134353"),
    ("garbage from a noisy line", b"\xff\xfe\x00garbage"),
)


class ScannerEmulator:
    """``with ScannerEmulator() as scanner:`` gives ``scanner.device`` (``/dev/pts/N``) for the
    gateway to open; ``send(code)`` or ``send_all()`` write codes as a person scanning would."""

    def __init__(self, terminator: bytes = b"\r") -> None:
        self.terminator = terminator
        self.controller_fd, self._device_fd = os.openpty()
        tty.setraw(self._device_fd)  # no echo, no line editing: bytes as the scanner sends them
        self.device = os.ttyname(self._device_fd)
        self.sent = 0

    def send(self, code: bytes) -> None:
        os.write(self.controller_fd, code + self.terminator)
        self.sent += 1

    def send_all(self, codes: Iterable[bytes], interval_s: float = 0.0) -> None:
        for code in codes:
            self.send(code)
            if interval_s:
                time.sleep(interval_s)

    def codes(self, repeat: bool = False) -> Iterator[bytes]:
        source = cycle(CODES) if repeat else iter(CODES)
        return (code for _, code in source)

    def close(self) -> None:
        for fd in (self.controller_fd, self._device_fd):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> ScannerEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
