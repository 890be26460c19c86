"""What the local alarm switches: a Modbus relay coil and/or a local command.

Both work with the network down: the relay board sits on the site's own
RS-485 line or LAN, and the command runs on the Pi (a buzzer on a GPIO pin via
``gpioset``, an SMS modem script, ``systemd-cat``...).  An output that fails is
reported and retried on the next refresh; it never stops the gateway or the
other outputs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType

from coldgate.gateway.alarm import AlarmState
from coldgate.gateway.sensors.config import ModbusLine, RtuLine, RtuOverTcpLine

log = logging.getLogger(__name__)

CoilWriter = Callable[[int, int, bool], Awaitable[None]]
"""``await write(unit, coil, value)``; raises on any failure."""


class AlarmOutputError(RuntimeError):
    """An output could not be switched; the message says which and why."""


class AlarmOutput(Protocol):
    name: str

    async def drive(self, sounding: bool, state: AlarmState) -> None:
        """Bring the output to ``sounding``; raise AlarmOutputError on failure."""
        ...


class CoilOutput:
    """A relay coil.  With ``fail_safe`` the coil is held on while all is well, so a
    dead Pi, a cut cable or a power loss also drops the relay and sounds the alarm."""

    def __init__(self, write: CoilWriter, unit: int, coil: int, *, fail_safe: bool = False) -> None:
        self.name = f"relay unit {unit} coil {coil}"
        self._write = write
        self.unit = unit
        self.coil = coil
        self.fail_safe = fail_safe

    async def drive(self, sounding: bool, state: AlarmState) -> None:
        value = not sounding if self.fail_safe else sounding
        try:
            await self._write(self.unit, self.coil, value)
        except AlarmOutputError:
            raise
        except Exception as exc:  # a bus error of the line poller, a pymodbus exception, a socket error
            raise AlarmOutputError(f"{self.name}: {exc}") from exc


class CommandOutput:
    """Runs ``argv`` (no shell) with ``COLDGATE_ALARM=on|off`` and the open alert ids."""

    def __init__(self, argv: Sequence[str], timeout_s: float = 10.0) -> None:
        self.name = f"command {argv[0]}"
        self.argv = list(argv)
        self.timeout_s = timeout_s

    async def drive(self, sounding: bool, state: AlarmState) -> None:
        env = {
            **os.environ,
            "COLDGATE_ALARM": "on" if sounding else "off",
            "COLDGATE_ALARM_ACTIVE": "1" if state.active else "0",
            "COLDGATE_ALARM_ALERTS": ",".join(sorted(state.alerts)),
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise AlarmOutputError(f"{self.name}: cannot start: {exc}") from exc
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AlarmOutputError(f"{self.name}: no exit after {self.timeout_s:g} s, killed") from None
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip()[-200:]
            raise AlarmOutputError(f"{self.name}: exited {proc.returncode}: {tail}")


class ModbusCoilWriter:
    """A relay board reached over its own Modbus connection.

    For a line that loggers share, the app must hand the write to that line's
    poller instead (one request at a time per bus); this writer is for a relay
    on a line of its own or on a TCP/RTU-over-TCP connection.
    """

    def __init__(self, line: ModbusLine) -> None:
        self.line = line
        if isinstance(line, RtuLine):
            self._client: AsyncModbusSerialClient | AsyncModbusTcpClient = AsyncModbusSerialClient(
                line.port,
                framer=FramerType.RTU,
                baudrate=line.baudrate,
                parity=line.parity,
                stopbits=line.stopbits,
                bytesize=line.bytesize,
                timeout=line.timeout_s,
                retries=1,
            )
        else:
            framer = FramerType.RTU if isinstance(line, RtuOverTcpLine) else FramerType.SOCKET
            self._client = AsyncModbusTcpClient(
                line.host, port=line.port, framer=framer, timeout=line.timeout_s, retries=1
            )
        self._lock = asyncio.Lock()

    async def __call__(self, unit: int, coil: int, value: bool) -> None:
        async with self._lock:
            if not self._client.connected and not await self._client.connect():
                raise AlarmOutputError(f"relay on line {self.line.id}: cannot connect")
            response = await self._client.write_coil(coil, value, device_id=unit)
            if response.isError():
                code = getattr(response, "exception_code", "?")
                raise AlarmOutputError(f"relay on line {self.line.id}: Modbus exception {code}")

    def close(self) -> None:
        self._client.close()


class AlarmDriver:
    """Keeps every output in step with the alarm state.

    Writes on every change and again every ``refresh_s``: a relay board that
    lost power comes back with its coils off, and a missed write must heal.
    """

    def __init__(self, outputs: Sequence[AlarmOutput], refresh_s: float = 30.0) -> None:
        self.outputs = list(outputs)
        seen: dict[str, int] = {}
        for output in self.outputs:  # errors are keyed by name: make names unique
            seen[output.name] = seen.get(output.name, 0) + 1
            if seen[output.name] > 1:
                output.name = f"{output.name} #{seen[output.name]}"
        self.refresh_s = refresh_s
        self._lock = asyncio.Lock()  # the alarm loop and an operator's silence may both drive
        self.errors: dict[str, str] = {}
        self._applied: dict[str, bool] = {}
        self._applied_at: dict[str, float] = {}

    async def apply(self, state: AlarmState, now: float) -> None:
        async with self._lock:
            await self._apply(state, now)

    async def _apply(self, state: AlarmState, now: float) -> None:
        for output in self.outputs:
            due = now - self._applied_at.get(output.name, -1e18) >= self.refresh_s
            if self._applied.get(output.name) == state.sounding and not due:
                continue
            try:
                await output.drive(state.sounding, state)
            except AlarmOutputError as exc:
                if self.errors.get(output.name) != str(exc):
                    log.error("local alarm output failed: %s", exc)
                self.errors[output.name] = str(exc)
                self._applied.pop(output.name, None)
                continue
            except Exception as exc:  # a bug in one output must not silence the others
                log.exception("local alarm output %s crashed", output.name)
                self.errors[output.name] = f"{type(exc).__name__}: {exc}"
                self._applied.pop(output.name, None)
                continue
            self.errors.pop(output.name, None)
            self._applied[output.name] = state.sounding
            self._applied_at[output.name] = now
