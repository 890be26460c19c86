"""Gateway unheard: when the cloud stops hearing a gateway, a gap and an alert.

A gateway that stays unheard past its heartbeat is no longer monitoring
*through the cloud*, whatever the reason (crash, power cut, cut link, clean
shutdown, broker-published last will): QA cannot see its rooms, so the cloud
records the interval as a gap and raises an alert (DESIGN.md, principle 5).
The gateway keeps monitoring and buffering on its own, which is why the gap
says "the cloud did not hear it", not "nothing was measured".

This module is the pure half: it judges snapshots of the ``gateways`` table
against a clock passed in and builds the contract items to append.  The
database half (reading snapshots, locking, numbering, inserting) is
:mod:`coldgate.cloud.alerts.gateway_unheard_watch`.

"Silence" is not used for this on purpose: on the gateway it means an
operator muting the siren (``coldgate.gateway.alarm``).  The rule id
``gateway.silent`` and the raised alert's message keep the old word: both
are stored in alert rows and matched by whoever reads them.

Records are append-only: a gap is opened by a row with ``end`` null and
closed by a *second* row with the same ``start`` and an ``end``; the alert is
raised by one row and cleared by another with the same ``alert_id``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coldgate.cloud.alerts.cloud_stream import cloud_item_fields, epoch_ms, utc
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Gap, GapCause, Severity, SubjectType

__all__ = [
    "CAUSE",
    "HEARTBEAT_FACTOR",
    "RULE",
    "SEVERITY",
    "CloseGap",
    "GatewaySnapshot",
    "OpenGap",
    "UnheardAction",
    "alert_id",
    "close_items",
    "gateway_snapshot",
    "judge",
    "open_items",
    "timeout_for",
]

UTC = datetime.UTC

#: Missing this many heartbeats in a row means unheard: one late heartbeat is normal on a weak link.
HEARTBEAT_FACTOR = 3
RULE = "gateway.silent"
#: The existing edge cause for "gateway not running"; from the cloud it means "not heard".
CAUSE = GapCause.GATEWAY_OFFLINE
#: Highest the contract allows: a whole site's cold rooms are out of QA's sight.
SEVERITY = Severity.CRITICAL


@dataclass(frozen=True, slots=True)
class GatewaySnapshot:
    """What the watch knows of one gateway at one moment."""

    gateway: str
    #: When the cloud last received anything from (or for) the gateway.
    last_seen: datetime.datetime
    #: As ingest (or the watch) last set it; False after a shutdown status or a last will.
    online: bool
    #: From the gateway's newest status, when it announced one.
    heartbeat_s: float | None = None
    #: ``start`` (epoch ms) of the cloud's open unheard gap, if one is open.
    open_gap_start: int | None = None
    #: Items the gateway still had to send, per its newest status.
    outbox_depth: int | None = None
    #: How the gateway said goodbye, if its newest status was an offline one.
    farewell: str | None = None


@dataclass(frozen=True, slots=True)
class OpenGap:
    """The gateway went unheard: append an open gap and raise the alert."""

    gateway: str
    start: int
    last_seen: datetime.datetime
    unheard_s: float
    timeout_s: float
    heartbeat_s: float | None
    outbox_depth: int | None
    farewell: str | None


@dataclass(frozen=True, slots=True)
class CloseGap:
    """The gateway was heard again: append the closing gap row and clear the alert."""

    gateway: str
    start: int
    #: When it was heard again (its ``last_seen``), epoch ms.
    end: int


UnheardAction = OpenGap | CloseGap


def timeout_for(heartbeat_s: float | None, default_timeout_s: float) -> float:
    """Seconds without hearing a gateway after which it counts as unheard.

    A gateway that announced its heartbeat is judged by it (three missed
    heartbeats), so a slow-heartbeat site is not flagged and a fast one is
    caught early; otherwise the configured default applies.
    """
    if heartbeat_s is not None and heartbeat_s > 0:
        return HEARTBEAT_FACTOR * float(heartbeat_s)
    return default_timeout_s


def _count(value: object) -> int | None:
    # bool is an int in Python, but never a count.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def gateway_snapshot(
    gateway: str,
    last_seen: datetime.datetime,
    online: bool,
    last_status: Mapping[str, Any] | None,
    open_gap_start: int | None,
) -> GatewaySnapshot:
    """A snapshot from a ``gateways`` row; ``last_status`` is read defensively.

    ``last_status`` is stored JSON and a last will carries only the required
    fields, so anything missing or mistyped just counts as unknown.
    """
    status = last_status or {}
    heartbeat = _count(status.get("heartbeat_s"))
    farewell = None
    if status.get("state") == "offline":
        farewell = "last will" if status.get("will") is True else "shutdown"
    return GatewaySnapshot(
        gateway=gateway,
        last_seen=utc(last_seen),
        online=bool(online),
        heartbeat_s=float(heartbeat) if heartbeat is not None else None,
        open_gap_start=open_gap_start,
        outbox_depth=_count(status.get("outbox_depth")),
        farewell=farewell,
    )


def judge(
    snapshots: Iterable[GatewaySnapshot],
    now: datetime.datetime,
    default_timeout_s: float,
    *,
    listening_since: datetime.datetime | None = None,
) -> list[UnheardAction]:
    """The gaps to open and close, in gateway order.

    A gap is closed only when the gateway itself was heard after the gap's
    start: ``online`` must be true, because a broker-published last will also
    bumps ``last_seen`` yet proves the gateway is gone.  It closes at
    ``last_seen`` even when the gateway has gone unheard again since (say the
    cloud was down meanwhile); a new gap then opens from that same moment, so
    the record shows the gateway was heard in between.

    ``listening_since`` is when this cloud process started listening: time
    unheard is counted from it at the earliest, so a cloud restart after an outage
    does not flag every gateway before they have had a chance to be heard.
    The gap still starts at ``last_seen``, the last time the cloud heard it.
    """
    now = utc(now)
    since = utc(listening_since) if listening_since is not None else None
    actions: list[UnheardAction] = []
    for snap in sorted(snapshots, key=lambda s: s.gateway):
        seen_ms = epoch_ms(snap.last_seen)
        start = snap.open_gap_start
        if start is not None:
            if not (snap.online and seen_ms > start):
                continue  # still unheard: the open gap stays open
            actions.append(CloseGap(gateway=snap.gateway, start=start, end=seen_ms))
        timeout = timeout_for(snap.heartbeat_s, default_timeout_s)
        heard = utc(snap.last_seen)
        counted_from = max(heard, since) if since is not None else heard
        if (now - counted_from).total_seconds() <= timeout:
            continue
        actions.append(
            OpenGap(
                gateway=snap.gateway,
                start=seen_ms,
                last_seen=heard,
                unheard_s=(now - heard).total_seconds(),
                timeout_s=timeout,
                heartbeat_s=snap.heartbeat_s,
                outbox_depth=snap.outbox_depth,
                farewell=snap.farewell,
            )
        )
    return actions


def alert_id(start: int) -> str:
    """Id tying the raised and cleared rows together.

    Alert rows are keyed by gateway already, and a gap's start is unique per
    gateway (a new gap starts after the last one was heard), so the start
    suffices; adding the gateway id could overrun the contract's 64-character
    id.  Only ``A-Z a-z 0-9 _ . -`` are allowed, hence no colons.
    """
    return f"{RULE}.{start}"


def _duration(seconds: float) -> str:
    """ "45 s", "3 min 20 s", "3 h 5 min", "2 d 4 h": for people reading an alert."""
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _timeout_text(action: OpenGap) -> str:
    if action.heartbeat_s is not None:
        return (
            f"timeout {_duration(action.timeout_s)} = {HEARTBEAT_FACTOR} x its heartbeat of "
            f"{_duration(action.heartbeat_s)}"
        )
    return f"timeout {_duration(action.timeout_s)}, the configured default"


def open_items(action: OpenGap, seq: int, now: datetime.datetime) -> tuple[Gap, Alert]:
    """The open gap (``seq``) and the raised alert (``seq + 1``) for ``action``."""
    last_seen = action.last_seen.isoformat(timespec="seconds")
    unheard = _duration(action.unheard_s)
    detail = f"not heard by the cloud for {unheard} since {last_seen} ({_timeout_text(action)})"
    if action.farewell is not None:
        detail += f"; its last status was an offline one ({action.farewell})"
    gap = Gap(
        **cloud_item_fields(seq, now),
        subject_type=SubjectType.GATEWAY,
        subject=action.gateway,
        start=action.start,
        end=None,
        cause=CAUSE,
        detail=detail,
    )
    details: dict[str, str | int | float | bool] = {"last_seen": last_seen, "timeout_s": action.timeout_s}
    if action.heartbeat_s is not None:
        details["heartbeat_s"] = action.heartbeat_s
    if action.outbox_depth is not None:
        details["outbox_depth"] = action.outbox_depth
    if action.farewell is not None:
        details["farewell"] = action.farewell
    alert = Alert(
        **cloud_item_fields(seq + 1, now),
        alert_id=alert_id(action.start),
        action=AlertAction.RAISED,
        rule=RULE,
        subject_type=SubjectType.GATEWAY,
        subject=action.gateway,
        severity=SEVERITY,
        # "silent" is the wording alert rows have always carried (see the module docstring).
        message=f"Gateway {action.gateway} silent for {unheard}: no monitoring through the cloud",
        evidence=Evidence(start=action.start, duration_s=int(action.unheard_s), details=details),
    )
    return gap, alert


def close_items(action: CloseGap, seq: int, now: datetime.datetime) -> tuple[Gap, Alert]:
    """The closing gap row (``seq``) and the cleared alert (``seq + 1``) for ``action``."""
    unheard_s = (action.end - action.start) / 1000
    heard = datetime.datetime.fromtimestamp(action.end / 1000, UTC).isoformat(timespec="seconds")
    gap = Gap(
        **cloud_item_fields(seq, now),
        subject_type=SubjectType.GATEWAY,
        subject=action.gateway,
        start=action.start,
        end=action.end,
        cause=CAUSE,
        detail=f"heard again at {heard} after {_duration(unheard_s)} unheard",
    )
    alert = Alert(
        **cloud_item_fields(seq + 1, now),
        alert_id=alert_id(action.start),
        action=AlertAction.CLEARED,
        rule=RULE,
        subject_type=SubjectType.GATEWAY,
        subject=action.gateway,
        severity=SEVERITY,
        message=f"Gateway {action.gateway} heard again after {_duration(unheard_s)}",
        evidence=Evidence(start=action.start, end=action.end, duration_s=int(unheard_s)),
    )
    return gap, alert
