"""Online/offline bookkeeping of one sensor, and the monitoring-gap records it produces.

A cold-chain record must show when a sensor was *not* watched (DESIGN.md,
principle 5).  One failed poll is noise; ``offline_after`` failed polls in a
row make the sensor offline and open a ``Gap`` that starts at the first failed
poll of the run (monitoring was already lost then, we only knew later).  The
first good answer closes it.  The open gap is sent at once and sent again,
closed, with the same subject and start: the cloud keeps the latest.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from coldgate.contract.items import Gap, GapCause, SubjectType
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import stamp_fields

log = logging.getLogger(__name__)


class Failure(StrEnum):
    """Why a poll got no value; decides retries and the gap's cause."""

    TIMEOUT = "timeout"  # silence
    GARBAGE = "garbage"  # bytes arrived, but no valid frame (CRC, header)
    EXCEPTION = "exception"  # the device answered with a Modbus exception
    CONNECTION = "connection"  # port or TCP connection could not be opened or broke
    BAD_LINE = "bad_line"  # serial text that does not match the pattern
    INTERNAL = "internal"  # a bug on our side, caught so polling goes on

    @property
    def gap_cause(self) -> GapCause:
        """Silence and unreachable devices are "offline"; devices that answer wrongly are "error"."""
        if self in (Failure.TIMEOUT, Failure.CONNECTION):
            return GapCause.SENSOR_OFFLINE
        return GapCause.SENSOR_ERROR


class SensorHealth:
    """Counts failed polls in a row and turns offline/online transitions into gaps."""

    def __init__(self, sensor_id: str, offline_after: int, where: str) -> None:
        self.sensor_id = sensor_id
        self.offline_after = offline_after
        self.where = where  # e.g. 'unit 3 on line "bus-a"', for people reading logs and gaps
        self.consecutive_failures = 0
        self.online = True
        self.last_error: str | None = None
        self.last_ok_ms: int | None = None
        self._run_start: Stamp | None = None
        self._open: Gap | None = None

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0

    @property
    def open_gap(self) -> Gap | None:
        return self._open

    def failed(self, stamp: Stamp, failure: Failure, reason: str) -> Gap | None:
        """Record a failed poll at ``stamp``; returns the gap it opens, if it makes the sensor offline."""
        self.consecutive_failures += 1
        self.last_error = reason
        if self._run_start is None:
            self._run_start = stamp
        if not self.online or self.consecutive_failures < self.offline_after:
            return None
        self.online = False
        start = self._run_start
        detail = f"{self.where}: {self.consecutive_failures} polls failed in a row; last: {reason}"
        self._open = Gap(
            **stamp_fields(stamp),  # type: ignore[arg-type]
            subject_type=SubjectType.SENSOR,
            subject=self.sensor_id,
            start=start.wall_ms,
            end=None,
            cause=failure.gap_cause,
            detail=detail[:1000],
        )
        log.warning("sensor %s offline (%s)", self.sensor_id, detail)
        return self._open

    def answered(self, stamp: Stamp) -> Gap | None:
        """Record a good answer at ``stamp``; returns the closed gap if the sensor was offline."""
        self.consecutive_failures = 0
        self.last_error = None
        self.last_ok_ms = stamp.wall_ms
        self._run_start = None
        if self.online:
            return None
        self.online = True
        opened, self._open = self._open, None
        if opened is None:  # pragma: no cover - offline always has an open gap
            return None
        seconds = max(0, stamp.wall_ms - opened.start) / 1000
        log.warning("sensor %s online again after %.1f s without monitoring", self.sensor_id, seconds)
        return Gap(
            **stamp_fields(stamp),  # type: ignore[arg-type]
            subject_type=opened.subject_type,
            subject=opened.subject,
            start=opened.start,
            end=max(stamp.wall_ms, opened.start),
            cause=opened.cause,
            detail=f"{opened.detail}; answered again after {seconds:.1f} s"[:1000],
        )
