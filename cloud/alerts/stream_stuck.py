"""A stream stuck behind a missing range: later batches are stored, an earlier one never comes.

Ingest acknowledges a stream only up to its first missing seq (``covered``),
and keeps the ranges committed beyond it in ``batch_ranges``.  A hole is
normal for seconds (an express alert batch overtakes the routine backlog;
a worker commits a later group first) and gone once the gateway re-sends
what was not acknowledged.  A hole that stays means the gateway no longer
has those items (a replaced SD card, an outbox restored from a backup, a
bug): data the cloud will never get, and acknowledgement of everything after
it held back, so the gateway's outbox grows.  QA must hear of it; only
``/gateways/{id}`` showed it before.

This module is the pure half: :class:`StuckTracker` remembers, per stream,
since when this process has seen the *same* hole (same ``covered``) while
the gateway was being heard, and :func:`judge` decides what to raise and
clear.  A hole is stuck once it has stood ``stuck_after_s`` with the gateway
heard all along (``gateways.last_seen`` recent at every check): an offline
gateway cannot re-send, so its hole only says the link is down, which the
unheard-gateway watchdog already reports.  Why in
memory and not from ``stream_coverage.updated_at``: that column says when
``covered`` last moved, which after a quiet hour is an hour ago even though
the hole appeared a second ago (the express batch that overtook the
backlog), so it would raise false alerts on every reconnect.  Counting from
when this process first saw the hole can only be late (after a cloud
restart, by at most ``stuck_after_s``).  The database half is
:mod:`coldgate.cloud.alerts.stream_stuck_watch`.

A range that is truly lost stays raised: nothing will ever fill it, and
only people can decide it is gone (closing it is not a tool yet).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from coldgate.cloud.alerts.cloud_stream import cloud_item_fields
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType

__all__ = [
    "DEFAULT_HEARD_WITHIN_S",
    "RULE",
    "SEVERITY",
    "ClearStuck",
    "OpenStuck",
    "RaiseStuck",
    "StreamSnapshot",
    "StuckAction",
    "StuckTracker",
    "alert_id",
    "judge",
    "stuck_alert",
]

RULE = "stream.stuck"
#: A gateway heard within this long counts as heard (its default heartbeat is 60 s); the cloud
#: passes its [gateways] heartbeat_timeout_s.
DEFAULT_HEARD_WITHIN_S = 180.0
#: Data is missing for good unless someone acts, but monitoring goes on: not the site-wide critical.
SEVERITY = Severity.WARNING


@dataclass(frozen=True, slots=True)
class StreamSnapshot:
    """One (gateway, stream) as ingest's bookkeeping shows it."""

    gateway: str
    stream: str
    covered: int
    #: Lowest first seq and highest last seq of the ranges committed beyond ``covered``; None: no hole.
    pending_first: int | None
    pending_last: int | None
    #: When the cloud last heard the gateway (aware UTC); None: unknown.
    last_seen: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenStuck:
    """A ``stream.stuck`` alert raised and not yet cleared."""

    gateway: str
    stream: str
    alert_id: str
    missing_first: int
    missing_last: int


@dataclass(frozen=True, slots=True)
class RaiseStuck:
    gateway: str
    stream: str
    covered: int
    pending_first: int
    pending_last: int
    stuck_s: float

    @property
    def missing_first(self) -> int:
        return self.covered + 1

    @property
    def missing_last(self) -> int:
        return self.pending_first - 1


@dataclass(frozen=True, slots=True)
class ClearStuck:
    open: OpenStuck
    covered: int
    #: Why it cleared, for the alert's message.
    how: str


StuckAction = RaiseStuck | ClearStuck


@dataclass
class StuckTracker:
    """Since when (this process's clock) each stream has shown its current hole."""

    since: dict[tuple[str, str], tuple[int, datetime.datetime]] = field(default_factory=dict)

    def observe(self, snap: StreamSnapshot, now: datetime.datetime) -> datetime.datetime | None:
        """Since when this hole has been seen, or None if the stream has none."""
        key = (snap.gateway, snap.stream)
        if snap.pending_first is None:
            self.since.pop(key, None)
            return None
        seen = self.since.get(key)
        if seen is None or seen[0] != snap.covered:
            self.since[key] = (snap.covered, now)
            return now
        return seen[1]

    def forget(self, snap: StreamSnapshot) -> None:
        """The gateway is unheard: whatever hole it has waits again from when it is heard."""
        self.since.pop((snap.gateway, snap.stream), None)


def alert_id(stream: str, missing_first: int) -> str:
    """Ties raised and cleared rows together; unique per gateway for one hole of one stream.

    The stream id may be 64 characters, the alert id may not be longer, so
    the stream and seq are hashed (both are in the evidence, for people).
    """
    digest = hashlib.sha256(f"{stream}:{missing_first}".encode()).hexdigest()[:20]
    return f"{RULE}.{digest}"


def judge(
    snapshots: Iterable[StreamSnapshot],
    open_alerts: Mapping[tuple[str, str], OpenStuck],
    tracker: StuckTracker,
    now: datetime.datetime,
    stuck_after_s: float,
    heard_within_s: float = DEFAULT_HEARD_WITHIN_S,
) -> list[StuckAction]:
    """What to raise and clear, in (gateway, stream) order; updates ``tracker``.

    The wait counts only while the gateway is heard (``last_seen`` within
    ``heard_within_s`` of ``now``): an unheard gateway's hole is forgotten, and
    its wait starts again once it is heard, so the backlog it re-sends after
    a long outage has the whole wait to arrive.  An open alert clears once
    ``covered`` has passed its first missing seq (the range came after all);
    a hole further on is then a new alert.  A stream no longer in
    ``snapshots`` keeps its alert: the bookkeeping row is never deleted, so
    that is not a fill.
    """
    actions: list[StuckAction] = []
    for snap in sorted(snapshots, key=lambda s: (s.gateway, s.stream)):
        heard = snap.last_seen is not None and (now - snap.last_seen).total_seconds() <= heard_within_s
        since = tracker.observe(snap, now) if heard else tracker.forget(snap)
        current = open_alerts.get((snap.gateway, snap.stream))
        if current is not None:
            if snap.covered < current.missing_first:
                continue  # the same hole: already raised
            how = (
                f"seqs {current.missing_first}..{current.missing_last} arrived"
                if snap.covered >= current.missing_last
                else f"acknowledged up to {snap.covered}"
            )
            actions.append(ClearStuck(open=current, covered=snap.covered, how=how))
        if since is None:
            continue
        stuck_s = (now - since).total_seconds()
        if stuck_s < stuck_after_s:
            continue  # not heard long enough with the hole standing: it may still be re-sent
        assert snap.pending_first is not None and snap.pending_last is not None
        actions.append(
            RaiseStuck(
                gateway=snap.gateway,
                stream=snap.stream,
                covered=snap.covered,
                pending_first=snap.pending_first,
                pending_last=snap.pending_last,
                stuck_s=stuck_s,
            )
        )
    return actions


def stuck_alert(action: StuckAction, seq: int, now: datetime.datetime) -> Alert:
    """The raised or cleared alert row for ``action``, numbered ``seq`` in stream ``cloud``."""
    if isinstance(action, RaiseStuck):
        first, last = action.missing_first, action.missing_last
        count = last - first + 1
        return Alert(
            **cloud_item_fields(seq, now),
            alert_id=alert_id(action.stream, first),
            action=AlertAction.RAISED,
            rule=RULE,
            subject_type=SubjectType.GATEWAY,
            subject=action.gateway,
            severity=SEVERITY,
            message=(
                f"Gateway {action.gateway}: {count} item(s), seqs {first}..{last} of stream "
                f"{action.stream}, never arrived while later ones up to {action.pending_last} did; "
                f"acknowledgement is held at {action.covered}"
            ),
            evidence=Evidence(
                duration_s=int(action.stuck_s),
                details={
                    "stream": action.stream,
                    "covered": action.covered,
                    "missing_first": first,
                    "missing_last": last,
                    "pending_last": action.pending_last,
                },
            ),
        )
    opened = action.open
    return Alert(
        **cloud_item_fields(seq, now),
        alert_id=opened.alert_id,
        action=AlertAction.CLEARED,
        rule=RULE,
        subject_type=SubjectType.GATEWAY,
        subject=opened.gateway,
        severity=SEVERITY,
        message=f"Gateway {opened.gateway}, stream {opened.stream}: {action.how}",
        evidence=Evidence(
            details={
                "stream": opened.stream,
                "covered": action.covered,
                "missing_first": opened.missing_first,
                "missing_last": opened.missing_last,
            }
        ),
    )
