"""Serial ASCII loggers on a real pseudo-terminal (and a socket:// converter): lines, garbage, silence."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from coldgate.contract.items import Gap, GapCause, Item, Quality, Reading
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.sensors import serial_ascii
from coldgate.gateway.sensors.config import GroupUnits, SerialAsciiSensor
from coldgate.gateway.sensors.serial_ascii import SerialAsciiSource
from tests.rig.pty import PtyPair
from tests.rig.waiting import DEADLINE_S, eventually

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


#: After the awaited items, how long to go on watching for ones that should not come.
GRACE_S = 0.3


async def run_source(
    source: SerialAsciiSource, until: Callable[[list[Item]], bool], grace: float = 0.0
) -> list[Item]:
    """Run the source until ``until(items)`` holds (or the deadline passes: the test's asserts
    then say what is missing), then ``grace`` seconds more, and return its items."""
    items: list[Item] = []
    task = asyncio.create_task(source.run(items.append))
    try:
        await eventually(lambda: until(items) or task.done())
        await asyncio.sleep(grace)
        assert not task.done(), "the source stopped by itself"
        return items
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def readings(items: list[Item]) -> list[Reading]:
    return [i for i in items if isinstance(i, Reading)]


def gaps(items: list[Item]) -> list[Gap]:
    return [i for i in items if isinstance(i, Gap)]


def temperatures(items: list[Item]) -> str:
    """The temperature readings as ``o`` (ok) and ``e`` (error), in order."""
    return "".join(
        "o" if r.quality is Quality.OK else "e" for r in readings(items) if r.quantity == "temperature"
    )


def error_reasons(items: list[Item]) -> list[str | None]:
    return [r.reason for r in readings(items) if r.quality is Quality.ERROR]


@pytest.fixture
def port_opened(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once the source under test has its port open and watched.

    pyserial's ``open()`` discards input already waiting on the port, and the
    source opens it in a thread, so an instrument that talks before this loses
    its first line.
    """
    opened = threading.Event()
    real_open_watched = serial_ascii.open_watched

    async def open_watched(settings: object, on_readable: Callable[[], None]) -> object:
        port = await real_open_watched(settings, on_readable)
        opened.set()
        return port

    monkeypatch.setattr(serial_ascii, "open_watched", open_watched)
    return opened


class Instrument(threading.Thread):
    """Plays the logger on the pty's far end from a script of (seconds after ``opened``, bytes)."""

    def __init__(self, pair: PtyPair, script: list[tuple[float, bytes]], opened: threading.Event) -> None:
        super().__init__(daemon=True)
        self.pair, self.script, self.opened = pair, script, opened

    def run(self) -> None:
        if not self.opened.wait(DEADLINE_S):
            return  # the port never opened: the test's asserts say what is missing
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

    def requested() -> int:
        return b"".join(requests).count(b"R\r\n")

    items = asyncio.run(run_source(source, lambda items: len(readings(items)) >= 6 and requested() >= 3))
    stop.set()
    thread.join()
    got = readings(items)
    assert len(got) >= 6 and all(r.quality is Quality.OK for r in got)
    assert {(r.quantity, r.value, r.unit) for r in got} == {
        ("temperature", -4.5, "FAH"),
        ("humidity", 45.2, "P1"),
    }
    assert requested() >= 3
    (status,) = source.status()
    assert status.online and status.scheduled == status.served >= 3 and status.last_ok_ms is not None


def test_garbage_lines_are_errors_then_offline_then_online(pty_pair: PtyPair, port_opened: threading.Event):
    good, bad = b"T=4.5;H=45.2\r\n", b"T=4.5;H=\x00\xff#\r"
    script = (
        [(0.1, good), (0.35, good)] + [(0.6 + 0.25 * i, bad) for i in range(4)] + [(1.8, good), (2.05, good)]
    )
    Instrument(pty_pair, script, port_opened).start()
    source = SerialAsciiSource(logger(pty_pair.device), SystemClock())
    items = asyncio.run(run_source(source, lambda items: len(temperatures(items)) >= 8, GRACE_S))
    got = readings(items)
    pattern = temperatures(items)
    assert pattern == "ooeeeeoo", pattern
    errors = [r for r in got if r.quality is Quality.ERROR]
    assert errors[0].reason == r"""line does not match the pattern: 'T=4.5;H=\x00ÿ#'"""
    opened, closed = gaps(items)
    assert (opened.cause, opened.end) == (GapCause.SENSOR_ERROR, None)
    assert opened.start == errors[0].ts and closed.start == opened.start
    assert closed.end == next(r.ts for r in got if r.ts > opened.ts and r.quality is Quality.OK)


def test_silence_opens_a_gap_and_the_next_line_closes_it(pty_pair: PtyPair, port_opened: threading.Event):
    line = b"T=4.5;H=45.2\n"
    Instrument(pty_pair, [(0.1, line), (0.4, line), (2.8, line)], port_opened).start()
    source = SerialAsciiSource(logger(pty_pair.device), SystemClock())
    items = asyncio.run(run_source(source, lambda items: len(gaps(items)) >= 2, GRACE_S))
    silent = [r for r in readings(items) if r.quality is Quality.ERROR]
    assert silent and all(r.reason.startswith("no line from the logger for") for r in silent)
    opened, closed = gaps(items)
    assert opened.cause is GapCause.SENSOR_OFFLINE and opened.start == silent[0].ts
    assert closed.end is not None and closed.end > opened.start
    assert readings(items)[-1].quality is Quality.OK


def test_a_line_cut_short_is_reported_with_what_arrived(pty_pair: PtyPair, port_opened: threading.Event):
    Instrument(pty_pair, [(0.1, b"T=4.5;H=45.2\r\nT=4.")], port_opened).start()
    source = SerialAsciiSource(logger(pty_pair.device), SystemClock())
    items = asyncio.run(run_source(source, lambda items: len(error_reasons(items)) >= 2))
    reasons = error_reasons(items)
    assert reasons[:2] == ["unterminated line 'T=4.'"] * 2  # one per quantity


def test_a_missing_port_is_retried_not_fatal():
    sensor = logger("/dev/does-not-exist-coldgate", offline_after=2)
    # Three failed polls: the second opens the gap, the third must not open another.
    items = asyncio.run(
        run_source(SerialAsciiSource(sensor, SystemClock()), lambda items: len(readings(items)) >= 6)
    )
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
            return await run_source(source, lambda items: len(readings(items)) >= 8)

    got = readings(asyncio.run(scenario()))
    assert len(got) >= 8 and all(r.quality is Quality.OK for r in got)
    assert {r.value for r in got} == {2.5, 50.0}
