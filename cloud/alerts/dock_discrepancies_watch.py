"""The dock-discrepancy watch, database side: the documents being worked (and those with an alert still
open), their discrepancies as ``dock_decisions`` judges them, the last binding to each, and the open
``dock.discrepancy`` alerts; judged (``dock_discrepancies.judge``), rows appended in stream ``cloud``
with the shared locking and numbering of the cloud's watches (``cloud_stream_watch``).

The watch runs every few seconds; reconciling every worked document each time, changed or not, is most
of its cost.  A :class:`DockWatchCache` (the scheduler keeps one) keeps each document's standing under
what it was computed from: the audit log's last number (the document, its acceptances and assignments,
the catalog: every change to them is audited, numbered in commit order), the quarter of an hour (the
site's date, which expiry judgements turn with, changes at its own midnight), and the count and latest
``bound_at`` of the document's bindings (binding adds rows, a re-run rewrites them with a new
``bound_at``).  One indexed read per document says whether to reconcile it again."""

from __future__ import annotations

import datetime
import logging
from collections import Counter
from typing import Any

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
from coldgate.cloud.audit.log import head as audit_head
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.cloud.documents import dock_decisions, documents
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.documents.model import OPEN_STATES
from coldgate.contract.items import AlertAction, Severity

__all__ = ["DockWatchCache", "check_dock"]

_QUARTER_MS = 15 * 60 * 1000

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
    conn: Connection, document_id: str, now: datetime.datetime, indexes: dict[str, CatalogIndex]
) -> DockStanding:
    doc = documents.document_model(conn, document_id)
    if doc.site not in indexes:  # one catalog index per site and run, however many documents it works
        indexes[doc.site] = catalog_index(conn, doc.site)
    judged = dock_decisions.judged_discrepancies(conn, document_id, now, index=indexes[doc.site])
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


class DockWatchCache:
    """Each document's standing, kept under what it was computed from (the module's docstring)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[Any, ...], DockStanding]] = {}
        #: Standings computed afresh (the rest were kept); for the tests and the curious.
        self.computed = 0

    def standing(
        self, conn: Connection, document_id: str, now: datetime.datetime, audit: int,
        indexes: dict[str, CatalogIndex],
    ) -> DockStanding:  # fmt: skip
        b = models.BindingRow
        count, latest = conn.execute(
            select(func.count(), func.max(b.bound_at)).where(b.document == document_id)
        ).one()
        # The site's date turns at its own midnight: a quarter of an hour is the finest any zone needs.
        marker = (audit, epoch_ms(now) // _QUARTER_MS, count, latest)
        kept = self._kept.get(document_id)
        if kept is not None and kept[0] == marker:
            return kept[1]
        found = _standing(conn, document_id, now, indexes)
        self._kept[document_id] = (marker, found)
        self.computed += 1
        return found

    def keep_only(self, documents: set[str]) -> None:
        """Forget the documents no longer watched."""
        self._kept = {doc: kept for doc, kept in self._kept.items() if doc in documents}


def check_dock(
    engine: Engine, now: datetime.datetime, settle_ms: int = SETTLE_MS, cache: DockWatchCache | None = None
) -> list[DockStep]:
    return in_retried_transaction(
        engine, lambda conn: _check(conn, now, settle_ms, cache), "dock discrepancy watch"
    )


def _check(
    conn: Connection, now: datetime.datetime, settle_ms: int, cache: DockWatchCache | None
) -> list[DockStep]:
    now_ms = epoch_ms(now)
    held = _open(conn)
    worked = {d["id"] for d in documents.documents(conn, state="open")}
    indexes: dict[str, CatalogIndex] = {}
    watched = worked | held.keys()
    if cache is None:
        standings = [_standing(conn, doc, now, indexes) for doc in sorted(watched)]
    else:
        audit, _ = audit_head(conn)
        standings = [cache.standing(conn, doc, now, audit, indexes) for doc in sorted(watched)]
        cache.keep_only(watched)
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
