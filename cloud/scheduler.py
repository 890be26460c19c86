"""The cloud's scheduled upkeep: the unheard-gateway, stuck-stream and down-link watchdogs, QA cases and
their notifications, the partitions.

One :class:`CloudScheduler` runs per cloud process, and a deployment runs one
cloud process (ingest scales by its MQTT workers inside it).  The watchdog
relies on that: it is safe against ingest and against an overlapping run of
itself, but running it from several processes would only multiply the work.
If the cloud is ever split into several processes, exactly one of them should
start a scheduler.

Partitions are created ahead of time because a month cannot be created once
rows for it sit in the DEFAULT partition (PostgreSQL refuses); the current
month and the next ``months_ahead`` months are ensured synchronously in
:meth:`CloudScheduler.start` (so call it before ingest starts writing) and
again daily.  A failing job is logged and tried again at its next run; it
never stops the scheduler or the service.

Notifications of QA cases (``alerts/notify_queue.py``) are planned and sent by the notify job every
``[notify] interval_s``, and is woken right after a run of the QA cases job that placed alerts, so that an
e-mail leaves within about a second of the alert reaching the cloud (the QA cases job runs on the same
interval).  A notify run asked for while one is going does not wait: the running one goes round once
more instead.

The monthly GSP records (``reports/periodic_store.py``) of every storage location for the previous month
are generated and stored early on the 1st (02:15 UTC), each only if not stored yet.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine

from coldgate.cloud.alerts.calibration_due import CalibrationStep
from coldgate.cloud.alerts.calibration_due_watch import check_calibrations
from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.alerts.dock_discrepancies import DockStep
from coldgate.cloud.alerts.dock_discrepancies_watch import DockWatchCache, check_dock
from coldgate.cloud.alerts.gap_verdicts_watch import decide_gaps
from coldgate.cloud.alerts.gateway_unheard import UnheardAction
from coldgate.cloud.alerts.gateway_unheard_watch import check_gateways
from coldgate.cloud.alerts.notify_queue import SendRun, check_policies, plan_notifications, send_queued
from coldgate.cloud.alerts.notify_send import Sender
from coldgate.cloud.alerts.stream_stuck import StuckAction, StuckTracker
from coldgate.cloud.alerts.stream_stuck_watch import check_streams
from coldgate.cloud.audit.checkpoint import Checkpoint, load_private_key, write_checkpoint
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.partitions import ensure_partitions
from coldgate.cloud.documents.binding_runs import BindingProcess, bind_runs
from coldgate.cloud.documents.binding_store import BindingCache
from coldgate.cloud.downlink.currency import ClearBehind, RaiseBehind
from coldgate.cloud.downlink.currency_watch import check_downlink
from coldgate.cloud.reports.periodic_store import store_monthly_due

__all__ = ["MONTHS_AHEAD", "CloudScheduler", "partition_window", "quiet_apscheduler"]

log = logging.getLogger(__name__)

UTC = datetime.UTC
#: Monthly partitions kept ready beyond the current month.
MONTHS_AHEAD = 3
UNHEARD_JOB = "gateway-watchdog"
STUCK_JOB = "stuck-streams"
DOWNLINK_JOB = "downlink-currency"
CALIBRATION_JOB = "calibration-due"
BINDING_JOB = "bind-items"
DOCK_JOB = "dock-discrepancies"
CASES_JOB = "open-cases"
NOTIFY_JOB = "notify"
#: Seconds between binding runs: a case passing the portal shows on its document within this.
BINDING_EVERY_S = 2.0
PARTITIONS_JOB = "readings-partitions"
AUDIT_CHECKPOINT_JOB = "audit-checkpoint"
PARTITIONS_RETRY_JOB = "readings-partitions-retry"
#: Minutes until a failed partition run is tried again.
RETRY_MIN = 10
#: The monthly GSP records of every storage location for the previous month: early on the 1st (UTC).
MONTHLY_REPORTS_JOB = "monthly-reports"
#: Seconds :meth:`CloudScheduler.shutdown` waits for runs in progress before it leaves them behind (named).
STOP_WAIT_S = 60.0


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def quiet_apscheduler() -> None:
    """APScheduler logs every run of every job at INFO ("Running job", "executed successfully": with
    the QA cases and notify jobs every second, four lines a second and more every 10 s), which buries
    what an operator needs in the journal; its warnings
    (a run missed, one skipped while the last is busy) and errors still show.  A level someone set on
    its logger on purpose (to debug the scheduler) is left alone."""
    logger = logging.getLogger("apscheduler")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def partition_window(
    today: datetime.date, months_ahead: int = MONTHS_AHEAD
) -> tuple[datetime.date, datetime.date]:
    """[first day of this month, first day of the month ``months_ahead`` later] (UTC months).

    Partition bounds are UTC epoch milliseconds, so the month is the UTC one.
    """
    first = today.replace(day=1)
    index = first.year * 12 + first.month - 1 + months_ahead
    return first, datetime.date(index // 12, index % 12 + 1, 1)


class CloudScheduler:
    """APScheduler jobs of one cloud process; ``start()`` at service start, ``shutdown()`` at stop."""

    def __init__(
        self,
        engine: Engine,
        config: CloudConfig,
        *,
        watchdog_interval_s: float = 10.0,
        months_ahead: int = MONTHS_AHEAD,
        clock: Callable[[], datetime.datetime] = _utcnow,
        binding_apart: bool = False,
    ) -> None:
        if watchdog_interval_s <= 0:
            raise ValueError(f"watchdog_interval_s must be positive, not {watchdog_interval_s}")
        self._engine = engine
        #: The binding job's reads kept between its runs while nothing audited changed.
        self._binding_cache = BindingCache()
        #: With ``binding_apart`` (a process that also ingests, on PostgreSQL), the binding job runs in
        #: a child process (``binding_runs``), so that its Python work never takes ingest's.
        self.binding_process = BindingProcess(engine) if binding_apart else None
        #: The dock watch's standings, kept per document while nothing they come from changed.
        self._dock_cache = DockWatchCache()
        self._default_timeout_s = config.gateways.heartbeat_timeout_s
        self._stuck_after_s = config.gateways.stream_stuck_after_s
        self._behind_after_s = config.gateways.downlink_behind_after_s
        self._calibration_warn_days = config.gateways.calibration_warn_days
        self._stuck = StuckTracker()
        self._interval_s = watchdog_interval_s
        self._months_ahead = months_ahead
        self._clock = clock
        self._listening_since: datetime.datetime | None = None
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._audit = config.audit
        self._notify = config.notify
        #: Made at the first notify run (reads the SMTP password file then, not at construction).
        self._sender: Sender | None = None
        self._notify_lock = threading.Lock()
        #: Told after a QA cases run that placed alerts (it may have quarantined lots): the service sets
        #: the down-link publisher's ``nudge``, so the gateways get the new list now, not at its next pass.
        self.catalog_changed: Callable[[], None] | None = None
        self._notify_again = threading.Event()
        #: Short critical policies already logged (site, count).
        self._notify_warned: set[object] = set()
        #: Names of the jobs running now, so that shutdown waits for them itself (see ``shutdown``).
        self._running_jobs: list[str] = []
        self._jobs_done = threading.Condition()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Ensure the partitions now, then run the watchdog every interval and the partitions daily."""
        self._listening_since = self._clock()
        quiet_apscheduler()
        self.ensure_partitions_now()
        if self.binding_process is not None:
            self.binding_process.start()
        every_interval = IntervalTrigger(seconds=self._interval_s, timezone=UTC)
        self._every(self.check_gateways_now, every_interval, UNHEARD_JOB, "unheard-gateway watchdog")
        self._every(self.check_streams_now, every_interval, STUCK_JOB, "stuck-stream watchdog")
        self._every(self.check_downlink_now, every_interval, DOWNLINK_JOB, "down-link currency watchdog")
        self._every(
            self.bind_job_now,
            IntervalTrigger(seconds=min(BINDING_EVERY_S, self._interval_s), timezone=UTC),
            BINDING_JOB,
            "binding of movements and scans to documents",
        )
        self._every(self.check_dock_now, every_interval, DOCK_JOB, "dock discrepancy watchdog")
        notify_every = min(self._notify.interval_s, self._interval_s)
        notify_interval = IntervalTrigger(seconds=notify_every, timezone=UTC)
        self._every(self._open_cases_job, notify_interval, CASES_JOB, "QA cases from alerts")
        self._every(self.notify_now, notify_interval, NOTIFY_JOB, "notifications of QA cases")
        self._check_notify_policies()
        self._every(
            self.check_calibrations_now,
            IntervalTrigger(minutes=10, timezone=UTC),
            CALIBRATION_JOB,
            "calibration due watchdog",
        )
        self._every(
            self.ensure_partitions_now,
            IntervalTrigger(days=1, timezone=UTC),
            PARTITIONS_JOB,
            "readings partitions ahead",
        )
        # Not ``_every``: a calendar, not an interval.  Idempotent (a month stored is not stored again).
        self._scheduler.add_job(
            self._tracked(self.store_monthly_reports_now, MONTHLY_REPORTS_JOB),
            CronTrigger(day=1, hour=2, minute=15, timezone=UTC),
            id=MONTHLY_REPORTS_JOB, name="monthly GSP records of the previous month", replace_existing=True,
            max_instances=1, coalesce=True, misfire_grace_time=None,
        )  # fmt: skip
        if self._audit.checkpoint_file is not None:
            self._every(
                self.checkpoint_audit_now,
                IntervalTrigger(seconds=self._audit.checkpoint_every_s, timezone=UTC),
                AUDIT_CHECKPOINT_JOB,
                "audit trail checkpoint",
            )
        self._scheduler.start()
        log.info(
            "scheduler started: watchdog every %g s, partitions %d months ahead daily",
            self._interval_s,
            self._months_ahead,
        )

    def _every(self, job: Callable[[], object], trigger: IntervalTrigger, ident: str, name: str) -> None:
        """One run at a time; runs missed while one was busy are merged into one, and a late run
        (a stalled process) is still worth doing once."""
        self._scheduler.add_job(
            self._tracked(job, ident),
            trigger,
            id=ident,
            name=name,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )

    def _tracked(self, job: Callable[[], object], ident: str) -> Callable[[], object]:
        def run() -> object:
            with self._jobs_done:
                self._running_jobs.append(ident)
            try:
                return job()
            finally:
                with self._jobs_done:
                    self._running_jobs.remove(ident)
                    self._jobs_done.notify_all()

        return run

    def shutdown(self, wait: bool = True, wait_s: float = STOP_WAIT_S) -> None:
        """Stop the jobs; with ``wait``, a run in progress finishes (its transaction commits) first, for
        up to ``wait_s``, after which the runs still going are named in the log and left behind.

        APScheduler's own wait holds its job-store lock while it waits, so a job that touches the
        scheduler (the QA cases job wakes the notify job; a failed partition run plans its retry) would
        wait for that lock forever, and the shutdown for the job: the service's stop hung once in CI.
        So APScheduler stops without waiting (no lock held) and the runs are waited for here."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if wait:
            with self._jobs_done:
                if not self._jobs_done.wait_for(lambda: not self._running_jobs, timeout=wait_s):
                    log.error(
                        "scheduler stopped with runs still going after %g s, left behind: %s",
                        wait_s,
                        ", ".join(self._running_jobs),
                    )
        if self.binding_process is not None:
            self.binding_process.close()

    def check_gateways_now(self) -> list[UnheardAction]:
        """One unheard-gateway run (the job), then the verdicts on the gaps it closed earlier (delayed
        or not monitored); errors are logged and the next run tries again."""
        try:
            now = self._clock()
            actions = check_gateways(
                self._engine, now, self._default_timeout_s, listening_since=self._listening_since
            )
            decide_gaps(self._engine, now)
            return actions
        except Exception:
            log.exception("gateway watchdog run failed; retrying in %g s", self._interval_s)
            return []

    def check_streams_now(self) -> list[StuckAction]:
        """One stuck-stream run (the job); errors are logged and the next run tries again."""
        try:
            return check_streams(
                self._engine, self._clock(), self._stuck, self._stuck_after_s, self._default_timeout_s
            )
        except Exception:
            log.exception("stuck-stream watchdog run failed; retrying in %g s", self._interval_s)
            return []

    def check_downlink_now(self) -> list[RaiseBehind | ClearBehind]:
        """One ``downlink.behind`` run (the job); errors are logged and the next run tries again."""
        try:
            return check_downlink(self._engine, self._clock(), self._behind_after_s)
        except Exception:
            log.exception("down-link watchdog run failed; retrying in %g s", self._interval_s)
            return []

    def bind_items_now(self, *, most: int = 50) -> int:
        """Bind what ingest stored since the last run, a batch per transaction, up to ``most`` batches,
        in this process; returns how many items were bound.  Runs apart from ingest's transactions so
        that binding can never slow them down nor hold back an acknowledgement; a failure is logged and
        the items wait for the next run."""
        return bind_runs(self._engine, self._clock, self._binding_cache, most)

    def bind_job_now(self) -> int:
        """The binding job: in the child process when there is one, else in this one."""
        if self.binding_process is not None:
            return self.binding_process.run(self._clock(), most=50)
        return self.bind_items_now()

    def open_cases_now(self) -> int:
        """One run of the QA cases job: each raised alert not yet in a case opens one or joins the one
        open for its cause; returns how many alerts were placed.  Errors are logged; the next run
        tries again."""
        try:
            with self._engine.begin() as conn:
                return open_cases(conn, self._clock())
        except Exception:
            log.exception("QA cases run failed; retrying in %g s", self._interval_s)
            return 0

    def _open_cases_job(self) -> int:
        """The QA cases job: a run, then the notify job at once (in its own thread) when it placed alerts;
        a notify run going then goes round once more."""
        placed = self.open_cases_now()
        if placed and self.catalog_changed is not None:
            self.catalog_changed()
        if placed:
            self._notify_again.set()
            if self._notify_lock.locked() or not self._scheduler.running:
                return placed  # the run going sees the flag and goes round again; or we are stopping
            try:
                self._scheduler.modify_job(NOTIFY_JOB, next_run_time=datetime.datetime.now(UTC))
            except Exception:
                log.exception("waking the notify job failed; it runs at its next interval")
        return placed

    def _check_notify_policies(self) -> None:
        try:
            if self._notify.smtp_host is None and not self._notify.webhook_urls:
                log.info("QA case notifications are off: [notify] sets neither smtp_host nor webhook_urls")
                return
            with self._engine.connect() as conn:
                check_policies(conn, self._notify, warned=self._notify_warned)
        except Exception:
            log.exception("checking the notification policies failed")

    def notify_now(self) -> SendRun:
        """One run of the notify job: queue what the policies say is due for the open cases, then send
        what is queued and due; returns what the sending did.  A call while a run is going returns at
        once (zeros), and the running one goes round again.  Errors are logged; the next run tries again."""
        if not self._notify_lock.acquire(blocking=False):
            self._notify_again.set()
            return SendRun(0, 0, 0)
        try:
            total = SendRun(0, 0, 0)
            while True:
                self._notify_again.clear()
                done = self._notify_once()
                total = SendRun(*(a + b for a, b in zip(total, done, strict=True)))
                if not self._notify_again.is_set():
                    return total
        finally:
            self._notify_lock.release()

    def _notify_once(self) -> SendRun:
        if self._notify.smtp_host is None and not self._notify.webhook_urls:
            return SendRun(0, 0, 0)  # notifications are off
        try:
            if self._sender is None:
                self._sender = Sender(self._notify)
            with self._engine.begin() as conn:
                plan_notifications(conn, self._notify, self._clock(), warned=self._notify_warned)
            return send_queued(self._engine, self._notify, self._sender, self._clock)
        except Exception:
            log.exception("notify run failed; retrying in %g s", self._notify.interval_s)
            return SendRun(0, 0, 0)

    def check_dock_now(self) -> list[DockStep]:
        """One ``dock.discrepancy`` run (the job): an alert per document with discrepancies nobody decided
        on; errors are logged and the next run tries again."""
        try:
            return check_dock(self._engine, self._clock(), cache=self._dock_cache)
        except Exception:
            log.exception("dock discrepancy watchdog run failed; retrying in %g s", self._interval_s)
            return []

    def check_calibrations_now(self) -> list[CalibrationStep]:
        """One ``calibration.due`` run (the job, every 10 min: due dates are days); errors are logged."""
        try:
            return check_calibrations(self._engine, self._clock(), self._calibration_warn_days)
        except Exception:
            log.exception("calibration watchdog run failed; retrying at the next run")
            return []

    def store_monthly_reports_now(self) -> list[str]:
        """The monthly records (PDF and CSV) of every storage location for the previous month, each
        only if not stored yet; the ids stored.  Errors are logged; the next run (or a person) tries again."""
        try:
            return store_monthly_due(self._engine, self._clock())
        except Exception:
            log.exception("monthly GSP records run failed")
            return []

    def checkpoint_audit_now(self) -> Checkpoint | None:
        """Append the audit trail's head to the checkpoint file (the job); errors are logged."""
        path, key_file = self._audit.checkpoint_file, self._audit.checkpoint_key_file
        if path is None:
            return None
        try:
            key = load_private_key(Path(key_file)) if key_file is not None else None
            with self._engine.connect() as conn:
                return write_checkpoint(conn, Path(path), self._clock(), key)
        except Exception:
            log.exception("audit checkpoint to %s failed; retrying at the next run", path)
            return None

    def ensure_partitions_now(self) -> list[str]:
        """Create this month's and the next months' partitions if missing (the job); errors are logged."""
        start, end = partition_window(self._clock().astimezone(UTC).date(), self._months_ahead)
        try:
            with self._engine.begin() as conn:
                names = ensure_partitions(conn, start, end)
        except Exception:
            log.exception(
                "creating readings partitions %s..%s failed; retrying in %d min", start, end, RETRY_MIN
            )
            # Not a day later: every reading of a month stored before its partition exists blocks it.
            self._scheduler.add_job(
                self._tracked(self.ensure_partitions_now, PARTITIONS_RETRY_JOB),
                "date",
                run_date=self._clock() + datetime.timedelta(minutes=RETRY_MIN),
                id=PARTITIONS_RETRY_JOB,
                replace_existing=True,
            )
            return []
        if names:
            log.info("readings partitions ready: %s", ", ".join(names))
        return names
