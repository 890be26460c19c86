"""The gateways page (registry, last status, streams, enrolments, refused ids, dead letters) and the
users page (admins: add, disable, unlock, roles), on ``pages``' helpers.

The users page changes people through the same functions as the API and the
CLI (``cloud.identity.users``), each change one transaction with its audit
entry; every form carries the session's CSRF token, which ``authorize``
checks before the route runs.  A refused change re-renders the page with the
refusal (which names the field) and changes nothing; a done one redirects
back (POST, redirect, GET), so a reload does not repeat it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api import queries, queries_downlink, queries_refusals, queries_sites
from coldgate.cloud.api.auth import AuthSettings
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.downlink.currency import Currency
from coldgate.cloud.identity import users
from coldgate.cloud.identity.roles import ROLES
from coldgate.cloud.web.pages import Who, render
from coldgate.cloud.web.times import local_time

__all__ = ["downlink_words", "router"]

router = APIRouter(include_in_schema=False)
_DEAD_LETTERS_SHOWN = 20
#: The documents as the people at the door name them.
DOCUMENTS = {"master": "master data", "recall": "recall list"}


def downlink_words(c: Currency, zone: str) -> str:
    """Where one gateway stands with one document, in a line: "recall list v3 in force", "behind since
    2026-12-06 12:03 +01:00 (v3 published, v2 in force)", "rejected: ..." (since when and what was
    published, so whoever reads it knows how long the door has run on the old list)."""
    name = DOCUMENTS.get(c.kind, c.kind)
    since = f" since {local_time(c.since, zone, seconds=False)}" if c.since is not None else ""
    if c.state == "current":
        return f"{name} v{c.applied} in force"
    if c.state == "behind":
        return f"behind{since} ({c.detail})"
    if c.state == "rejected":
        in_force = f"v{c.applied} in force" if c.applied else "none in force"
        return f"{c.detail} (v{c.published} published{since}, {in_force})"
    if c.state == "not reported":
        waiting = f" (waiting{since})" if since else ""
        return f"not reported: {c.detail}{waiting}"
    return f"{name}: {c.detail}"


def _downlink_by_gateway(currencies: list[Currency]) -> tuple[dict[str, list[Currency]], list[str]]:
    """Each enrolled gateway's documents, in the order ``downlink_state`` gives (gateway, then kind), for
    the gateways anything was published to; and the names of the others, said in one line rather than a
    row each of "nothing published yet"."""
    grouped: dict[str, list[Currency]] = {}
    for c in currencies:
        grouped.setdefault(c.gateway, []).append(c)
    bare = [name for name, docs in grouped.items() if all(c.state == "none published" for c in docs)]
    return {name: docs for name, docs in grouped.items() if name not in bare}, bare


@router.get("/dashboard/gateways", response_class=HTMLResponse)
def gateways_page(who: Who, request: Request) -> Response:
    """Every gateway as the cloud last heard it, which published documents each enrolled one has in
    force (a recall that never reached the door stops nothing), the enrolments, and what ingest refused."""
    with request.app.state.engine.connect() as conn:
        gateways = queries.gateways(conn)
        downlink, unpublished = _downlink_by_gateway(queries_downlink.downlink_state(conn))
        enrolments = queries_refusals.enrolments(conn).items
        unknown = queries_refusals.unknown_gateways(conn, limit=50).items
        dead = (
            queries.dead_letters(conn, None, _DEAD_LETTERS_SHOWN)
            if "dead_letters.read" in who.permissions
            else []
        )
        zones = queries_sites.zone_book(conn)
    return render(request, "gateways.html", who, gateways=gateways, enrolments=enrolments, unknown=unknown,
                  dead=dead, dead_shown=_DEAD_LETTERS_SHOWN, zones=zones, downlink=downlink,
                  unpublished=unpublished, documents=DOCUMENTS, downlink_words=downlink_words)  # fmt: skip


def _users_page(request: Request, who: Who, *, error: str | None = None, done: str | None = None,
                status_code: int = 200) -> Response:  # fmt: skip
    with request.app.state.engine.connect() as conn:
        found = users.list_users(conn)
    return render(request, "users.html", who, status_code, users=found, roles=list(ROLES), error=error,
                  done=done)  # fmt: skip


@router.get("/dashboard/users", response_class=HTMLResponse)
def users_page(who: Who, request: Request, done: str | None = None) -> Response:
    return _users_page(request, who, done=done[:200] if done else None)


def _back(done: str) -> Response:
    return RedirectResponse("/dashboard/users?" + urlencode({"done": done}), status.HTTP_303_SEE_OTHER)


Text = Annotated[str, Form(max_length=400)]


@router.post("/dashboard/users", response_class=HTMLResponse)
def add_user_form(
    who: Who, request: Request, login: Text = "", printed_name: Text = "", email: Text = "",
    phone: Text = "", password: Annotated[str, Form(max_length=4096)] = "",
    roles: Annotated[list[str] | None, Form(max_length=16)] = None,
) -> Response:  # fmt: skip
    settings: AuthSettings = request.app.state.auth
    try:
        with writing(request) as conn:
            users.add_user(
                conn, login=login, printed_name=printed_name, email=email, phone=phone or None,
                password=password, roles=roles or [], by=acting(request), now=utc_now(),
                min_length=settings.password_min_length,
            )  # fmt: skip
    except users.UserInputError as exc:
        return _users_page(request, who, error=str(exc), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return _back(f"added {login.strip().lower()}")


@router.post("/dashboard/users/{login}/{change}", response_class=HTMLResponse)
def change_user_form(
    who: Who, request: Request, login: str, change: str,
    roles: Annotated[list[str] | None, Form(max_length=16)] = None,
) -> Response:  # fmt: skip
    """``change`` is disable, unlock or roles; anything else is a 404 page."""
    actions = {
        "disable": lambda conn: users.disable_user(conn, login, by=acting(request), now=utc_now()),
        "unlock": lambda conn: users.unlock_user(conn, login, by=acting(request), now=utc_now()),
        "roles": lambda conn: users.set_roles(conn, login, roles or [], by=acting(request), now=utc_now()),
    }
    if change not in actions:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such change",
                      detail=f"{change!r} is none of {', '.join(actions)}")  # fmt: skip
    try:
        with writing(request) as conn:
            actions[change](conn)
    except users.NotFound as exc:
        return _users_page(request, who, error=str(exc), status_code=status.HTTP_404_NOT_FOUND)
    except users.UserInputError as exc:
        return _users_page(request, who, error=str(exc), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return _back(f"{change} {login}")
