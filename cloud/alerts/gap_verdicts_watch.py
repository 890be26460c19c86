"""Verdicts on closed "gateway unheard" gaps, database side: find the undecided ones, gather, insert.

Runs with the unheard-gateway watchdog (``cloud/scheduler.py``).  Only gaps
closed within ``LOOKBACK`` are looked at: a verdict comes within minutes of
the backlog arriving or not at all.  Verdicts are inserted, never changed;
two runs that decide the same gap insert one row (the second is ignored on
the key), so no locking is needed.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, select
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM, epoch_ms
from coldgate.cloud.alerts.gap_verdicts import ClosedGap, GatewayEvidence, Verdict, judge
from coldgate.cloud.alerts.gateway_unheard import CAUSE
from coldgate.cloud.db import models
from coldgate.contract.items import SubjectType

__all__ = ["LOOKBACK", "decide_gaps"]

log = logging.getLogger(__name__)

#: Closed gaps older than this (by when the cloud closed them) are not judged any more.
LOOKBACK = datetime.timedelta(days=7)

_gaps: Table = models.Gap.__table__  # type: ignore[assignment]
_verdicts: Table = models.GapVerdict.__table__  # type: ignore[assignment]


def decide_gaps(target: Engine | Connection, now: datetime.datetime) -> list[tuple[ClosedGap, Verdict]]:
    """Judge every recently closed, undecided cloud unheard gap; insert and return the verdicts given."""
    if isinstance(target, Engine):
        with target.begin() as conn:
            return _decide(conn, now)
    return _decide(target, now)


def _decide(conn: Connection, now: datetime.datetime) -> list[tuple[ClosedGap, Verdict]]:
    given: list[tuple[ClosedGap, Verdict]] = []
    for gap in _undecided(conn, epoch_ms(now - LOOKBACK)):
        verdict = judge(gap, _evidence(conn, gap.gateway))
        if verdict is None:
            continue
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_verdicts)
        conn.execute(
            insert.on_conflict_do_nothing(),
            {
                "gateway": gap.gateway, "gap_stream": CLOUD_STREAM, "gap_start": gap.start,
                "gap_end": gap.end, "verdict": verdict.verdict, "detail": verdict.detail,
                "evidence": verdict.evidence, "decided_at": now,
            },
        )  # fmt: skip
        log.info("gateway %s: unheard gap from %d judged %s", gap.gateway, gap.start, verdict.verdict)
        given.append((gap, verdict))
    return given


def _undecided(conn: Connection, closed_since_ms: int) -> list[ClosedGap]:
    """Closing rows of cloud unheard gaps written since ``closed_since_ms`` that have no verdict."""
    g, v = _gaps, _verdicts
    decided = (
        select(v.c.gap_start)
        .where(and_(v.c.gateway == g.c.gateway, v.c.gap_stream == g.c.stream, v.c.gap_start == g.c.start))
        .exists()
    )
    rows = conn.execute(
        select(g.c.gateway, g.c.start, g.c.end)
        .where(
            g.c.stream == CLOUD_STREAM, g.c.subject_type == str(SubjectType.GATEWAY), g.c.cause == str(CAUSE),
            g.c.end.is_not(None), g.c.ts >= closed_since_ms, ~decided,
        )
        .order_by(g.c.gateway, g.c.start)
    )  # fmt: skip
    return [ClosedGap(gateway=r.gateway, start=r.start, end=r.end) for r in rows]


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _evidence(conn: Connection, gateway: str) -> GatewayEvidence:
    status = conn.execute(select(models.Gateway.last_status).where(models.Gateway.id == gateway)).scalar()
    status = status if isinstance(status, dict) else {}
    c = models.StreamCoverage
    coverage = conn.execute(
        select(c.stream, c.covered)
        .where(c.gateway == gateway, c.stream != CLOUD_STREAM)
        .order_by(c.updated_at.desc())
        .limit(1)
    ).first()
    covered_ts = None
    if coverage is not None:
        k = models.ItemKey
        covered_ts = conn.execute(
            select(k.ts).where(k.gateway == gateway, k.stream == coverage.stream, k.seq == coverage.covered)
        ).scalar()
    boot = status.get("boot")
    return GatewayEvidence(
        status_ts=_count(status.get("ts")),
        status_boot=boot if isinstance(boot, str) else None,
        uptime_s=_count(status.get("uptime_s")),
        stream=coverage.stream if coverage is not None else None,
        covered=coverage.covered if coverage is not None else None,
        covered_ts=covered_ts,
    )
