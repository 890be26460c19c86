"""The gateway's figures for Prometheus: what its heartbeat says, at ``http://<listen>/metrics``.

The people who run a fleet of Pis watch them in Prometheus and Grafana, not one ``coldgate gateway
status`` at a time (``deploy/grafana/coldgate.json`` is the dashboard).  Everything here comes from the
gateway's own ``Status`` (the heartbeat the cloud gets too), turned into metric families by a pure
function, so the figures Prometheus scrapes are the ones the cloud and the local status show.  The
status is taken on the gateway's event loop at each scrape (the HTTP server runs in its own thread,
the one ``prometheus_client`` gives it), never read half-built.

Names follow Prometheus's conventions: ``_total`` counters since the gateway started, gauges in base
units (seconds, items), a label per sensor, reader and scanner.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from coldgate.contract.uplink import Status

__all__ = ["MetricsServer", "families", "parse_listen"]

log = logging.getLogger(__name__)
#: How long a scrape waits for the event loop to take the status.
STATUS_TIMEOUT_S = 5.0


def _gauge(name: str, what: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, what, value=value)


def families(status: Status, now_ms: int) -> list[Metric]:
    """The metric families of one status taken at ``now_ms`` (pure: a status in, figures out)."""
    out: list[Metric] = []
    info = InfoMetricFamily("coldgate_gateway", "The gateway, its site and its software.")
    info.add_metric([], {"gateway": status.gateway, "site": status.site, "software": status.software or ""})
    out.append(info)
    if status.uptime_s is not None:
        out.append(_gauge("coldgate_gateway_uptime_seconds", "Since the process started.", status.uptime_s))
    if status.outbox_depth is not None:
        what = "Items the cloud has not acknowledged."
        out.append(_gauge("coldgate_outbox_depth_items", what, status.outbox_depth))
    oldest = 0.0 if status.oldest_unacked is None else max(0.0, (now_ms - status.oldest_unacked) / 1000)
    what = "Age of the oldest item the cloud has not acknowledged (0: none waits)."
    out.append(_gauge("coldgate_outbox_oldest_unacked_age_seconds", what, oldest))
    if status.last_seq is not None:
        out.append(_gauge("coldgate_outbox_last_seq", "Highest sequence number assigned.", status.last_seq))
        lag = max(0, status.last_seq - (status.last_acked_seq or 0))
        what = "Items assigned but not yet acknowledged by the cloud, by sequence number."
        out.append(_gauge("coldgate_uplink_ack_lag_items", what, lag))
    if status.last_acked_seq is not None:
        what = "Highest sequence number acknowledged."
        out.append(_gauge("coldgate_outbox_last_acked_seq", what, status.last_acked_seq))
    if status.clock is not None:
        what = "1 while the kernel clock is NTP-synchronised."
        out.append(_gauge("coldgate_clock_synced", what, int(status.clock.synced)))
    if status.alarm is not None:
        alarm = status.alarm
        for name, what, on in (
            ("active", "an alert at or above the alarm's severity is open", alarm.active),
            ("sounding", "the siren or light is on", alarm.sounding),
            ("silenced", "muted by an operator", alarm.silenced),
        ):
            out.append(_gauge(f"coldgate_alarm_{name}", f"1 while {what}.", int(on)))
        out.append(_gauge("coldgate_alarm_open_alerts", "Open alerts the alarm holds.", len(alarm.alerts)))
    out += _sensor_families(status)
    for kind, links in (("reader", status.readers), ("scanner", status.scanners)):
        online = GaugeMetricFamily(
            f"coldgate_{kind}_online", f"1 while the {kind} is connected and working.", labels=[kind]
        )
        for link in links:
            online.add_metric([link.id], int(link.online))
        out.append(online)
    what = "Problems in the status's list of recent ones."
    out.append(_gauge("coldgate_gateway_recent_errors", what, len(status.errors)))
    return out


def _sensor_families(status: Status) -> Iterable[Metric]:
    by_sensor = ["sensor"]
    online = GaugeMetricFamily(
        "coldgate_sensor_online", "1 while the sensor answered its last poll.", labels=by_sensor
    )
    counters = [
        (CounterMetricFamily(name, what, labels=by_sensor), field)
        for name, what, field in (
            ("coldgate_sensor_polls_scheduled", "Polls due since the gateway started.", "scheduled"),
            (
                "coldgate_sensor_polls_served",
                "Polls started within half an interval of their slot.",
                "served",
            ),
            (
                "coldgate_sensor_polls_missed",
                "Slots skipped: the line was busy or the gateway stalled.",
                "missed",
            ),
        )
    ]
    lag = GaugeMetricFamily(
        "coldgate_sensor_poll_lag_p95_seconds", "95th percentile poll lag behind schedule.", labels=by_sensor
    )
    last = GaugeMetricFamily(
        "coldgate_sensor_last_poll_timestamp_seconds", "Last successful poll (Unix time).", labels=by_sensor
    )
    for sensor in status.sensors:
        key = [sensor.id]
        online.add_metric(key, int(sensor.online))
        for family, field in counters:
            value = getattr(sensor, field)
            if value is not None:
                family.add_metric(key, value)
        if sensor.lag_p95_ms is not None:
            lag.add_metric(key, sensor.lag_p95_ms / 1000)
        if sensor.last_poll is not None:
            last.add_metric(key, sensor.last_poll / 1000)
    return (online, *(family for family, _ in counters), lag, last)


def parse_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9877"`` -> (host, port); ValueError saying what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ValueError(f"{listen!r}: expected host:port, e.g. 127.0.0.1:9877")
    return host.strip("[]"), int(port)


class _StatusCollector(Collector):
    def __init__(self, take: Callable[[], tuple[Status, int]]) -> None:
        self._take = take

    def collect(self) -> Iterable[Metric]:
        status, now_ms = self._take()
        return families(status, now_ms)


class MetricsServer:
    """``/metrics`` over HTTP in a thread of its own, taking the status on ``loop`` at each scrape."""

    def __init__(
        self, listen: str, status: Callable[[], Status], now_ms: Callable[[], int],
        loop: asyncio.AbstractEventLoop,
    ) -> None:  # fmt: skip
        self.host, self.port = parse_listen(listen)
        self._status, self._now_ms, self._loop = status, now_ms, loop
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_StatusCollector(self._take))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _take(self) -> tuple[Status, int]:
        async def take() -> tuple[Status, int]:
            return self._status(), self._now_ms()

        return asyncio.run_coroutine_threadsafe(take(), self._loop).result(STATUS_TIMEOUT_S)

    def start(self) -> None:
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = self._server.server_port  # port 0: the one the system gave
        log.info("metrics for Prometheus at http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
