"""Run a farm on its own event loop in a background thread (see ``simulator.loop_thread``).

Synchronous code (pytest tests using ``ModbusTcpClient``/``ModbusSerialClient``,
the demo's launcher, benchmarks) wants a farm that is simply *there* while it
works; leaving the ``with`` block closes every port and pseudo-terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from coldgate.simulator.clock import ScenarioClock
from coldgate.simulator.config import FarmConfig
from coldgate.simulator.farm import ModbusFarm, RtuEndpoint, RtuOverTcpEndpoint, TcpEndpoint
from coldgate.simulator.loop_thread import LoopThread
from coldgate.simulator.relay import RelayBoard


class FarmThread(LoopThread):
    """A :class:`ModbusFarm` serving ``tcp`` addresses, ``rtu`` pty lines and
    ``rtu_over_tcp`` addresses (RTU framing on TCP) from a thread.

    ::

        with FarmThread(default_farm(4), tcp=[("127.0.0.1", 0)], rtu=1) as running:
            ModbusTcpClient(running.tcp[0].host, port=running.tcp[0].port)
            ModbusSerialClient(running.rtu[0].device)
            running.farm.expected(unit, running.farm.clock.now())
    """

    what = "Modbus farm"

    def __init__(
        self,
        config: FarmConfig,
        *,
        tcp: Sequence[tuple[str, int]] = (),
        rtu: int = 0,
        rtu_over_tcp: Sequence[tuple[str, int]] = (),
        clock: ScenarioClock | None = None,
        start_timeout: float = 10.0,
        relays: Sequence[RelayBoard] = (),
    ) -> None:
        if not tcp and not rtu and not rtu_over_tcp:
            raise ValueError("serve at least one TCP address or one RTU line")
        self.farm = ModbusFarm(config, clock=clock, relays=relays)
        self.tcp: list[TcpEndpoint] = []
        self.rtu: list[RtuEndpoint] = []
        self.rtu_over_tcp: list[RtuOverTcpEndpoint] = []
        self._addresses = list(tcp)
        self._rtu_over_tcp_addresses = list(rtu_over_tcp)
        self._rtu_lines = rtu
        super().__init__("modbus-farm", start_timeout)

    async def _serve(self) -> None:
        for host, port in self._addresses:
            self.tcp.append(await self.farm.serve_tcp(host, port))
        for _ in range(self._rtu_lines):
            self.rtu.append(await self.farm.serve_rtu())
        for host, port in self._rtu_over_tcp_addresses:
            self.rtu_over_tcp.append(await self.farm.serve_rtu_over_tcp(host, port))

    async def _close(self) -> None:
        await self.farm.stop()
