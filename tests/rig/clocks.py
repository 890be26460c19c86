"""Clocks the tests drive: one set by hand, one that replays a list of stamps.

Both satisfy ``gateway.clock.Clock`` (``stamp()`` and ``monotonic()``), so the
code under test cannot tell them from the system clock.
"""

from __future__ import annotations

from coldgate.gateway.clock import Stamp
from tests.rig.items import BOOT, T0


def stamp(wall_ms: int, mono_ms: int, synced: bool = True, boot: str = BOOT) -> Stamp:
    return Stamp(wall_ms=wall_ms, mono_ms=mono_ms, boot=boot, synced=synced)


class FakeClock:
    """A clock the test sets by hand; ``synced`` says whether NTP would vouch for it."""

    def __init__(self, wall_ms: int = T0, *, synced: bool = True) -> None:
        self.wall_ms = wall_ms
        self.mono_ms = 1_000_000
        self.synced = synced

    def stamp(self) -> Stamp:
        return Stamp(wall_ms=self.wall_ms, mono_ms=self.mono_ms, boot=BOOT, synced=self.synced)

    def monotonic(self) -> float:
        return self.mono_ms / 1000

    def advance(self, ms: int) -> None:
        self.wall_ms += ms
        self.mono_ms += ms


class SteppedClock:
    """Hands out the given stamps one per ``stamp()`` call, in order."""

    def __init__(self, stamps: list[Stamp]) -> None:
        self.stamps = stamps

    def stamp(self) -> Stamp:
        return self.stamps.pop(0)

    def monotonic(self) -> float:
        return 0.0
