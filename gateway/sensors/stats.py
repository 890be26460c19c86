"""How well polls keep to their schedule, per sensor, for the status message and the benchmark.

*Scheduled* counts slots the gateway meant to poll (an offline sensor's
backed-off slots are not meant to be polled, so they do not count).  A slot is
*served* when its poll started within ``tolerance`` (half an interval) of the
slot, *late* when it started later, *missed* when it was coalesced away
because the line was busy for a whole interval.  Served says the scheduler kept
time; whether the device answered is ``online``/``consecutive_failures``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from coldgate.gateway.sensors.health import SensorHealth
from coldgate.gateway.source import SensorStatus

#: Lag percentiles are taken over this many recent polls.
LAG_WINDOW = 512


class PollStats:
    """Counters and a window of recent lags for one sensor."""

    __slots__ = ("_lags", "late", "missed", "scheduled", "served", "tolerance")

    def __init__(self, interval_s: float) -> None:
        self.tolerance = interval_s / 2
        self.scheduled = self.served = self.late = self.missed = 0
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)

    def started(self, lag_s: float, skipped: int = 0) -> None:
        """A poll started ``lag_s`` after its slot, ``skipped`` earlier slots were coalesced away."""
        self.scheduled += 1 + skipped
        self.missed += skipped
        if lag_s <= self.tolerance:
            self.served += 1
        else:
            self.late += 1
        self._lags.append(lag_s * 1000.0)

    def snapshot(
        self,
        sensor: str,
        source: str,
        health: SensorHealth,
        interval_s: float,
        last_poll_ms: int | None,
        overdue: int = 0,
    ) -> SensorStatus:
        """The sensor's status now; ``overdue`` slots passing right now without a poll count as missed."""
        p50, p95, worst = self.lag_ms()
        return SensorStatus(
            sensor=sensor,
            source=source,
            online=health.online,
            consecutive_failures=health.consecutive_failures,
            interval_s=interval_s,
            scheduled=self.scheduled + overdue,
            served=self.served,
            late=self.late,
            missed=self.missed + overdue,
            lag_p50_ms=p50,
            lag_p95_ms=p95,
            lag_max_ms=worst,
            last_poll_ms=last_poll_ms,
            last_ok_ms=health.last_ok_ms,
            last_error=health.last_error,
        )

    def lag_ms(self) -> tuple[float | None, float | None, float | None]:
        """(p50, p95, max) over the recent window, nearest-rank."""
        if not self._lags:
            return None, None, None
        ordered = sorted(self._lags)
        last = len(ordered) - 1
        return ordered[round(0.50 * last)], ordered[round(0.95 * last)], ordered[-1]


def served_fraction(statuses: Iterable[SensorStatus]) -> float:
    """Served polls over scheduled polls across sensors (1.0 when nothing was due yet)."""
    scheduled = served = 0
    for status in statuses:
        scheduled += status.scheduled
        served += status.served
    return served / scheduled if scheduled else 1.0
