"""Notifications of QA cases on both dialects (``cloud/alerts/notify_queue.py``, ``notify_send.py``): queued
once, delivered through Apprise to a real SMTP server (aiosmtpd) and a real HTTP receiver, escalated when
nobody acknowledges, silent once someone does, and neither lost nor doubled by a mail server that is down
for ten minutes.  Time is a simulated clock the scheduler's jobs read; nothing waits on the wall clock."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine, func, select

from coldgate.cloud.alerts.case_store import list_cases, move_case
from coldgate.cloud.alerts.notify_links import check_link
from coldgate.cloud.alerts.notify_queue import check_ack_link, check_policies, link_secret, plan_notifications
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.config import CloudConfig, NotifyConfig
from coldgate.cloud.db.models import AuditEntry, Notification, NotificationAttempt, QaCase
from coldgate.cloud.identity.roles import permissions
from coldgate.cloud.scheduler import CloudScheduler
from coldgate.contract import examples
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message
from tests.rig.items import alert
from tests.rig.mailbox import Mailbox, WebhookReceiver
from tests.rig.people import person

T0 = examples.T0
OPENED = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
MIN = datetime.timedelta(minutes=1)
PEOPLE = {"qa-anna": ("qa",), "qa-ben": ("qa",), "mgr-cleo": ("qa_manager",), "admin-dan": ("admin",)}


class Clock:
    def __init__(self) -> None:
        self.now = OPENED

    def __call__(self) -> datetime.datetime:
        return self.now


def _store(engine: Engine, first_seq: int, alerts: list[Any]) -> None:
    numbered = [msgspec.structs.replace(a, seq=n) for n, a in enumerate(alerts, start=first_seq)]
    assert ingest(engine, *batch_message("gw01", numbered)).kind == "batch"


def _people(engine: Engine) -> dict[str, str]:
    return {login: person(engine, login, roles, now=OPENED)[0] for login, roles in PEOPLE.items()}


def _notify(port: int, **more: Any) -> NotifyConfig:
    return NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", mail_from="cg@x.org",
                        base_url="https://cold.example", retry_first_s=5, retry_max_s=60, **more)  # fmt: skip


def _scheduler(engine: Engine, notify: NotifyConfig, clock: Clock) -> CloudScheduler:
    return CloudScheduler(engine, CloudConfig(notify=notify), clock=clock)


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(Notification).order_by(Notification.level, Notification.recipient)).all()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with Mailbox() as box:
        yield box


def test_queued_once_and_delivered_by_email_and_webhook(engine: Engine, mailbox: Mailbox) -> None:
    ids = _people(engine)
    _store(engine, 1, [alert(1, ts=T0)])
    clock = Clock()
    with WebhookReceiver() as hook:
        notify = _notify(mailbox.port, webhook_urls=[hook.url])
        scheduler = _scheduler(engine, notify, clock)
        assert scheduler.open_cases_now() == 1
        with engine.begin() as conn:
            queued = plan_notifications(conn, notify, clock.now)
        with engine.begin() as conn:
            assert plan_notifications(conn, notify, clock.now) == 0  # planned again: queued once
        assert queued == 4  # level 1: the two QA people and the QA manager; and the webhook
        run = scheduler.notify_now()
        assert (run.sent, run.failed) == (4, 0)
        assert scheduler.notify_now() == (0, 0, 0)  # nothing twice
    rows = _rows(engine)
    by_id = {r.id: r for r in rows}
    mails = mailbox.wait_for(3)
    assert sorted(m.to[0] for m in mails) == [
        "mgr-cleo@example.org",
        "qa-anna@example.org",
        "qa-ben@example.org",
    ]
    assert {m.message_id for m in mails} == {r.message_id for r in rows if r.channel == "email"}
    with engine.connect() as conn:
        case_id = conn.execute(select(QaCase.id)).scalar_one()
        secret = link_secret(conn, notify, clock.now)
    for mail in mails:
        row = next(r for r in rows if r.message_id == mail.message_id)
        assert f"case {case_id}" in mail.subject and "CRITICAL" in mail.subject and "site1" in mail.subject
        text = mail.text
        for part in (case_id, "Site: site1", "Subject: sensor", "Severity: critical", examples.ALERT.message):
            assert part in text
        link = next(line for line in text.splitlines() if line.startswith("https://cold.example/dashboard/cases/"))
        token = link.split("?ack=", 1)[1].strip()
        assert check_link(token, case_id, clock.now, secret) == row.recipient
        with engine.connect() as conn:
            assert check_ack_link(conn, notify, token, case_id, clock.now) == row.recipient
        assert ids[mail.to[0].split("@")[0]] == row.recipient
    ((headers, body),) = hook.received
    assert body["notification"] in by_id and body["case"] == case_id and case_id in body["title"]
    assert headers["X-Coldgate-Notification"] == body["notification"]
    with engine.connect() as conn:
        attempts = conn.execute(select(NotificationAttempt)).all()
        audited = conn.execute(select(AuditEntry.action).where(AuditEntry.action.like("%notif%"))).scalars()
        actions = sorted(audited)
    assert len(attempts) == 4 and all(a.ok and a.error is None for a in attempts)
    assert actions == ["notifications.sent", "qa_case.notifications_queued"]


def test_escalation_to_the_second_level_and_none_once_acknowledged(engine: Engine, mailbox: Mailbox) -> None:
    ids = _people(engine)
    _store(engine, 1, [alert(1, ts=T0)])
    clock = Clock()
    scheduler = _scheduler(engine, _notify(mailbox.port), clock)
    scheduler.open_cases_now()

    def told_at(minutes: float) -> list[tuple[int, int, str]]:
        clock.now = OPENED + minutes * MIN
        before = {r.id for r in _rows(engine)}
        scheduler.notify_now()
        return sorted(
            (r.level, r.round, r.address.split("@")[0]) for r in _rows(engine) if r.id not in before
        )

    assert told_at(0) == [(1, 0, "mgr-cleo"), (1, 0, "qa-anna"), (1, 0, "qa-ben")]
    assert told_at(14) == []
    assert told_at(15) == [(1, 1, "mgr-cleo"), (1, 1, "qa-anna"), (1, 1, "qa-ben")]
    assert told_at(29.9) == []
    # Nobody acknowledged within 30 minutes: the QA manager and the admin are told (level 2).
    assert told_at(30) == [(1, 2, "mgr-cleo"), (1, 2, "qa-anna"), (1, 2, "qa-ben"), (2, 0, "admin-dan"),
                           (2, 0, "mgr-cleo")]  # fmt: skip
    escalated = [m for m in mailbox.wait_for(11) if "Escalated to level 2" in m.text]
    assert sorted(m.to[0] for m in escalated) == ["admin-dan@example.org", "mgr-cleo@example.org"]
    with engine.begin() as conn:
        case_id = conn.execute(select(QaCase.id)).scalar_one()
        anna = Actor("Qa-Anna Tester", ids["qa-anna"])
        move_case(conn, case_id, "acknowledged", by=anna, held=permissions(["qa"]), now=OPENED + 31 * MIN)
    assert told_at(45) == [] and told_at(120) == []
    assert len(mailbox.messages) == 11


def test_a_case_raised_as_a_warning_and_updated_to_critical_is_told_as_critical(
    engine: Engine, mailbox: Mailbox
) -> None:
    """A door check is raised as a warning (a quarantined case seen at the door) and updated to critical
    once the case leaves outbound: the case becomes critical, and the critical policy's people are told
    (the end-to-end test found only the warning policy's QA told)."""
    _people(engine)
    clock = Clock()
    scheduler = _scheduler(engine, _notify(mailbox.port), clock)
    seen = alert(1, ts=T0, rule="door.quarantined", subject_type="door", subject="D1", severity="warning",
                 message="quarantined item at door D1")  # fmt: skip
    _store(engine, 1, [seen])
    scheduler.open_cases_now()
    scheduler.notify_now()
    told = lambda: sorted((r.severity, r.address.split("@")[0]) for r in _rows(engine))  # noqa: E731
    assert told() == [("warning", "qa-anna"), ("warning", "qa-ben")]  # the warning policy: QA
    with engine.connect() as conn:
        [card] = list_cases(conn, state="all")
    assert card["severity"] == "warning"
    _store(engine, 2, [msgspec.structs.replace(seen, ts=T0 + 5000, action="updated", severity="critical")])
    clock.now = OPENED + datetime.timedelta(seconds=5)
    scheduler.notify_now()
    assert told() == [("critical", "mgr-cleo"), ("critical", "qa-anna"), ("critical", "qa-ben"),
                      ("warning", "qa-anna"), ("warning", "qa-ben")]  # fmt: skip
    with engine.connect() as conn:
        [card] = list_cases(conn, state="all")
    assert card["severity"] == "critical"
    assert len(mailbox.wait_for(5)) == 5


def test_a_mail_server_down_ten_minutes_loses_and_doubles_nothing(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst of 100 alerts (25 sensors, so 25 cases and 75 e-mails) while the SMTP server is down; the
    notify job runs every 10 s of simulated time for ten minutes, then the server is back."""
    _people(engine)
    caplog.set_level(logging.ERROR, logger="apprise")
    box = Mailbox()  # its port, not yet listening
    clock = Clock()
    scheduler = _scheduler(engine, _notify(box.port), clock)
    burst = [alert(n, ts=T0 + n * 1000, subject=f"cr-{n % 25:02d}") for n in range(1, 101)]
    _store(engine, 1, burst)
    assert scheduler.open_cases_now() == 100
    for step in range(60):
        clock.now = OPENED + step * datetime.timedelta(seconds=10)
        assert scheduler.notify_now().sent == 0
    with engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(Notification)).scalar_one()
        failures = (
            conn.execute(select(NotificationAttempt.error).where(~NotificationAttempt.ok)).scalars().all()
        )
    assert queued == 75 and len(failures) >= 55
    assert all("127.0.0.1" in error or "onnect" in error for error in failures)
    box.start()
    try:
        clock.now = OPENED + 11 * MIN
        run = scheduler.notify_now()
        assert (run.sent, run.failed, run.waiting) == (75, 0, 0)
        assert scheduler.notify_now() == (0, 0, 0)
        mails = box.wait_for(75)
    finally:
        box.stop()
    assert len(mails) == 75 and len({m.message_id for m in mails}) == 75
    assert {m.message_id for m in mails} == {r.message_id for r in _rows(engine)}
    with engine.connect() as conn:
        accepted = conn.execute(select(func.count()).where(NotificationAttempt.ok)).scalar_one()
    assert accepted == 75


def test_an_escalation_still_queued_when_someone_acknowledges_is_not_sent(engine: Engine) -> None:
    """The mail server is down through the first level and the escalation; Anna acknowledges; when the
    server is back the level's first notices go, the escalation (it says nobody acknowledged) does not."""
    ids = _people(engine)
    box = Mailbox()  # its port, not yet listening
    clock = Clock()
    scheduler = _scheduler(engine, _notify(box.port), clock)
    _store(engine, 1, [alert(1, ts=T0)])
    scheduler.open_cases_now()
    for minute in (0, 30):
        clock.now = OPENED + minute * MIN
        assert scheduler.notify_now().sent == 0
    queued = sorted((r.level, r.round, r.address.split("@")[0]) for r in _rows(engine))
    assert (2, 0, "admin-dan") in queued and (1, 2, "qa-anna") in queued  # escalated and reminded
    with engine.begin() as conn:
        case_id = conn.execute(select(QaCase.id)).scalar_one()
        anna = Actor("Qa-Anna Tester", ids["qa-anna"])
        move_case(conn, case_id, "acknowledged", by=anna, held=permissions(["qa"]), now=OPENED + 31 * MIN)
    box.start()
    try:
        clock.now = OPENED + 40 * MIN
        assert scheduler.notify_now().sent == 3
        mails = box.wait_for(3)
        assert scheduler.notify_now() == (0, 0, 0)  # the moot ones are not waiting: they are never sent
    finally:
        box.stop()
    assert sorted(m.to[0].split("@")[0] for m in mails) == ["mgr-cleo", "qa-anna", "qa-ben"]
    assert not [m for m in mails if "Escalated" in m.text or "reminder" in m.subject]
    assert len(_rows(engine)) == len(queued)  # the unsent stay in the queue, as records


def test_the_started_scheduler_tells_three_people_of_a_stored_alert(engine: Engine, mailbox: Mailbox) -> None:
    """The jobs as ``coldgate cloud run`` starts them: the QA cases job and the notify job on the notify
    interval, the notify job also chained after the QA cases job."""
    _people(engine)
    scheduler = CloudScheduler(engine, CloudConfig(notify=_notify(mailbox.port, interval_s=0.2)))
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler._scheduler.get_jobs()}
        assert jobs["open-cases"].trigger.interval.total_seconds() == 0.2
        assert jobs["notify"].trigger.interval.total_seconds() == 0.2
        _store(engine, 1, [alert(1, ts=T0)])
        mails = mailbox.wait_for(3, timeout=60)
    finally:
        scheduler.shutdown()
    assert sorted(m.to[0].split("@")[0] for m in mails) == ["mgr-cleo", "qa-anna", "qa-ben"]


def test_a_critical_policy_reaching_fewer_than_three_people_is_logged(
    engine: Engine, mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    person(engine, "qa-solo", ("qa",), now=OPENED)
    person(engine, "admin-dan", ("admin",), now=OPENED)
    caplog.set_level(logging.WARNING, logger="coldgate.cloud.alerts.notify_queue")
    with engine.connect() as conn:
        (said,) = check_policies(conn, _notify(mailbox.port), ["site1"])
    assert "site site1 reaches 2 people with an e-mail address, fewer than 3" in said
    assert said in caplog.text
    # Planning logs it once per site and count, not at every run.
    _store(engine, 1, [alert(1, ts=T0)])
    scheduler = _scheduler(engine, _notify(mailbox.port), Clock())
    scheduler.open_cases_now()
    caplog.clear()
    for _ in range(3):
        scheduler.notify_now()
    assert caplog.text.count("fewer than 3") == 1
