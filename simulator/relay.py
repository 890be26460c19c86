"""A Modbus relay board, the kind that switches a siren or a stack light.

The gateway's local alarm writes one coil (function 05) on such a board; this
simulated board serves 8 coils over Modbus TCP and keeps every write it got,
so tests and the demo can see the alarm sound without a GPIO pin.  Coils have
their own table (pymodbus's non-shared ``SimDevice`` layout), as on real
relay boards.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from coldgate.simulator.servers import listening_port

COILS = 8


@dataclass(frozen=True)
class CoilWrite:
    monotonic: float
    coil: int
    value: bool


class RelayBoard:
    """``COILS`` coils on one unit id; every write is logged in order."""

    def __init__(self, unit: int = 1) -> None:
        self.unit = unit
        self.state = [False] * COILS
        self._writes: list[CoilWrite] = []
        self._lock = threading.Lock()
        self._server: ModbusTcpServer | None = None
        self.port = 0

    async def _action(
        self,
        function_code: int,
        _start_address: int,
        address: int,
        count: int,
        _registers: list[int],
        set_values: list[bool] | list[int] | None,
    ) -> None:
        if set_values is None or function_code not in (5, 15):
            return None
        now = time.monotonic()
        with self._lock:
            for offset, value in enumerate(set_values[:count]):
                self.state[address + offset] = bool(value)
                self._writes.append(CoilWrite(now, address + offset, bool(value)))
        return None

    def writes(self) -> list[CoilWrite]:
        with self._lock:
            return list(self._writes)

    def coil(self, address: int) -> bool:
        with self._lock:
            return self.state[address]

    def device(self) -> SimDevice:
        """The board as a pymodbus device, for its own server or on a farm's RS-485 line."""
        bits = [SimData(0, count=COILS, datatype=DataType.BITS)]
        words = [SimData(0, count=1, datatype=DataType.REGISTERS)]
        return SimDevice(id=self.unit, simdata=(bits, bits, words, words), action=self._action)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port."""
        self._server = ModbusTcpServer([self.device()], address=(host, port))
        await self._server.serve_forever(background=True)
        self.port = listening_port(self._server)
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()
            if server.reconnect_task:
                server.reconnect_task.cancel()
