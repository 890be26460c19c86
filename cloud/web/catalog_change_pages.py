"""The page of master-data changes and their approval (``/dashboard/catalog/changes``): the changes
awaiting a second person's signed approval (what changed, by whom, when and why, before → after), each
with its signature dialog, and the approved ones with their signatures (printed name, UTC time,
meaning, and whether the audit entry still matches what was signed).

Read through the same store as ``GET /catalog/changes`` (``cloud/catalog/change_approvals.py``); an
approval goes through the API route's own ``approve_change`` (re-authentication, audit of every
refusal), so the form and ``POST /catalog/changes/{seq}/approve`` cannot differ.  A refusal re-renders
the page saying why, nothing changed; a done approval redirects back (POST, redirect, GET).

Its router is included before the catalog's pages: ``/dashboard/catalog/{kind}`` would take "changes"
for a kind otherwise.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api import queries_sites
from coldgate.cloud.api.auth import SESSION_COOKIE
from coldgate.cloud.api.routes.catalog_changes import ApproveBody, approve_change
from coldgate.cloud.api.signing import SignatureBody
from coldgate.cloud.api.writes import refusal_status
from coldgate.cloud.catalog import change_approvals
from coldgate.cloud.catalog.change_approval import PERMISSION, STATES
from coldgate.cloud.identity.sessions import session_key
from coldgate.cloud.identity.signatures import signed_in_session
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
#: Changes a page shows.
PAGE = 50
STATE_NAMES = {"awaiting": "Awaiting approval", "approved": "Approved", "all": "All"}
MEANING = "I approve this master-data change: I reviewed it against its reason and it is right as recorded"


def _page(
    request: Request, who: Who, state: str, offset: int, *, done: str | None = None, error: str | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    assert who is not None
    errors = []
    if state not in STATES:
        errors.append(f"state: {state!r} is none of {', '.join(STATES)}")
        state = "awaiting"
    with request.app.state.engine.connect() as conn:
        found = change_approvals.changes(conn, state=state, limit=PAGE + 1, offset=offset)
        counts = {s: change_approvals.count(conn, state=s) for s in STATES}
        zone = list_zone(queries_sites.zone_book(conn), None, None)
        login_asked = True
        if who.via == "session" and who.user_id:
            key = session_key(request.cookies.get(SESSION_COOKIE, ""))
            login_asked = not signed_in_session(conn, key, who.user_id)
    states = [(key, name, counts[key], "?" + urlencode({"state": key})) for key, name in STATE_NAMES.items()]
    newer = "?" + urlencode({"state": state, "offset": max(offset - PAGE, 0)}) if offset else None
    older = "?" + urlencode({"state": state, "offset": offset + PAGE}) if len(found) > PAGE else None
    if errors and status_code == 200:
        status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    return render(
        request, "catalog_changes.html", who, status_code, changes=found[:PAGE], state=state, states=states,
        newer=newer, older=older, zone=zone, login_asked=login_asked,
        may_approve=PERMISSION in who.permissions, meaning=MEANING, done=done, error=error, errors=errors,
    )  # fmt: skip


@router.get("/dashboard/catalog/changes", response_class=HTMLResponse)
def changes_page(
    who: Who, request: Request, state: Annotated[str, Query(max_length=16)] = "awaiting",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    done: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:  # fmt: skip
    """The master-data changes awaiting approval (or approved, or all), newest first."""
    return _page(request, who, state, offset, done=done)


@router.post("/dashboard/catalog/changes/{seq}/approve", response_class=HTMLResponse)
def approve_form(
    who: Who, request: Request, seq: Annotated[int, Path(ge=1, le=2**62)],
    reason: Annotated[str, Form(max_length=1000)] = "", password: Annotated[str, Form(max_length=1024)] = "",
    login: Annotated[str, Form(max_length=64)] = "", state: Annotated[str, Form(max_length=16)] = "awaiting",
) -> Response:  # fmt: skip
    """Approve the change with the dialog's signature (password, and login when asked)."""
    state = state if state in STATES else "awaiting"
    body = ApproveBody(reason=reason or None, signature=SignatureBody(password=password, login=login or None))
    try:
        approve_change(request, seq, body)
    except UserInputError as exc:
        return _page(request, who, state, 0, error=str(exc), status_code=refusal_status(exc))
    said = f"change {seq} approved, signed by {who.name if who else ''}"
    return RedirectResponse(
        f"/dashboard/catalog/changes?{urlencode({'state': state, 'done': said})}", status.HTTP_303_SEE_OTHER
    )
