"""The logger farm seen through plain pymodbus clients, over TCP and over RTU on a pty."""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from pymodbus.client import (
    AsyncModbusSerialClient,
    AsyncModbusTcpClient,
    ModbusSerialClient,
    ModbusTcpClient,
)
from pymodbus.exceptions import ModbusIOException
from pymodbus.framer import FramerRTU, FramerType

from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.curves import Behaviour
from coldgate.simulator.farm import Endpoint, ModbusFarm, RtuEndpoint, RtuOverTcpEndpoint, TcpEndpoint
from tests.rig.modbus import RunningFarm, reading_window, rig_farm
from tests.rig.ports import wait_port_closed

pytestmark = pytest.mark.timeout(30)

QUANTUM = 0.05 + 1e-6  # registers hold tenths, rounded

#: Timeout for requests that should be answered: generous, so a loaded CI machine (the farm
#: answers from a thread of this process) never turns a slow answer into a failure.
ANSWER_TIMEOUT_S = 1.0
#: How long to wait for requests whose silence (or garbage) is what the test is about.
SILENCE_TIMEOUT_S = 0.3


@pytest.fixture(params=["tcp", "rtu"])
def farm(request) -> RunningFarm:
    """The rig farm, once over each transport."""
    return request.getfixturevalue(f"modbus_{request.param}_farm")


@contextmanager
def client_for(
    endpoint: Endpoint,
    timeout: float = ANSWER_TIMEOUT_S,
    trace_packet: Callable[[bool, bytes], bytes] | None = None,
) -> Iterator[ModbusTcpClient | ModbusSerialClient]:
    """A plain pymodbus client, as the gateway would open one (no retries: tests want the first answer)."""
    client: ModbusTcpClient | ModbusSerialClient
    if isinstance(endpoint, TcpEndpoint):
        client = ModbusTcpClient(
            endpoint.host, port=endpoint.port, timeout=timeout, retries=0, trace_packet=trace_packet
        )
    else:
        client = ModbusSerialClient(
            endpoint.device,
            framer=FramerType.RTU,
            baudrate=19200,
            timeout=timeout,
            retries=0,
            trace_packet=trace_packet,
        )
    assert client.connect()
    try:
        yield client
    finally:
        client.close()


@contextmanager
def expecting_silence(client: ModbusTcpClient | ModbusSerialClient) -> Iterator[None]:
    """Requests inside wait only SILENCE_TIMEOUT_S, the answered ones around them keep the
    client's timeout.  A sync pymodbus client reads ``comm_params.timeout_connect`` at each
    receive; should that change, these waits get longer, not wrong.
    """
    params = client.comm_params
    saved, params.timeout_connect = params.timeout_connect, SILENCE_TIMEOUT_S
    try:
        yield
    finally:
        params.timeout_connect = saved


def int16(word: int) -> int:
    return struct.unpack(">h", struct.pack(">H", word))[0]


def assert_on_curve(farm: ModbusFarm, unit: int, t0: float, t1: float, temperature: float, humidity: float):
    low, high = reading_window(farm, unit, t0, t1)
    assert low.temperature_c - QUANTUM <= temperature <= high.temperature_c + QUANTUM
    assert low.humidity_rh - QUANTUM <= humidity <= high.humidity_rh + QUANTUM


def assert_served_exactly(farm: ModbusFarm, unit: int, t0: float, t1: float, registers: list[int]):
    """The words read are the map's encoding of the curve at the instant the farm served them."""
    (served,) = [r for r in farm.served(unit) if t0 <= r.scenario_s <= t1]
    assert registers == farm.expected_words(unit, served.scenario_s)


def test_plain_client_reads_both_register_maps(farm: RunningFarm):
    clock = farm.farm.clock
    with client_for(farm.endpoint) as client:
        # xy-md02: function 04, input registers 0x0001 temperature, 0x0002 humidity
        t0 = clock.now()
        xy = client.read_input_registers(0x0001, count=2, device_id=1)
        t1 = clock.now()
        assert not xy.isError(), xy
        temperature, humidity = int16(xy.registers[0]) / 10, xy.registers[1] / 10
        assert 4.8 <= temperature <= 5.2 and 44 <= humidity <= 46
        assert_on_curve(farm.farm, 1, t0, t1, temperature, humidity)
        assert_served_exactly(farm.farm, 1, t0, t1, xy.registers)

        # rs485-th-holding: function 03, holding registers 0x0000 humidity, 0x0001 temperature
        t0 = clock.now()
        holding = client.read_holding_registers(0x0000, count=2, device_id=2)
        t1 = clock.now()
        assert not holding.isError(), holding
        humidity, temperature = holding.registers[0] / 10, int16(holding.registers[1]) / 10
        assert -20.5 <= temperature <= -19.5, "a freezer: negative, two's complement"
        assert holding.registers[1] >= 0x8000
        assert_on_curve(farm.farm, 2, t0, t1, temperature, humidity)
        assert_served_exactly(farm.farm, 2, t0, t1, holding.registers)


def test_async_client_reads_both_maps_over_tcp(modbus_tcp_farm: RunningFarm):
    endpoint = modbus_tcp_farm.endpoint

    async def poll() -> tuple[list[int], list[int]]:
        client = AsyncModbusTcpClient(endpoint.host, port=endpoint.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            xy = await client.read_input_registers(1, count=2, device_id=1)
            holding = await client.read_holding_registers(0, count=2, device_id=2)
        finally:
            client.close()
        return xy.registers, holding.registers

    xy, holding = asyncio.run(poll())
    assert 4.8 <= int16(xy[0]) / 10 <= 5.2
    assert -20.5 <= int16(holding[1]) / 10 <= -19.5


def test_registers_outside_the_map_are_an_illegal_address(farm: RunningFarm):
    with client_for(farm.endpoint) as client:
        assert client.read_holding_registers(1, count=2, device_id=1).exception_code == 2
        assert client.read_input_registers(0, count=2, device_id=2).exception_code == 2
        assert client.read_input_registers(0, count=3, device_id=1).exception_code == 2
        assert client.write_register(0, 1, device_id=2).exception_code == 2, "read-only"


def test_a_single_register_can_be_read_on_its_own(farm: RunningFarm):
    with client_for(farm.endpoint) as client:
        humidity = client.read_input_registers(0x0002, count=1, device_id=1).registers[0] / 10
        temperature = int16(client.read_holding_registers(0x0001, count=1, device_id=2).registers[0]) / 10
    assert 44 <= humidity <= 46
    assert -20.5 <= temperature <= -19.5


def test_dropout_unit_times_out_while_the_others_answer(farm: RunningFarm):
    with client_for(farm.endpoint) as client:
        with expecting_silence(client):
            started = time.monotonic()
            with pytest.raises(ModbusIOException, match="No response"):
                client.read_input_registers(1, count=2, device_id=3)
            assert time.monotonic() - started >= SILENCE_TIMEOUT_S - 0.05, "silence, not a quick error"
            with pytest.raises(ModbusIOException):
                client.read_holding_registers(1, count=2, device_id=3)  # silent for every request
        assert not client.read_input_registers(1, count=2, device_id=1).isError()
        assert not client.read_holding_registers(0, count=2, device_id=2).isError()


def test_unknown_unit_is_silent_on_rtu(modbus_rtu_farm: RunningFarm):
    with client_for(modbus_rtu_farm.endpoint) as client:
        with expecting_silence(client), pytest.raises(ModbusIOException, match="No response"):
            client.read_input_registers(1, count=2, device_id=99)
        assert not client.read_input_registers(1, count=2, device_id=1).isError()


def test_unknown_unit_on_tcp_gets_gateway_no_response(modbus_tcp_farm: RunningFarm):
    with client_for(modbus_tcp_farm.endpoint) as client:
        assert client.read_input_registers(1, count=2, device_id=99).exception_code == 0x0B


def test_garbage_reaches_the_client_but_never_as_a_value(farm: RunningFarm):
    received: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if not sending:
            received.append(data)
        return data

    with client_for(farm.endpoint, trace_packet=trace) as client:
        for _ in range(3):
            received.clear()
            with expecting_silence(client), pytest.raises(ModbusIOException):
                client.read_holding_registers(0, count=2, device_id=4)
            assert received and received[-1], "bytes arrived: garbage, not silence"
            frame = received[-1]
            if isinstance(farm.endpoint, RtuEndpoint):
                assert not FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big"))
            else:
                protocol_id, length = struct.unpack(">HH", frame[2:6])
                assert protocol_id != 0 or length + 6 > len(frame)
        assert not client.read_input_registers(1, count=2, device_id=1).isError(), "line recovers"


def test_a_failed_probe_answers_exception_4_then_recovers():
    """A logger whose probe broke still answers, with exception 4 (server device failure)."""
    spec = LoggerSpec(1, "xy-md02", "probe_failure", seed=1, params={"start_s": 0.0, "duration_s": 60.0})
    # The fault lasts two real seconds from the farm's start: the first read lands inside
    # it even on a loaded machine, and the test waits no longer than that for the second.
    config = FarmConfig((spec,), speed=30.0)
    with FarmThread(config, tcp=[("127.0.0.1", 0)]) as running:
        with client_for(running.tcp[0]) as client:
            assert client.read_input_registers(1, count=2, device_id=1).exception_code == 4
            while running.farm.clock.now() < 61.0:
                time.sleep(0.05)
            assert not client.read_input_registers(1, count=2, device_id=1).isError()
        behaviours = [r.sample.behaviour for r in running.farm.served(1)]
    assert behaviours == [Behaviour.FAULT, Behaviour.NORMAL]


def test_rtu_over_tcp_carries_rtu_frames_like_a_converter():
    received: list[bytes] = []

    def trace(sending: bool, data: bytes) -> bytes:
        if not sending:
            received.append(data)
        return data

    async def poll(endpoint: RtuOverTcpEndpoint) -> tuple[list[int], bool]:
        client = AsyncModbusTcpClient(
            endpoint.host,
            port=endpoint.port,
            framer=FramerType.RTU,
            timeout=ANSWER_TIMEOUT_S,
            retries=0,
            trace_packet=trace,
        )
        assert await client.connect()
        try:
            xy = await client.read_input_registers(1, count=2, device_id=1)
            try:
                await client.read_input_registers(1, count=2, device_id=99)
                silent = False
            except ModbusIOException:
                silent = True
        finally:
            client.close()
        return xy.registers, silent

    with FarmThread(rig_farm(), rtu_over_tcp=[("127.0.0.1", 0)]) as running:
        endpoint = running.rtu_over_tcp[0]
        assert str(endpoint).startswith("rtu+tcp://127.0.0.1:")
        registers, silent = asyncio.run(poll(endpoint))
    assert 4.8 <= int16(registers[0]) / 10 <= 5.2
    frame = received[0]
    assert frame[0] == 1 and FramerRTU.check_CRC(frame[:-2], int.from_bytes(frame[-2:], "big")), "no MBAP"
    assert silent, "behind a converter an unknown unit is silent, as on the bus"


def test_stuck_unit_repeats_its_frozen_value(farm: RunningFarm):
    frozen = farm.farm.expected_words(5, 0.0)
    with client_for(farm.endpoint) as client:
        for _ in range(3):
            assert client.read_input_registers(1, count=2, device_id=5).registers == frozen
    assert {r.sample.behaviour for r in farm.farm.served(5)} == {Behaviour.STUCK}


@dataclass(frozen=True)
class Point:
    t0: float  # scenario time just before the request
    t1: float  # ... and just after the answer
    temperature: float
    humidity: float


def sample_curve(
    running: FarmThread, endpoint: Endpoint, spec: LoggerSpec, until_s: float, above_c: float
) -> list[Point]:
    """Poll one logger until the scenario passes ``until_s`` and a reading exceeds ``above_c``.

    Stopping on the reading, not only on time, keeps the test honest on a slow machine
    where the gap between two polls can be long in scenario time.
    """
    clock, register_map, points = running.farm.clock, spec.map, []
    read = "read_input_registers" if register_map.function_code == 4 else "read_holding_registers"
    with client_for(endpoint, timeout=1.0) as client:
        while clock.now() < until_s or not any(p.temperature > above_c for p in points):
            t0 = clock.now()
            response = getattr(client, read)(
                register_map.first_address, count=register_map.count, device_id=spec.unit
            )
            t1 = clock.now()
            temperature, humidity = register_map.decode(response.registers)
            points.append(Point(t0, t1, temperature, humidity))
            time.sleep(0.02)
    return points


@pytest.mark.parametrize(
    ("transport", "speed", "params"),
    [
        ("tcp", 60.0, {"failure_s": 60.0, "tau_s": 600.0}),  # crosses 8 °C ~3 real seconds in
        ("rtu", 600.0, {}),  # the default failure: 15 min, then ~27 min to cross 8 °C
    ],
)
def test_compressed_compressor_failure_follows_its_curve(transport, speed, params):
    spec = LoggerSpec(1, "xy-md02", "compressor_failure", seed=9, params=params)
    curve = spec.curve()
    crossing = curve.crossing_time(8.0)
    assert crossing is not None
    config = FarmConfig((spec,), speed=speed)
    tcp = [("127.0.0.1", 0)] if transport == "tcp" else []
    with FarmThread(config, tcp=tcp, rtu=int(transport == "rtu")) as running:
        endpoint = (running.tcp or running.rtu)[0]
        points = sample_curve(running, endpoint, spec, until_s=crossing, above_c=8.0)
        for point in points:
            assert_on_curve(running.farm, 1, point.t0, point.t1, point.temperature, point.humidity)
    assert len(points) > 40
    steady = [p for p in points if p.t1 < curve.failure_s]
    assert steady and all(abs(p.temperature - 5.0) <= 0.15 for p in steady)
    warming = [p.temperature for p in points if p.t0 >= curve.failure_s]
    assert all(b >= a for a, b in itertools.pairwise(warming)), "monotonic after the failure"
    # The register first shows 8.1 once the room passes 8.05 °C (8.05 rounds up): the two
    # polls either side of that moment must bracket the time Newton's law gives.
    shows_above = curve.crossing_time(8.05)
    first = next(i for i, p in enumerate(points) if p.temperature > 8.0)
    assert first > 0, "the excursion starts during the sampling, not before"
    assert points[first - 1].t0 <= shows_above <= points[first].t1


def test_dropout_window_over_the_wire():
    """Answers, silent during the window, answers again; each answer matches the farm's log."""
    spec = LoggerSpec(1, "rs485-th-holding", "dropout", seed=1, params={"start_s": 60.0, "duration_s": 60.0})
    config = FarmConfig((spec,), speed=60.0)  # silent from 1 s to 2 s real time
    answered: list[bool] = []
    with FarmThread(config, rtu=1) as running, client_for(running.rtu[0]) as client:
        # Half a real second past the window, and on until an answer: a request sent just
        # before the window closed waits out its whole timeout.
        while running.farm.clock.now() < 150.0 or not (answered and answered[-1]):
            try:
                client.read_holding_registers(0, count=2, device_id=1)
                answered.append(True)
            except ModbusIOException:
                answered.append(False)
            time.sleep(0.02)
        served = running.farm.served(1)
    assert answered == [r.sample.behaviour is Behaviour.NORMAL for r in served]
    pattern = "".join("a" if a else "s" for a in answered)
    assert pattern.startswith("a") and pattern.endswith("a") and "s" in pattern
    assert pattern.strip("a").strip("s") == "", "exactly one silent stretch"


def test_two_farms_share_one_event_loop_and_clean_up():
    fds_before = set(os.listdir("/proc/self/fd"))

    async def main() -> TcpEndpoint:
        room = ModbusFarm(FarmConfig((LoggerSpec(1, "xy-md02", seed=1),)))
        freezer = ModbusFarm(FarmConfig((LoggerSpec(7, "rs485-th-holding", room="freezer"),), speed=60))
        async with room, freezer:
            tcp = await room.serve_tcp("127.0.0.1", 0)
            rtu = await freezer.serve_rtu()
            tcp_client = AsyncModbusTcpClient(tcp.host, port=tcp.port, timeout=1, retries=0)
            rtu_client = AsyncModbusSerialClient(rtu.device, framer=FramerType.RTU, timeout=1, retries=0)
            assert await tcp_client.connect() and await rtu_client.connect()
            try:
                xy, holding = await asyncio.gather(
                    tcp_client.read_input_registers(1, count=2, device_id=1),
                    rtu_client.read_holding_registers(0, count=2, device_id=7),
                )
            finally:
                tcp_client.close()
                rtu_client.close()
            assert 4.8 <= int16(xy.registers[0]) / 10 <= 5.2
            assert int16(holding.registers[1]) / 10 < -19
        return tcp

    tcp = asyncio.run(main())
    wait_port_closed(tcp.host, tcp.port, timeout=5)
    assert set(os.listdir("/proc/self/fd")) - fds_before == set()


def test_a_taken_port_is_a_clear_error(modbus_tcp_farm: RunningFarm):
    endpoint = modbus_tcp_farm.endpoint

    async def main() -> None:
        async with ModbusFarm(FarmConfig((LoggerSpec(1),))) as farm:
            await farm.serve_tcp(endpoint.host, endpoint.port)

    with pytest.raises(OSError, match=f"cannot serve Modbus on tcp://127.0.0.1:{endpoint.port}"):
        asyncio.run(main())
