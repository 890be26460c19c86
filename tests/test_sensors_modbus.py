"""Modbus polling against the simulator over real Modbus TCP, RTU on a pty, and RTU over TCP.

Sensors here poll every 0.5 s (the config's floor is 1 s; these are built directly)
so a fault window, the offline gap and the recovery fit in a few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.items import Gap, GapCause, Item, Quality, Reading
from coldgate.gateway import source
from coldgate.gateway.app import build_sources
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.sensors import modbus_poller
from coldgate.gateway.sensors.config import (
    ModbusLine,
    ModbusSensor,
    Profile,
    RtuLine,
    RtuOverTcpLine,
    TcpLine,
    builtin_profiles,
)
from coldgate.gateway.sensors.decode import decode_point
from coldgate.gateway.sensors.modbus_poller import ModbusLinePoller
from coldgate.gateway.sensors.serial_ascii import SerialAsciiSource
from coldgate.gateway.sensors.stats import served_fraction
from coldgate.gateway.source import Source
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.curves import Behaviour
from tests.rig.ports import free_port

pytestmark = pytest.mark.timeout(40)

TRANSPORTS = ("tcp", "rtu", "rtu_over_tcp")

#: Timeout for units that are meant to answer: long enough that a loaded CI machine (the
#: farm runs in a thread of this process) never turns a slow answer into a failed poll.
ANSWER_TIMEOUT_S = 1.0
#: Timeout for units whose silence (or garbage) is under test: it is in their error reasons,
#: and their attempts must fit the idle part of a 0.5 s interval next to the healthy polls.
SILENCE_TIMEOUT_S = 0.15


def line_for(farm: FarmThread, transport: str, timeout_s: float = ANSWER_TIMEOUT_S) -> ModbusLine:
    if transport == "tcp":
        return TcpLine(id="tcp", host="127.0.0.1", port=farm.tcp[0].port, timeout_s=timeout_s)
    if transport == "rtu":
        return RtuLine(id="rtu", port=farm.rtu[0].device, baudrate=19200, timeout_s=timeout_s)
    endpoint = farm.rtu_over_tcp[0]
    return RtuOverTcpLine(id="converter", host=endpoint.host, port=endpoint.port, timeout_s=timeout_s)


def sensors_on(
    line: ModbusLine,
    farm: FarmConfig,
    *,
    interval_s: float = 0.5,
    retries: int = 1,
    offline_after: int = 2,
    timeouts: Mapping[int, float] | None = None,
) -> list[tuple[ModbusSensor, Profile]]:
    """One sensor per simulated logger, with the profile named like its register map;
    ``timeouts`` overrides the line's timeout for some units."""
    timeouts = timeouts or {}
    profiles = builtin_profiles()
    return [
        (
            ModbusSensor(
                id=f"{line.id}-u{spec.unit}",
                line=line.id,
                unit=spec.unit,
                profile=spec.register_map,
                interval_s=interval_s,
                retries=retries,
                offline_after=offline_after,
                timeout_s=timeouts.get(spec.unit),
            ),
            profiles[spec.register_map],
        )
        for spec in farm.loggers
    ]


async def run_sources(
    sources: Sequence[Source], seconds: float, until: Callable[[list[Item]], bool] | None = None
) -> list[Item]:
    """Run sources as the app would, return what they emitted; each must still be running at the end."""
    items: list[Item] = []
    tasks = [asyncio.create_task(source.run(items.append)) for source in sources]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not (until and until(items)):
        await asyncio.sleep(0.05)
    assert not any(task.done() for task in tasks), "a source stopped by itself"
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return items


def readings(items: list[Item], sensor: str) -> list[Reading]:
    return [i for i in items if isinstance(i, Reading) and i.sensor == sensor]


def gaps(items: list[Item], sensor: str) -> list[Gap]:
    return [i for i in items if isinstance(i, Gap) and i.subject == sensor]


# ---------------------------------------------------------------- both maps, every transport

STEADY = FarmConfig(
    (
        LoggerSpec(1, "xy-md02", "steady", seed=1),
        LoggerSpec(2, "rs485-th-holding", "steady", room="freezer", seed=2),
    )
)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_both_register_maps_read_exactly_what_the_logger_served(transport):
    kwargs = {"tcp": [("127.0.0.1", 0)]} if transport == "tcp" else {}
    if transport == "rtu":
        kwargs = {"rtu": 1}
    if transport == "rtu_over_tcp":
        kwargs = {"rtu_over_tcp": [("127.0.0.1", 0)]}
    with FarmThread(STEADY, **kwargs) as farm:
        line = line_for(farm, transport)
        poller = ModbusLinePoller(line, sensors_on(line, STEADY), SystemClock())

        def four_polls_each(items: list[Item]) -> bool:
            # Both units are polled back to back, so once both have 4 polls (2 readings
            # each) no request is in flight until the next slot, 0.5 s later.
            return all(len(readings(items, f"{line.id}-u{unit}")) >= 8 for unit in (1, 2))

        items = asyncio.run(run_sources([poller], 10.0, until=four_polls_each))
        served = {unit: farm.farm.served(unit) for unit in (1, 2)}

    for unit, spec in ((1, STEADY.loggers[0]), (2, STEADY.loggers[1])):
        got = readings(items, f"{line.id}-u{unit}")
        assert got and all(r.quality is Quality.OK for r in got)
        # One request per poll, both points in it: the farm served exactly one reading per poll.
        polls = [got[i : i + 2] for i in range(0, len(got), 2)]
        assert len(polls) == len(served[unit]) >= 4
        for poll, taken in zip(polls, served[unit], strict=True):
            temperature, humidity = spec.map.decode(
                spec.map.words(taken.sample.temperature_c, taken.sample.humidity_rh)
            )
            values = {r.quantity: (r.value, r.unit) for r in poll}
            assert values == {"temperature": (temperature, "CEL"), "humidity": (humidity, "P1")}
    assert poller.link.requests == len(served[1]) + len(served[2])
    freezer = readings(items, f"{line.id}-u2")
    assert all(r.value < -19 for r in freezer if r.quantity == "temperature"), "signed int16"
    statuses = poller.status()
    assert served_fraction(statuses) == 1.0
    assert all(s.online and s.missed == 0 and s.lag_p95_ms is not None for s in statuses)


# ---------------------------------------------------------------- faults: error, offline, online

WINDOW = {"start_s": 1.5, "duration_s": 3.0}
FAULTS = FarmConfig(
    (
        LoggerSpec(1, "xy-md02", "steady", seed=1),
        LoggerSpec(2, "rs485-th-holding", "probe_failure", seed=2, params=WINDOW),
        LoggerSpec(3, "xy-md02", "dropout", seed=3, params=WINDOW),
        LoggerSpec(4, "rs485-th-holding", "garbage", seed=4, params=WINDOW),
    )
)
EXPECTED = {
    2: ("Modbus exception 4 (server device failure)", GapCause.SENSOR_ERROR),
    3: (f"timeout after {SILENCE_TIMEOUT_S:g} s", GapCause.SENSOR_OFFLINE),
    4: ("CRC error / garbage frame", GapCause.SENSOR_ERROR),
}


def ghost_on(line: ModbusLine) -> list[tuple[ModbusSensor, Profile]]:
    """A configured unit that is not on the bus (wrong address, never wired)."""
    sensor = ModbusSensor(id=f"{line.id}-u99", line=line.id, unit=99, profile="generic", interval_s=0.5)
    return [(sensor, builtin_profiles()["generic"])]


def test_exception_silence_and_garbage_go_error_offline_online_on_every_transport():
    with FarmThread(FAULTS, tcp=[("127.0.0.1", 0)], rtu=1, rtu_over_tcp=[("127.0.0.1", 0)]) as farm:
        lines = [line_for(farm, transport, SILENCE_TIMEOUT_S) for transport in TRANSPORTS]
        # Units 1 (steady) and 2 (exception 4: an answer) are never silent: a slow answer
        # from them on a loaded machine must not count as a failure.
        answering = {1: ANSWER_TIMEOUT_S, 2: ANSWER_TIMEOUT_S}
        pollers = [
            ModbusLinePoller(
                line,
                sensors_on(line, FAULTS, timeouts=answering) + ghost_on(line),
                SystemClock(),
                max_backoff_periods=2,
            )
            for line in lines
        ]
        faulty = [f"{line.id}-u{unit}" for line in lines for unit in EXPECTED]

        def all_back(items: list[Item]) -> bool:
            return all(any(g.end is not None for g in gaps(items, s)) for s in faulty)

        items = asyncio.run(run_sources(pollers, 12.0, until=all_back))
        behaviours = {r.sample.behaviour for r in farm.farm.served()}
    assert {Behaviour.FAULT, Behaviour.DROPOUT, Behaviour.GARBAGE} <= behaviours

    for line in lines:
        healthy = readings(items, f"{line.id}-u1")
        assert healthy and all(r.quality is Quality.OK for r in healthy)
        assert not gaps(items, f"{line.id}-u1")
        for unit, (reason, cause) in EXPECTED.items():
            sensor = f"{line.id}-u{unit}"
            if unit == 4 and isinstance(line, TcpLine):
                reason = "malformed Modbus TCP frame"
            got = readings(items, sensor)
            qualities = "".join("o" if r.quality is Quality.OK else "e" for r in got)
            assert qualities.startswith("oo") and qualities.endswith("o"), f"{sensor}: {qualities}"
            assert qualities.strip("o").strip("e") == "", f"{sensor}: one error stretch: {qualities}"
            errors = [r for r in got if r.quality is Quality.ERROR]
            assert all(r.value is None and r.reason.startswith(reason) for r in errors), (sensor, errors[0])
            opened, closed = gaps(items, sensor)
            assert (opened.end, opened.cause, closed.cause) == (None, cause, cause)
            assert closed.start == opened.start and closed.end >= closed.start
            assert opened.start == errors[0].ts, "the gap starts at the first failed poll"
            first_ok_after = next(r for r in got if r.ts > opened.ts and r.quality is Quality.OK)
            assert closed.end == first_ok_after.ts
            assert reason in opened.detail
        # The unit nobody answers for: silence on a bus, exception 11 from a Modbus TCP server.
        ghost = readings(items, f"{line.id}-u99")
        (gap,) = gaps(items, f"{line.id}-u99")
        assert gap.end is None and gap.cause is GapCause.SENSOR_OFFLINE
        expected = (
            "Modbus exception 11 (gateway target device failed to respond)"
            if isinstance(line, TcpLine)
            else f"timeout after {SILENCE_TIMEOUT_S:g} s"
        )
        assert ghost and all(r.reason.startswith(expected) for r in ghost), ghost[0]
    assert all(s.online != s.sensor.endswith("u99") for p in pollers for s in p.status())


# ---------------------------------------------------------------- connections that come and go


def test_refused_connection_then_server_up_down_up(monkeypatch):
    port = free_port()
    spec = LoggerSpec(1, "xy-md02", "steady", seed=1)
    line = TcpLine(id="plc", host="127.0.0.1", port=port, timeout_s=ANSWER_TIMEOUT_S)
    poller = ModbusLinePoller(
        line, sensors_on(line, FarmConfig((spec,))), SystemClock(), max_backoff_periods=2
    )
    sensor = "plc-u1"

    async def scenario() -> list[Item]:
        items: list[Item] = []
        task = asyncio.create_task(poller.run(items.append))

        async def wait_for(predicate: Callable[[], bool], seconds: float = 6.0) -> None:
            for _ in range(int(seconds / 0.05)):
                if predicate():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"timed out; items so far: {items[-4:]}")

        def gap_count(open_: bool) -> int:
            return sum(1 for g in gaps(items, sensor) if (g.end is None) == open_)

        def ok_count() -> int:
            return sum(1 for r in readings(items, sensor) if r.quality is Quality.OK)

        await wait_for(lambda: gap_count(open_=True) == 1)
        for _round in range(2):
            farm = FarmThread(FarmConfig((spec,)), tcp=[("127.0.0.1", port)])
            await asyncio.to_thread(farm.start)
            try:
                await wait_for(lambda n=_round: gap_count(open_=False) == n + 1)
                # One more good poll (2 readings) after the one that closed the gap, then take it away.
                oks = ok_count()
                await wait_for(lambda oks=oks: ok_count() >= oks + 2)
            finally:
                await asyncio.to_thread(farm.stop)
            await wait_for(lambda n=_round: gap_count(open_=True) == n + 2)
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return items

    items = asyncio.run(scenario())
    got = readings(items, sensor)
    reasons = {r.reason for r in got if r.quality is Quality.ERROR}
    assert f"connection refused by 127.0.0.1:{port}" in reasons
    assert sum(1 for r in got if r.quality is Quality.OK) >= 8, "two good polls per server run"
    assert [g.end is None for g in gaps(items, sensor)] == [True, False, True, False, True]
    assert {g.cause for g in gaps(items, sensor)} == {GapCause.SENSOR_OFFLINE}


def test_a_vanished_serial_port_is_an_error_not_a_crash():
    farm = FarmThread(FarmConfig((LoggerSpec(1, "xy-md02", seed=1),)), rtu=1)
    farm.start()
    line = RtuLine(id="bus", port=farm.rtu[0].device, timeout_s=ANSWER_TIMEOUT_S)
    poller = ModbusLinePoller(line, sensors_on(line, farm.farm.config), SystemClock(), max_backoff_periods=2)

    async def scenario() -> list[Item]:
        items: list[Item] = []
        task = asyncio.create_task(poller.run(items.append))

        async def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
            for _ in range(int(seconds / 0.05)):
                if predicate():
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"timed out; items so far: {items[-4:]}")

        def cannot_open() -> bool:
            return any((r.reason or "").startswith("cannot open") for r in readings(items, "bus-u1"))

        await wait_for(lambda: any(r.quality is Quality.OK for r in readings(items, "bus-u1")))
        await asyncio.to_thread(farm.stop)  # the pty pair is gone, as an unplugged USB adapter
        await wait_for(lambda: cannot_open() and bool(gaps(items, "bus-u1")))
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return items

    items = asyncio.run(scenario())
    got = readings(items, "bus-u1")
    assert got[0].quality is Quality.OK
    errors = [r.reason for r in got if r.quality is Quality.ERROR]
    assert any(line.port in reason and reason.startswith("cannot open") for reason in errors), errors
    (opened,) = gaps(items, "bus-u1")
    assert opened.cause is GapCause.SENSOR_OFFLINE


# ---------------------------------------------------------------- bugs never stop polling


def test_a_bug_inside_a_poll_is_an_error_reading_and_polling_goes_on(monkeypatch):
    monkeypatch.setattr(source, "BUG_PAUSE_S", 0.1)
    with FarmThread(STEADY, tcp=[("127.0.0.1", 0)]) as farm:
        line = line_for(farm, "tcp")
        poller = ModbusLinePoller(line, sensors_on(line, STEADY)[:1], SystemClock())
        real_read, calls = poller.link.read, []

        async def flaky_read(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("boom")
            return await real_read(*args, **kwargs)

        poller.link.read = flaky_read  # type: ignore[method-assign]
        broken_sink = {"left": 1}

        def emit(item: Item) -> None:
            if broken_sink["left"] and len(calls) == 4:
                broken_sink["left"] -= 1
                raise OSError("sink full")
            items.append(item)

        items: list[Item] = []

        async def scenario() -> None:
            task = asyncio.create_task(poller.run(emit))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10.0
            while loop.time() < deadline and ok_after_both_bugs(items) < 4:
                await asyncio.sleep(0.05)
            assert not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(scenario())
    got = readings(items, "tcp-u1")
    internal = [r for r in got if r.quality is Quality.ERROR]
    assert internal and internal[0].reason == BOOM
    assert {r.reason for r in internal} == {BOOM, SINK_FULL}
    assert ok_after_both_bugs(items) >= 4, "polling went on after both bugs: two good polls"


BOOM = "internal error: RuntimeError: boom"
SINK_FULL = "internal error: OSError: sink full"


def ok_after_both_bugs(items: list[Item]) -> int:
    """Good readings after the broken sink's poll (poll 2 raised, poll 4 broke the sink)."""
    got = readings(items, "tcp-u1")
    sunk = [i for i, r in enumerate(got) if r.reason == SINK_FULL]
    return sum(1 for r in got[sunk[-1] + 1 :] if r.quality is Quality.OK) if sunk else 0


# ---------------------------------------------------------------- the factory

CONFIG = {
    "gateway": {"id": "gw1", "site": "dc1"},
    "modbus_lines": [
        {"id": "bus-a", "transport": "rtu", "port": "/dev/ttyUSB0"},
        {"id": "plc", "transport": "tcp", "host": "10.0.0.5"},
        {"id": "unused", "transport": "rtu_over_tcp", "host": "10.0.0.6", "port": 4196},
    ],
    "sensors": [
        {"source": "modbus", "id": "t1", "line": "bus-a", "unit": 1, "profile": "xy-md02"},
        {"source": "modbus", "id": "t2", "line": "plc", "unit": 1, "profile": "generic"},
        {"source": "modbus", "id": "t3", "line": "bus-a", "unit": 2, "profile": "rs485-th-holding"},
        {
            "source": "serial_ascii",
            "id": "fridge",
            "port": "/dev/ttyS0",
            "pattern": r"T=(?P<temperature>\S+)",
        },
    ],
}


def test_build_sources_makes_one_poller_per_line_and_one_source_per_serial_logger():
    config = gateway_config_from_document(CONFIG, "test")
    sources = build_sources(config, SystemClock())
    assert [s.id for s in sources] == ["modbus:bus-a", "modbus:plc", "serial:fridge"]
    assert all(isinstance(s, Source) for s in sources)
    bus_a, plc, fridge = sources
    assert isinstance(bus_a, ModbusLinePoller) and isinstance(fridge, SerialAsciiSource)
    assert [u.sensor.id for u in bus_a.units] == ["t1", "t3"]
    assert [s.sensor for s in bus_a.status()] == ["t1", "t3"]
    assert [s.sensor for s in plc.status()] == ["t2"] and plc.units[0].timeout == 3.0
    assert all(s.scheduled == 0 and s.online for src in sources for s in src.status())


def test_a_cancel_swallowed_inside_a_request_still_stops_the_poller():
    """Python 3.11's asyncio.wait_for (inside pymodbus) can swallow a cancel when the answer
    arrives at the same moment (CPython gh-86296); the poller must stop all the same."""
    line = TcpLine(id="plc", host="127.0.0.1", port=free_port(), timeout_s=0.1)
    poller = ModbusLinePoller(line, sensors_on(line, STEADY)[:1], SystemClock())

    async def swallowing_read(*_args: object, **_kwargs: object) -> list[int]:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            pass  # what wait_for does when the response future is already done
        return [50, 450]

    poller.link.read = swallowing_read  # type: ignore[method-assign]

    async def scenario() -> None:
        task = asyncio.create_task(poller.run(lambda _item: None))
        await asyncio.sleep(0.005)  # inside the first request
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)
        assert task.cancelled(), "the poller went on polling after its cancel"

    asyncio.run(scenario())


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.one_of(st.sampled_from([0, 1, 250, 0x7FFF, 0x8000, 0xFFFF]), st.integers(0, 0xFFFF))),
    memo_max=st.sampled_from([1, 3, modbus_poller.DECODE_MEMO_MAX]),
)
def test_decoded_values_are_decode_points_however_often_a_word_comes_back(
    words: list[int], memo_max: int
) -> None:
    """The poller keeps decoded one-register values by word (issue 18); what it emits must not change."""
    line = TcpLine(id="l1", host="127.0.0.1", port=1)
    profiles = builtin_profiles()
    pairs = [
        (ModbusSensor(id=f"m-{name}", line="l1", unit=unit, profile=name, interval_s=1.0), profiles[name])
        for unit, name in enumerate(("xy-md02", "rs485-th-holding"), start=1)
    ]
    poller = ModbusLinePoller(line, pairs, SystemClock())
    emitted: list[Item] = []
    poller._emit = emitted.append
    expected: list[float] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(modbus_poller, "DECODE_MEMO_MAX", memo_max)
        for i, word in enumerate(words):
            unit = poller.units[i % 2]
            answers = [[(word + k) & 0xFFFF for k in range(block.count)] for block in unit.blocks]
            for block, registers in zip(unit.blocks, answers, strict=True):
                for point in block.points:
                    start = point.address - block.address
                    expected.append(decode_point(point, registers[start : start + point.register_count]))
            poller._finish_ok(unit, answers)
    assert [r.value for r in emitted if isinstance(r, Reading)] == expected
