"""An RS-485 line in software: two pseudo-terminals joined back to back.

Why two: pymodbus's serial server opens its port *by path* through pyserial, and
the controller (master) side of a pseudo-terminal has no path.  So the farm's
server opens the device side of one pty, the client (the gateway's poller, a
test) opens the device side of the other, and this module copies bytes between
the two controller sides on the asyncio loop, like ``socat`` would, without a
process to manage.

The line does not buffer: bytes for a side whose input queue is full are
dropped, as on a bus nobody listens to.  Both device sides are held open by us
for the line's life so their raw mode sticks and the controller sides never see
EIO when a client closes its port between polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty


class PtyLine:
    """Two raw pty pairs and a byte pump between their controller sides."""

    def __init__(self) -> None:
        fds: list[int] = []
        try:
            for _ in range(2):
                controller, device = os.openpty()
                fds += [controller, device]
                tty.setraw(device)
                tty.setraw(controller)
                os.set_blocking(controller, False)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self._server_controller, self._server_device_fd = fds[0], fds[1]
        self._client_controller, self._client_device_fd = fds[2], fds[3]
        self._fds = fds
        self.server_device = os.ttyname(self._server_device_fd)
        self.client_device = os.ttyname(self._client_device_fd)
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start pumping bytes both ways on ``loop``."""
        self._loop = loop
        loop.add_reader(self._server_controller, self._pump, self._server_controller, self._client_controller)
        loop.add_reader(self._client_controller, self._pump, self._client_controller, self._server_controller)

    @staticmethod
    def _pump(source: int, target: int) -> None:
        try:
            data = os.read(source, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # EIO while a side is being closed: nothing to carry
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            os.write(target, data)

    def close(self) -> None:
        """Stop pumping and close all four descriptors (idempotent)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._server_controller)
            self._loop.remove_reader(self._client_controller)
        self._loop = None
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
