"""The notification queue's database edge: what the policy says is due is queued once, and a sender drains
the queue, recording every attempt (issue 16, "Escalation and notifications").

Why a queue in the database: a notification is evidence (who was told of an excursion, when), and a mail
server that is down for ten minutes must delay notifications, not lose them.  Planning and sending are
apart: :func:`plan_notifications` asks the pure policy (``notify_policy.py``) which notices are due for
every open case and inserts those not yet queued (a unique key per case, severity, level, round, channel
and recipient, with ``ON CONFLICT DO NOTHING``: planning twice, or from two processes, queues once), with
an audit entry per case in the same transaction.  :func:`send_queued` reads the notifications without an
accepted attempt, sends each whose back-off has passed, and records each attempt (accepted or the error
text) in a transaction of its own right after the server answered: a notification whose acceptance is
recorded is never sent again, and one whose send failed is tried again after ``retry_first_s``, doubled
per failure up to ``retry_max_s``.  A channel that failed is not tried again in the same run (a server
that is down costs one connection attempt per run, not one per message).  The window in which a sent
but unrecorded message (the process killed between the two) would be sent again is covered by the
e-mail's Message-ID, which is the notification's id on every try.

An escalation or a reminder still queued when someone acknowledges the case (the mail server was down
meanwhile) is not sent: it says nobody has acknowledged, which is no longer true; it stays in the queue,
unsent, beside the step that made it moot.  A level's first notice still goes: it says the case opened.

Both tables are records (append-only); delivered or not is read from the attempts.  Only notifications
queued in the last ``PENDING_DAYS`` days are retried: older ones stay in the queue undelivered, with
their failed attempts, for the case page to show.

Sending runs one at a time: the scheduler's lock in a process, and on PostgreSQL a session advisory lock
across processes (a second sender finding it taken does nothing).  Planning needs no lock.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, NamedTuple, overload

from sqlalchemy import Connection, Engine, Table, and_, exists, func, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.alerts.case_steps import case_summaries, latest_steps
from coldgate.cloud.alerts.notify_links import MIN_SECRET_BYTES, LinkRefusal, ack_link, check_link, make_token
from coldgate.cloud.alerts.notify_policy import (
    CaseFacts,
    Notice,
    Person,
    compose,
    notice_id,
    notices,
    policy_for,
    short_of_people,
)
from coldgate.cloud.alerts.notify_send import Delivery, Sender
from coldgate.cloud.audit.log import SYSTEM, append
from coldgate.cloud.config import NotifyConfig, NotifyLevel, NotifyPolicy
from coldgate.cloud.db.models import (
    Notification,
    NotificationAttempt,
    NotifyLinkKey,
    QaCase,
    Site,
    User,
    UserRole,
)
from coldgate.cloud.identity.users import aware

__all__ = [
    "SendRun",
    "backoff_s",
    "check_ack_link",
    "check_policies",
    "link_secret",
    "plan_notifications",
    "send_queued",
]

log = logging.getLogger(__name__)

_queue: Table = Notification.__table__  # type: ignore[assignment]
_attempts: Table = NotificationAttempt.__table__  # type: ignore[assignment]
_keys: Table = NotifyLinkKey.__table__  # type: ignore[assignment]
_cases: Table = QaCase.__table__  # type: ignore[assignment]
#: Notifications queued longer ago than this are no longer retried.
PENDING_DAYS: Final = 7
#: Queued notifications read per sending run (the rest wait for the next run).
BATCH: Final = 500
#: An arbitrary constant naming the senders' PostgreSQL advisory lock.
_SENDER_LOCK: Final = 0x636F6C64_6E6F7466


# --- the link key ---------------------------------------------------------------------------------


def check_ack_link(
    conn: Connection, config: NotifyConfig, token: str, case_id: str, now: datetime.datetime
) -> str | LinkRefusal:
    """For the case page: the user id the acknowledge link ``token`` for ``case_id`` was sent to, or why
    it is refused (``notify_links.check_link`` with the cloud's key).  Reads only: with no key kept yet,
    no link was ever sent, so every token is refused."""
    secret = link_secret(conn, config, now, create=False)
    if secret is None:
        return LinkRefusal("forged", "the link was not made for this case by this cloud")
    return check_link(token, case_id, now, secret)


@overload
def link_secret(conn: Connection, config: NotifyConfig, now: datetime.datetime) -> bytes: ...
@overload
def link_secret(
    conn: Connection, config: NotifyConfig, now: datetime.datetime, *, create: bool
) -> bytes | None: ...
def link_secret(
    conn: Connection, config: NotifyConfig, now: datetime.datetime, *, create: bool = True
) -> bytes | None:
    """The acknowledge links' HMAC key: ``link_secret_file``'s bytes, or the key kept in the database,
    made (32 random bytes) by the first caller that needs it (None without ``create`` when there is
    none yet)."""
    if config.link_secret_file is not None:
        secret = Path(config.link_secret_file).read_bytes().strip()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"notify.link_secret_file: {config.link_secret_file} holds {len(secret)} bytes; at least "
                f"{MIN_SECRET_BYTES} are needed (head -c 48 /dev/urandom | base64 > the file)"
            )
        return secret
    kept = conn.execute(select(_keys.c.secret_hex).order_by(_keys.c.id).limit(1)).scalar()
    if kept is None and not create:
        return None
    if kept is None:
        _insert_ignoring(conn, _keys, [{"id": 1, "secret_hex": secrets.token_hex(32), "created_at": now}])
        kept = conn.execute(select(_keys.c.secret_hex).order_by(_keys.c.id).limit(1)).scalar_one()
    return bytes.fromhex(kept)


def _insert_ignoring(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping those whose key is taken; how many went in."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    key = next(iter(table.primary_key.columns))
    # RETURNING counts what went in on both dialects (a rowcount of an executemany may be -1).
    return len(conn.execute(dialect.insert(table).on_conflict_do_nothing().returning(key), rows).all())


# --- planning -------------------------------------------------------------------------------------


class _Open(NamedTuple):
    case_id: str
    site: str | None
    subject_type: str
    subject: str
    title: str
    opened_at: datetime.datetime


def _open_cases(conn: Connection) -> list[_Open]:
    """Cases whose newest step is ``open``."""
    latest = latest_steps().subquery()
    c = _cases.c
    query = (
        select(c.id, c.site, c.subject_type, c.subject, c.title, c.opened_at)
        .join(latest, latest.c.case_id == c.id)
        .where(latest.c.state == "open")
        .order_by(c.opened_at, c.id)
    )
    return [_Open(*row[:5], aware(row.opened_at)) for row in conn.execute(query)]


class _People:
    """Active people by role and by login, read once per planning run."""

    def __init__(self, conn: Connection) -> None:
        u = User.__table__.c
        rows = conn.execute(
            select(u.id, u.login, u.printed_name, u.email, UserRole.role)
            .select_from(User.__table__.outerjoin(UserRole.__table__, UserRole.user_id == u.id))
            .where(u.active.is_(True))
            .order_by(u.id)
        ).all()
        self.by_role: dict[str, list[Person]] = {}
        self.by_login: dict[str, Person] = {}
        for row in rows:
            person = Person(row.id, row.printed_name, (row.email or "").strip() or None)
            self.by_login[row.login] = person
            if row.role is not None:
                self.by_role.setdefault(row.role, []).append(person)

    def level(self, level: NotifyLevel) -> list[Person]:
        found = [p for role in level.roles for p in self.by_role.get(role, [])]
        found += [self.by_login[login] for login in level.users if login in self.by_login]
        unique: dict[str, Person] = {}
        for person in found:
            unique.setdefault(person.user_id, person)
        return list(unique.values())

    def policy(self, policy: NotifyPolicy) -> list[list[Person]]:
        return [self.level(level) for level in policy.levels]


def _warn_short(
    config: NotifyConfig, site: str | None, people: Sequence[Sequence[Person]], warned: set[Any] | None
) -> str | None:
    reached = short_of_people(people, config.min_critical_people)
    if reached is None:
        return None
    where = f"site {site}" if site is not None else "cases without a site"
    message = (
        f"the critical notification policy for {where} reaches {reached} people with an e-mail address, "
        f"fewer than {config.min_critical_people} (GSP: a critical excursion must reach enough people); "
        "give more people its roles, or name users in [notify]"
    )
    if warned is None or (site, reached) not in warned:
        log.warning("%s", message)
        if warned is not None:
            warned.add((site, reached))
    return message


def check_policies(
    conn: Connection,
    config: NotifyConfig,
    sites: Iterable[str] | None = None,
    *,
    warned: set[Any] | None = None,
) -> list[str]:
    """The critical policies (of every site, or of ``sites``) that reach too few people, each as a
    warning sentence (also logged, once per site and count with ``warned``).  The scheduler calls it at
    start."""
    known = sorted(sites) if sites is not None else sorted(conn.execute(select(Site.id)).scalars())
    people = _People(conn)
    found = []
    for site in known:
        policy = policy_for(config, site, "critical")
        if policy is not None and (said := _warn_short(config, site, people.policy(policy), warned)):
            found.append(said)
    return found


def plan_notifications(
    conn: Connection, config: NotifyConfig, now: datetime.datetime, *, webhooks: int | None = None,
    email: bool | None = None, warned: set[Any] | None = None,
) -> int:  # fmt: skip
    """Queue every notice due at ``now`` for the open cases and not queued yet; how many were queued.
    ``email``/``webhooks``: whether e-mail is configured and how many webhook URLs (the config's by
    default): a channel that is not configured queues nothing.  ``warned``: what was logged already
    (a critical policy reaching too few people is logged once per site and count)."""
    email = config.smtp_host is not None if email is None else email
    webhooks = len(config.webhook_urls) if webhooks is None else webhooks
    if not email and not webhooks:
        return 0
    cases = _open_cases(conn)
    if not cases:
        return 0
    severity = case_summaries(conn, [c.case_id for c in cases])
    people = _People(conn)
    due: dict[str, tuple[_Open, str, int, NotifyPolicy, list[Notice]]] = {}
    for case in cases:
        worst, count, _newest = severity.get(case.case_id, ("info", 0, 0))
        policy = policy_for(config, case.site, worst)
        if policy is None:
            continue
        told = people.policy(policy)
        if worst == "critical":
            _warn_short(config, case.site, told, warned)
        found = notices(case.case_id, worst, "open", case.opened_at, now, policy, told, webhooks)
        found = [n for n in found if email or n.channel != "email"]
        if found:
            due[case.case_id] = (case, worst, count, policy, found)
    if not due:
        return 0
    ids = {notice_id(n): n for (*_, found) in due.values() for n in found}
    queued = set(conn.execute(select(_queue.c.id).where(_queue.c.id.in_(list(ids)))).scalars())
    secret: bytes | None = None
    total = 0
    for case, worst, count, policy, found in due.values():
        fresh = [n for n in found if notice_id(n) not in queued]
        if not fresh:
            continue
        secret = secret if secret is not None else link_secret(conn, config, now)
        facts = CaseFacts(case.case_id, case.site, case.subject_type, case.subject, worst, case.title,
                          case.opened_at, count, "open")  # fmt: skip
        rows = [_row(config, facts, n, policy, secret, now) for n in fresh]
        added = _insert_ignoring(conn, _queue, rows)
        if not added:
            continue
        total += added
        after = {"notices": [{"level": n.level, "round": n.round, "channel": n.channel, "to": n.recipient}
                             for n in fresh]}  # fmt: skip
        append(conn, actor=SYSTEM, action="qa_case.notifications_queued", entity_type="qa_case",
               entity_id=case.case_id, now=now, after=after)  # fmt: skip
    return total


def _row(
    config: NotifyConfig, facts: CaseFacts, notice: Notice, policy: NotifyPolicy, secret: bytes,
    now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    ident = notice_id(notice)
    token = None
    if notice.channel == "email":
        expires = now + datetime.timedelta(hours=config.link_valid_hours)
        token = make_token(secret, facts.case_id, notice.recipient, notice.level, expires)
    link = ack_link(config.base_url, facts.case_id, token)
    after_min = policy.levels[notice.level - 1].after_min
    subject, body = compose(facts, notice, link, after_min)
    domain = config.mail_from.rsplit("@", 1)[-1]
    return {
        "id": ident, "case_id": notice.case_id, "severity": notice.severity, "level": notice.level,
        "round": notice.round, "channel": notice.channel, "recipient": notice.recipient,
        "address": notice.address, "subject": subject, "body": body, "message_id": f"<{ident}@{domain}>",
        "due_at": notice.due_at, "queued_at": now,
    }  # fmt: skip


# --- sending --------------------------------------------------------------------------------------


class SendRun(NamedTuple):
    """One sending run: accepted, failed, and still waiting for their back-off (or a channel that failed)."""

    sent: int
    failed: int
    waiting: int


def backoff_s(config: NotifyConfig, failures: int) -> float:
    """Seconds after the ``failures``-th failed attempt before the next one."""
    return min(config.retry_max_s, config.retry_first_s * 2 ** max(failures - 1, 0))


def pending_where(now: datetime.datetime) -> tuple[Any, ...]:
    """What makes a queued notification pending at ``now``: queued in the last ``PENDING_DAYS``, no
    accepted attempt, and still wanted (the sender's queue, and ``GET /metrics``'s count of it)."""
    q, a = _queue.c, _attempts.c
    since = now - datetime.timedelta(days=PENDING_DAYS)
    accepted = exists().where(a.notification_id == q.id, a.ok.is_(True))
    latest = latest_steps().subquery()
    taken_up = exists().where(latest.c.case_id == q.case_id, latest.c.state != "open")
    moot = and_(or_(q.level > 1, q.round > 0), taken_up)  # "nobody acknowledged": someone has since
    return q.queued_at >= since, ~accepted, ~moot


def _pending(conn: Connection, now: datetime.datetime) -> list[tuple[Any, int, datetime.datetime | None]]:
    """Queued notifications without an accepted attempt, oldest due first, with their failed attempts'
    count and the last one's time."""
    q, a = _queue.c, _attempts.c
    rows = conn.execute(select(_queue).where(*pending_where(now)).order_by(q.due_at, q.id).limit(BATCH)).all()
    if not rows:
        return []
    tried = {
        ident: (count, last)
        for ident, count, last in conn.execute(
            select(a.notification_id, func.count(), func.max(a.at))
            .where(a.notification_id.in_([r.id for r in rows]))
            .group_by(a.notification_id)
        )
    }
    return [(r, *tried.get(r.id, (0, None))) for r in rows]


@contextmanager
def _sender_lock(engine: Engine) -> Any:
    """True while this sender holds the senders' lock (always on SQLite: one process writes)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        held = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _SENDER_LOCK}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _SENDER_LOCK})
                conn.commit()


def _deliver(
    engine: Engine, sender: Sender, row: Any, tries: int, clock: Callable[[], datetime.datetime]
) -> str | None:
    """Send one notification and record the attempt in a transaction of its own; the error or None."""
    started = time.monotonic()
    error = sender.send(Delivery(row))
    took = round((time.monotonic() - started) * 1000)
    with engine.begin() as conn:
        attempt = {"notification_id": row.id, "attempt": tries + 1, "at": clock(), "ok": error is None,
                   "error": error, "took_ms": took}  # fmt: skip
        conn.execute(insert(_attempts), attempt)
    if error is not None:
        log.warning("notification %s (%s, case %s) not delivered, attempt %d: %s", row.id, row.channel,
                    row.case_id, tries + 1, error.splitlines()[-1][:300])  # fmt: skip
    return error


def send_queued(
    engine: Engine, config: NotifyConfig, sender: Sender, clock: Callable[[], datetime.datetime]
) -> SendRun:
    """Send what is queued and due (see the module's docstring), ``[notify] senders`` at a time (a
    connection each: an SMTP connection costs tens of milliseconds before its first byte); each attempt
    recorded as it ends.  Sent in waves of ``senders`` after a first one of one message: a channel that
    failed in a wave is left alone for the rest of the run."""
    with _sender_lock(engine) as held:
        if not held:
            return SendRun(0, 0, 0)
        with engine.connect() as conn:
            pending = _pending(conn, clock())
        sent = failed = waiting = 0
        down: set[str] = set()
        delivered: list[str] = []
        due = []
        now = clock()
        for row, tries, last in pending:
            if last is not None and now < aware(last) + _seconds(backoff_s(config, tries)):
                waiting += 1
            else:
                due.append((row, tries))
        with ThreadPoolExecutor(max_workers=config.senders, thread_name_prefix="notify") as pool:
            start = 0
            while start < len(due):
                # The first wave is one message: a server that is down costs one attempt per run.
                size = 1 if start == 0 else config.senders
                wave = []
                for row, tries in due[start : start + size]:
                    if _channel(row) in down:
                        waiting += 1
                    else:
                        wave.append((row, pool.submit(_deliver, engine, sender, row, tries, clock)))
                for row, future in wave:
                    if future.result() is None:
                        sent += 1
                        delivered.append(row.id)
                    else:
                        failed += 1
                        down.add(_channel(row))
                start += size
        if delivered or failed:
            with engine.begin() as conn:
                after = {"delivered": delivered, "failed": failed, "waiting": waiting}
                append(conn, actor=SYSTEM, action="notifications.sent", entity_type="notifications",
                       entity_id="queue", now=clock(), after=after)  # fmt: skip
        return SendRun(sent, failed, waiting)


def _channel(row: Any) -> str:
    """What a failure takes down for the run: the SMTP server (every e-mail), or one webhook."""
    return "email" if row.channel == "email" else str(row.recipient)


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=value)
