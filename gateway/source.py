"""The one interface every source plugs in through: Modbus lines, serial loggers, LLRP readers, scanners.

Like a Telegraf input plugin, a source knows one kind of device and nothing of
what happens to its items: the app starts ``run(emit)`` as an asyncio task and
reads ``status()`` for the heartbeat.  ``run`` only returns by cancellation:
every failure inside a poll becomes an error reading, and a bug that escapes a
poll is caught at the top of the source's loop, logged, reported as an error
reading, and polling resumes after a pause (ThingsBoard IoT Gateway issue
#2132: one uncaught exception killed its polling task for good).

It sits apart from every kind of source so that each imports it and none
imports another; the app's wiring (``gateway.app.build_sources``) is the only
place that knows every kind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from coldgate.contract.items import Item
from coldgate.contract.uplink import SensorState
from coldgate.gateway.sensors.readings import short

__all__ = ["Emit", "SensorStatus", "Source", "raise_if_cancelled", "run_steps"]

@dataclass(frozen=True, slots=True)
class SensorStatus:
    """A snapshot of one sensor's polling, as ``Source.status()`` returns it."""

    sensor: str
    source: str
    online: bool
    consecutive_failures: int
    interval_s: float
    scheduled: int
    served: int
    late: int
    missed: int
    lag_p50_ms: float | None
    lag_p95_ms: float | None
    lag_max_ms: float | None
    last_poll_ms: int | None  # wall time of the last poll, answered or not
    last_ok_ms: int | None  # wall time of the last good answer
    last_error: str | None

    def to_state(self) -> SensorState:
        """The sensor's entry in the contract's status message."""
        return SensorState(
            id=self.sensor,
            online=self.online,
            last_poll=self.last_ok_ms,
            lag_p50_ms=None if self.lag_p50_ms is None else round(self.lag_p50_ms),
            lag_p95_ms=None if self.lag_p95_ms is None else round(self.lag_p95_ms),
            scheduled=self.scheduled,
            served=self.served,
            missed=self.missed,
            error=None if self.last_error is None else short(self.last_error),
        )


#: Where a source hands its items (readings, gaps): ``Sink.put`` of the outbox, or
#: the rules in front of it.  Called on the event loop; must not block.
Emit = Callable[[Item], None]


@runtime_checkable
class Source(Protocol):
    """A running source of observations: one Modbus line, one serial logger."""

    #: Unique among sources, for logs and task names: "modbus:bus-a", "serial:pharm-fridge".
    id: str

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled, handing every item to ``emit``; raises nothing but CancelledError."""
        ...

    def status(self) -> list[SensorStatus]:
        """Per-sensor poll statistics now (cheap; for the heartbeat)."""
        ...


def raise_if_cancelled() -> None:
    """End a source's loop if its task was cancelled but the CancelledError got lost.

    On Python 3.11 ``asyncio.wait_for`` (used by pymodbus for every request) returns
    the result instead of raising when the cancellation and the answer arrive in the
    same loop iteration (CPython gh-86296, fixed in 3.12).  At 500 requests/s that
    happens; the task then polls on forever and shutdown hangs.  ``cancelling()``
    still counts the request, so each loop turn checks it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


#: After a bug escaped a step, wait this long before the next, so a bug that repeats cannot spin.
BUG_PAUSE_S = 1.0


async def run_steps(step: Callable[[], Awaitable[None]], on_bug: Callable[[Exception], None]) -> None:
    """The loop of every source: a bug in one step is reported and the source goes on.

    Returns only by cancellation (ThingsBoard IoT Gateway #2132: one uncaught
    exception ended its polling for good).
    """
    task = asyncio.current_task()  # once: this loop turns once or twice per poll, 1,000 times a second
    while True:
        try:
            await step()
        except Exception as exc:
            on_bug(exc)
            await asyncio.sleep(BUG_PAUSE_S)
        if task is not None and task.cancelling():  # raise_if_cancelled(), for this task
            raise asyncio.CancelledError
