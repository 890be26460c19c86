"""The one interface every sensing source plugs in through, and the factory that builds them.

Like a Telegraf input plugin, a source knows one kind of device and nothing of
what happens to its items: the app starts ``run(emit)`` as an asyncio task and
reads ``status()`` for the heartbeat.  ``run`` only returns by cancellation:
every failure inside a poll becomes an error reading, and a bug that escapes a
poll is caught at the top of the source's loop, logged, reported as an error
reading, and polling resumes after a pause (ThingsBoard IoT Gateway issue
#2132: one uncaught exception killed its polling task for good).

``build_sources`` makes one source per Modbus *line* (all units on a bus share
its turn-taking) and one per serial ASCII logger.  Other ``[[sensors]]`` kinds
(an RFID portal) are built by their own packages and skipped here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from coldgate.contract.items import Item
from coldgate.gateway.clock import Clock
from coldgate.gateway.sensors.config import ModbusSensor, Profile, SerialAsciiSensor
from coldgate.gateway.sensors.stats import SensorStatus, served_fraction

if TYPE_CHECKING:
    from coldgate.gateway.config import GatewayConfig

__all__ = ["Emit", "SensorStatus", "Source", "build_sources", "raise_if_cancelled", "served_fraction"]

log = logging.getLogger(__name__)

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
    while True:
        try:
            await step()
        except Exception as exc:
            on_bug(exc)
            await asyncio.sleep(BUG_PAUSE_S)
        raise_if_cancelled()


def build_sources(config: GatewayConfig, clock: Clock) -> list[Source]:
    """One source per Modbus line that has sensors, then one per serial ASCII logger, LLRP reader
    and barcode scanner.

    The config is assumed valid (``load_gateway_config`` checked lines, profiles
    and units); nothing is opened until the sources run.
    """
    # Imported here: they pull in pymodbus and pyserial, which a config check does not need.
    from coldgate.gateway.readers.llrp_source import LlrpReaderSource
    from coldgate.gateway.readers.scanner import ScannerSource
    from coldgate.gateway.sensors.modbus_poller import ModbusLinePoller
    from coldgate.gateway.sensors.serial_ascii import SerialAsciiSource

    profiles = config.all_profiles()
    on_line: dict[str, list[tuple[ModbusSensor, Profile]]] = {}
    serial: list[Source] = []
    for sensor in config.sensors:
        if isinstance(sensor, ModbusSensor):
            on_line.setdefault(sensor.line, []).append((sensor, profiles[sensor.profile]))
        elif isinstance(sensor, SerialAsciiSensor):
            serial.append(SerialAsciiSource(sensor, clock))
        else:  # pragma: no cover - future kinds belong to other packages
            log.debug("sensor %s (%s) is not a sensing source; skipped", sensor.id, type(sensor).__name__)
    sources: list[Source] = [
        ModbusLinePoller(line, on_line[line.id], clock) for line in config.modbus_lines if line.id in on_line
    ]
    readers: list[Source] = [LlrpReaderSource(reader, clock) for reader in config.readers]
    scanners: list[Source] = [ScannerSource(scanner, clock) for scanner in config.scanners]
    return sources + serial + readers + scanners
