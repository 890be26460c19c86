"""``coldgate gateway run``: the whole edge process for one Pi.

Wires the durable outbox, the gateway app (sources → rules → outbox, local
alarm), the down-link documents, the MQTT uplink and the clock watch onto one
asyncio loop.  The outbox is opened first and closed last, so nothing any part
produced while stopping is lost.

A configuration pushed down from the cloud is checked by the down-link, kept on
disk, and applied here by restarting the app (sources, rules, alarm) with it:
the outbox and the uplink run on.  Settings of the outbox and the uplink itself
(broker, credentials) take effect at the next start of the process, because
changing them under a running link could strand acknowledged-but-unsent state.

The temperature classes are the cloud's (issue 14): the down-link lays the
classes of the master data in force over the configuration (the file's, or the
last version pushed), and when that changes a class the app runs with, the app
is restarted the same way, so zones are judged by the pushed class from then
on.  Master data cached on disk is applied before the app first starts, so a
gateway rebooted without network judges by the classes it last had.

At start, before anything writes, the service reads how the previous process
ended (the outbox's last sign of life and clean-close flag, the heartbeat kept
on disk) and, as the app starts its sources, records the time nobody was
monitoring as a gap (``gateway.restart_gap``).

Under systemd (``Type=notify``) the service says READY=1 once the outbox is
open and the app's loops started, keeps a short STATUS= line, pets the
watchdog only while every essential loop turns (``gateway.loop_watch``: the
sources, the alarm loop, the outbox writer, the uplink) and says STOPPING=1
when asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from coldgate.contract.downlink import MasterData, RecallList
from coldgate.contract.uplink import Status
from coldgate.gateway.app import GatewayApp, start_summary
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import Clock, SystemClock
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.local_status import heartbeat_stamp, write_heartbeat
from coldgate.gateway.loop_watch import Beat, Fault, LoopWatch, WatchdogPetter
from coldgate.gateway.metrics import MetricsServer
from coldgate.gateway.pushed_classes import class_changes
from coldgate.gateway.restart_gap import PreviousRun, latest, min_gap_ms, restart_gap
from coldgate.gateway.sensors.config import ModbusSensor
from coldgate.gateway.status import build_status
from coldgate.gateway.systemd_notify import Notifier, watchdog_period_s
from coldgate.gateway.topology import topology_of
from coldgate.gateway.uplink.clock_watch import ClockWatch
from coldgate.gateway.uplink.downlink import Document, Downlink
from coldgate.gateway.uplink.drain import Uplink

log = logging.getLogger(__name__)


class GatewayService:
    """One gateway process; ``await GatewayService(config).run(stop)``."""

    def __init__(self, config: GatewayConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.app: GatewayApp | None = None
        self.uplink: Uplink | None = None
        self.master: MasterData | None = None
        self.recalls: RecallList | None = None
        self._started = self.clock.monotonic()
        self._reload = asyncio.Event()
        self.fault = Fault.from_env()  # test-only (COLDGATE_FAULT); None on a real gateway
        self.notifier = Notifier()

    def _on_document(self, kind: str, document: Document) -> None:
        if kind in ("master", "recall"):
            # Kept here as well: the app may not exist yet (documents load at boot) or be replaced.
            if isinstance(document.message, MasterData):
                self.master = document.message
            elif isinstance(document.message, RecallList):
                self.recalls = document.message
            if self.app is not None:
                self.app.update_documents(self.master, self.recalls)
            config = document.config
            if config is not None and config.temperature_classes != self.config.temperature_classes:
                self._log_classes(f"master data version {document.version}", config)
                log.warning("master data version %s changes temperature classes: restarting sources and "
                            "rules", document.version)  # fmt: skip
                self.config = config
                self._reload.set()
            return
        if kind == "config" and document.config is not None and document.config != self.config:
            log.warning("configuration version %s received: restarting sources and rules", document.version)
            self._log_classes(f"configuration version {document.version}", document.config)
            self.config = document.config
            self._reload.set()

    def _log_classes(self, what: str, config: GatewayConfig) -> None:
        """Which classes change, from what to what: the log says by which limits zones are judged."""
        for line in class_changes(self.config.temperature_classes, config.temperature_classes):
            log.warning("%s: temperature class %s", what, line)

    def status(self) -> Status:
        """The gateway's status: the uplink's figures with the app's alarm, sensors, readers, scanners."""
        assert self.uplink is not None
        downlink = self.uplink.downlink
        return build_status(
            site=self.config.gateway.site,
            gateway=self.config.gateway.id,
            clock=self.clock,
            outbox=self.uplink.outbox,
            heartbeat_s=self.config.uplink.heartbeat_s,
            started_mono=self._started,
            app=self.app.status_parts() if self.app is not None else None,
            versions=downlink.versions if downlink is not None else None,
            errors=self.uplink.errors.recent(),
            topology=topology_of(self.config),
        )

    def heartbeat(self) -> Status:
        """The status the uplink publishes, also kept on disk for ``coldgate gateway status`` offline."""
        status = self.status()
        try:
            write_heartbeat(self.config.gateway.data_dir, status)
        except OSError as exc:
            log.warning("cannot keep the last heartbeat on disk: %s", exc)
        return status

    def _previous_run(self, outbox: Outbox) -> PreviousRun | None:
        """How the previous process ended; read before this one writes a heartbeat or commits."""
        alive = latest(outbox.previous_alive, heartbeat_stamp(self.config.gateway.data_dir))
        if outbox.previous_alive is None or alive is None:
            return None  # nothing was ever committed: a first start, no monitoring to have missed
        return PreviousRun(alive=alive, clean=outbox.previous_clean)

    def _record_restart(self, outbox: Outbox, previous: PreviousRun) -> None:
        """The gap since the previous run, stamped now: the sources start right after this."""
        gap = restart_gap(
            previous, self.clock.stamp(), gateway=self.config.gateway.id, min_gap_ms=min_gap_ms(self.config)
        )
        if gap is None:
            log.info("restarted within one poll interval of the last record: no monitoring gap")
            return
        log.warning("monitoring gap while the gateway was not running: %s", gap.detail)
        outbox.put(gap)

    async def _run_app(
        self, outbox: Outbox, stop: asyncio.Event, previous: PreviousRun | None = None
    ) -> None:
        """Run the app; on a pushed configuration, stop it and start a new one with that config.

        ``previous``: how the last process ended; its gap is recorded as the first app starts.
        """
        while not stop.is_set():
            self._reload.clear()
            app_stop = asyncio.Event()
            # The new app takes over the old one's rule state and alarm (see GatewayApp).
            self.app = GatewayApp(
                self.config,
                outbox,
                clock=self.clock,
                previous=self.app,
                master=self.master,
                recalls=self.recalls,
                status_provider=self.status,
                fault=self.fault,
            )
            if previous is not None:
                self._record_restart(outbox, previous)
                previous = None
            log.info("%s", start_summary(self.config))
            task = asyncio.create_task(self.app.run(app_stop))
            waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._reload.wait())]
            try:
                await asyncio.wait([task, *waiters], return_when=asyncio.FIRST_COMPLETED)
            finally:
                app_stop.set()
                for waiter in waiters:
                    waiter.cancel()
                await task
                if stop.is_set():  # the end, not a reload: decide the dock passes under way
                    self.app.finish_passes()

    def _petter(self, outbox: Outbox, uplink: asyncio.Task[None]) -> WatchdogPetter:
        """The systemd watchdog's petting, over the service's loops and the running app's.

        The outbox writer thread comes round at every commit, retry and ack; with
        nothing queued it sleeps by design (parked).  The uplink's send loop awaits
        only its own wake-up (anything else it could hang in is synchronous and would
        block the event loop, which stops the petting by itself), so only its task
        being alive is watched.
        """
        committer = outbox._committer  # the writer thread's sign of life (its ``turned_at``)
        if self.fault is not None:
            self.fault.hang_committer(committer)
        service_beats = [
            Beat(
                "outbox writer",
                progress=lambda: getattr(committer, "turned_at", None),
                parked=lambda: committer.pending == 0,
                alive=lambda: committer.alive,
            ),
            Beat("uplink", parked=lambda: True, alive=lambda: not uplink.done()),
        ]

        def beats() -> list[Beat]:
            return service_beats + (self.app.beats if self.app is not None else [])

        return WatchdogPetter(
            self.notifier,
            LoopWatch(beats, self.clock.monotonic),
            period_s=watchdog_period_s(),
            ready=lambda: self.app is not None and self.app.started,
            status=lambda: self.status_line(outbox),
        )

    def _start_metrics(self) -> MetricsServer | None:
        """``/metrics`` for Prometheus (``[metrics] listen``), from the status the heartbeat carries.

        Metrics are for the people watching, never a reason to stop watching the cold room: an address
        already taken or refused is a warning, and the gateway runs on without them.
        """
        listen = self.config.metrics.listen
        if not listen:
            return None
        try:
            server = MetricsServer(
                listen, self.status, lambda: self.clock.stamp().wall_ms, asyncio.get_running_loop()
            )
            server.start()
        except (OSError, ValueError) as exc:
            log.warning("no metrics for Prometheus at %s: %s ([metrics] listen)", listen, exc)
            return None
        return server

    def status_line(self, outbox: Outbox) -> str:
        """One short line for ``systemctl status``: what it polls and what waits to be sent."""
        config = self.config
        lines = {sensor.line for sensor in config.sensors if isinstance(sensor, ModbusSensor)}
        parts = [f"polling {_count(len(config.sensors), 'sensor')} on {_count(len(lines), 'line')}"]
        if config.readers:
            parts.append(_count(len(config.readers), "reader"))
        if config.scanners:
            parts.append(_count(len(config.scanners), "scanner"))
        parts.append(f"outbox {outbox.depth()} unacked")
        return ", ".join(parts)

    async def run(self, stop: asyncio.Event) -> None:
        gateway, site = self.config.gateway.id, self.config.gateway.site
        with Outbox(self.config.outbox, gateway=gateway, clock=self.clock) as outbox:
            previous = self._previous_run(outbox)
            downlink = Downlink(
                self.config.gateway.data_dir,
                gateway=gateway,
                site=site,
                sink=outbox,
                clock=self.clock,
                on_document=self._on_document,
                configuration=self.config,
            )
            downlink.load()  # the last known documents, so a reboot without network uses them
            self.uplink = Uplink(
                self.config.uplink,
                gateway=gateway,
                site=site,
                outbox=outbox,
                clock=self.clock,
                status_provider=self.heartbeat,
                downlink=downlink,
                on_command=lambda command: self.app.handle_command(command) if self.app else None,
            )
            watch = ClockWatch(self.clock, outbox.put)
            tasks = [
                asyncio.create_task(self._run_app(outbox, stop, previous), name="app"),
                asyncio.create_task(self.uplink.run(stop), name="uplink"),
                asyncio.create_task(watch.run(stop), name="clock-watch"),
            ]
            petter = self._petter(outbox, tasks[1])
            tasks.append(asyncio.create_task(petter.run(stop), name="systemd-watchdog"))
            metrics = self._start_metrics()
            failure: BaseException | None = None
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                failure = next((t.exception() for t in done if t.exception() is not None), None)
            finally:
                stop.set()
                self.notifier.stopping(f"stopping: committing the outbox, {outbox.pending()} queued")
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await asyncio.wait_for(task, 30)
                if metrics is not None:
                    await asyncio.to_thread(metrics.stop)
            if failure is not None:
                # A bug in a part: stop cleanly (the outbox closes above) and let systemd restart us.
                raise RuntimeError(f"a gateway part failed: {failure!r}") from failure


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
