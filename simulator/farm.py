"""A farm of simulated temperature/humidity loggers on Modbus TCP and RTU.

Built on pymodbus's simulator API (``SimDevice``/``SimData`` with an async
``action``), served by ``ModbusTcpServer``/``ModbusSerialServer`` started with
``serve_forever(background=True)`` rather than ``StartAsync*Server``: those keep
one global "active server" and block, while a farm runs several lines (TCP
ports, pseudo-terminals) in one event loop and stops them on its own.

Live values: each logger's registers are rewritten by its ``action`` from the
curve at the scenario time of the request, so what a client reads is exactly
``curve.sample(clock.now())`` at that moment, encoded by the logger's register
map.  Every reading taken is kept (see :meth:`ModbusFarm.served`) so tests can
compare a value with the curve at the precise instant it was served.

Faults beyond pymodbus's reach (silence, corrupted frames) go through the
server's ``trace_packet`` hook, see ``simulator.wire``.  An unknown unit id is
caught by a catch-all ``SimDevice(id=0)`` (pymodbus routes every id without a
device of its own to id 0) whose action raises ``NoSuchIdException``; with
``ignore_missing_devices=True`` pymodbus then sends nothing, which is what a
real RS-485 bus does.  Over TCP it replies exception 0x0B ("gateway target
failed to respond") by default, as a serial-to-Ethernet gateway would.
A logger whose probe has failed (``Behaviour.FAULT``) answers exception 4
(server device failure).  ``serve_rtu_over_tcp`` speaks RTU frames (CRC, no
MBAP header) over TCP, as a transparent serial-to-Ethernet converter does.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from coldgate.simulator.clock import ScenarioClock
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.curves import Behaviour, Sample
from coldgate.simulator.relay import RelayBoard
from coldgate.simulator.serialline import PtyLine
from coldgate.simulator.servers import listening_port
from coldgate.simulator.wire import WireFaults


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class RtuEndpoint:
    device: str  # what a client opens, e.g. /dev/pts/7

    def __str__(self) -> str:
        return f"rtu://{self.device}"


@dataclass(frozen=True)
class RtuOverTcpEndpoint:
    """A TCP port carrying raw RTU frames (a transparent serial-to-Ethernet converter)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"rtu+tcp://{self.host}:{self.port}"


Endpoint = TcpEndpoint | RtuEndpoint | RtuOverTcpEndpoint


@dataclass(frozen=True)
class ServedReading:
    """One reading the farm took to answer a request (delivered unless dropout/garbage)."""

    endpoint: str
    unit: int
    scenario_s: float
    sample: Sample


class _Line:
    """One server (a TCP port or a serial line) and what belongs to it."""

    def __init__(self, faults: WireFaults) -> None:
        self.faults = faults
        self.label = "starting"
        self.server: ModbusBaseServer | None = None
        self.pty: PtyLine | None = None


async def _unknown_unit(reply: bool, *_request: object) -> ExcCodes | None:
    if reply:
        return ExcCodes.GATEWAY_NO_RESPONSE
    raise NoSuchIdException("no logger with this unit id on the line")


class ModbusFarm:
    """Serves the loggers of a :class:`FarmConfig` on any number of TCP ports and RTU lines.

    Use from a running event loop::

        async with ModbusFarm(default_farm(4, speed=60)) as farm:
            tcp = await farm.serve_tcp("127.0.0.1", 0)
            rtu = await farm.serve_rtu()
            ...

    For synchronous code (tests, the demo) see ``simulator.background.FarmThread``.
    """

    def __init__(
        self,
        config: FarmConfig,
        *,
        clock: ScenarioClock | None = None,
        keep_served: int = 10_000,
        relays: Sequence[RelayBoard] = (),
    ) -> None:
        self.config = config
        # Relay boards sharing the loggers' lines, as a siren module on the cold room's RS-485 bus.
        self.relays = tuple(relays)
        self._own_clock = clock is None
        self.clock = clock or ScenarioClock(config.speed, start_at_s=config.start_at_s)
        self._curves = {spec.unit: spec.curve() for spec in config.loggers}
        self._specs = {spec.unit: spec for spec in config.loggers}
        self._served: deque[ServedReading] = deque(maxlen=keep_served)
        self._served_lock = threading.Lock()
        self._lines: list[_Line] = []
        self.endpoints: list[Endpoint] = []

    @property
    def loggers(self) -> tuple[LoggerSpec, ...]:
        return self.config.loggers

    def expected(self, unit: int, scenario_s: float) -> Sample:
        """What ``unit`` reports at ``scenario_s`` (values and behaviour), from its curve."""
        return self._curves[unit].sample(scenario_s)

    def expected_words(self, unit: int, scenario_s: float) -> list[int]:
        """The register words a read of the unit's map returns at ``scenario_s``."""
        sample = self.expected(unit, scenario_s)
        return self._specs[unit].map.words(sample.temperature_c, sample.humidity_rh)

    def served(self, unit: int | None = None) -> list[ServedReading]:
        """Readings taken so far (oldest first), optionally for one unit; thread-safe."""
        with self._served_lock:
            readings = list(self._served)
        return [r for r in readings if unit is None or r.unit == unit]

    def _verdict(self, unit: int) -> Behaviour | None:
        curve = self._curves.get(unit)
        return None if curve is None else curve.sample(self.clock.now()).behaviour

    async def _take_reading(
        self,
        line: _Line,
        unit: int,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        _values: object,
    ) -> ExcCodes | None:
        register_map = self._specs[unit].map
        if function_code != register_map.function_code:
            return ExcCodes.ILLEGAL_ADDRESS  # these registers live in the other table
        scenario_s = self.clock.now()
        sample = self._curves[unit].sample(scenario_s)
        line.faults.remember(unit, sample.behaviour)
        offset = register_map.first_address - start_address
        words = register_map.words(sample.temperature_c, sample.humidity_rh)
        registers[offset : offset + len(words)] = words
        with self._served_lock:
            self._served.append(ServedReading(line.label, unit, scenario_s, sample))
        if sample.behaviour is Behaviour.FAULT:
            return ExcCodes.DEVICE_FAILURE
        return None

    def _devices(self, line: _Line, unknown_unit_reply: bool) -> list[SimDevice]:
        devices = []
        for spec in self.config.loggers:
            register_map = spec.map
            block = SimData(
                register_map.first_address,
                count=register_map.count,
                datatype=DataType.REGISTERS,
                readonly=True,
            )
            action = partial(self._take_reading, line, spec.unit)
            devices.append(SimDevice(id=spec.unit, simdata=[block], action=action))
        # Covers every address so the action (not an address check) decides the answer.
        devices.extend(relay.device() for relay in self.relays)
        everything = SimData(0, count=65536, datatype=DataType.REGISTERS)
        devices.append(
            SimDevice(id=0, simdata=[everything], action=partial(_unknown_unit, unknown_unit_reply))
        )
        return devices

    def _new_line(self, rtu: bool) -> _Line:
        seed = sum(spec.seed for spec in self.config.loggers) + 7919 * len(self._lines)
        if not self._lines and self._own_clock:
            self.clock.restart()  # the scenario starts when the first line opens
        line = _Line(WireFaults(rtu=rtu, verdict=self._verdict, seed=seed))
        self._lines.append(line)
        return line

    async def serve_tcp(
        self, host: str = "127.0.0.1", port: int = 0, *, unknown_unit_reply: bool = True
    ) -> TcpEndpoint:
        """Listen on ``host:port`` (0 = any free port) and return the actual endpoint."""
        line = self._new_line(rtu=False)
        server = ModbusTcpServer(
            self._devices(line, unknown_unit_reply),
            address=(host, port),
            ignore_missing_devices=True,
            trace_packet=line.faults,
        )
        await self._start(line, server, f"tcp://{host}:{port}")
        endpoint = TcpEndpoint(host, listening_port(server))
        line.label = str(endpoint)
        self.endpoints.append(endpoint)
        return endpoint

    async def serve_rtu_over_tcp(self, host: str = "127.0.0.1", port: int = 0) -> RtuOverTcpEndpoint:
        """Listen on ``host:port`` with RTU framing, like a serial-to-Ethernet converter.

        Behind a transparent converter there is an RS-485 bus, so an unknown unit is
        silent and garbage is a bad CRC, exactly as on :meth:`serve_rtu`.
        """
        line = self._new_line(rtu=True)
        server = ModbusTcpServer(
            self._devices(line, unknown_unit_reply=False),
            address=(host, port),
            framer=FramerType.RTU,
            ignore_missing_devices=True,
            trace_packet=line.faults,
        )
        await self._start(line, server, f"rtu+tcp://{host}:{port}")
        endpoint = RtuOverTcpEndpoint(host, listening_port(server))
        line.label = str(endpoint)
        self.endpoints.append(endpoint)
        return endpoint

    async def serve_rtu(self, port: str | None = None, *, baudrate: int = 19200) -> RtuEndpoint:
        """Serve RTU on a new pseudo-terminal line (or on a real serial ``port``).

        Returns the device a client opens.  On a pseudo-terminal the baud rate is
        ignored; on a real RS-485 adapter it matters.
        """
        line = self._new_line(rtu=True)
        if port is None:
            line.pty = PtyLine()
            line.pty.attach(asyncio.get_running_loop())
        server = ModbusSerialServer(
            self._devices(line, unknown_unit_reply=False),
            framer=FramerType.RTU,
            port=line.pty.server_device if line.pty else port,
            baudrate=baudrate,
            ignore_missing_devices=True,
            trace_packet=line.faults,
        )
        client_device = line.pty.client_device if line.pty else port
        await self._start(line, server, f"rtu://{client_device}")
        endpoint = RtuEndpoint(str(client_device))
        line.label = str(endpoint)
        self.endpoints.append(endpoint)
        return endpoint

    async def _start(self, line: _Line, server: ModbusBaseServer, where: str) -> None:
        line.server = server
        try:
            await server.serve_forever(background=True)
        except RuntimeError as exc:
            await self._close_line(line)
            self._lines.remove(line)
            raise OSError(f"cannot serve Modbus on {where}: {exc}") from exc

    async def _close_line(self, line: _Line) -> None:
        server, line.server = line.server, None
        if server is not None:
            await server.shutdown()
            if server.reconnect_task:
                server.reconnect_task.cancel()
            if ModbusBaseServer.active_server is server:
                ModbusBaseServer.active_server = None
        if line.pty is not None:
            line.pty.close()
            line.pty = None

    async def stop(self) -> None:
        """Close every line: ports are free and pty descriptors closed on return."""
        lines, self._lines = self._lines, []
        for line in lines:
            await self._close_line(line)
        self.endpoints = []
        await asyncio.sleep(0)  # let the transports run their close callbacks

    async def __aenter__(self) -> ModbusFarm:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()
