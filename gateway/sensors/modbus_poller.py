"""Polling every unit on one Modbus line: one task, one request at a time, no unit starving another.

A line (an RS-485 bus, a TCP connection, a serial-to-Ethernet converter) is a
shared medium: while one unit is awaited, nobody else can be asked.  So the
line's task picks the next request by two classes:

1. the regular poll of a unit that answered last time starts at its slot,
   earliest slot first;
2. retries, and polls of units that are failing or offline, may cost a full
   timeout, so they start only in an idle window that ends before the next
   class-1 slot.  Loggers on one interval poll back to back and leave the rest
   of the interval idle, so a dead unit is retried and probed there and the
   others keep their slots.  A retry that finds no window before the unit's
   own next slot is given up (the poll fails); a class-2 poll that has waited
   half an interval runs anyway, so a line with no idle time left still probes
   its dead units (and says so in the lag figures).

A unit failing ``offline_after`` polls in a row is offline: polled with one
attempt, every 2, 4, ... up to 8 slots (``schedule.backoff_periods``), and
online again at its first answer.  Nothing raised inside a poll ends the task:
failures are error readings, and a bug that escapes is logged, reported as an
error reading and polling resumes after a pause.

APScheduler is not used here: its jobs run concurrently, while a line needs
strict turn-taking with look-ahead; the grid, coalescing and "one instance"
rules it would provide are in ``schedule.Slots`` and the single task.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Sequence

from coldgate.gateway.clock import Clock, Stamp
from coldgate.gateway.sensors.config import ModbusLine, ModbusSensor, Point, Profile
from coldgate.gateway.sensors.decode import DecodeError, ReadBlock, decode_point, plan_reads
from coldgate.gateway.sensors.health import Failure, SensorHealth
from coldgate.gateway.sensors.modbus_link import AttemptFailed, ModbusLink
from coldgate.gateway.sensors.readings import Channel, channel_of, error_reading, error_readings, ok_reading
from coldgate.gateway.sensors.schedule import Slots, backoff_periods
from coldgate.gateway.sensors.stats import PollStats
from coldgate.gateway.source import Emit, SensorStatus, run_steps

log = logging.getLogger(__name__)

#: After a bug escaped a poll, wait this long before polling again (no hot error loop).
#: Slack added to a class-2 attempt's worst case when looking for an idle window.
WINDOW_MARGIN_S = 0.005
#: Decoded values kept per one-register point (a bound: a noisy or broken sensor may show any word).
DECODE_MEMO_MAX = 1024


class _Unit:
    """One sensor on the line: what to read, its schedule, its health and the poll in progress."""

    def __init__(self, sensor: ModbusSensor, profile: Profile, line: ModbusLine, gap_s: float) -> None:
        self.sensor = sensor
        self.blocks: tuple[ReadBlock, ...] = plan_reads(profile.points)
        self.channels: dict[int, Channel] = {id(p): channel_of(sensor.id, p) for p in profile.points}
        self.all_channels = tuple(self.channels.values())
        # Per block, each point with its registers' slice and channel: what a good answer is decoded
        # by, worked out once rather than at each of the 500 polls a second a busy site makes.  A
        # one-register point also gets a memo of its decoded values by register word: a room's
        # temperature takes few distinct values, and decoding (scale, 12-digit rounding through a
        # string) cost more than the dictionary look-up (issue 18).
        self.layout: tuple[tuple[tuple[Point, int, int, Channel, dict[int, float] | None], ...], ...] = tuple(
            tuple(
                (
                    p,
                    p.address - b.address,
                    p.address - b.address + p.register_count,
                    self.channels[id(p)],
                    {} if p.register_count == 1 else None,
                )
                for p in b.points
            )
            for b in self.blocks
        )
        self.timeout = sensor.timeout_s if sensor.timeout_s is not None else line.timeout_s
        self.cost = len(self.blocks) * (self.timeout + gap_s) + WINDOW_MARGIN_S
        self.slots = Slots(sensor.interval_s, 0.0)
        self.stats = PollStats(sensor.interval_s)
        self.health = SensorHealth(sensor.id, sensor.offline_after, f'unit {sensor.unit} on line "{line.id}"')
        self.probes = 0  # unanswered polls since going offline, for the back-off
        self.last_poll_ms: int | None = None
        # The poll in progress: started, waiting for a retry at ``retry_at``.
        self.in_poll = False
        self.retry_at = 0.0
        self.attempts_left = 0
        self.attempts_made = 0
        self.poll_stamp: Stamp | None = None
        self.last_failure: AttemptFailed | None = None

    def channel(self, point: Point) -> Channel:
        return self.channels[id(point)]

    @property
    def suspect(self) -> bool:
        """Its next attempt may well cost a full timeout."""
        return self.health.failing

    def ready_at(self) -> float:
        return self.retry_at if self.in_poll else self.slots.due


class ModbusLinePoller:
    """The ``Source`` for all Modbus sensors on one line."""

    def __init__(
        self,
        line: ModbusLine,
        sensors: Sequence[tuple[ModbusSensor, Profile]],
        clock: Clock,
        *,
        link: ModbusLink | None = None,
        max_backoff_periods: int | None = None,
    ) -> None:
        if not sensors:
            raise ValueError(f"line {line.id} has no sensors to poll")
        self.id = f"modbus:{line.id}"
        self.line = line
        self.clock = clock
        self.link = link or ModbusLink(line)
        self.units = [_Unit(sensor, profile, line, self.link.gap_s) for sensor, profile in sensors]
        self._max_backoff = max_backoff_periods
        self._emit: Emit = lambda _item: None
        self._current: _Unit | None = None
        self._running = False
        # Coil writes (the local alarm's relay on this bus) wait for the line's turn like polls.
        self._writes: deque[tuple[int, int, bool, asyncio.Future[None]]] = deque()
        self._waiter: asyncio.Future[None] | None = None  # the idle wait, ended early by a coil write

    # ------------------------------------------------------------ the task

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled; never raises anything else."""
        self._emit = emit
        self._running = True
        start = self.clock.monotonic()
        for unit in self.units:
            unit.slots.due = start  # one phase for all: polls run back to back, idle time pools
        try:
            await run_steps(self._step, self._bug)
        finally:
            self._running = False
            while self._writes:
                *_, done = self._writes.popleft()
                if not done.done():
                    done.set_exception(AttemptFailed(Failure.CONNECTION, f"line {self.line.id} stopped"))
            self.link.close()

    async def write_coil(self, unit: int, coil: int, value: bool) -> None:
        """Switch a coil of ``unit`` on this line between two polls; raises AttemptFailed.

        A bus takes one request at a time, so a relay board sharing the loggers'
        RS-485 line is written by this line's poller, never by a second client
        opening the same serial port.
        """
        if not self._running:
            raise AttemptFailed(Failure.CONNECTION, f"line {self.line.id} is not being polled")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append((unit, coil, value, done))
        _wake(self._waiter)
        await done

    async def _do_writes(self) -> None:
        while self._writes:
            unit, coil, value, done = self._writes.popleft()
            try:
                await self.link.write_coil(unit, coil, value, self.line.timeout_s)
            except BaseException as exc:  # settle the writer whatever happened, or the alarm waits forever
                if not done.done():
                    failure = (
                        exc
                        if isinstance(exc, AttemptFailed)
                        else AttemptFailed(
                            Failure.CONNECTION, f"coil write failed: {type(exc).__name__}: {exc}"
                        )
                    )
                    done.set_exception(failure)
                if not isinstance(exc, Exception):
                    raise  # cancellation: the poller is stopping
            else:
                if not done.done():
                    done.set_result(None)

    async def _step(self) -> None:
        if self._writes:
            await self._do_writes()
        now = self.clock.monotonic()
        self._expire_retries(now)
        unit, wait = self._choose(now)
        if unit is None:
            await self._idle(wait)
            return
        self._current = unit
        await self._attempt(unit, now)
        self._current = None

    async def _idle(self, wait: float) -> None:
        """Sleep ``wait`` seconds, or until a coil write is queued.

        A bare future and a timer, not ``wait_for(event.wait())``: that makes a task
        and cancels it at every idle turn, once per poll, which at 500 polls/s was
        about a quarter of the poller's own time in a profile (issue 18).
        """
        if self._writes:  # queued while the last attempt was awaited
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(wait, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _choose(self, now: float) -> tuple[_Unit | None, float]:
        """The unit to ask now, or None and how long to sleep before looking again."""
        due_first: _Unit | None = None
        next_regular = math.inf
        for unit in self.units:
            if unit.in_poll or unit.suspect:
                continue
            due = unit.slots.due
            if due <= now:
                if due_first is None or due < due_first.slots.due:
                    due_first = unit
            elif due < next_regular:
                next_regular = due
        if due_first is not None:
            return due_first, 0.0
        wake = next_regular
        best: _Unit | None = None
        for unit in self.units:
            if not (unit.in_poll or unit.suspect):
                continue
            ready = unit.ready_at()
            if ready > now:
                wake = min(wake, ready)
                continue
            if now + unit.cost <= next_regular:
                fits = True
            elif unit.in_poll:  # a retry: wait for a window, give up at its latest start
                fits = False
                wake = min(wake, self._latest_retry(unit))
            else:
                promote_at = ready + unit.slots.interval / 2
                fits = now >= promote_at
                wake = min(wake, promote_at)
            if fits and (best is None or ready < best.ready_at()):
                best = unit
        if best is not None:
            return best, 0.0
        return None, max(0.0, wake - now)

    @staticmethod
    def _latest_retry(unit: _Unit) -> float:
        """A retry must end before the unit's next slot."""
        return unit.slots.due + unit.slots.interval - unit.cost

    def _expire_retries(self, now: float) -> None:
        for unit in self.units:
            if unit.in_poll and now > self._latest_retry(unit):
                self._finish_failed(unit)

    # ------------------------------------------------------------ one attempt

    async def _attempt(self, unit: _Unit, now: float) -> None:
        if not unit.in_poll:
            lag, skipped = unit.slots.claim(now)
            unit.stats.started(lag, skipped)
            unit.in_poll = True
            unit.attempts_left = 1 if not unit.health.online else 1 + unit.sensor.retries
            unit.attempts_made = 0
            unit.poll_stamp = self.clock.stamp()
            unit.last_poll_ms = unit.poll_stamp.wall_ms
        unit.attempts_left -= 1
        unit.attempts_made += 1
        answers: list[list[int]] = []
        try:
            for block in unit.blocks:
                answers.append(await self.link.read(unit.sensor.unit, block, unit.timeout))
        except AttemptFailed as failed:
            unit.last_failure = failed
            if unit.attempts_left > 0 and _worth_retrying(failed):
                unit.retry_at = self.clock.monotonic()
                return
            self._finish_failed(unit)
            return
        self._finish_ok(unit, answers)

    def _finish_ok(self, unit: _Unit, answers: list[list[int]]) -> None:
        stamp = self.clock.stamp()
        emit = self._emit
        for layout, registers in zip(unit.layout, answers, strict=True):
            for point, start, end, channel, memo in layout:
                try:
                    if memo is not None and start < len(registers):
                        word = registers[start]
                        value = memo.get(word)
                        if value is None:  # decode_point of one word is a pure function of it
                            value = decode_point(point, (word,))
                            if len(memo) >= DECODE_MEMO_MAX:
                                memo.clear()
                            memo[word] = value
                    else:
                        value = decode_point(point, registers[start:end])
                except DecodeError as exc:
                    emit(error_reading(channel, str(exc), stamp))
                else:
                    emit(ok_reading(channel, value, stamp))
        closed = unit.health.answered(stamp)
        if closed is not None:
            emit(closed)
        unit.probes = 0
        unit.in_poll = False
        unit.slots.advance()

    def _finish_failed(self, unit: _Unit, failure: Failure | None = None, reason: str | None = None) -> None:
        failed = unit.last_failure
        if failure is None or reason is None:
            assert failed is not None
            failure, reason = failed.failure, failed.reason
            if unit.attempts_made > 1:
                reason = f"{reason} x{unit.attempts_made}"
        stamp = unit.poll_stamp or self.clock.stamp()
        unit.in_poll = False
        unit.last_failure = None
        log.debug("%s unit %d: %s", self.line.id, unit.sensor.unit, reason)
        for reading in error_readings(unit.all_channels, reason, stamp):
            self._emit(reading)
        opened = unit.health.failed(stamp, failure, reason)
        if opened is not None:
            self._emit(opened)
        if unit.health.online:
            unit.slots.advance()
        else:  # offline (maybe just now): probe again after 2, 4, ... slots
            unit.probes += 1
            unit.slots.advance(backoff_periods(unit.probes, unit.slots.interval, self._max_backoff))

    def _bug(self, exc: Exception) -> None:
        unit, self._current = self._current, None
        log.error("bug while polling line %s; polling goes on", self.line.id, exc_info=exc)
        if unit is None:
            return
        unit.poll_stamp = unit.poll_stamp or self.clock.stamp()
        try:
            self._finish_failed(unit, Failure.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        except Exception:  # the sink itself is broken: nothing more to do here
            log.exception("cannot even report the bug on line %s", self.line.id)
            unit.in_poll = False

    # ------------------------------------------------------------ status

    def status(self) -> list[SensorStatus]:
        now = self.clock.monotonic()
        result = []
        for unit in self.units:
            slots, overdue = unit.slots, 0
            if self._running and not unit.in_poll and now - slots.due >= slots.interval:
                overdue = math.floor((now - slots.due) / slots.interval)
            source = f"modbus line {self.line.id} unit {unit.sensor.unit}"
            result.append(
                unit.stats.snapshot(
                    unit.sensor.id, source, unit.health, slots.interval, unit.last_poll_ms, overdue
                )
            )
        return result


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _worth_retrying(failed: AttemptFailed) -> bool:
    """Silence and garbage may be one lost frame; an exception is the device's answer
    (except "busy"), and a refused connection will be refused again right away."""
    if failed.failure in (Failure.TIMEOUT, Failure.GARBAGE):
        return failed.code is None  # exception 10/11 from a TCP gateway: it has retried already
    return failed.failure is Failure.EXCEPTION and failed.code == 6
