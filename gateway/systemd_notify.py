"""sd_notify(3) by hand: READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 to systemd.

The protocol is one datagram of ``KEY=value`` lines sent to the unix socket
named by ``$NOTIFY_SOCKET`` (a path, or an abstract name written with a leading
``@``).  It is written here rather than taken from PyPI because neither
candidate fits a Pi: ``systemd-python`` builds against libsystemd's headers
(``libsystemd-dev`` and a compiler on every gateway, no arm64 wheels), and
``sdnotify`` (0.3.2, unchanged since 2017) swallows every send error and does
not read ``WATCHDOG_USEC``/``WATCHDOG_PID``, which the petting needs anyway.
The whole protocol is the twenty lines below.

Without ``$NOTIFY_SOCKET`` (run by hand, in tests, under ``Type=exec``) every
call is a no-op, so the gateway does not care how it was started.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | bytes:
    """The address to send to: an abstract name (``@name``) becomes ``\\0name``."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


def watchdog_period_s(environ: Mapping[str, str] | None = None) -> float | None:
    """``WatchdogSec`` as systemd passes it (``WATCHDOG_USEC``), if meant for this process.

    ``WATCHDOG_PID``, when set, names the process the watchdog is for: a child
    that inherited the environment must not pet on its parent's behalf.
    """
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a number of microseconds", usec)
        return None
    return value / 1_000_000 if value > 0 else None


class Notifier:
    """Sends state lines to systemd; ``Notifier()`` reads ``$NOTIFY_SOCKET`` once.

    Send errors are logged, never raised: the gateway must keep polling and
    alarming even if systemd's socket went away (a ``daemon-reexec``), and a
    missed WATCHDOG=1 only means systemd acts as if we hung.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``READY=1``, ``STATUS=...``); True if sent, False if no-op or failed."""
        if not self.address:
            return False
        lines = "\n".join(f"{key.upper()}={value}" for key, value in fields.items())
        try:
            if self._sock is None:
                # Non-blocking: a unix datagram socket blocks the sender while the receiver's queue
                # is full, and a systemd too busy to read must not stall the event loop (the sources,
                # the alarm).  A datagram it could not take is dropped, as a missed WATCHDOG=1 would be.
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(lines.encode(), socket_address(self.address))
        except OSError as exc:
            if not self._failed:  # once per run of failures, not every 15 s
                log.warning("cannot notify systemd at %s: %s", self.address, exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(ready=1, **({"status": status} if status else {}))

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def stopping(self, status: str | None = None) -> bool:
        return self.notify(stopping=1, **({"status": status} if status else {}))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
