"""When a sensor is due: a fixed grid of slots on the monotonic clock, with coalescing and back-off.

Slots are anchored (slot n = first + n * interval), never "interval after the
last poll ended", so a 60 s logger keeps 1440 readings a day however long each
poll takes, and loggers sharing an interval stay in phase: their polls run back
to back and leave the rest of the interval idle, which is where a line fits
retries and probes of dead units (see ``modbus_poller``).

A slot that has fully passed without a poll is not made up later: the missed
slots collapse into the current one (APScheduler calls this *coalescing*) and
are counted as missed.  An offline sensor is probed only every few slots
(doubling up to a cap), still on its grid, so it costs the bus little and
comes back in phase.
"""

from __future__ import annotations

import math

#: An offline sensor is probed at least this often...
MAX_BACKOFF_S = 300.0
#: ...and at most every this many slots.
MAX_BACKOFF_PERIODS = 8


def backoff_periods(probes: int, interval_s: float, cap: int | None = None) -> int:
    """Slots between two probes of an offline sensor after ``probes`` unanswered probes."""
    if cap is None:
        cap = max(1, min(MAX_BACKOFF_PERIODS, int(MAX_BACKOFF_S // interval_s)))
    return max(1, min(2 ** min(probes, 16), cap))


class Slots:
    """A sensor's poll slots.  ``due`` is the next slot on the grid."""

    __slots__ = ("due", "interval")

    def __init__(self, interval_s: float, first: float) -> None:
        self.interval = interval_s
        self.due = first

    def claim(self, now: float) -> tuple[float, int]:
        """Start the poll of the current slot at ``now``: returns (lag in s, slots coalesced away).

        After this, ``due`` is the slot being served (the latest one not after ``now``).
        """
        late = now - self.due
        skipped = 0
        if late >= self.interval:
            skipped = math.floor(late / self.interval)
            self.due += skipped * self.interval
            late = now - self.due
        return max(0.0, late), skipped

    def advance(self, periods: int = 1) -> None:
        """Move to the slot ``periods`` intervals after the one just served."""
        self.due += periods * self.interval
