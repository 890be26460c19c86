"""Unheard gateways, database side: read, lock, number, append.

:func:`check_gateways` reads every gateway with its open cloud gap, lets
:func:`coldgate.cloud.alerts.gateway_unheard.judge` decide, and appends the gap and alert rows
in one transaction.  Rows are only ever inserted; the one update is
``gateways.online``/``state_since``, which is the gateway's current state,
not a record.

Concurrency.  The watchdog is meant to run as a single instance per
deployment (one cloud process, one scheduler, ``max_instances=1``), but it
must stay correct against ingest writing the same gateway rows, and must not
double anything even if two runs did overlap:

* a first, unlocked read finds the gateways that need action (usually none,
  so ingest is never blocked by a quiet watchdog);
* each such gateway row is then locked (``FOR UPDATE`` on PostgreSQL; on
  SQLite a no-op write takes the database write lock) and re-read, and the
  decision is made again on the fresh row, so a heartbeat that arrived in
  between cancels the gap instead of racing it;
* cloud rows are numbered max+1 over gaps and alerts of stream ``cloud``; a
  collision (another run that got there first) fails on the primary key, and
  the whole check is retried, seeing that run's rows.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.alerts.cloud_stream_watch import in_retried_transaction, lock_gateway, next_cloud_seq
from coldgate.cloud.alerts.gateway_unheard import (
    CAUSE,
    CloseGap,
    GatewaySnapshot,
    OpenGap,
    UnheardAction,
    close_items,
    gateway_snapshot,
    judge,
    open_items,
)
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.contract.items import SubjectType

__all__ = ["check_gateways", "open_gap_starts"]

log = logging.getLogger(__name__)

_gateways: Table = models.Gateway.__table__  # type: ignore[assignment]
_gaps: Table = models.Gap.__table__  # type: ignore[assignment]
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def check_gateways(
    target: Engine | Connection,
    now: datetime.datetime,
    default_timeout_s: float,
    *,
    listening_since: datetime.datetime | None = None,
) -> list[UnheardAction]:
    """Open gaps for unheard gateways and close those heard again; returns the actions taken.

    With an engine, runs in a transaction of its own and retries it on a
    collision; with a connection, the caller's transaction is used (one is
    begun if none is open) and a collision is raised.  ``listening_since`` is
    passed to :func:`~coldgate.cloud.alerts.gateway_unheard.judge` (the scheduler gives its
    start time).
    """
    if isinstance(target, Connection):
        if target.in_transaction():
            return _check(target, now, default_timeout_s, listening_since)
        with target.begin():
            return _check(target, now, default_timeout_s, listening_since)
    return in_retried_transaction(
        target, lambda conn: _check(conn, now, default_timeout_s, listening_since), "gateway watchdog"
    )


def _check(
    conn: Connection,
    now: datetime.datetime,
    default_timeout_s: float,
    listening_since: datetime.datetime | None,
) -> list[UnheardAction]:
    planned = judge(_snapshots(conn), now, default_timeout_s, listening_since=listening_since)
    taken: list[UnheardAction] = []
    # Sorted, so two runs lock gateways in the same order and cannot deadlock each other.
    for gateway in sorted({action.gateway for action in planned}):
        lock_gateway(conn, gateway)
        fresh = judge(_snapshots(conn, [gateway]), now, default_timeout_s, listening_since=listening_since)
        seq = next_cloud_seq(conn, gateway)
        for action in fresh:
            if isinstance(action, OpenGap):
                gap, alert = open_items(action, seq, now)
            else:
                gap, alert = close_items(action, seq, now)
            seq += 2
            conn.execute(insert(_gaps), [item_row(gateway, CLOUD_STREAM, gap)])
            conn.execute(insert(_alerts), [item_row(gateway, CLOUD_STREAM, alert)])
            if isinstance(action, OpenGap):
                conn.execute(
                    update(_gateways)
                    .where(_gateways.c.id == gateway, _gateways.c.online.is_(True))
                    .values(online=False, state_since=now)
                )
            _log(action)
        taken.extend(fresh)
    return taken


def _log(action: UnheardAction) -> None:
    if isinstance(action, OpenGap):
        log.warning(
            "gateway %s unheard for %.0f s (timeout %.0f s): gap opened at %d",
            action.gateway,
            action.unheard_s,
            action.timeout_s,
            action.start,
        )
    elif isinstance(action, CloseGap):
        log.info("gateway %s heard again: gap %d closed at %d", action.gateway, action.start, action.end)


def open_gap_starts(conn: Connection, gateways: Sequence[str] | None = None) -> dict[str, int]:
    """Start of each gateway's open cloud unheard gap: an open row with no closing row of the same start."""
    opened = _gaps.alias("opened")
    closing = _gaps.alias("closing")
    closed = (
        select(closing.c.seq)
        .where(
            closing.c.gateway == opened.c.gateway,
            closing.c.stream == opened.c.stream,
            closing.c.subject_type == opened.c.subject_type,
            closing.c.subject == opened.c.subject,
            closing.c.cause == opened.c.cause,
            closing.c.start == opened.c.start,
            closing.c.end.is_not(None),
        )
        .exists()
    )
    query = (
        select(opened.c.gateway, func.max(opened.c.start))
        .where(
            opened.c.stream == CLOUD_STREAM,
            opened.c.subject_type == str(SubjectType.GATEWAY),
            opened.c.subject == opened.c.gateway,
            opened.c.cause == str(CAUSE),
            opened.c.end.is_(None),
            ~closed,
        )
        .group_by(opened.c.gateway)
    )
    if gateways is not None:
        query = query.where(opened.c.gateway.in_(gateways))
    return {gateway: start for gateway, start in conn.execute(query).all()}


def _snapshots(conn: Connection, gateways: Sequence[str] | None = None) -> list[GatewaySnapshot]:
    query = select(_gateways.c.id, _gateways.c.last_seen, _gateways.c.online, _gateways.c.last_status)
    if gateways is not None:
        query = query.where(_gateways.c.id.in_(gateways))
    open_starts = open_gap_starts(conn, gateways)
    return [
        gateway_snapshot(gateway, last_seen, online, status, open_starts.get(gateway))
        for gateway, last_seen, online, status in conn.execute(query).all()
    ]
