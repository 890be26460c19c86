"""Placing a reader's timestamps on the gateway's own monotonic clock.

A reader stamps each read with its own UTC clock, and readers' clocks are
wrong in every way: minutes off, back at 1970 after a reboot without NTP,
stepping when NTP finally answers, or one report stamped a year ahead.  The
portal must judge passes in one steady time line, so reads are mapped onto
ours: ``t = reader_ts + offset``, where the offset (our time minus the
reader's) is the smallest difference seen, i.e. the report with the least
delay.  The reader's clock only ever decides the *order and spacing* of its
reads, never how they relate to our time:

- a report cannot be placed after its arrival (``t <= arrival``), nor more than
  ``max_backlog_ms`` before it (a reader's buffer flushed after a reconnect);
- a read that seems delayed is delay as long as it is within the backlog; a
  read that seems ahead by more than ``step_ms``, or older than the backlog,
  means the reader's clock stepped (taken once a second report confirms it)
  or an outlier (placed at its arrival and otherwise ignored);
- ``reset()`` on every new connection: a reader that rebooted has a new clock;
- a read without a timestamp is placed at its arrival.

Pure arithmetic, no I/O: the caller passes arrival times.
"""

from __future__ import annotations

__all__ = ["ReaderClockMap"]


class ReaderClockMap:
    def __init__(self, step_ms: int = 2000, max_backlog_ms: int = 60_000) -> None:
        self.step_ms = step_ms
        self.max_backlog_ms = max_backlog_ms
        self.offset: int | None = None
        self._pending: int | None = None
        self.steps = 0  # confirmed steps of the reader's clock, for diagnostics

    def reset(self) -> None:
        self.offset = None
        self._pending = None

    def place(self, reader_ms: int | None, arrival_ms: int) -> int:
        """Our time for a read stamped ``reader_ms`` (None: unstamped) that arrived at ``arrival_ms``."""
        if reader_ms is None:
            return arrival_ms
        difference = arrival_ms - reader_ms
        if self.offset is None:
            self.offset = difference
        elif difference < self.offset - self.step_ms or difference > self.offset + self.max_backlog_ms:
            # Ahead of its arrival, or older than any buffer holds: the reader's clock stepped,
            # or this one report is wrong.  Believe it once another report agrees.
            if self._pending is not None and abs(difference - self._pending) <= self.step_ms:
                self.offset, self._pending = difference, None
                self.steps += 1
            else:
                self._pending = difference
                return arrival_ms
        else:
            # Within the backlog a larger difference is delay (a buffer flushed), not a step;
            # a smaller one is a report with less delay: a better estimate.
            self._pending = None
            self.offset = min(self.offset, difference)
        placed = reader_ms + self.offset
        return max(arrival_ms - self.max_backlog_ms, min(arrival_ms, placed))
