"""The cloud scheduler's stop: a job that touches the scheduler while it stops, and a job that never ends.

CI once hung in ``CloudService.stop()``: APScheduler's own ``shutdown(wait=True)`` holds its job-store
lock while it waits for the running jobs, and the QA cases job, waking the notify job, waited for that
lock.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

import pytest

pytest.importorskip("apscheduler", reason="the cloud scheduler needs the [cloud] extra")

from apscheduler.jobstores.base import JobLookupError
from sqlalchemy import Engine

import coldgate.cloud.scheduler
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.scheduler import DOWNLINK_JOB, NOTIFY_JOB, CloudScheduler


def _job_waiting_for(monkeypatch: pytest.MonkeyPatch, then: Any) -> tuple[threading.Event, threading.Event]:
    """The down-link watchdog replaced by a run that says it started, waits to be let go, then does
    ``then()``."""
    started, let_go = threading.Event(), threading.Event()

    def run(*args: Any, **kwargs: Any) -> list[object]:
        started.set()
        let_go.wait(30)
        then()
        return []

    monkeypatch.setattr(coldgate.cloud.scheduler, "check_downlink", run)
    return started, let_go


def test_a_job_touching_the_scheduler_while_it_stops_does_not_hang_the_stop(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = CloudScheduler(engine, CloudConfig(), watchdog_interval_s=0.2)
    touched: list[str] = []

    def touch() -> None:
        # What the QA cases job does to wake the notify job; on a stopped scheduler the job is gone
        # (an error the job logs), but the call returns.
        try:
            scheduler._scheduler.modify_job(NOTIFY_JOB, next_run_time=datetime.datetime.now(datetime.UTC))
        except JobLookupError:
            pass
        touched.append(NOTIFY_JOB)

    started, let_go = _job_waiting_for(monkeypatch, touch)
    scheduler.start()
    assert started.wait(10), "the down-link watchdog never ran"
    stopper = threading.Thread(target=scheduler.shutdown, daemon=True)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "the stop must wait for the run in progress"
    let_go.set()
    stopper.join(10)
    assert not stopper.is_alive(), "the stop hung on a job that touched the scheduler"
    assert touched == [NOTIFY_JOB]
    assert not scheduler.running


def test_a_run_that_never_ends_is_named_and_left_behind(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    started, let_go = _job_waiting_for(monkeypatch, lambda: None)
    scheduler = CloudScheduler(engine, CloudConfig(), watchdog_interval_s=0.2)
    caplog.set_level(logging.ERROR, logger="coldgate.cloud.scheduler")
    scheduler.start()
    try:
        assert started.wait(10), "the down-link watchdog never ran"
        scheduler.shutdown(wait_s=0.3)
        assert not scheduler.running
        left = [r.getMessage() for r in caplog.records if "left behind" in r.getMessage()]
        assert len(left) == 1 and DOWNLINK_JOB in left[0], left
    finally:
        let_go.set()
