"""The documents pages: receiving notes, dispatch orders and transfers as they stand, with filters, one
document with its lines, its reconciliation and every version (who, when, why, what changed), and a dock
door's page: the documents being worked there, live, and what bound to none.

What the dock and QA do there goes through the same store functions as the API's routes, in one
audited transaction each: a dock operator (``documents.manage``) releases a draft to the door, starts
and completes what is worked there and assigns an unbound item; QA (``qa.decide``) accepts a
discrepancy with a reason on the document's page, signing it (21 CFR Part 11) in a dialog as a QA case's
closing is signed: the password always, the login too at the session's first signature.  The forms sit
outside the part htmx refreshes, so a reason being typed is never wiped; a refusal re-renders the page
saying why, nothing changed; a done change redirects back (POST, redirect, GET), so a reload does not
repeat it.

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
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api import queries, queries_sites
from coldgate.cloud.api.auth import SESSION_COOKIE
from coldgate.cloud.api.routes.dock import DAY_MS
from coldgate.cloud.api.routes.documents import accept_signed, reconciliation_out
from coldgate.cloud.api.signing import SignatureBody
from coldgate.cloud.api.writes import acting, refusal_status, utc_now, writing
from coldgate.cloud.documents import dock_decisions, documents, moves, reconciliation_store
from coldgate.cloud.documents.model import DocumentKind, DocumentState
from coldgate.cloud.identity.sessions import session_key
from coldgate.cloud.identity.signatures import signed_in_session
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import REFRESH_S, Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Filter = Annotated[str | None, Query(max_length=64)]
Reason = Annotated[str, Form(max_length=2000)]
Said = Annotated[str | None, Query(max_length=300)]
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
def document_page(who: Who, request: Request, document_id: str, done: Said = None) -> Response:
    """The document as it stands (header, lines) and every version, newest first."""
    return _document_page(request, who, document_id, done=done)


def _document_page(
    request: Request, who: Who, document_id: str, *, done: str | None = None, error: str | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    try:
        with request.app.state.engine.connect() as conn:
            history = documents.document_history(conn, document_id)
            zone = list_zone(queries_sites.zone_book(conn), history[-1]["site"], None)
            check = reconciliation_store.check_document(conn, document_id, utc_now())
            accepted = dock_decisions.acceptances(conn, document_id)
            login_asked = True
            if who.via == "session" and who.user_id:
                key = session_key(request.cookies.get(SESSION_COOKIE, ""))
                login_asked = not signed_in_session(conn, key, who.user_id)
    except NotFound as exc:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such document",
                      detail=str(exc))  # fmt: skip
    versions = [
        {**_dated(v), "changed": changes(history[n - 1] if n else None, v)} for n, v in enumerate(history)
    ][::-1]
    return render(request, "document.html", who, status_code, doc=versions[0], versions=versions, zone=zone,
                  rec=reconciliation_out(check, accepted), decide="qa.decide" in who.permissions, done=done,
                  error=error, login_asked=login_asked)  # fmt: skip


@router.post("/dashboard/documents/{document_id}/accept", response_class=HTMLResponse)
def accept_form(
    who: Who, request: Request, document_id: Name, key: Annotated[str, Form(max_length=200)] = "",
    reason: Reason = "", password: Annotated[str, Form(max_length=1024)] = "",
    login: Annotated[str, Form(max_length=64)] = "",
) -> Response:  # fmt: skip
    """QA accepts one discrepancy of the document with the reason, signed (``qa.decide``): the dialog's
    password, and login when asked, re-authenticate them as the API's route does."""
    if not password:
        unsigned = UserInputError("signature", "an acceptance is signed: give your password (and your login "
                                  "at your first signature in a session)")  # fmt: skip
        return _document_page(request, who, document_id, error=str(unsigned), status_code=422)
    signature = SignatureBody(password=password, login=login or None)
    try:
        done = accept_signed(request, document_id, key, reason, signature)
    except UserInputError as exc:
        return _document_page(request, who, document_id, error=str(exc), status_code=refusal_status(exc))
    said = f"accepted and signed: {done['summary']}"[:300]
    url = f"/dashboard/documents/{quote(document_id, safe='')}?{urlencode({'done': said})}"
    return RedirectResponse(url, status.HTTP_303_SEE_OTHER)


def _door_actions(request: Request, who: Who, site: str) -> dict[str, Any]:
    """What the door page's forms offer a dock operator: the site's drafts to release here, the
    documents worked here to start or complete, the unbound items to assign."""
    if "documents.manage" not in who.permissions:
        return {"manage": False}
    with request.app.state.engine.connect() as conn:
        drafts = documents.documents(conn, site=site, state=DocumentState.DRAFT)
    return {"manage": True, "drafts": drafts}


def _door_view(request: Request, site: str, door: str) -> dict[str, Any]:
    """What the door page shows: the door, the documents worked there now with their reconciliation, the
    last 24 h of items that bound to none; NotFound when the site has no such dock door."""
    now = utc_now()
    end = int(now.timestamp() * 1000)
    with request.app.state.engine.connect() as conn:
        place = reconciliation_store.dock_door(conn, site, door)
        checks = reconciliation_store.door_checks(conn, site, door, now)
        recs = [reconciliation_out(c, dock_decisions.acceptances(conn, c.document.id)) for c in checks]
        shown = UNBOUND_SHOWN + 1
        loose = reconciliation_store.unbound_at_door(conn, site, door, end - DAY_MS, end, limit=shown)
        zone = list_zone(queries_sites.zone_book(conn), site, None)
        raised = door_alerts(conn, site, door)
    return {
        "site": site, "door": door, "place": place, "recs": recs, "door_alerts": raised,
        "unbound": loose[:UNBOUND_SHOWN], "more": len(loose) > UNBOUND_SHOWN, "now": now, "zone": zone,
    }  # fmt: skip


#: Alerts shown at most on a door's page (open ones first, the most severe first among those).
DOOR_ALERTS_SHOWN = 100
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def door_alerts(conn: Any, site: str, door: str) -> list[Any]:
    """The open alerts the site's gateways raised about this door (``door.*``: a recalled, quarantined or
    expired item, an unknown product...), most severe first, then newest: why the door's local alarm
    (its stack light, where one is wired) may be on, so the person at the door sees it on this page."""
    found = queries.alerts(conn, None, True, None, DOOR_ALERTS_SHOWN, site=site, open_first=True,
                           about=("door", door))  # fmt: skip
    return sorted(found, key=lambda a: (_SEVERITY_RANK.get(a.severity, 3), -a.raised_at))


def _no_door(request: Request, who: Who, exc: NotFound) -> Response:
    return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such dock door",
                  detail=str(exc))  # fmt: skip


@router.get("/dashboard/dock/{site}/{door}", response_class=HTMLResponse)
def dock_page(who: Who, request: Request, site: Name, door: Name, done: Said = None) -> Response:
    """A dock door: the documents being worked there (lines filling, discrepancies), refreshed live, and
    the items of the last 24 h that fit no document; for a dock operator, the forms that work it."""
    return _dock_page(request, who, site, door, done=done)


def _door_url(site: str, door: str) -> str:
    return f"/dashboard/dock/{quote(site, safe='')}/{quote(door, safe='')}"


def _dock_page(
    request: Request, who: Who, site: str, door: str, *, done: str | None = None, error: str | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    try:
        view = _door_view(request, site, door)
    except NotFound as exc:
        return _no_door(request, who, exc)
    actions = _door_actions(request, who, site)
    live = _door_url(site, door) + "/live"
    return render(request, "dock.html", who, status_code, **view, **actions, live=live, refresh_s=REFRESH_S,
                  done=done, error=error)  # fmt: skip


class _NoDoor(Exception):
    """The door a dock form was posted to is not a dock door of the site (a 404, not the form's error)."""

    def __init__(self, missing: NotFound) -> None:
        super().__init__(str(missing))
        self.missing = missing


def _dock_write(request: Request, who: Who, site: str, door: str, change: Any) -> Response:
    """Run ``change(conn, actor, now)`` in one audited transaction; back to the door page saying what was
    done, or the page again saying why not (nothing changed)."""
    try:
        with writing(request) as conn:
            try:  # the door checked in the write's own transaction: it cannot go between check and write
                reconciliation_store.dock_door(conn, site, door)
            except NotFound as exc:
                raise _NoDoor(exc) from exc
            said = change(conn, acting(request), utc_now())
    except _NoDoor as exc:
        return _no_door(request, who, exc.missing)
    except UserInputError as exc:
        return _dock_page(request, who, site, door, error=str(exc), status_code=refusal_status(exc))
    back = f"{_door_url(site, door)}?{urlencode({'done': said[:300]})}"
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post("/dashboard/dock/{site}/{door}/release", response_class=HTMLResponse)
def release_form(
    who: Who, request: Request, site: Name, door: Name, document: Annotated[str, Form(max_length=64)] = "",
    reason: Reason = "",
) -> Response:  # fmt: skip
    """Release a draft of the site to this door: items here bind to it from now."""

    def change(conn: Any, by: Any, now: datetime.datetime) -> str:
        stands = documents.document(conn, document)
        if stands["site"] != site:
            elsewhere = f"document {document} is of site {stands['site']!r}, not {site!r}"
            raise UserInputError("document", elsewhere)
        moved = moves.move_document(
            conn, document, DocumentState.RELEASED, reason=reason, door=door, by=by, now=now
        )
        return f"{moved['kind']} {moved['reference']} released to {door}"

    return _dock_write(request, who, site, door, change)


#: The moves the door page offers, and the state each leads to.
STEPS = {"start": DocumentState.IN_PROGRESS, "complete": DocumentState.COMPLETED}


@router.post("/dashboard/dock/{site}/{door}/move", response_class=HTMLResponse)
def move_form(
    who: Who, request: Request, site: Name, door: Name, document: Annotated[str, Form(max_length=64)] = "",
    step: Annotated[str, Form(max_length=16)] = "", reason: Reason = "",
) -> Response:  # fmt: skip
    """Start or complete a document worked at this door (completing waits for open discrepancies)."""

    def change(conn: Any, by: Any, now: datetime.datetime) -> str:
        if step not in STEPS:
            raise UserInputError("step", f"{step!r} is no move here ({', '.join(STEPS)})")
        here = {d.id for d in documents.open_at_door(conn, site, door)}
        if document not in here:
            raise UserInputError("document", f"document {document!r} is not being worked at door {door}")
        moved = moves.move_document(conn, document, STEPS[step], reason=reason, by=by, now=now)
        return f"{moved['kind']} {moved['reference']} {moved['state'].replace('_', ' ')}"

    return _dock_write(request, who, site, door, change)


@router.post("/dashboard/dock/{site}/{door}/assign", response_class=HTMLResponse)
def assign_form(
    who: Who, request: Request, site: Name, door: Name, item: Annotated[str, Form(max_length=200)] = "",
    document: Annotated[str, Form(max_length=64)] = "", line: Annotated[str, Form(max_length=9)] = "",
    reason: Reason = "",
) -> Response:  # fmt: skip
    """Assign an item left unbound here (``item``: gateway/stream/seq) to a document worked here."""

    def change(conn: Any, by: Any, now: datetime.datetime) -> str:
        gateway, stream, seq = [*item.split("/"), "", "", ""][:3]
        if not seq.isdigit():
            raise UserInputError("item", f"{item!r} is not an item (gateway/stream/seq)")
        if line and not line.isdigit():
            raise UserInputError("line", f"{line!r} is not a line number")
        fields = {"gateway": gateway, "stream": stream, "seq": int(seq), "document": document,
                  "line": int(line) if line else None}  # fmt: skip
        done = dock_decisions.assign_item(conn, site, door, fields, reason=reason, by=by, now=now)
        return f"item {done['item']} assigned: {done['binding']}"

    return _dock_write(request, who, site, door, change)


@router.get("/dashboard/dock/{site}/{door}/live", response_class=HTMLResponse)
def dock_live(who: Who, request: Request, site: Name, door: Name) -> Response:
    """The part of the door page htmx swaps in every few seconds."""
    try:
        view = _door_view(request, site, door)
    except NotFound as exc:
        return _no_door(request, who, exc)
    return render(request, "_dock_body.html", who, **view)
