"""The dashboard's pages: sign-in, the site overview (refreshed live by htmx), sign-out.

Server-rendered with Jinja2 over the API's query layer (``queries_overview``):
no SQL here, no page-only data.  Each page declares its permission in
``cloud/api/access.py`` (``PAGES``) and passes the same ``authorize`` as the
API; a page asked for without a session sends the browser to the sign-in
page (htmx requests get ``HX-Redirect``, so a partial never swaps a login
form into a tile grid), and a role without the permission gets a 403 page.
Browser libraries are served from the set-up script's ``node_modules``
(npm, pinned in ``package-lock.json``): nothing is fetched from a CDN.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from coldgate.cloud.api import queries, queries_audit, queries_overview
from coldgate.cloud.api.access import check_pages
from coldgate.cloud.api.auth import SESSION_COOKIE, authorize, bearer_scheme, signed_in
from coldgate.cloud.api.input_guard import refuse_unstorable_text
from coldgate.cloud.api.queries_audit import AuditFilter
from coldgate.cloud.api.routes import parse_time
from coldgate.cloud.api.routes.audit import filters as audit_filters
from coldgate.cloud.api.routes.auth import REFUSED
from coldgate.cloud.api.series_stats import series_stats
from coldgate.cloud.api.sign_in import set_session_cookie, sign_in
from coldgate.cloud.api.writes import client_of, request_id_of, utc_now, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.sessions import end_session
from coldgate.cloud.web.chart import chart_data

__all__ = ["VENDOR", "Who", "install", "render"]

HERE = Path(__file__).parent
#: Where ``npm ci`` (scripts/setup.sh) puts the browser libraries of package.json.
VENDOR = HERE.parents[1] / "node_modules"
#: Seconds between the overview's refreshes.
REFRESH_S = 5

templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)


class SignInFirst(Exception):
    """A page asked for without a live session: go to the sign-in page, then come back."""


class PageForbidden(Exception):
    def __init__(self, principal: Principal | None, detail: str) -> None:
        super().__init__(detail)
        self.principal = principal


async def page_gate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
) -> Principal | None:
    """``authorize``, answered as a browser expects: a redirect to sign in, or a 403 page."""
    try:
        return await authorize(request, credentials)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            raise SignInFirst from exc
        raise PageForbidden(getattr(request.state, "principal", None), str(exc.detail)) from exc


Who = Annotated[Principal, Depends(signed_in)]


def _local(ms: int | None) -> str:
    """Epoch ms as the server's local time with its UTC offset (the site's zone comes with master data)."""
    if ms is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(ms / 1000).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


def _ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return ""
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d"


def render(
    request: Request, name: str, who: Principal | None, status_code: int = 200, **context: Any
) -> Response:
    csrf = getattr(request.state, "csrf_token", "")
    return templates.TemplateResponse(
        request, name, {"who": who, "csrf_token": csrf, "local": _local, "ago": _ago, **context},
        status_code=status_code,
    )  # fmt: skip


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", None, next=safe_next(next), error=None)


def safe_next(target: str) -> str:
    """Only a path on this site: not "//evil.example", "/\\evil.example" (browsers read a backslash
    as a slash), "https://..." or anything with a control character: no open redirect."""
    plain = target.startswith("/") and not target.startswith(("//", "/\\")) and len(target) < 512
    return target if plain and target.isprintable() else "/"


@router.post("/login", response_class=HTMLResponse)
def login_form(
    request: Request,
    login: Annotated[str, Form(max_length=256)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    signed = sign_in(request, login, password)
    if signed is None:
        return render(request, "login.html", None, status.HTTP_401_UNAUTHORIZED, next=safe_next(next),
                     error=REFUSED, login=login)  # fmt: skip
    started, _ = signed
    response = RedirectResponse(safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    set_session_cookie(request, response, started)
    return response


@router.post("/logout")
def logout_form(who: Who, request: Request) -> Response:
    """Sign out (the form carries the CSRF token, checked by ``authorize``)."""
    if who.via == "session":
        with writing(request) as conn:
            end_session(conn, request.cookies.get(SESSION_COOKIE, ""), now=utc_now(),
                        client=client_of(request), request_id=request_id_of(request))  # fmt: skip
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _overview(request: Request) -> Any:
    with request.app.state.engine.connect() as conn:
        return queries_overview.overview(conn, site=None, now_ms=int(time.time() * 1000))


@router.get("/", response_class=HTMLResponse)
def overview_page(who: Who, request: Request) -> Response:
    return render(request, "overview.html", who, view=_overview(request), refresh_s=REFRESH_S)


@router.get("/overview/tiles", response_class=HTMLResponse)
def overview_tiles(who: Who, request: Request) -> Response:
    """The part of the overview htmx swaps in every few seconds."""
    return render(request, "_overview_body.html", who, view=_overview(request))


Gateway = Annotated[str | None, Query(max_length=64)]
Shown = Annotated[Literal["open", "all"], Query()]
_LIST_LIMIT = 500


@router.get("/dashboard/alerts", response_class=HTMLResponse)
def alerts_page(
    who: Who, request: Request, state: Shown = "open", gateway: Gateway = None,
    severity: Annotated[Literal["critical", "warning", "info"] | None, Query()] = None,
) -> Response:  # fmt: skip
    """Alerts, open ones (or all, newest first), with the evidence the gateway sent."""
    with request.app.state.engine.connect() as conn:
        found = queries.alerts(conn, gateway or None, state == "open", severity, _LIST_LIMIT)
    found.sort(key=lambda a: (not a.open, -a.updated_at))
    return render(request, "alerts.html", who, alerts=found, state=state, gateway=gateway or "",
                 severity=severity or "", now=int(time.time() * 1000), limit=_LIST_LIMIT)  # fmt: skip


@router.get("/dashboard/gaps", response_class=HTMLResponse)
def gaps_page(who: Who, request: Request, state: Shown = "all", gateway: Gateway = None) -> Response:
    """Every monitoring interruption, open ones first, with its cause and duration."""
    with request.app.state.engine.connect() as conn:
        only_open = True if state == "open" else None
        found = queries.gaps(conn, gateway or None, only_open, None, None, _LIST_LIMIT)
    found.sort(key=lambda g: (not g.open, -g.start))
    return render(request, "gaps.html", who, gaps=found, state=state, gateway=gateway or "",
                 now=int(time.time() * 1000), limit=_LIST_LIMIT)  # fmt: skip


@router.get("/dashboard/audit", response_class=HTMLResponse)
def audit_page(
    who: Who, request: Request, where: Annotated[AuditFilter, Depends(audit_filters)],
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:  # fmt: skip
    """The audit trail, newest first, 100 a page, with the CSV export of the same filters."""
    with request.app.state.engine.connect() as conn:
        total = queries_audit.count(conn, where)
        entries = queries_audit.entries(conn, where, limit=100, offset=offset)
    kept = {k: v for k, v in request.query_params.items() if k != "offset" and v}
    csv_link = "/audit.csv" + (f"?{urlencode(kept)}" if kept else "")
    return render(request, "audit.html", who, entries=entries, total=total, offset=offset, params=kept,
                 csv_link=csv_link)  # fmt: skip


#: The chart's range presets.
RANGES = {"24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000, "1y": 365 * 86_400_000}
#: Points (or min/max buckets) a chart gets: about one per pixel of a wide screen.
CHART_POINTS = 1200


@router.get("/dashboard/sensor", response_class=HTMLResponse)
def sensor_page(
    who: Who, request: Request,
    gateway: Annotated[str, Query(max_length=64)], sensor: Annotated[str, Query(max_length=64)],
    range_: Annotated[Literal["24h", "7d", "30d", "1y"], Query(alias="range")] = "24h",
    end: Annotated[str | None, Query(alias="to", description="The range's end; default now.")] = None,
) -> Response:  # fmt: skip
    """One sensor's history: the chart (min/max envelope, mean, gaps and excursions drawn), the
    range's min, max, mean and MKT, the gaps and alerts in it, and its raw readings as CSV."""
    end_ms = parse_time(end, "to") if end else int(time.time() * 1000)
    start_ms = max(0, end_ms - RANGES[range_])
    with request.app.state.engine.connect() as conn:
        found = [s for s in queries.sensors(conn, gateway, None) if s.id == sensor]
        if not found:
            return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such sensor",
                         detail=f"no sensor {sensor!r} on gateway {gateway!r}")  # fmt: skip
        last = found[0].last_reading
        quantity = last.quantity if last else None
        series = queries.reading_series(conn, gateway, sensor, start_ms, end_ms, CHART_POINTS, quantity)
        gaps = [
            g for g in queries.gaps(conn, gateway, None, start_ms, end_ms, 1000)
            if g.subject == sensor or g.subject_type == "gateway"
        ]  # fmt: skip
        alerts = [
            a for a in queries.alerts(conn, gateway, False, None, 1000)
            if a.subject == sensor and (a.updated_at >= start_ms or a.open) and a.raised_at < end_ms
        ]  # fmt: skip
    stats = series_stats(series, temperature=quantity == "temperature")
    chart = chart_data(series, gaps, alerts, now_ms=int(time.time() * 1000))
    query = urlencode({"from": start_ms, "to": end_ms, **({"quantity": quantity} if quantity else {})})
    return render(
        request, "sensor.html", who, gateway=gateway, sensor=sensor, range_=range_, ranges=RANGES,
        start_ms=start_ms, end_ms=end_ms, series=series, stats=stats, gaps=gaps, alerts=alerts, chart=chart,
        unit=last.unit if last else "", quantity=quantity, now=int(time.time() * 1000),
        csv_link=f"/gateways/{quote(gateway, safe='')}/sensors/{quote(sensor, safe='')}/readings.csv?{query}",
    )  # fmt: skip


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    target = "/login?next=" + quote(request.url.path, safe="/")
    if request.headers.get("HX-Request"):
        return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    return render(request, "forbidden.html", exc.principal, status.HTTP_403_FORBIDDEN, detail=str(exc))


def install(app: FastAPI, routers: tuple[APIRouter, ...]) -> None:
    """Add this module's pages and ``routers``' (other page modules, built on this one's helpers), the
    error pages and the static files to ``app`` (``create_web_app``).  Every page passes ``page_gate``
    first, then the input guard, as every API route does."""
    served: set[tuple[str, str]] = set()
    for pages in (router, *routers):
        app.include_router(pages, dependencies=[Depends(page_gate), Depends(refuse_unstorable_text)])
        served |= {(m, r.path) for r in pages.routes for m in getattr(r, "methods", ()) if m != "HEAD"}
    app.add_exception_handler(SignInFirst, _sign_in_first)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    if (VENDOR / "htmx.org").is_dir():
        app.mount("/vendor", StaticFiles(directory=VENDOR), name="vendor")
    check_pages(served)
