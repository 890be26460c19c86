"""Loggers that print text lines such as ``T=4.5;H=45.2`` on a serial port (or ``socket://``).

The port is read on the event loop (``loop.add_reader`` on the port's
descriptor, pyserial with ``timeout=0``), so no thread and no blocking read;
only opening runs in a thread, because pyserial connects ``socket://`` URLs
synchronously.  Lines end with CR, LF or both.  Each line is one poll:

- it matches the pattern: one ok reading per named group (a group that did
  not take part, or is not a number, is an error reading for that quantity);
- it does not match, or stays unterminated, or runs past ``MAX_LINE``: error
  readings for every group, quoting the line, and a failed poll.

A tick every ``interval_s`` sends ``request`` (if configured) and checks for
silence: no line for 1.5 intervals is a failed poll, with error readings, so
``offline_after`` silent intervals open a gap.  A port that cannot be opened
or goes away (USB adapter unplugged) is retried at each tick.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re

import serial

from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.clock import Clock
from coldgate.gateway.sensors.config import SerialAsciiSensor, check_pattern
from coldgate.gateway.sensors.health import Failure, SensorHealth
from coldgate.gateway.sensors.readings import Channel, error_reading, error_readings, ok_reading
from coldgate.gateway.sensors.schedule import Slots
from coldgate.gateway.sensors.stats import PollStats
from coldgate.gateway.serial_io import SerialOpenError, close_watched, open_watched
from coldgate.gateway.source import Emit, SensorStatus, run_steps

log = logging.getLogger(__name__)

MAX_LINE = 256
#: No line for this many intervals counts as a missed poll (loggers that talk on their
#: own drift against our tick; half an interval of slack keeps one late line from counting).
SILENCE_INTERVALS = 1.5
_EOL = re.compile(rb"[\r\n]+")


def quote(line: str, limit: int = 60) -> str:
    text = line if len(line) <= limit else line[:limit] + "…"
    return repr(text)


class SerialAsciiSource:
    """The ``Source`` for one serial ASCII logger."""

    def __init__(self, sensor: SerialAsciiSensor, clock: Clock) -> None:
        self.id = f"serial:{sensor.id}"
        self.sensor = sensor
        self.clock = clock
        self.pattern = check_pattern(sensor.pattern, f"sensors.{sensor.id}.pattern")
        self.channels = {
            name: Channel(sensor.id, Quantity(name), Unit(sensor.units.unit_for(name)))
            for name in self.pattern.groupindex
        }
        self.request = sensor.request.encode("latin-1") if sensor.request else None
        self.health = SensorHealth(sensor.id, sensor.offline_after, f"serial logger on {sensor.port}")
        self.slots = Slots(sensor.interval_s, 0.0)
        self.stats = PollStats(sensor.interval_s)
        self.lines = 0
        self._emit: Emit = lambda _item: None
        self._port: serial.SerialBase | None = None
        self._buffer = bytearray()
        self._heard_at = 0.0  # monotonic: last line (good or bad)
        self._byte_at = 0.0  # monotonic: last byte
        self._last_poll_ms: int | None = None

    # ------------------------------------------------------------ the task

    async def run(self, emit: Emit) -> None:
        """Read and tick until cancelled; never raises anything else."""
        self._emit = emit
        self.slots.due = self._heard_at = self.clock.monotonic()
        try:
            await run_steps(self._tick, self._report_bug)
        finally:
            self._close()

    def next_turn_at(self) -> float:
        """When the loop comes round next at the latest (monotonic): its next slot.  The watchdog holds
        it to that (``gateway.loop_watch``), so a port open or write that hangs stops the petting."""
        return self.slots.due

    async def _tick(self) -> None:
        now = self.clock.monotonic()
        if now < self.slots.due:
            await asyncio.sleep(self.slots.due - now)
            return
        lag, skipped = self.slots.claim(now)
        self.stats.started(lag, skipped)
        self.slots.advance()
        if self._port is None and not await self._open():
            return
        if self._buffer and now - self._byte_at >= min(1.0, self.slots.interval / 2):
            self._bad_line(f"unterminated line {quote(self._text(self._buffer))}")
            self._buffer.clear()
        elif now - self._heard_at > SILENCE_INTERVALS * self.slots.interval:
            self._failed(Failure.TIMEOUT, f"no line from the logger for {now - self._heard_at:.1f} s")
        if self.request and self._port is not None:
            try:
                self._port.write(self.request)
            except (serial.SerialException, OSError) as exc:
                self._lost(exc)

    # ------------------------------------------------------------ the port

    async def _open(self) -> bool:
        sensor = self.sensor
        try:
            port = await open_watched(sensor, self._readable)
        except SerialOpenError as exc:
            self._failed(Failure.CONNECTION, str(exc))
            return False
        self._port = port
        self._buffer.clear()
        log.info("serial logger %s: %s open", sensor.id, sensor.port)
        return True

    def _close(self) -> None:
        port, self._port = self._port, None
        close_watched(port)

    def _lost(self, exc: BaseException) -> None:
        log.warning(
            "serial logger %s: %s lost (%s); reopening at the next tick",
            self.sensor.id,
            self.sensor.port,
            exc,
        )
        self._close()

    def _readable(self) -> None:
        port = self._port
        if port is None:
            return
        try:
            data = port.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
            return
        try:
            self._received(data)
        except Exception as exc:  # a bug in line handling must not kill the reader callback
            self._buffer.clear()
            self._report_bug(exc)

    # ------------------------------------------------------------ lines

    def _received(self, data: bytes) -> None:
        if not data:
            return
        self._byte_at = self.clock.monotonic()
        self._buffer += data
        *complete, rest = _EOL.split(bytes(self._buffer))
        self._buffer[:] = rest
        for raw in complete:
            if raw:
                self._line(self._text(raw))
        if len(self._buffer) > MAX_LINE:
            self._bad_line(f"line longer than {MAX_LINE} characters: {quote(self._text(self._buffer))}")
            self._buffer.clear()

    @staticmethod
    def _text(raw: bytes | bytearray) -> str:
        return bytes(raw).decode("latin-1")

    def _line(self, text: str) -> None:
        self.lines += 1
        self._heard_at = self.clock.monotonic()
        match = self.pattern.search(text)
        if match is None:
            self._bad_line(f"line does not match the pattern: {quote(text)}")
            return
        stamp = self.clock.stamp()
        for name, channel in self.channels.items():
            found = match.group(name)
            try:
                value = float(found) if found is not None else math.nan
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                self._emit(ok_reading(channel, value, stamp))
            else:
                self._emit(error_reading(channel, f"no {name} number in line {quote(text)}", stamp))
        self._last_poll_ms = stamp.wall_ms
        closed = self.health.answered(stamp)
        if closed is not None:
            self._emit(closed)

    def _bad_line(self, reason: str) -> None:
        self._heard_at = self.clock.monotonic()
        self._failed(Failure.BAD_LINE, reason)

    def _failed(self, failure: Failure, reason: str) -> None:
        stamp = self.clock.stamp()
        self._last_poll_ms = stamp.wall_ms
        log.debug("serial logger %s: %s", self.sensor.id, reason)
        for reading in error_readings(self.channels.values(), reason, stamp):
            self._emit(reading)
        opened = self.health.failed(stamp, failure, reason)
        if opened is not None:
            self._emit(opened)

    def _report_bug(self, exc: Exception) -> None:
        log.error("bug in serial logger %s; reading goes on", self.sensor.id, exc_info=exc)
        try:
            self._failed(Failure.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        except Exception:
            log.exception("cannot even report the bug of serial logger %s", self.sensor.id)

    # ------------------------------------------------------------ status

    def status(self) -> list[SensorStatus]:
        source = f"serial {self.sensor.port}"
        return [
            self.stats.snapshot(self.sensor.id, source, self.health, self.slots.interval, self._last_poll_ms)
        ]
