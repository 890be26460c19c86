"""Scenario time: how a simulated site compresses hours into seconds.

``scenario_s = start_at_s + (monotonic_now - origin) * speed``.  With ``speed=60``
an hour of cold-room life replays in a minute.  The monotonic clock (not wall
time) drives it so an NTP step on the machine cannot make a curve jump.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ScenarioClock:
    """Maps the process's monotonic clock to scenario seconds."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        start_at_s: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.start_at_s = start_at_s
        self._monotonic = monotonic
        self.origin = monotonic()

    def restart(self) -> None:
        """Start the scenario (again) now, e.g. when the farm begins serving."""
        self.origin = self._monotonic()

    def at(self, monotonic_s: float) -> float:
        """Scenario seconds corresponding to a ``time.monotonic()`` reading."""
        return self.start_at_s + (monotonic_s - self.origin) * self.speed

    def now(self) -> float:
        """Scenario seconds right now."""
        return self.at(self._monotonic())

    def real_seconds_until(self, scenario_s: float) -> float:
        """How long to wait (real seconds) until the scenario reaches ``scenario_s``."""
        return max(0.0, (scenario_s - self.now()) / self.speed)
