"""A serial barcode scanner as a source: every code it sends becomes a ``Scan`` item.

The port is read on the event loop as the serial loggers' is
(``gateway.serial_io``).  Frames come from ``LineFramer`` (bounded:
an over-long line becomes one refused scan, not a growing buffer) and are
parsed by ``parse_scan``, which never raises; an unparsable code is still
recorded, raw, with why.

A scanner is not polled, so it has no poll statistics: ``status()`` is empty
and ``link_state()`` feeds the heartbeat's ``scanners`` list instead.  A port
that cannot be opened or goes away (USB cable pulled) opens a
``scanner_offline`` gap, retried every ``reopen_s``; reopening closes it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict

import serial

from coldgate.contract.items import Gap, GapCause, Scan, Scheme, SubjectType
from coldgate.contract.uplink import LinkState
from coldgate.gateway.clock import Clock, Stamp
from coldgate.gateway.observations import stamp_fields
from coldgate.gateway.readers.barcode.framing import LineFramer
from coldgate.gateway.readers.barcode.parse import parse_scan
from coldgate.gateway.readers.config import TERMINATORS, ScannerConfig
from coldgate.gateway.serial_io import SerialOpenError, close_watched, open_watched
from coldgate.gateway.source import Emit, SensorStatus, run_steps

__all__ = ["ScannerSource"]

log = logging.getLogger(__name__)


class ScannerSource:
    """The ``Source`` for one serial barcode scanner."""

    def __init__(self, config: ScannerConfig, clock: Clock) -> None:
        self.id = f"scanner:{config.id}"
        self.config = config
        self.clock = clock
        self.framer = LineFramer(TERMINATORS[config.terminator], config.max_length)
        self.scans = 0
        self._emit: Emit = lambda _item: None
        self._port: serial.SerialBase | None = None
        self._gap_start: int | None = None  # ms: an open scanner_offline gap
        self._since: int | None = None
        self._error: str | None = None
        self._lost_port = asyncio.Event()

    # ------------------------------------------------------------ the task

    async def run(self, emit: Emit) -> None:
        """Read until cancelled; never raises anything else."""
        self._emit = emit
        try:
            await run_steps(self._step, self._report_bug)
        finally:
            self._close()

    async def _step(self) -> None:
        if self._port is None and not await self._open():
            await asyncio.sleep(self.config.reopen_s)
            return
        self._lost_port.clear()
        await self._lost_port.wait()

    def _report_bug(self, exc: Exception) -> None:
        log.error("scanner %s: %s", self.config.id, exc)
        self._error = f"internal error: {type(exc).__name__}"

    # ------------------------------------------------------------ the port

    async def _open(self) -> bool:
        try:
            self._port = await open_watched(self.config, self._readable)
        except SerialOpenError as exc:
            self._offline(str(exc))
            return False
        # A code half-sent when the scanner was unplugged must not merge with the first new one.
        self.framer = LineFramer(TERMINATORS[self.config.terminator], self.config.max_length)
        self._online()
        log.info("scanner %s: %s open", self.config.id, self.config.port)
        return True

    def _close(self) -> None:
        port, self._port = self._port, None
        close_watched(port)

    def _readable(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            data = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._lost(str(exc))
            return
        if not data:  # readable but empty: the other end hung up (pty closed, USB gone)
            self._lost("the port closed")
            return
        for frame in self.framer.feed(data):
            self._scan(frame.data, frame.error)

    def _lost(self, why: str) -> None:
        self._close()
        self._offline(f"lost {self.config.port}: {why}")
        self._lost_port.set()

    # ------------------------------------------------------------ items

    def _scan(self, data: bytes, error: str | None) -> None:
        parsed = parse_scan(data)
        fields = asdict(parsed)
        if error is not None:  # a cut frame: nothing parsed from it can be trusted, all of it goes
            parsed_only = {name: None for name in fields if name not in ("raw", "symbology", "errors")}
            fields.update(parsed_only, scheme=Scheme.RAW)
            fields["errors"] = [error[:200], *parsed.errors][:32]
        self.scans += 1
        self._emit(Scan(**stamp_fields(self.clock.stamp()), scanner=self.config.id, **fields))  # type: ignore[arg-type]

    def _offline(self, why: str) -> None:
        self._error = why[:200]
        if self._gap_start is not None:
            return
        stamp = self.clock.stamp()
        self._gap_start = stamp.wall_ms
        self._since = stamp.wall_ms
        log.warning("scanner %s offline: %s", self.config.id, why)
        self._emit(self._gap(stamp, None, why))

    def _online(self) -> None:
        stamp = self.clock.stamp()
        self._error = None
        self._since = stamp.wall_ms
        if self._gap_start is not None:
            self._emit(self._gap(stamp, stamp.wall_ms, f"{self.config.port} open again"))
            self._gap_start = None

    def _gap(self, stamp: Stamp, end: int | None, detail: str) -> Gap:
        assert self._gap_start is not None
        return Gap(
            **stamp_fields(stamp),  # type: ignore[arg-type]
            subject_type=SubjectType.SCANNER,
            subject=self.config.id,
            start=self._gap_start,
            end=None if end is None else max(end, self._gap_start),  # a clock stepped back mid-gap
            cause=GapCause.SCANNER_OFFLINE,
            detail=detail[:1000],
        )

    # ------------------------------------------------------------ status

    def status(self) -> list[SensorStatus]:
        return []  # not polled: see link_state()

    def link_state(self) -> LinkState:
        return LinkState(
            id=self.config.id, online=self._port is not None, since=self._since, error=self._error
        )
