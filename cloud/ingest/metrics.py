"""An ingest worker's own counters for Prometheus, per worker: what it took, stored, refused.

The cloud's ``GET /metrics`` (``cloud/api/queries_metrics.py``) reads what every process wrote to the
database, but the ingest counters live in the process that ingests.  ``coldgate cloud ingest
--metrics-listen HOST:PORT`` serves a worker's own at ``http://HOST:PORT/metrics`` (a thread of
``prometheus_client``'s, taking a snapshot under the worker's lock at each scrape), so a deployment
that scales out with separate worker processes still sees its ingest rate and refusals per worker.
The families are built by one pure function, also used by the cloud's ``/metrics`` for the workers
it runs in-process, so both name them alike (``coldgate_cloud_ingest_*_total{worker=...}``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["COUNTERS", "IngestMetricsServer", "ingest_families"]

log = logging.getLogger(__name__)

#: (``IngestStats`` field, what it counts) of each counter exported.
COUNTERS = (
    ("messages", "Messages ingest took."),
    ("new", "Items stored for the first time."),
    ("new_readings", "Readings stored for the first time."),
    ("duplicates", "Items already stored (a re-send)."),
    ("conflicts", "Items whose key was stored with other content."),
    ("dead_letters", "Messages or items dead-lettered."),
    ("not_enrolled", "Messages from gateways that are not enrolled (nothing stored)."),
    ("ahead", "Items of batches refused for starting ahead of the sequence window."),
    ("acks_published", "Acknowledgements published to gateways."),
    ("db_retries", "Database transactions retried after an error."),
)


def ingest_families(stats: Mapping[str, int], worker: str) -> list[Metric]:
    """The counters of one worker (or of the workers one process runs), labelled ``worker``."""
    out: list[Metric] = []
    for key, what in COUNTERS:
        if key in stats:
            family = CounterMetricFamily(f"coldgate_cloud_ingest_{key}", what, labels=["worker"])
            family.add_metric([worker], stats[key])
            out.append(family)
    if "connected" in stats:
        up = GaugeMetricFamily("coldgate_cloud_ingest_connected", "1 while connected to the broker.",
                               labels=["worker"])  # fmt: skip
        up.add_metric([worker], int(stats["connected"]))
        out.append(up)
    return out


class _Snapshot(Collector):
    def __init__(self, take: Callable[[], Mapping[str, int]], worker: str) -> None:
        self._take, self._worker = take, worker

    def collect(self) -> Iterable[Metric]:
        return ingest_families(self._take(), self._worker)


class IngestMetricsServer:
    """``/metrics`` of one worker over HTTP, in a thread of its own."""

    def __init__(self, host: str, port: int, take: Callable[[], Mapping[str, int]], worker: str) -> None:
        self.host, self.port = host, port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Snapshot(take, worker))
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> IngestMetricsServer:
        """Listen; OSError (the port taken) is the caller's to report."""
        from prometheus_client import start_http_server

        self._server, self._thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        self.port = self._server.server_port  # port 0: the one the system gave
        log.info("ingest metrics for Prometheus at http://%s:%d/metrics", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
