"""A bare pseudo-terminal pair standing in for a serial cable.

The device under test opens ``device`` (``/dev/pts/N``) with pyserial exactly as
it would open ``/dev/ttyUSB0``; the test plays the instrument on the other end.
Both ends are in raw mode so CR, LF and control bytes (GS 0x1D in GS1 codes)
pass unchanged.  A pseudo-terminal ignores the baud rate.
"""

from __future__ import annotations

import os
import select
import time
import tty
from types import TracebackType


class PtyPair:
    """The instrument's end (``write``/``read``) and the device path for the code under test."""

    def __init__(self) -> None:
        self.controller_fd, self._device_fd = os.openpty()
        tty.setraw(self.controller_fd)
        tty.setraw(self._device_fd)
        self.device = os.ttyname(self._device_fd)
        self._open_fds: tuple[int, ...] = (self.controller_fd, self._device_fd)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.controller_fd, view)
            view = view[written:]

    def read(self, size: int = 4096, timeout: float = 1.0) -> bytes:
        """Whatever the code under test wrote within ``timeout`` (may be ``b""``)."""
        ready, _, _ = select.select([self.controller_fd], [], [], timeout)
        if not ready:
            return b""
        return os.read(self.controller_fd, size)

    def read_until(self, terminator: bytes, timeout: float = 2.0) -> bytes:
        deadline = time.monotonic() + timeout
        buffer = b""
        while terminator not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {terminator!r} from the device within {timeout}s: {buffer!r}")
            buffer += self.read(timeout=remaining)
        return buffer

    def close(self) -> None:
        """Idempotent: a second close must not hit a descriptor number reused meanwhile."""
        fds, self._open_fds = self._open_fds, ()
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
