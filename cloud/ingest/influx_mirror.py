"""An optional, best-effort mirror of readings into InfluxDB, for people who chart in Grafana.

The SQL database is the record; this mirror is a convenience.  Ingest
acknowledges an MQTT message only after its database commit, and the gateway
keeps the items until then, so anything that makes ingest wait makes every
gateway's outbox grow.  A slow or dead InfluxDB must therefore never hold an
acknowledgement: ``mirror()`` only formats line protocol and appends it to a
bounded in-memory queue, and one background thread writes batches with
influxdb-client's synchronous write API, retrying with capped exponential
backoff.  Nothing here raises into the caller.

What is lost, and when (the SQL database has all of it regardless):

* InfluxDB down or slow for long enough that the queue fills: the *oldest*
  queued lines are dropped and counted in ``stats().dropped`` -- a dashboard
  would rather show the recent hours than the start of an outage.
* The process stops: ``close(timeout)`` writes what it can within the
  timeout; whatever is still queued is dropped (counted).
* Readings without a value (quality ``error``): not written, counted in
  ``stats().skipped``.  A chart shows a gap there, which is the truth; the
  reason and the monitoring gap are in the SQL database and its alerts.  Writing
  them under another field would add a second series per sensor that every
  dashboard would have to filter out.

Points are ``coldgate_reading`` with tags ``gateway``, ``site``, ``sensor``,
``quantity``, ``unit``, ``quality`` and one float field ``value``, at the
reading's ``ts`` in milliseconds.  ``quality`` is a tag, so a sensor whose
readings turn ``suspect`` gets a second series; dashboards group by sensor.
Re-sending a reading (a redelivered MQTT message) writes the same point
again, which InfluxDB treats as an overwrite, so the mirror is idempotent
there (VictoriaMetrics keeps both samples unless run with
``-dedup.minScrapeInterval``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from coldgate.cloud.config import InfluxConfig
from coldgate.configfile import ConfigError
from coldgate.contract.items import Reading
from coldgate.mqtt_secrets import read_secret

__all__ = ["MEASUREMENT", "InfluxMirror", "MirrorStats"]

log = logging.getLogger(__name__)

MEASUREMENT = "coldgate_reading"

#: Characters line protocol cannot carry in a tag value the same way on every server,
#: and which ``Point`` does not escape usably: a backslash (VictoriaMetrics reads ``\\``
#: as one, InfluxDB 1.x keeps both; a trailing one escapes the separator after it and
#: corrupts the line) and control characters (``Point`` writes a newline as the two
#: characters ``\n``, which the server then keeps as such).
#: Contract ids never contain them; should one appear, it is written as ``_``.
_UNPORTABLE = re.compile(r"[\\\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class MirrorStats:
    """Counters since start.  ``queued`` is lines waiting now (including a batch
    being written); the others only grow.  Every line is counted once:
    ``queued + written + dropped`` is all lines mirrored (``skipped`` readings
    never became lines).  A line dropped on overflow while its batch was being
    written may still have arrived."""

    queued: int
    written: int
    dropped: int
    skipped: int
    errors: int
    last_error: str | None


def _required(value: str | None, name: str) -> str:
    # validate_cloud_config checks this too; a config built in code may skip it.
    if value is None:
        raise ConfigError(f"influx.{name}", "required when influx.enabled = true")
    return value


#: Line protocol escapes for tag values (after ``_UNPORTABLE`` took out backslashes).
_TAG_ESCAPES = str.maketrans({" ": "\\ ", ",": "\\,", "=": "\\="})


def _tag(value: str) -> str:
    return _UNPORTABLE.sub("_", value).translate(_TAG_ESCAPES)


def _line(gateway_tag: str, site_tag: str, reading: Reading) -> str | None:
    """One reading as a line of line protocol, or None when it has no value to chart.

    Formatted by hand: influxdb-client's ``Point`` costs about 10 µs a
    reading, which at 50,000 readings/s would take half of an ingest worker's
    time; this is under 2 µs.  Tag values are escaped as ``Point`` does
    (spaces, commas, equals signs; checked against a server), backslashes and
    control characters replaced (see ``_UNPORTABLE``).  The value is always a
    float (``repr`` gives the shortest exact form, scientific notation
    included, which line protocol accepts): an int would be written as an
    integer field, and a field's type cannot change once InfluxDB has seen it.
    """
    if reading.value is None:
        return None
    return (
        f"{MEASUREMENT},gateway={gateway_tag},site={site_tag},sensor={_tag(reading.sensor)}"
        f",quantity={reading.quantity.value},unit={reading.unit.value},quality={reading.quality.value}"
        f" value={float(reading.value)!r} {reading.ts}"
    )


class InfluxMirror:
    """Mirrors readings to one InfluxDB bucket from a background thread.

    Build it with ``from_config`` (None when the mirror is disabled) or, in
    tests, ``for_server``.  Call ``mirror()`` after each database commit and
    ``close()`` on shutdown.
    """

    def __init__(
        self,
        *,
        url: str,
        org: str,
        bucket: str,
        token: str,
        max_queue: int = 100_000,
        batch_size: int = 5_000,
        timeout_s: float = 10.0,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        self.url = url
        self.org = org
        self.bucket = bucket
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        # No urllib3 retries (the client's default): the writer thread does its own, with backoff.
        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: deque[str] = deque()
        #: Lines of the batch being written that still count as queued; lines the
        #: producer dropped from it on overflow no longer do (they are the oldest).
        self._in_flight = 0
        self._written = 0
        self._dropped = 0
        self._skipped = 0
        self._errors = 0
        self._last_error: str | None = None
        self._failing = False  # writer thread only: log once per outage, not per attempt
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._thread = threading.Thread(target=self._run, name="influx-mirror", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: InfluxConfig, **tuning: Any) -> InfluxMirror | None:
        """The mirror described by ``[influx]``, or None when ``enabled`` is false.

        The token is read from ``token_file`` now, so a missing or unreadable
        file stops the service at start with the key to fix, rather than
        failing every write later.
        """
        if not config.enabled:
            return None
        url = _required(config.url, "url")
        org = _required(config.org, "org")
        bucket = _required(config.bucket, "bucket")
        token_file = _required(config.token_file, "token_file")
        token = read_secret(token_file, "influx.token_file")
        return cls(url=url, org=org, bucket=bucket, token=token, **tuning)

    @classmethod
    def for_server(cls, url: str, org: str, bucket: str, token: str, **tuning: Any) -> InfluxMirror:
        """A mirror without a config file (tests, tools)."""
        return cls(url=url, org=org, bucket=bucket, token=token, **tuning)

    # ---------------------------------------------------------------- caller side

    def mirror(self, gateway: str, site: str, readings: Sequence[Reading]) -> None:
        """Queue ``readings`` for InfluxDB and return at once; never raises.

        Call it after the SQL commit: the points are formatted here (under
        2 µs a reading), written later by the background thread.
        """
        try:
            lines: list[str] = []
            skipped = 0
            gateway_tag, site_tag = _tag(gateway), _tag(site)
            for reading in readings:
                line = _line(gateway_tag, site_tag, reading)
                if line is None:
                    skipped += 1
                else:
                    lines.append(line)
        except Exception as exc:  # a bug here must not cost the caller its acknowledgement
            log.exception("influx mirror: cannot format readings from %s", gateway)
            with self._lock:
                self._errors += 1
                self._last_error = f"format: {type(exc).__name__}: {exc}"
            return
        with self._wake:
            self._skipped += skipped
            if self._closing.is_set():
                self._dropped += len(lines)
                return
            self._queue.extend(lines)
            overflow = len(self._queue) + self._in_flight - self.max_queue
            if overflow > 0:
                # Oldest first: the batch being written, then the front of the queue.
                from_batch = min(overflow, self._in_flight)
                self._in_flight -= from_batch
                for _ in range(overflow - from_batch):
                    self._queue.popleft()
                self._dropped += overflow
            if lines:
                self._wake.notify()

    def stats(self) -> MirrorStats:
        with self._lock:
            return MirrorStats(
                queued=len(self._queue) + self._in_flight,
                written=self._written,
                dropped=self._dropped,
                skipped=self._skipped,
                errors=self._errors,
                last_error=self._last_error,
            )

    def close(self, timeout: float = 5.0) -> MirrorStats:
        """Write what can be written within ``timeout`` seconds, then stop.

        Lines still queued after that are dropped (and counted).  Returns the
        final counters, for the shutdown log.
        """
        with self._wake:
            if self._deadline is None:
                self._deadline = time.monotonic() + timeout
            self._closing.set()
            self._wake.notify_all()
        # A write in progress when the deadline passes may still run for up to timeout_s.
        self._thread.join(timeout + 1.0)
        with self._lock:
            if not self._thread.is_alive():
                self._dropped += len(self._queue)
                self._queue.clear()
        self._client.close()
        return self.stats()

    # ---------------------------------------------------------------- writer thread

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        backoff = self.retry_initial_s
        while True:
            with self._wake:
                while not self._queue and not self._closing.is_set():
                    self._wake.wait()
                if not self._queue or self._past_deadline():
                    return
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                self._in_flight = len(batch)
            try:
                self._write_api.write(
                    bucket=self.bucket, org=self.org, record=batch, write_precision=WritePrecision.MS
                )
            except Exception as exc:
                self._failed(batch, exc)
                self._back_off(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
            else:
                with self._lock:
                    # Lines dropped from this batch meanwhile did arrive; they stay counted
                    # as dropped so that queued + written + dropped is every line once.
                    self._written += self._in_flight
                    self._in_flight = 0
                backoff = self.retry_initial_s
                if self._failing:
                    self._failing = False
                    log.info("influx mirror: writing to %s again", self.url)

    def _failed(self, batch: list[str], exc: Exception) -> None:
        """Put the batch back in front for the next attempt, less any of its oldest
        lines that overflow dropped while it was being written."""
        text = f"{type(exc).__name__}: {exc}"
        with self._lock:
            keep = batch[len(batch) - self._in_flight :] if self._in_flight else []
            self._in_flight = 0
            self._queue.extendleft(reversed(keep))
            self._errors += 1
            self._last_error = text[:500]
        if not self._failing:
            self._failing = True
            log.warning("influx mirror: write to %s failed, will retry: %s", self.url, text[:500])

    def _back_off(self, delay: float) -> None:
        """Sleep before the next attempt; ``close()`` cuts the sleep short once, so
        a shutdown gets a prompt last try, then sleeps stay within the deadline."""
        if not self._closing.is_set():
            self._closing.wait(delay)
            return
        deadline = self._deadline
        remaining = delay if deadline is None else deadline - time.monotonic()
        time.sleep(max(0.0, min(delay, remaining)))
