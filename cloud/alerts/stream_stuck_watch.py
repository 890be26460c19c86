"""Stuck streams, database side: read ingest's bookkeeping, lock, number, append alert rows.

Reads ``stream_coverage`` with the ranges ``batch_ranges`` holds beyond
``covered``, and the ``stream.stuck`` alerts still open, lets
:func:`coldgate.cloud.alerts.stream_stuck.judge` decide, and appends
raised/cleared rows in stream ``cloud``.  Like the unheard-gateway watch
(:mod:`coldgate.cloud.alerts.gateway_unheard_watch`), with the locking and
numbering both share (:mod:`coldgate.cloud.alerts.cloud_stream_watch`): a first unlocked read finds the
gateways that need action (usually none); each is then locked (ingest
updates the gateway row in every transaction that moves its coverage, so
the lock orders this decision after any commit in flight), re-read and
judged again; a numbering collision retries the whole check.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, Table, and_, func, insert, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM, utc
from coldgate.cloud.alerts.cloud_stream_watch import in_retried_transaction, lock_gateway, next_cloud_seq
from coldgate.cloud.alerts.stream_stuck import (
    DEFAULT_HEARD_WITHIN_S,
    RULE,
    ClearStuck,
    OpenStuck,
    RaiseStuck,
    StreamSnapshot,
    StuckAction,
    StuckTracker,
    judge,
    stuck_alert,
)
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.contract.items import AlertAction

__all__ = ["check_streams", "open_stuck_alerts", "stream_snapshots"]

log = logging.getLogger(__name__)

_coverage: Table = models.StreamCoverage.__table__  # type: ignore[assignment]
_ranges: Table = models.BatchRange.__table__  # type: ignore[assignment]
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]
_gateways: Table = models.Gateway.__table__  # type: ignore[assignment]


def check_streams(
    engine: Engine,
    now: datetime.datetime,
    tracker: StuckTracker,
    stuck_after_s: float,
    heard_within_s: float = DEFAULT_HEARD_WITHIN_S,
) -> list[StuckAction]:
    """Raise ``stream.stuck`` for holes seen for ``stuck_after_s``, clear filled ones; returns the actions."""
    return in_retried_transaction(
        engine, lambda conn: _check(conn, now, tracker, stuck_after_s, heard_within_s), "stuck-stream check"
    )


def _check(
    conn: Connection,
    now: datetime.datetime,
    tracker: StuckTracker,
    stuck_after_s: float,
    heard_within_s: float,
) -> list[StuckAction]:
    # The first judgement also keeps the tracker up to date for every stream; it is re-judged
    # under the lock below on a copy, so the tracker sees each observation once per run.
    snapshots = stream_snapshots(conn)
    gateways = sorted({snap.gateway for snap in snapshots})
    planned = judge(snapshots, open_stuck_alerts(conn, gateways), tracker, now, stuck_after_s, heard_within_s)
    taken: list[StuckAction] = []
    for gateway in sorted({_gateway_of(action) for action in planned}):
        lock_gateway(conn, gateway)
        fresh = judge(
            stream_snapshots(conn, [gateway]),
            open_stuck_alerts(conn, [gateway]),
            StuckTracker(dict(tracker.since)),
            now,
            stuck_after_s,
            heard_within_s,
        )
        seq = next_cloud_seq(conn, gateway)
        for action in fresh:
            conn.execute(insert(_alerts), [item_row(gateway, CLOUD_STREAM, stuck_alert(action, seq, now))])
            seq += 1
            _log(action)
        taken.extend(fresh)
    return taken


def _gateway_of(action: StuckAction) -> str:
    return action.gateway if isinstance(action, RaiseStuck) else action.open.gateway


def _log(action: StuckAction) -> None:
    if isinstance(action, RaiseStuck):
        log.warning(
            "gateway %s stream %s stuck for %.0f s: seqs %d..%d missing, later ones up to %d stored",
            action.gateway,
            action.stream,
            action.stuck_s,
            action.missing_first,
            action.missing_last,
            action.pending_last,
        )
    elif isinstance(action, ClearStuck):
        log.info(
            "gateway %s stream %s no longer stuck: %s", action.open.gateway, action.open.stream, action.how
        )


def stream_snapshots(conn: Connection, gateways: Sequence[str] | None = None) -> list[StreamSnapshot]:
    """Every stream with the span of the ranges committed beyond ``covered + 1`` (None: no hole).

    Ranges at or below ``covered + 1`` are left out: ingest merges them, but a
    stream that adopted the gateway's own acknowledgement can keep older ones.
    """
    beyond = (
        select(
            _ranges.c.gateway,
            _ranges.c.stream,
            func.min(_ranges.c.first_seq).label("first"),
            func.max(_ranges.c.last_seq).label("last"),
        )
        .join(
            _coverage,
            and_(_coverage.c.gateway == _ranges.c.gateway, _coverage.c.stream == _ranges.c.stream),
        )
        .where(_ranges.c.first_seq > _coverage.c.covered + 1)
        .group_by(_ranges.c.gateway, _ranges.c.stream)
        .subquery()
    )
    query = (
        select(
            _coverage.c.gateway,
            _coverage.c.stream,
            _coverage.c.covered,
            beyond.c.first,
            beyond.c.last,
            _gateways.c.last_seen,
        )
        .join(
            beyond,
            and_(beyond.c.gateway == _coverage.c.gateway, beyond.c.stream == _coverage.c.stream),
            isouter=True,
        )
        .join(_gateways, _gateways.c.id == _coverage.c.gateway, isouter=True)
    )
    if gateways is not None:
        query = query.where(_coverage.c.gateway.in_(gateways))
    return [
        StreamSnapshot(
            gateway=gateway,
            stream=stream,
            covered=int(covered),
            pending_first=None if first is None else int(first),
            pending_last=None if last is None else int(last),
            last_seen=None if last_seen is None else utc(last_seen),
        )
        for gateway, stream, covered, first, last, last_seen in conn.execute(query).all()
    ]


def open_stuck_alerts(conn: Connection, gateways: Sequence[str]) -> dict[tuple[str, str], OpenStuck]:
    """``stream.stuck`` alerts of ``gateways`` raised with no cleared row of the same id.

    Per gateway on purpose: (gateway, stream) leads the alerts' primary key,
    so this reads the few cloud rows of each gateway, not the whole table.
    """
    if not gateways:
        return {}
    raised = _alerts.alias("raised")
    closing = _alerts.alias("closing")
    cleared = (
        select(closing.c.seq)
        .where(
            closing.c.gateway == raised.c.gateway,
            closing.c.stream == raised.c.stream,
            closing.c.alert_id == raised.c.alert_id,
            closing.c.action == str(AlertAction.CLEARED),
        )
        .exists()
    )
    query = select(raised.c.gateway, raised.c.alert_id, raised.c.evidence).where(
        raised.c.stream == CLOUD_STREAM,
        raised.c.rule == RULE,
        raised.c.action == str(AlertAction.RAISED),
        ~cleared,
    )
    query = query.where(raised.c.gateway.in_(list(gateways)))
    found: dict[tuple[str, str], OpenStuck] = {}
    for gateway, alert_id, evidence in conn.execute(query).all():
        details = (evidence or {}).get("details", {})
        stream = details.get("stream")
        first, last = details.get("missing_first"), details.get("missing_last")
        if not isinstance(stream, str) or not isinstance(first, int) or not isinstance(last, int):
            log.error("stream.stuck alert %s of %s has no stream/seqs in its evidence", alert_id, gateway)
            continue
        found[(gateway, stream)] = OpenStuck(gateway, stream, alert_id, first, last)
    return found
