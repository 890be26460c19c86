"""One Modbus line's connection: a pymodbus async client, opened lazily, reopened after errors.

Each request is one attempt (pymodbus ``retries=0``): the line's scheduler
decides about retries, because only it knows whether another unit is due.
What a failed attempt was is told apart here, since the reason goes into
every error reading:

- silence: pymodbus times out (``ModbusIOException``);
- garbage: pymodbus drops a frame with a bad CRC or MBAP header without a word
  and times out too, so the client's ``trace_packet`` hook notes whether any
  byte arrived during the attempt: bytes but no frame means garbage;
- an exception response: the device answered, e.g. 4 (device failure);
- the port or TCP connection cannot be opened (``connect()`` returns False;
  the OSError behind it is caught on the way, for the reason text).

pymodbus would reconnect by itself and close a TCP connection after
``retries + 3`` unanswered requests; both are switched off, because on a line
shared by many units one dead unit must not drop the connection of the others.
A TCP connection is closed here after ``RECONNECT_AFTER`` timeouts in a row
with no answer from any unit (a half-open socket looks exactly like that).

The inter-frame gap is kept only on a local RS-485 port: behind a serial-to-
Ethernet converter the converter times the bus itself, and we cannot see when
its line fell silent anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from coldgate.gateway.sensors.config import ModbusLine, RtuLine, RtuOverTcpLine, TcpLine
from coldgate.gateway.sensors.decode import ReadBlock
from coldgate.gateway.sensors.health import Failure

Client = AsyncModbusTcpClient | AsyncModbusSerialClient

RECONNECT_AFTER = 3

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
#: Exception codes that mean "no answer from the unit": a TCP gateway's way of saying silence.
SILENT_EXCEPTIONS = frozenset({10, 11})


def quiet_pymodbus_logging() -> None:
    """pymodbus logs every timeout at ERROR with a hex dump of the last frames; each of those
    is already an error reading with its reason, so keep only its critical messages.  An
    operator who sets the ``pymodbus`` logger's level explicitly keeps that level."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


class AttemptFailed(Exception):
    """One request got no usable answer; ``failure`` says how, ``reason`` says it for people."""

    def __init__(self, failure: Failure, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.code = code


class ModbusLink:
    """Requests on one line, strictly one at a time, with the line's inter-frame gap."""

    def __init__(self, line: ModbusLine) -> None:
        quiet_pymodbus_logging()
        self.line = line
        self.gap_s = line.frame_gap_s if isinstance(line, RtuLine) else 0.0
        self.rtu_framing = not isinstance(line, TcpLine)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._bytes_in = False
        self._quiet_since = 0.0  # monotonic time the line last fell silent
        self._timeouts = 0
        self._connect_error: OSError | None = None
        self.requests = 0

    def describe(self) -> str:
        line = self.line
        if isinstance(line, RtuLine):
            return f"{line.port} ({line.baudrate} {line.bytesize}{line.parity}{line.stopbits})"
        return f"{line.host}:{line.port}" + (" (RTU over TCP)" if isinstance(line, RtuOverTcpLine) else "")

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending and data:
            self._bytes_in = True
        return data

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        line = self.line
        common: dict[str, Any] = {
            "timeout": line.timeout_s,
            "retries": 0,
            "reconnect_delay": 0,  # we reconnect ourselves, lazily, at the next poll
            "trace_packet": self._trace,
        }
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if isinstance(line, RtuLine):
            client = AsyncModbusSerialClient(
                line.port,
                framer=FramerType.RTU,
                baudrate=line.baudrate,
                bytesize=line.bytesize,
                parity=line.parity,
                stopbits=line.stopbits,
                **common,
            )
        else:
            framer = FramerType.RTU if isinstance(line, RtuOverTcpLine) else FramerType.SOCKET
            client = AsyncModbusTcpClient(line.host, port=line.port, framer=framer, **common)
        client.set_max_no_responses(1 << 30)  # never let pymodbus drop the connection on timeouts
        self._wrap_connect(client)
        return client

    def _wrap_connect(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
        # pymodbus's connect() swallows the OSError and returns False; keep it for the reason.
        create: Callable[[], Awaitable[Any]] | None = getattr(client.ctx, "call_create", None)
        if create is None:  # pragma: no cover - a pymodbus without this attribute
            return

        async def recording_create() -> Any:
            try:
                return await create()
            except OSError as exc:
                self._connect_error = exc
                raise

        client.ctx.call_create = recording_create

    def _set_timeout(self, timeout_s: float) -> None:
        # One client serves units with different timeouts: pymodbus reads this per request.
        assert self._client is not None
        self._client.ctx.comm_params.timeout_connect = timeout_s

    async def _connected(self, timeout_s: float) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._new_client()
        client = self._client
        if client.connected:
            return client
        self._connect_error = None
        self._set_timeout(timeout_s)
        if not await client.connect():
            client.close()
            raise AttemptFailed(Failure.CONNECTION, self._connect_reason(timeout_s))
        self._quiet_since = time.monotonic()
        return client

    def _connect_reason(self, timeout_s: float) -> str:
        exc, where = self._connect_error, self.describe()
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {where}"
        if exc is None or isinstance(exc, TimeoutError):
            return f"no connection to {where} within {timeout_s:g} s"
        # pyserial's SerialException repeats the path; the errno's text is what people need.
        why = os.strerror(exc.errno) if isinstance(exc.errno, int) else str(exc)
        return f"cannot open {where}: {why}"

    async def _request(self, timeout_s: float, send: Callable[[Client], Awaitable[Any]]) -> Any:
        """One request on the line, keeping the inter-frame gap; raises AttemptFailed, never
        anything else but cancellation."""
        try:
            client = self._client
            if client is None or not client.connected:
                client = await self._connected(timeout_s)
            if self.gap_s:
                wait = self._quiet_since + self.gap_s - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._set_timeout(timeout_s)
            self._bytes_in = False
            self.requests += 1
            try:
                response = await send(client)
            finally:
                self._quiet_since = time.monotonic()
        except AttemptFailed:
            raise
        except ModbusException as exc:
            raise self._no_answer(timeout_s, exc) from None
        except OSError as exc:
            self.close()
            raise AttemptFailed(Failure.CONNECTION, f"{self.describe()}: {exc.strerror or exc}") from None
        self._timeouts = 0
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            failure = Failure.TIMEOUT if code in SILENT_EXCEPTIONS else Failure.EXCEPTION
            raise AttemptFailed(failure, f"Modbus exception {code} ({name})", code)
        return response

    async def read(self, unit: int, block: ReadBlock, timeout_s: float) -> list[int]:
        """One request for ``block`` from ``unit``; raises AttemptFailed."""

        def send(client: Client) -> Awaitable[Any]:
            call = client.read_input_registers if block.function_code == 4 else client.read_holding_registers
            return call(block.address, count=block.count, device_id=unit)

        return self._registers(await self._request(timeout_s, send), block)

    async def write_coil(self, unit: int, coil: int, value: bool, timeout_s: float) -> None:
        """Function 05 to ``unit`` (a relay board on this line); raises AttemptFailed."""
        await self._request(timeout_s, lambda client: client.write_coil(coil, value, device_id=unit))

    def _no_answer(self, timeout_s: float, exc: ModbusException) -> AttemptFailed:
        if self._client is not None and not self._client.connected:
            return AttemptFailed(Failure.CONNECTION, f"connection to {self.describe()} lost")
        if self._bytes_in:  # the connection carries bytes: not half-open
            self._timeouts = 0
            what = "CRC error / garbage frame" if self.rtu_framing else "malformed Modbus TCP frame"
            return AttemptFailed(Failure.GARBAGE, what)
        self._timeouts += 1
        if self._timeouts >= RECONNECT_AFTER and not isinstance(self.line, RtuLine):
            self.close()  # nobody on this connection answers: it may be half-open
        return AttemptFailed(Failure.TIMEOUT, f"timeout after {timeout_s:g} s")

    @staticmethod
    def _registers(response: ModbusPDU, block: ReadBlock) -> list[int]:
        registers = list(response.registers)
        if len(registers) < block.count:
            raise AttemptFailed(Failure.GARBAGE, f"short answer: {len(registers)} of {block.count} registers")
        return registers

    def close(self) -> None:
        self._timeouts = 0
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
