"""How rules measure time: wall time for evidence, the monotonic clock for durations.

A Raspberry Pi has no real-time clock.  After a power cut it can run for
minutes on the wall time of its last shutdown until NTP steps the clock by
hours (DESIGN.md, principle 4).  An alarm delay measured on wall time would
then fire at once or never.  So rules never subtract wall times when they can
avoid it:

* ``ts`` (UTC ms) of a reading is only *reported*: an excursion's start and
  end, the time a budget ran out.  The cloud corrects unsynchronised wall
  times later; the rules pass them through untouched.
* Durations (alarm delays, time outside limits, sample weights, sliding
  windows) come from ``mono`` (ms since boot, never jumps) whenever two
  readings come from the same ``boot``.  Across a reboot there is no common
  monotonic clock, so the wall-time difference is used, clamped at zero.

Each sensor's rules therefore run on their own *axis*: a millisecond count
that starts at the wall time of the sensor's first reading and only ever
advances by those elapsed times.  Windows (rolling MKT, excursion budget)
are cut on this axis, so a clock step cannot expire a day of history or
freeze it forever.  No function here reads a clock: the reading is the clock.
"""

from __future__ import annotations

from msgspec import Struct

from coldgate.contract.items import Quality, Reading


class Mark(Struct, frozen=True, gc=False):
    """Where one reading sits in time: wall time, boot and monotonic offset."""

    ts: int
    boot: str
    mono: int


def mark_of(reading: Reading) -> Mark:
    return Mark(ts=reading.ts, boot=reading.boot, mono=reading.mono)


def elapsed_ms(prev: Mark, cur: Mark) -> int:
    """Milliseconds from ``prev`` to ``cur``: monotonic within a boot, wall time across boots."""
    if prev.boot == cur.boot and cur.mono >= prev.mono:
        return cur.mono - prev.mono
    return max(0, cur.ts - prev.ts)


class Obs(Struct, frozen=True, gc=False):
    """One reading as the rules see it.

    ``value`` is ``None`` when the reading must not be judged (quality error,
    or a value outside what the sensor can physically measure).  ``trusted``
    is False for suspect readings: they may raise or prolong an alert (a
    doubtful 12 °C is still a reason to look) but never clear one (a doubtful
    5 °C is no proof the room has recovered).  ``weight_ms`` is the time the
    reading stands for: the time since the sensor's previous reading, capped
    at the longest gap a value may bridge; for the first reading, one
    nominal poll interval.  With regular polls every reading weighs the same,
    which is what makes the time-weighted MKT equal USP <1079.2>'s plain one.
    """

    t_ms: int
    ts: int
    boot: str
    mono: int
    value: float | None
    trusted: bool = True
    weight_ms: int = 0

    @property
    def mark(self) -> Mark:
        return Mark(ts=self.ts, boot=self.boot, mono=self.mono)


class Axis(Struct, frozen=True, gc=False):
    """A sensor's monotone time axis (see the module docstring); ``last`` is None before any reading."""

    last: Mark | None = None
    t_ms: int = 0


def advance(axis: Axis, reading: Reading, nominal_ms: int, max_gap_ms: int) -> tuple[Axis, int, int]:
    """Move the axis to ``reading``; return the new axis, its position and the reading's weight."""
    cur = Mark(reading.ts, reading.boot, reading.mono)
    last = axis.last
    if last is None:
        return Axis(last=cur, t_ms=reading.ts), reading.ts, nominal_ms
    # elapsed_ms(last, cur), spelled out: this runs for every reading (issue 18).
    if last.boot == cur.boot and cur.mono >= last.mono:
        step = cur.mono - last.mono
    else:
        step = max(0, cur.ts - last.ts)
    t_ms = axis.t_ms + step
    return Axis(cur, t_ms), t_ms, min(step, max_gap_ms)


def is_judgeable(reading: Reading) -> bool:
    """A reading with a value; error readings carry none worth judging."""
    return reading.value is not None and reading.quality is not Quality.ERROR
