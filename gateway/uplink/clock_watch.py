"""Clock jumps and NTP synchronisation, recorded as events: the evidence for correcting time.

A Pi without a real-time clock boots with the time of its last shutdown and
runs on it until NTP steps the clock, sometimes hours later.  Items stamped
before that carry ``synced: false``; the cloud corrects them from a
synchronised anchor of the same boot (DESIGN.md, principle 4).  This watch
provides that anchor the moment it exists: the ``clock_synced`` event is
stamped with the synchronised wall time and the monotonic offset at once.  A
step of the wall clock (NTP stepping, an operator's ``date -s``) is recorded
as ``clock_jump`` with its size, because readings on either side of it
cannot be compared by wall time alone.

A jump is wall-clock progress minus monotonic progress between two looks.
NTP slewing changes the rate by at most 500 ppm (2.5 ms per 5 s), far below
the threshold; only steps show.  The core is a pure function of two stamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from coldgate.contract.items import Event, EventType, Item
from coldgate.gateway.clock import Clock, Stamp
from coldgate.gateway.observations import stamp_fields

log = logging.getLogger(__name__)

JUMP_THRESHOLD_MS = 2_000
INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class ClockChange:
    event: EventType
    detail: str
    data: dict[str, str | int | float | bool] = field(default_factory=dict)


def clock_changes(
    previous: Stamp, current: Stamp, threshold_ms: int = JUMP_THRESHOLD_MS
) -> list[ClockChange]:
    """What happened to the wall clock between two stamps of the same boot."""
    if previous.boot != current.boot:
        return []
    changes: list[ClockChange] = []
    expected = previous.wall_ms + (current.mono_ms - previous.mono_ms)
    jump = current.wall_ms - expected
    if abs(jump) >= threshold_ms:
        direction = "forward" if jump > 0 else "back"
        changes.append(
            ClockChange(
                EventType.CLOCK_JUMP,
                f"wall clock jumped {direction} by {_duration(abs(jump))}",
                {"jump_ms": jump, "expected_ms": expected, "synced": current.synced},
            )
        )
    if current.synced and not previous.synced:
        changes.append(
            ClockChange(
                EventType.CLOCK_SYNCED,
                "wall clock synchronised: anchor for correcting this boot's unsynchronised items",
                {"mono_ms": current.mono_ms},
            )
        )
    return changes


def _duration(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds = rest / 1000
    if hours:
        return f"{hours} h {minutes} min {seconds:.3f} s"
    if minutes:
        return f"{minutes} min {seconds:.3f} s"
    return f"{seconds:.3f} s"


class ClockWatch:
    """Looks at the clock every ``interval_s`` and puts an event item for every change."""

    def __init__(
        self,
        clock: Clock,
        put: Callable[[Item], None],
        *,
        interval_s: float = INTERVAL_S,
        threshold_ms: int = JUMP_THRESHOLD_MS,
    ) -> None:
        self.clock = clock
        self.put = put
        self.interval_s = interval_s
        self.threshold_ms = threshold_ms
        self._previous: Stamp | None = None

    @property
    def synced(self) -> bool | None:
        """The clock state at the last look (None before the first)."""
        return None if self._previous is None else self._previous.synced

    def check(self) -> list[Event]:
        """One look: compare with the previous one, record what changed."""
        current = self.clock.stamp()
        previous, self._previous = self._previous, current
        if previous is None:
            return []
        events = [
            Event(
                **stamp_fields(current),  # type: ignore[arg-type]
                event=change.event,
                detail=change.detail,
                data=change.data,
            )
            for change in clock_changes(previous, current, self.threshold_ms)
        ]
        for event in events:
            log.warning("%s", event.detail)
            try:
                self.put(event)
            except Exception:
                log.exception("could not record %s", event.event)
        return events

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s):
                    await stop.wait()
