"""The topology page: for each enrolled gateway, its configuration set against the cloud's placements,
device by device (agreeing, proposed with the location's name, unplaced, drift, gone) and zone by zone,
and for those who may manage the catalog, a form accepting the ticked proposals with a reason.

Read and written through ``queries_topology``, as ``GET /gateways/{gateway}/topology`` and its accept
route are, so the page never shows or does what the API would not: the accepted placements are made
by ``placements.place`` in one transaction, each audited with the reason.  A refused acceptance
re-renders the page with the refusal and changes nothing; a done one redirects back (POST, redirect,
GET), so a reload does not repeat it.  Gateways with nothing to compare (no status yet, or software
that does not report its topology) are named in one line, not a table each: on a site with thirty
gateways the ones that need a person must not drown.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api import queries_sites, queries_topology
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.catalog.topology import DEVICE_STATES
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.web.pages import Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
#: The states as the page's counts and badges say them.
STATE_WORDS = {"agreeing": "agreeing", "proposed": "proposed", "unplaced": "not placed", "drift": "drift",
               "gone": "gone", "located": "located", "unlocated": "no location"}  # fmt: skip
Gateway = Annotated[str | None, Query(max_length=64)]


def _page(
    request: Request, who: Who, gateway: str | None, *, error: str | None = None, done: str | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    now_ms = int(time.time() * 1000)
    try:
        with request.app.state.engine.connect() as conn:
            if gateway:
                reports = [queries_topology.topology_report(conn, gateway, now_ms)]
            else:
                reports = queries_topology.topology_reports(conn, now_ms)
            zones = queries_sites.zone_book(conn)
    except NotFound as exc:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such gateway",
                      detail=str(exc))  # fmt: skip
    compared = [r for r in reports if r.reported_at is not None]
    silent: dict[str, list[str]] = {}  # why there is nothing to compare -> the gateways it holds for
    for r in reports:
        if r.reported_at is None:
            silent.setdefault(r.note, []).append(r.gateway)
    return render(request, "topology.html", who, status_code, compared=compared, silent=silent, zones=zones,
                  states=DEVICE_STATES, words=STATE_WORDS, gateway=gateway or "", error=error, done=done,
                  may_accept="catalog.manage" in who.permissions)  # fmt: skip


@router.get("/dashboard/topology", response_class=HTMLResponse)
def topology_page(
    who: Who, request: Request, gateway: Gateway = None,
    done: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:  # fmt: skip
    """Every enrolled gateway's findings (``?gateway=`` one of them); an unknown one is a 404 page."""
    return _page(request, who, gateway, done=done)


@router.post("/dashboard/topology/{gateway}/accept", response_class=HTMLResponse)
def accept_form(
    who: Who, request: Request, gateway: str, reason: Annotated[str, Form(max_length=2000)] = "",
    device: Annotated[list[str] | None, Form(max_length=4608)] = None,
) -> Response:  # fmt: skip
    """Place the ticked proposals (``device``: "kind/id" each) of ``gateway``; the page shows why not."""
    if not device:
        return _page(request, who, gateway, error="tick the proposals to accept",
                     status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)  # fmt: skip
    chosen = [(kind, ident) for kind, _, ident in (d.partition("/") for d in device)]
    try:
        with writing(request) as conn:
            made = queries_topology.accept_proposals(
                conn, gateway, chosen, reason=reason, by=acting(request), now=utc_now()
            )
    except NotFound as exc:
        return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such gateway",
                      detail=str(exc))  # fmt: skip
    except UserInputError as exc:
        return _page(request, who, gateway, error=str(exc), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    placed = ", ".join(f"{p['device']} at {p['location']}" for p in made)
    query = urlencode({"gateway": gateway, "done": f"placed {placed}"[:200]})
    return RedirectResponse(f"/dashboard/topology?{query}", status.HTTP_303_SEE_OTHER)
