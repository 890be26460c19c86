"""Serial ASCII loggers on a real pseudo-terminal (and a socket:// converter): lines, garbage, silence."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from contract.items import Gap, GapCause, Item, Quality, Reading
from gateway.clock import SystemClock
from gateway.sensors.config import GroupUnits, SerialAsciiSensor
from gateway.sensors.serial_ascii import SerialAsciiSource
from tests.rig.pty import PtyPair

pytestmark = pytest.mark.timeout(30)

PATTERN = r"^T=(?P<temperature>-?\d+(?:\.\d+)?);H=(?P<humidity>\d+(?:\.\d+)?)$"


def logger(port: str, *, request: str | None = None, offline_after: int = 2, **kw) -> SerialAsciiSensor:
    return SerialAsciiSensor(
        id="fridge",
        port=port,
        pattern=PATTERN,
        request=request,
        interval_s=0.5,
        offline_after=offline_after,
        **kw,
    )


async def run_source(source: SerialAsciiSource, seconds: float, during: Callable[[], None] | None = None):
    items: list[Item] = []
    task = asyncio.create_task(source.run(items.append))
    await asyncio.sleep(seconds)
    assert not task.done(), "the source stopped by itself"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return items


def readings(items: list[Item]) -> list[Reading]:
    return [i for i in items if isinstance(i, Reading)]


def gaps(items: list[Item]) -> list[Gap]:
    return [i for i in items if isinstance(i, Gap)]


class Instrument(threading.Thread):
    """Plays the logger on the pty's far end from a script of (seconds from start, bytes)."""

    def __init__(self, pair: PtyPair, script: list[tuple[float, bytes]]) -> None:
        super().__init__(daemon=True)
        self.pair, self.script = pair, script

    def run(self) -> None:
        start = time.monotonic()
        for at, data in self.script:
            time.sleep(max(0.0, start + at - time.monotonic()))
            self.pair.write(data)


def test_requested_lines_become_readings(pty_pair: PtyPair):
    requests: list[bytes] = []
    stop = threading.Event()

    def answer() -> None:  # a logger that prints one line per "R\r\n"
        while not stop.is_set():
            data = pty_pair.read(timeout=0.05)
            if data:
                requests.append(data)
                pty_pair.write(b"T=-4.5;H=45.2\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    sensor = logger(pty_pair.device, request="R\r\n", units=GroupUnits(temperature="FAH"))
    source = SerialAsciiSource(sensor, SystemClock())
    items = asyncio.run(run_source(source, 1.8))
    stop.set()
    thread.join()
    got = readings(items)
    assert len(got) >= 6 and all(r.quality is Quality.OK for r in got)
    assert {(r.quantity, r.value, r.unit) for r in got} == {
        ("temperature", -4.5, "FAH"),
        ("humidity", 45.2, "P1"),
    }
    assert b"".join(requests).count(b"R\r\n") >= 3
    (status,) = source.status()
    assert status.online and status.scheduled == status.served >= 3 and status.last_ok_ms is not None


def test_garbage_lines_are_errors_then_offline_then_online(pty_pair: PtyPair):
    good, bad = b"T=4.5;H=45.2\r\n", b"T=4.5;H=\x00\xff#\r"
    script = (
        [(0.1, good), (0.35, good)] + [(0.6 + 0.25 * i, bad) for i in range(4)] + [(1.8, good), (2.05, good)]
    )
    Instrument(pty_pair, script).start()
    items = asyncio.run(run_source(SerialAsciiSource(logger(pty_pair.device), SystemClock()), 2.4))
    got = readings(items)
    pattern = "".join("o" if r.quality is Quality.OK else "e" for r in got if r.quantity == "temperature")
    assert pattern == "ooeeeeoo", pattern
    errors = [r for r in got if r.quality is Quality.ERROR]
    assert errors[0].reason == r"""line does not match the pattern: 'T=4.5;H=\x00ÿ#'"""
    opened, closed = gaps(items)
    assert (opened.cause, opened.end) == (GapCause.SENSOR_ERROR, None)
    assert opened.start == errors[0].ts and closed.start == opened.start
    assert closed.end == next(r.ts for r in got if r.ts > opened.ts and r.quality is Quality.OK)


def test_silence_opens_a_gap_and_the_next_line_closes_it(pty_pair: PtyPair):
    line = b"T=4.5;H=45.2\n"
    Instrument(pty_pair, [(0.1, line), (0.4, line), (2.8, line)]).start()
    items = asyncio.run(run_source(SerialAsciiSource(logger(pty_pair.device), SystemClock()), 3.1))
    silent = [r for r in readings(items) if r.quality is Quality.ERROR]
    assert silent and all(r.reason.startswith("no line from the logger for") for r in silent)
    opened, closed = gaps(items)
    assert opened.cause is GapCause.SENSOR_OFFLINE and opened.start == silent[0].ts
    assert closed.end is not None and closed.end > opened.start
    assert readings(items)[-1].quality is Quality.OK


def test_a_line_cut_short_is_reported_with_what_arrived(pty_pair: PtyPair):
    Instrument(pty_pair, [(0.1, b"T=4.5;H=45.2\r\nT=4.")]).start()
    items = asyncio.run(run_source(SerialAsciiSource(logger(pty_pair.device), SystemClock()), 1.3))
    reasons = [r.reason for r in readings(items) if r.quality is Quality.ERROR]
    assert reasons[:2] == ["unterminated line 'T=4.'"] * 2  # one per quantity


def test_a_missing_port_is_retried_not_fatal():
    sensor = logger("/dev/does-not-exist-coldgate", offline_after=2)
    items = asyncio.run(run_source(SerialAsciiSource(sensor, SystemClock()), 1.3))
    reasons = {r.reason for r in readings(items)}
    assert len(reasons) == 1 and reasons.pop().startswith("cannot open /dev/does-not-exist-coldgate")
    (opened,) = gaps(items)
    assert opened.cause is GapCause.SENSOR_OFFLINE


def test_a_serial_to_ethernet_converter_via_socket_url():
    async def scenario() -> list[Item]:
        async def talk(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for _ in range(6):
                writer.write(b"T=2.5;H=50.0\r\n")
                await writer.drain()
                await asyncio.sleep(0.2)
            writer.close()

        server = await asyncio.start_server(talk, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            source = SerialAsciiSource(logger(f"socket://127.0.0.1:{port}"), SystemClock())
            return await run_source(source, 1.0)

    got = readings(asyncio.run(scenario()))
    assert len(got) >= 8 and all(r.quality is Quality.OK for r in got)
    assert {r.value for r in got} == {2.5, 50.0}
