"""Opening a serial port to be read on the event loop, and closing it again; for every serial source.

Serial loggers and barcode scanners read their ports the same way: pyserial
with ``timeout=0`` and ``loop.add_reader`` on its descriptor, so there is no
thread and no blocking read.  Only opening runs in a thread, because pyserial
connects ``socket://`` URLs synchronously.  The open is shielded: a source
cancelled while the thread opens must still close what it opened, or a
single-client serial-to-Ethernet converter would refuse the next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Protocol

import serial

__all__ = ["PortSettings", "SerialOpenError", "close_watched", "open_watched"]


class PortSettings(Protocol):
    port: str
    baudrate: int
    bytesize: int
    parity: str
    stopbits: int


class SerialOpenError(OSError):
    """The port could not be opened or watched; ``str()`` says why, for a status line."""


def _open(settings: PortSettings) -> serial.SerialBase:
    return serial.serial_for_url(
        settings.port,
        baudrate=settings.baudrate,
        bytesize=settings.bytesize,
        parity=settings.parity,
        stopbits=settings.stopbits,
        timeout=0,
        exclusive=settings.port.startswith("/") or None,
    )


async def open_watched(settings: PortSettings, on_readable: Callable[[], None]) -> serial.SerialBase:
    """The open port, with ``on_readable`` called on the loop whenever it has bytes."""
    opening = asyncio.ensure_future(asyncio.to_thread(_open, settings))
    try:
        port = await asyncio.shield(opening)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            (await opening).close()
        raise
    except (serial.SerialException, OSError, ValueError) as exc:
        errno = getattr(exc, "errno", None)
        why = os.strerror(errno) if isinstance(errno, int) else str(exc)
        raise SerialOpenError(f"cannot open {settings.port}: {why}") from exc
    try:
        asyncio.get_running_loop().add_reader(port.fileno(), on_readable)
    except (OSError, ValueError) as exc:
        with contextlib.suppress(Exception):
            port.close()
        raise SerialOpenError(f"cannot watch {settings.port}: {exc}") from exc
    return port


def close_watched(port: serial.SerialBase | None) -> None:
    """Stop watching and close; never raises (the port may be gone already)."""
    if port is None:
        return
    with contextlib.suppress(Exception):
        asyncio.get_running_loop().remove_reader(port.fileno())
    with contextlib.suppress(Exception):
        port.close()
