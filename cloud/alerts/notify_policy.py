"""Who is told of a QA case, when, and what the message says: the escalation policy as a pure function of
the case and the time (issue 16, "Escalation and notifications").  No I/O; the queue
(``notify_queue.py``) asks it what is due and stores each answer once.

The policy for a case comes from ``[notify]`` by the case's site and its severity (its worst alert's):
levels of people, each told once the case has gone unacknowledged for the level's ``after_min`` minutes
(the first level at once), and every level already told reminded each ``reminder_every_min`` while the
case stays open.  A notice is named by (case, severity, level, round, channel, recipient): round 0 is
the first notice of a level, round n its n-th reminder.  Only a level's newest round is ever due: after
an outage of the cloud the people are told once, not once per reminder they missed.  Once the case
leaves ``open`` (acknowledged, or further, or cancelled) nothing is due any more; what was queued before
is still delivered (it was due when it was queued, and saying so late beats not saying it).

A severity raised later (a critical alert folded into a warning's case) switches the case to the
critical policy, counted from the case's opening: its levels that are already late are told at once.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence
from typing import Final, NamedTuple

from coldgate.cloud.config import NotifyConfig, NotifyPolicy

__all__ = [
    "CaseFacts", "Due", "Notice", "Person", "compose", "due_rounds", "notice_id", "notices",
    "policy_for", "short_of_people",
]  # fmt: skip

#: The one case state in which people are told (``case_flow.CaseState.OPEN``).
OPEN: Final = "open"
WEBHOOK_PREFIX: Final = "webhook-"


class Person(NamedTuple):
    user_id: str
    name: str
    email: str | None


class Due(NamedTuple):
    """A level's newest round due at ``now``: ``level`` counts from 1, ``round`` 0 is the first notice."""

    level: int
    round: int
    due_at: datetime.datetime


class Notice(NamedTuple):
    """One message to queue: to ``recipient`` (a user id, or ``webhook-N`` for the N-th webhook URL) at
    ``address`` (an e-mail address; None for a webhook) over ``channel``."""

    case_id: str
    severity: str
    level: int
    round: int
    due_at: datetime.datetime
    channel: str
    recipient: str
    address: str | None


class CaseFacts(NamedTuple):
    """What a message says about a case."""

    case_id: str
    site: str | None
    subject_type: str
    subject: str
    severity: str
    title: str
    opened_at: datetime.datetime
    alerts: int
    state: str


def policy_for(config: NotifyConfig, site: str | None, severity: str) -> NotifyPolicy | None:
    """The site's policy for ``severity`` (the default one for a site without its own); None: nobody is
    told of cases of that severity (info)."""
    policies = config.sites.get(site, config.policy) if site is not None else config.policy
    if severity == "critical":
        return policies.critical
    if severity == "warning":
        return policies.warning
    return None


def due_rounds(policy: NotifyPolicy, opened_at: datetime.datetime, now: datetime.datetime) -> list[Due]:
    """Each level reached by ``now`` with its newest round (see the module's docstring)."""
    found = []
    every = datetime.timedelta(minutes=policy.reminder_every_min)
    for number, level in enumerate(policy.levels, start=1):
        start = opened_at + datetime.timedelta(minutes=level.after_min)
        if start > now:
            break
        rounds = (now - start) // every if policy.reminder_every_min else 0
        found.append(Due(number, rounds, start + rounds * every))
    return found


def notices(
    case_id: str, severity: str, state: str, opened_at: datetime.datetime, now: datetime.datetime,
    policy: NotifyPolicy, people: Sequence[Sequence[Person]], webhooks: int,
) -> list[Notice]:  # fmt: skip
    """Every notice due for the case at ``now``: per level reached, its newest round, to each of the
    level's ``people`` with an e-mail address (``people[n]``: level n+1's, resolved by the caller) and to
    each of the ``webhooks``, over the policy's channels.  Nothing unless the case is open."""
    if state != OPEN:
        return []
    found: list[Notice] = []
    for due in due_rounds(policy, opened_at, now):
        told = people[due.level - 1] if due.level - 1 < len(people) else ()
        base = (case_id, severity, due.level, due.round, due.due_at)
        if "email" in policy.channels:
            seen: set[str] = set()
            for person in told:
                if person.email and person.user_id not in seen:
                    seen.add(person.user_id)
                    found.append(Notice(*base, "email", person.user_id, person.email))
        if "webhook" in policy.channels:
            found.extend(Notice(*base, "webhook", f"{WEBHOOK_PREFIX}{n}", None) for n in range(webhooks))
    return found


def notice_id(notice: Notice) -> str:
    """The notice's id, the same every time it is planned: the queue's key and the e-mail's Message-ID."""
    key = "|".join(map(str, (notice.case_id, notice.severity, notice.level, notice.round, notice.channel,
                             notice.recipient)))  # fmt: skip
    return "n-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def compose(facts: CaseFacts, notice: Notice, link: str, after_min: int) -> tuple[str, str]:
    """The message's subject and plain-text body: case, site, subject, severity, what happened, the level
    and why it is told, and the acknowledge link."""
    site = facts.site or "(no site)"
    tag = facts.severity.upper()
    again = f" (reminder {notice.round})" if notice.round else ""
    subject = f"[Coldgate {tag}] {site}: {facts.title[:120]} - case {facts.case_id}{again}"
    if notice.level == 1:
        why = "You are told as the case opened (level 1)."
    else:
        why = f"Escalated to level {notice.level}: nobody acknowledged the case within {after_min} minutes."
    lines = [
        f"Case: {facts.case_id} ({facts.state})",
        f"Site: {site}",
        f"Subject: {facts.subject_type} {facts.subject}",
        f"Severity: {facts.severity}",
        f"What happened: {facts.title}",
        f"Alerts in the case: {facts.alerts}",
        f"Opened: {facts.opened_at.astimezone(datetime.UTC).isoformat(timespec='seconds')}",
        why,
        "",
        "Acknowledge the case (you will be asked to sign in):",
        link,
    ]
    return subject, "\n".join(lines) + "\n"


def short_of_people(people: Sequence[Sequence[Person]], least: int) -> int | None:
    """How many distinct people with an e-mail address the policy's levels reach together, when fewer
    than ``least`` (GSP: a critical excursion must reach enough people to be acted on); else None."""
    reached = {p.user_id for level in people for p in level if p.email}
    return len(reached) if len(reached) < least else None
