"""The dock-discrepancy watch, database side: the documents being worked (and those with an alert still
open), their discrepancies as ``dock_decisions`` judges them, the last binding to each, and the open
``dock.discrepancy`` alerts; judged (``dock_discrepancies.judge``), rows appended in stream ``cloud``
with the shared locking and numbering of the cloud's watches (``cloud_stream_watch``)."""

from __future__ import annotations

import datetime
import logging
from collections import Counter

from sqlalchemy import Connection, Engine, Table, func, insert, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM, epoch_ms
from coldgate.cloud.alerts.cloud_stream_watch import in_retried_transaction, lock_gateway, next_cloud_seq
from coldgate.cloud.alerts.dock_discrepancies import (
    RULE,
    SETTLE_MS,
    DockStanding,
    DockStep,
    OpenDockAlert,
    dock_alert,
    judge,
)
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.cloud.documents import dock_decisions, documents
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.documents.model import OPEN_STATES
from coldgate.contract.items import AlertAction, Severity

__all__ = ["check_dock"]

log = logging.getLogger(__name__)
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def _open(conn: Connection) -> dict[str, OpenDockAlert]:
    """Document -> its alert, where the alert's last step is not a clearing."""
    a = _alerts.c
    newest = (
        select(a.gateway, a.alert_id, func.max(a.seq).label("seq"))
        .where(a.stream == CLOUD_STREAM, a.rule == RULE)
        .group_by(a.gateway, a.alert_id)
        .subquery()
    )
    rows = conn.execute(
        select(a.gateway, a.subject, a.action, a.severity, a.evidence).join(
            newest, (a.gateway == newest.c.gateway) & (a.stream == CLOUD_STREAM) & (a.seq == newest.c.seq)
        )
    )
    found = {}
    for r in rows:
        details = (r.evidence or {}).get("details", {})
        if r.action != str(AlertAction.CLEARED) and details.get("document"):
            found[str(details["document"])] = OpenDockAlert(
                r.gateway, r.subject, Severity(r.severity), str(details.get("open", ""))
            )
    return found


def _standing(
    conn: Connection, document_id: str, today: datetime.date, indexes: dict[str, CatalogIndex]
) -> DockStanding:
    doc = documents.document_model(conn, document_id)
    if doc.site not in indexes:  # one catalog index per site and run, however many documents it works
        indexes[doc.site] = catalog_index(conn, doc.site)
    judged = dock_decisions.judged_discrepancies(conn, document_id, today, index=indexes[doc.site])
    kinds = Counter(j.discrepancy.kind for j in judged if j.blocking)
    b = models.BindingRow
    last = conn.execute(
        select(b.gateway, b.time).where(b.document == document_id).order_by(b.time.desc(), b.gateway).limit(1)
    ).first()
    return DockStanding(
        document=doc.id, kind=str(doc.kind), reference=doc.reference, door=doc.door,
        worked=doc.state in OPEN_STATES, open_kinds=dict(kinds),
        last_gateway=last.gateway if last else None, last_bound=last.time if last else None,
    )  # fmt: skip


def check_dock(engine: Engine, now: datetime.datetime, settle_ms: int = SETTLE_MS) -> list[DockStep]:
    return in_retried_transaction(engine, lambda conn: _check(conn, now, settle_ms), "dock discrepancy watch")


def _check(conn: Connection, now: datetime.datetime, settle_ms: int) -> list[DockStep]:
    today, now_ms = now.date(), epoch_ms(now)
    held = _open(conn)
    worked = {d["id"] for d in documents.documents(conn, state="open")}
    indexes: dict[str, CatalogIndex] = {}
    standings = [_standing(conn, doc, today, indexes) for doc in sorted(worked | held.keys())]
    planned = judge(standings, held, now_ms, settle_ms)
    taken: list[DockStep] = []
    for gateway in sorted({step.gateway for step in planned}):
        lock_gateway(conn, gateway)
        mine = [s for s in standings if s.document in {p.document for p in planned if p.gateway == gateway}]
        fresh = [step for step in judge(mine, _open(conn), now_ms, settle_ms) if step.gateway == gateway]
        seq = next_cloud_seq(conn, gateway)
        for step in fresh:
            conn.execute(insert(_alerts), [item_row(gateway, CLOUD_STREAM, dock_alert(step, seq, now))])
            seq += 1
            log.info("gateway %s: %s %s %s (%s)", gateway, RULE, step.document, step.action, step.counts)
        taken.extend(fresh)
    return taken
