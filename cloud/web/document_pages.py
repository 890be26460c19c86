"""The documents pages (read-only): receiving notes, dispatch orders and transfers as they stand, with
filters, one document with its lines, its reconciliation and every version (who, when, why, what
changed), and a dock door's page: the documents being worked there, live, and what bound to none.

Read through the same functions as the JSON API's documents routes (``cloud/documents/documents.py``),
so a page never shows what the API would not; reconciliation through ``reconciliation_store`` and the
API's own shape of it (``reconciliation_out``).  The door page refreshes its body with htmx every few
seconds, as the overview does, because binding runs every 2 s after ingest and the dock watches the
lines fill while cases pass the portal.  A filter the store refuses (an unknown kind or state) is
said on the page and not applied, as the other list pages do.  Times are in the document's site's zone.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response

from coldgate.cloud.api import queries_sites
from coldgate.cloud.api.routes.dock import DAY_MS
from coldgate.cloud.api.routes.documents import reconciliation_out
from coldgate.cloud.api.writes import utc_now
from coldgate.cloud.documents import dock_decisions, documents, reconciliation_store
from coldgate.cloud.documents.model import DocumentKind
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import REFRESH_S, Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Filter = Annotated[str | None, Query(max_length=64)]
Name = Annotated[str, Path(max_length=64)]
#: Unbound items the door page lists at most (the API pages through more).
UNBOUND_SHOWN = 200
#: What a version changed, compared field by field with the one before.
HEADER_FIELDS = ("state", "party", "door")


def _at(ms: int | None) -> datetime.datetime | None:
    return None if ms is None else datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def _dated(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "at": datetime.datetime.fromisoformat(record["changed_at"]), "opened": _at(
        record["opened_at"]), "closed": _at(record["closed_at"])}  # fmt: skip


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """What ``after`` changed from the version before: header fields, then lines added, removed, changed."""
    if before is None:
        return ["created"]
    said = [f"{name}: {before[name] or '—'} → {after[name] or '—'}" for name in HEADER_FIELDS
            if before[name] != after[name]]  # fmt: skip
    old = {line["number"]: line for line in before["lines"]}
    new = {line["number"]: line for line in after["lines"]}
    said += [f"line {n} added" for n in sorted(new.keys() - old.keys())]
    said += [f"line {n} removed" for n in sorted(old.keys() - new.keys())]
    said += [f"line {n} changed" for n in sorted(new.keys() & old.keys()) if new[n] != old[n]]
    return said or ["no field changed"]


@router.get("/dashboard/documents", response_class=HTMLResponse)
def documents_page(
    who: Who, request: Request, kind: Filter = None, state: Filter = None, site: Filter = None,
    door: Filter = None,
) -> Response:  # fmt: skip
    """Documents as they stand, most recently changed first, filtered by kind, state, site and door."""
    errors: list[str] = []
    chosen = {"kind": kind or None, "state": state or None}
    with request.app.state.engine.connect() as conn:
        try:
            found = documents.documents(conn, site=site or None, door=door or None, **chosen)
        except UserInputError as exc:
            errors.append(str(exc))
            chosen[exc.field] = None
            found = documents.documents(conn, site=site or None, door=door or None, **chosen)
        book = queries_sites.zone_book(conn)
        zone = list_zone(book, site or None, None)
    return render(
        request, "documents.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if errors else 200,
        documents=[_dated(d) for d in found], kinds=list(DocumentKind), states=documents.STATE_FILTERS,
        kind=kind or "", state=state or "", site=site or "", door=door or "", errors=errors, zone=zone,
    )  # fmt: skip


@router.get("/dashboard/documents/{document_id}", response_class=HTMLResponse)
def document_page(who: Who, request: Request, document_id: str) -> Response:
    """The document as it stands (header, lines) and every version, newest first."""
    try:
        with request.app.state.engine.connect() as conn:
            history = documents.document_history(conn, document_id)
            zone = list_zone(queries_sites.zone_book(conn), history[-1]["site"], None)
            check = reconciliation_store.check_document(conn, document_id, utc_now().date())
            accepted = dock_decisions.acceptances(conn, document_id)
    except NotFound as exc:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such document",
                      detail=str(exc))  # fmt: skip
    versions = [
        {**_dated(v), "changed": changes(history[n - 1] if n else None, v)} for n, v in enumerate(history)
    ][::-1]
    return render(request, "document.html", who, doc=versions[0], versions=versions, zone=zone,
                  rec=reconciliation_out(check, accepted))  # fmt: skip


def _door_view(request: Request, site: str, door: str) -> dict[str, Any]:
    """What the door page shows: the door, the documents worked there now with their reconciliation, the
    last 24 h of items that bound to none; NotFound when the site has no such dock door."""
    now = utc_now()
    end = int(now.timestamp() * 1000)
    with request.app.state.engine.connect() as conn:
        place = reconciliation_store.dock_door(conn, site, door)
        checks = reconciliation_store.door_checks(conn, site, door, now.date())
        recs = [reconciliation_out(c, dock_decisions.acceptances(conn, c.document.id)) for c in checks]
        shown = UNBOUND_SHOWN + 1
        loose = reconciliation_store.unbound_at_door(conn, site, door, end - DAY_MS, end, limit=shown)
        zone = list_zone(queries_sites.zone_book(conn), site, None)
    return {
        "site": site, "door": door, "place": place, "recs": recs,
        "unbound": loose[:UNBOUND_SHOWN], "more": len(loose) > UNBOUND_SHOWN, "now": now, "zone": zone,
    }  # fmt: skip


def _no_door(request: Request, who: Who, exc: NotFound) -> Response:
    return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such dock door",
                  detail=str(exc))  # fmt: skip


@router.get("/dashboard/dock/{site}/{door}", response_class=HTMLResponse)
def dock_page(who: Who, request: Request, site: Name, door: Name) -> Response:
    """A dock door: the documents being worked there (lines filling, discrepancies), refreshed live, and
    the items of the last 24 h that fit no document."""
    try:
        view = _door_view(request, site, door)
    except NotFound as exc:
        return _no_door(request, who, exc)
    live = f"/dashboard/dock/{quote(site, safe='')}/{quote(door, safe='')}/live"
    return render(request, "dock.html", who, **view, live=live, refresh_s=REFRESH_S)


@router.get("/dashboard/dock/{site}/{door}/live", response_class=HTMLResponse)
def dock_live(who: Who, request: Request, site: Name, door: Name) -> Response:
    """The part of the door page htmx swaps in every few seconds."""
    try:
        view = _door_view(request, site, door)
    except NotFound as exc:
        return _no_door(request, who, exc)
    return render(request, "_dock_body.html", who, **view)
