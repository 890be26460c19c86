"""Reconciliation's database edge: a document's stored bindings judged by the pure ``reconcile``, and
the items left unbound at a dock door, for the API and the pages alike (one reader, so a page never
shows what the API would not).

Why it reads the ``bindings`` table and not ``edge_items``: binding has already identified each item
against the catalog and decided its document and line (``binding_store.py``); reconciliation needs
exactly that, rebuilt as the pure :class:`~binding.Binding` objects, and judging never re-binds, so a
page refreshing every few seconds costs two indexed reads and the catalog index.

What the stored row cannot give back: a scan's own expiry (the label's, which wins over the lot's in
``identifiers.identify_scan``) is not kept in ``bindings``, so an item's expiry here is its lot's in
the catalog (``reconcile`` falls back to it).  The moment is the caller's (never read from a clock here);
the date it is judged on is the site's (``site_date``).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Table, select

from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.db.models import BindingRow, Site
from coldgate.cloud.documents import documents
from coldgate.cloud.documents.binding import Binding, ItemKey, Observed
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified, Unresolved
from coldgate.cloud.documents.model import Document
from coldgate.cloud.documents.reconciliation import (
    INFO_KINDS,
    Discrepancy,
    LineResult,
    Reconciliation,
    reconcile,
)
from coldgate.cloud.identity.users import NotFound

__all__ = [
    "COUNT_KINDS", "DocumentCheck", "bindings_of", "check_document", "dock_door", "door_checks",
    "line_state", "line_word", "stored_document", "unbound_at_door",
]  # fmt: skip

_bindings: Table = BindingRow.__table__  # type: ignore[assignment]
#: The discrepancies that explain a line's count (the rest are about the units on it).
COUNT_KINDS: Final = frozenset({"missing", "under_quantity", "over_quantity", "unexpected_instance"})


@dataclass(frozen=True, slots=True)
class DocumentCheck:
    """A document as it stands and its reconciliation, judged on ``today``."""

    document: Document
    reconciliation: Reconciliation
    today: datetime.date


def stored_document(conn: Connection, document_id: str) -> Document:
    """The document as it stands, as the pure steps take it; NotFound (``document_id``) if none."""
    return documents.document_model(conn, document_id)


def _binding(row: Any) -> Binding:
    """A stored row back into what binding decided (identification as stored, expiry left to the lot)."""
    unresolved = tuple(
        Unresolved(str(u.get("field", "")), str(u.get("value", "")), str(u.get("reason", "")))
        for u in (row.unresolved or ())
        if isinstance(u, dict)
    )
    named = Identified(
        label=row.label, sscc=row.sscc, product=row.product, lot=row.lot, serial=row.serial,
        quantity=row.quantity, unresolved=unresolved,
    )  # fmt: skip
    seen = Observed(
        ItemKey(row.gateway, row.stream, row.seq), row.kind, row.door or "", row.direction, row.time, named
    )
    return Binding(seen, row.document, row.line, row.how, row.reason)


def bindings_of(conn: Connection, document_id: str) -> list[Binding]:
    """Every stored binding to the document, by item key."""
    b = _bindings.c
    query = select(_bindings).where(b.document == document_id).order_by(b.gateway, b.stream, b.seq)
    return [_binding(row) for row in conn.execute(query)]


def site_date(conn: Connection, site: str, now: datetime.datetime) -> datetime.date:
    """The date at ``site`` at ``now``, in the site's time zone (UTC when it has none): what "expired"
    and "short-dated" are judged on.  A lot expiring on the 7th has expired from midnight at the site,
    not from midnight UTC (hours apart, either way, in most of the world)."""
    name = conn.execute(select(Site.time_zone).where(Site.id == site)).scalar()
    try:
        zone = zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return now.astimezone(zone).date()


def check_document(
    conn: Connection, document_id: str, when: datetime.date, *, index: CatalogIndex | None = None
) -> DocumentCheck:
    """The document's reconciliation from what is bound to it now; NotFound if there is no document.
    ``when``: a moment (an aware ``datetime``: judged on the date at the document's site then,
    :func:`site_date`) or a date as it is.  ``index``: the site's catalog index already read (a door page
    judges several documents of one site)."""
    document = stored_document(conn, document_id)
    today = site_date(conn, document.site, when) if isinstance(when, datetime.datetime) else when
    if index is None:
        index = catalog_index(conn, document.site)
    found = reconcile(document, bindings_of(conn, document_id), index, today)
    return DocumentCheck(document, found, today)


def line_state(line: LineResult, discrepancies: tuple[Discrepancy, ...]) -> str:
    """One word for how a line stands, for the dock (and a colour on the page): ``complete``;
    ``flagged`` (the count is right but a unit on it is not: recalled, wrong lot, ...); ``missing``
    (nothing seen), ``short``, ``over``, or ``mismatch`` (the count is right but the instances not)."""
    own = [d for d in discrepancies if d.line == line.number and d.kind not in INFO_KINDS]
    if line.complete:
        return "flagged" if own else "complete"
    if line.seen == 0:
        return "missing"
    if line.seen < line.expected:
        return "short"
    if line.seen > line.expected:
        return "over"
    return "mismatch"


def line_word(line: LineResult, discrepancies: tuple[Discrepancy, ...]) -> str | None:
    """The CBV 2.0 disposition that says how the line stands: its completeness when complete, else the
    word of what explains its count (``mismatch_instance``, ``mismatch_quantity``), if any."""
    if line.completeness is not None:
        return line.completeness
    for d in discrepancies:
        if d.line == line.number and d.kind in COUNT_KINDS and d.cbv is not None:
            return d.cbv
    return None


def dock_door(conn: Connection, site: str, door: str) -> dict[str, Any]:
    """The dock door ``door`` of ``site`` as the catalog has it; NotFound (``door``) when the site has no
    such location or it is not a dock door (a cold room has no unbound items to show)."""
    place = next((x for x in locations(conn, site=site) if x["id"] == door), None)
    if place is None or place["kind"] != "dock_door":
        raise NotFound("door", f"no dock door {door!r} at site {site!r}")
    return place


def unbound_at_door(
    conn: Connection, site: str, door: str, start: int, end: int, *, limit: int = 200
) -> list[dict[str, Any]]:
    """The items at the door in ``[start, end)`` (epoch ms) that bound to no document, newest first,
    each with what it named and why it fits nothing; NotFound when there is no such dock door."""
    dock_door(conn, site, door)
    b = _bindings.c
    query = (
        select(_bindings)
        .where(b.site == site, b.door == door, b.document.is_(None), b.time >= start, b.time < end)
        .order_by(b.time.desc(), b.gateway, b.stream, b.seq.desc())
        .limit(limit)
    )
    return [
        {
            "gateway": row.gateway, "stream": row.stream, "seq": row.seq, "kind": row.kind,
            "direction": row.direction, "time": row.time, "label": row.label, "product": row.product,
            "lot": row.lot, "serial": row.serial, "sscc": row.sscc, "quantity": row.quantity,
            "unit": row.unit, "how": row.how, "reason": row.reason, "unresolved": list(row.unresolved or ()),
        }
        for row in conn.execute(query)
    ]  # fmt: skip


def door_checks(conn: Connection, site: str, door: str, when: datetime.date) -> list[DocumentCheck]:
    """The documents being worked at the door now (released or in progress there), each reconciled;
    NotFound when there is no such dock door."""
    dock_door(conn, site, door)
    worked = documents.open_at_door(conn, site, door)
    index = catalog_index(conn, site) if worked else None
    return [check_document(conn, d.id, when, index=index) for d in worked]
