"""The gap a gateway restart leaves: nobody monitored between the old process's end and the new one's start.

A ``kill -9``, a crash, a watchdog restart, a power cut or a plain service
stop all leave the same hole in every series: the sources were not polled, the
doors not watched.  Only the next start can know it happened, so at start the
gateway compares its previous run's last sign of life with now and records the
interruption as one ``Gap`` about the gateway itself (``subject_type``
gateway, ``subject`` the gateway id), with both times on the wall clock like
every other gap:

- ``start``: the previous run's last sign of life: the newest item it
  committed to the outbox (a reading at every poll, so at most one poll
  interval before the end; kept in the outbox's counters in the same
  transaction, no write of its own), or the last heartbeat it kept on disk if
  that is later (a gateway with only readers or scanners commits nothing while
  nothing passes).  The process may have lived a little longer than that; the
  record errs towards "not monitored", never the other way.
- ``end``: the moment the new process starts its sources again.

Cause: ``GapCause.GATEWAY_OFFLINE`` ("gateway not running, found at the next
start"), the contract's value for exactly this.  Whether it was a crash on the
same boot, a clean stop, or a reboot or power loss (the kernel's boot id
changed) is said in ``detail``.  A later contract version may give those
distinct cause values; that needs the contract's evolution rule (an older
cloud must still accept the items), so it is not done here.

Threshold: a restart is recorded only when more than the shortest poll
interval passed between the last sign of life and the new start
(``min_gap_ms``): the previous reading was then followed by a missed poll
slot, while a faster restart lost nothing a reader of the series could see.
Readers and scanners watch all the time, so a gateway with any of them uses
the configuration's smallest interval, 1 s.  On the same boot the duration is
measured on the monotonic clock (immune to clock steps); across a reboot on
the wall clock, and a reboot whose clock is not yet synchronised is always
recorded (its wall time proves nothing, and a reboot always interrupts).

A first start (no outbox yet, nothing committed) records nothing; so does the
first start on an outbox written by a build that kept no last sign of life.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Final

from coldgate.contract.items import Gap, GapCause, SubjectType
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.observations import stamp_fields

#: The threshold when something is watched continuously (readers, scanners) or nothing is polled:
#: the smallest poll interval the configuration allows.
CONTINUOUS_MIN_GAP_MS: Final = 1_000
DETAIL_MAX: Final = 1000  # contract Text


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """How the previous gateway process ended, as far as its files say."""

    alive: Stamp  # its last sign of life
    clean: bool  # it stopped cleanly (SIGTERM, service stop): the outbox was closed


def latest(*marks: Stamp | None) -> Stamp | None:
    """The latest of several signs of life: by the monotonic clock within a boot, else by wall time."""
    best: Stamp | None = None
    for mark in marks:
        if mark is None:
            continue
        if best is None:
            best = mark
        elif mark.boot == best.boot:
            best = mark if mark.mono_ms > best.mono_ms else best
        elif mark.wall_ms > best.wall_ms:
            best = mark
    return best


def min_gap_ms(config: GatewayConfig) -> int:
    """The shortest interruption worth a record for this configuration (see the module docstring)."""
    if config.readers or config.scanners:
        return CONTINUOUS_MIN_GAP_MS
    intervals = [getattr(sensor, "interval_s", None) for sensor in config.sensors]
    polled = [interval for interval in intervals if isinstance(interval, int | float)]
    if not polled:
        return CONTINUOUS_MIN_GAP_MS
    return max(CONTINUOUS_MIN_GAP_MS, round(min(polled) * 1000))


def restart_gap(previous: PreviousRun | None, resumed: Stamp, *, gateway: str, min_gap_ms: int) -> Gap | None:
    """The gap between the previous run's last sign of life and ``resumed``; None when there is none.

    ``resumed`` is the stamp at which the new process starts monitoring; the gap
    is stamped with it too (it is found, and recorded, then).
    """
    if previous is None:
        return None
    alive = previous.alive
    rebooted = alive.boot != resumed.boot
    start = alive.wall_ms
    end = max(resumed.wall_ms, start)
    if rebooted:
        if resumed.synced and end - start <= min_gap_ms:
            return None
    elif resumed.mono_ms - alive.mono_ms <= min_gap_ms:
        return None
    return Gap(
        **stamp_fields(resumed),  # type: ignore[arg-type]
        subject_type=SubjectType.GATEWAY,
        subject=gateway,
        start=start,
        end=end,
        cause=GapCause.GATEWAY_OFFLINE,
        detail=describe(previous, resumed)[:DETAIL_MAX],
    )


def describe(previous: PreviousRun, resumed: Stamp) -> str:
    """The gap's ``detail``: what kind of interruption, and from when to when, for people."""
    alive = previous.alive
    span = f"not monitoring from {_iso(alive.wall_ms)} to {_iso(max(resumed.wall_ms, alive.wall_ms))}"
    if alive.boot == resumed.boot:
        seconds = max(0, resumed.mono_ms - alive.mono_ms) / 1000
        how = (
            "gateway stopped cleanly (service stop or restart) and started again on the same boot"
            if previous.clean
            else "gateway process restarted (same boot) after ending without a clean stop"
            " (crash, kill, watchdog)"
        )
        text = f"{how}: {span} ({seconds:.1f} s)"
    else:
        seconds = max(0, resumed.wall_ms - alive.wall_ms) / 1000
        how = (
            "gateway stopped cleanly, then the host rebooted"
            if previous.clean
            else "gateway host rebooted or lost power"
        )
        changed = f"boot id changed from {alive.boot} to {resumed.boot}"
        text = f"{how} ({changed}): {span} ({seconds:.1f} s by the wall clock)"
    if not resumed.synced:
        text += "; the clock was not synchronised at the restart, so the end may be off"
    return text


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
