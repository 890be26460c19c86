"""Run a farm on its own event loop in a background thread.

Synchronous code (pytest tests using ``ModbusTcpClient``/``ModbusSerialClient``,
the demo's launcher, benchmarks) wants a farm that is simply *there* while it
works; this gives it one and guarantees that leaving the ``with`` block closes
every port and pseudo-terminal before returning.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import TracebackType

from simulator.clock import ScenarioClock
from simulator.config import FarmConfig
from simulator.farm import ModbusFarm, RtuEndpoint, RtuOverTcpEndpoint, TcpEndpoint
from simulator.relay import RelayBoard


class FarmThread:
    """A :class:`ModbusFarm` serving ``tcp`` addresses, ``rtu`` pty lines and
    ``rtu_over_tcp`` addresses (RTU framing on TCP) from a thread.

    ::

        with FarmThread(default_farm(4), tcp=[("127.0.0.1", 0)], rtu=1) as running:
            ModbusTcpClient(running.tcp[0].host, port=running.tcp[0].port)
            ModbusSerialClient(running.rtu[0].device)
            running.farm.expected(unit, running.farm.clock.now())
    """

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
        self._start_timeout = start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="modbus-farm", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the thread that starts or stops the farm
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            for host, port in self._addresses:
                self.tcp.append(await self.farm.serve_tcp(host, port))
            for _ in range(self._rtu_lines):
                self.rtu.append(await self.farm.serve_rtu())
            for host, port in self._rtu_over_tcp_addresses:
                self.rtu_over_tcp.append(await self.farm.serve_rtu_over_tcp(host, port))
            self._ready.set()
            await self._stop.wait()
        finally:
            await self.farm.stop()

    def start(self) -> FarmThread:
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            raise TimeoutError(f"Modbus farm did not start within {self._start_timeout}s")
        if self._error is not None:
            self._thread.join()
            error, self._error = self._error, None
            raise RuntimeError(f"Modbus farm failed to start: {error}") from error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving; on return every port and pty of the farm is closed."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"Modbus farm did not stop within {timeout}s")
        if self._error is not None:
            error, self._error = self._error, None
            raise RuntimeError(f"Modbus farm failed while serving: {error}") from error

    def __enter__(self) -> FarmThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
