"""Time evidence for everything the gateway records.

A Raspberry Pi has no real-time clock: after a power cut it may run for minutes
with a wall clock from the last shutdown until NTP steps it.  So every record
carries the wall time *and* what makes it correctable later: the kernel's boot
id, the monotonic offset since that boot, and whether the kernel considered its
clock synchronised at that moment (``adjtimex``: not ``TIME_ERROR`` and no
``STA_UNSYNC``).  The cloud corrects unsynchronised stamps from a synchronised
anchor of the same boot (DESIGN.md, principle 4).

No library exposes ``adjtimex`` portably; it is one ctypes call, written here.

The boot id is read from ``/proc/sys/kernel/random/boot_id`` unless the
environment variable ``COLDGATE_BOOT_ID_FILE`` names another file holding a
UUID: a container that must not share its host's boot id, or a test that
simulates a reboot of a real gateway process (``gateway.restart_gap`` tells
a process restart from a reboot by it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
import uuid
from pathlib import Path
from typing import Protocol

from msgspec import Struct

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
BOOT_ID_ENV = "COLDGATE_BOOT_ID_FILE"
TIME_ERROR = 5  # adjtimex() return value: clock not synchronised
STA_UNSYNC = 0x0040


class Stamp(Struct, frozen=True):
    """When something was observed, with the evidence to correct it later.

    A msgspec Struct rather than a frozen dataclass: two are made per poll, and a frozen dataclass's
    ``__init__`` (``object.__setattr__`` per field) cost six times as much.
    """

    wall_ms: int
    mono_ms: int
    boot: str
    synced: bool


class Clock(Protocol):
    """What sources and the app need of time; rules never see a clock, only stamps."""

    def stamp(self) -> Stamp: ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (scheduling, timeouts, durations)."""
        ...


def boottime_ns() -> int:
    """``CLOCK_BOOTTIME`` (the contract's ``mono``): monotonic, and counts time suspended too,
    so an offset from the boot stays true across a suspend; ``CLOCK_MONOTONIC`` elsewhere."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime_ns(clock_id) if clock_id is not None else time.monotonic_ns()


def read_boot_id() -> str:
    """The kernel's boot id as 32 hex digits (or ``$COLDGATE_BOOT_ID_FILE``'s); a random one where
    there is none, so every start then counts as a new boot (the safe side for a restart gap)."""
    path = Path(os.environ.get(BOOT_ID_ENV) or BOOT_ID_PATH)
    try:
        return uuid.UUID(path.read_text().strip()).hex
    except (OSError, ValueError):
        return uuid.uuid4().hex


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux, 64-bit and 32-bit alike: all longs).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def kernel_clock_synchronised() -> bool | None:
    """True/False from the kernel's NTP state; None where it cannot be asked."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        timex = _Timex()  # modes = 0: read only
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR and not (timex.status & STA_UNSYNC)


class SystemClock:
    """The real clocks.  The NTP state is re-read at most every ``sync_check_s``."""

    def __init__(self, sync_check_s: float = 10.0) -> None:
        self.boot = read_boot_id()
        self._sync_check_s = sync_check_s
        self._synced = False
        self._checked_at = -1e18
        self._boottime_id: int | None = getattr(time, "CLOCK_BOOTTIME", None)

    def synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at >= self._sync_check_s:
            self._synced = bool(kernel_clock_synchronised())
            self._checked_at = now
        return self._synced

    def monotonic(self) -> float:
        return time.monotonic()

    def stamp(self) -> Stamp:
        # Two per poll, 1,000 a second at a busy site: the clocks are read directly, and the NTP
        # state only when it is due (what ``synced()`` does, without its call).
        wall_ns = time.time_ns()
        clock_id = self._boottime_id
        mono_ns = time.clock_gettime_ns(clock_id) if clock_id is not None else time.monotonic_ns()
        synced = self._synced if time.monotonic() - self._checked_at < self._sync_check_s else self.synced()
        return Stamp(wall_ns // 1_000_000, mono_ns // 1_000_000, self.boot, synced)
