"""The cloud in one process: migrations, ingest workers, scheduled upkeep and the REST API.

One process is what a single site (or the demo) needs.  At scale the parts
split: ``coldgate cloud ingest --worker N`` runs one ingest worker per process
on the shared subscription (stateless, so any number), and one ``coldgate
cloud run --no-ingest`` keeps the scheduler and the API.  The scheduler must
run in one process only: the unheard-gateway watchdog numbers its records itself.

Workers here are threads: enough for one site, and SQLite allows one writer at
a time anyway.  On PostgreSQL the binding job then runs in a child process, so
that its Python work never takes the workers' (``cloud/documents/binding_runs.py``).
The API runs uvicorn in a thread of its own, so that stopping the service is one
synchronous call for the CLI and for the demo.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from sqlalchemy import Engine

from coldgate.cloud.alerts.case_flow import CaseDuties
from coldgate.cloud.api.auth import ApiTokens, AuthSettings, load_tokens
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.engine import database_url, make_engine
from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.downlink.publisher import DownlinkPublisher
from coldgate.cloud.ingest.influx_mirror import InfluxMirror
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.worker import IngestStats, IngestWorker
from coldgate.cloud.scheduler import CloudScheduler
from coldgate.cloud.web.app import create_web_app

__all__ = ["CloudService"]

log = logging.getLogger(__name__)


@dataclass
class CloudService:
    """``start()`` then ``stop()``; ``ingest_stats()`` sums the workers' counters."""

    config: CloudConfig
    ingest: bool = True
    api: bool = True
    scheduler: bool = True
    tokens: ApiTokens | None = None
    watchdog_interval_s: float = 10.0
    workers: list[IngestWorker] = field(default_factory=list)
    writer_engine: Engine | None = None
    reader_engine: Engine | None = None
    mirror: InfluxMirror | None = None
    _scheduler: CloudScheduler | None = None
    downlink: DownlinkPublisher | None = None
    _server: uvicorn.Server | None = None
    _api_thread: threading.Thread | None = None

    def start(self) -> CloudService:
        url = database_url(self.config.database)
        migrate(url)
        pool = self.config.database.pool_size
        self.writer_engine = make_engine(url, writer=True, pool_size=pool)
        self.reader_engine = make_engine(url, pool_size=pool)
        try:
            if self.ingest:
                self.mirror = InfluxMirror.from_config(self.config.influx)
                limits = IngestLimits.from_config(self.config.ingest)
                for n in range(1, self.config.mqtt.workers + 1):
                    worker = IngestWorker(
                        self.writer_engine, self.config.mqtt, n, mirror=self.mirror, limits=limits
                    )
                    self.workers.append(worker.start(wait_subscribed_s=None))
            if self.scheduler:
                # Beside ingest on PostgreSQL, binding runs in a child process: its Python work would
                # otherwise take the workers' (``cloud/documents/binding_runs.py``).
                apart = self.ingest and self.writer_engine.dialect.name == "postgresql"
                self._scheduler = CloudScheduler(
                    self.writer_engine, self.config, watchdog_interval_s=self.watchdog_interval_s,
                    binding_apart=apart,
                )  # fmt: skip
                self._scheduler.start()
                # One publisher per deployment, like the scheduler: it numbers the documents' versions.
                publisher = DownlinkPublisher(self.writer_engine, self.config.mqtt)
                self.downlink = publisher.start(wait_connected_s=None)
                self._scheduler.catalog_changed = self.downlink.nudge  # a case's quarantine, at once
            if self.api:
                self._start_api()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_api(self) -> None:
        assert self.reader_engine is not None
        path = self.config.api.tokens_file
        tokens = self.tokens or (load_tokens(path) if path is not None else ApiTokens(()))
        app = create_web_app(
            self.reader_engine,
            tokens,
            writer=self.writer_engine,
            auth=AuthSettings.from_config(self.config.identity),
        )
        # Whether a source is capped now depends on [ingest], which the read API does not otherwise see.
        app.state.dead_letter_budget = IngestLimits.from_config(self.config.ingest).budget
        # The case page checks a notification's acknowledge link with the key [notify] says where to find.
        app.state.notify = self.config.notify
        # The signatures each type of QA case takes ([cases.signatures]).
        app.state.case_duties = CaseDuties(self.config.cases.signatures_by_type())
        if self.downlink is not None:  # a catalog write publishes at once instead of at the next pass
            app.state.catalog_changed = self.downlink.nudge
        if self.workers:  # GET /metrics adds this process's ingest counters
            app.state.ingest_stats = self.ingest_stats
        server_config = uvicorn.Config(
            app, host=self.config.api.host, port=self.config.api.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(server_config)
        self._api_thread = threading.Thread(target=self._server.run, name="cloud-api", daemon=True)
        self._api_thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._api_thread.is_alive():
                raise OSError(
                    f"the API could not listen on {self.config.api.host}:{self.config.api.port} "
                    "(is the port taken? set [api] port)"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("the API did not start within 10 s")
            time.sleep(0.05)

    @property
    def api_url(self) -> str:
        return f"http://{self.config.api.host}:{self.config.api.port}"

    def ingest_stats(self) -> IngestStats:
        total = IngestStats()
        for worker in self.workers:
            stats = worker.snapshot()
            for name in IngestStats.COUNTERS:
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            total.connected = total.connected or stats.connected
            total.last_db_error = stats.last_db_error or total.last_db_error
        return total

    def stop(self) -> None:
        """API first (no new requests), then workers (each commits and acks what it holds), then upkeep."""
        if self._server is not None:
            self._server.should_exit = True
            if self._api_thread is not None:
                self._api_thread.join(10)
        for worker in self.workers:
            worker.stop()
        self.workers.clear()
        if self.mirror is not None:
            self.mirror.close()
        if self._scheduler is not None:
            self._scheduler.shutdown()
        if self.downlink is not None:
            self.downlink.stop()
        for engine in (self.writer_engine, self.reader_engine):
            if engine is not None:
                engine.dispose()
