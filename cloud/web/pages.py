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

import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Connection

from coldgate.cloud.api import queries, queries_audit, queries_overview, queries_sites
from coldgate.cloud.api.access import check_pages
from coldgate.cloud.api.applied_limits import limit_segments, limits_in_force
from coldgate.cloud.api.auth import SESSION_COOKIE, authorize, bearer_scheme, signed_in
from coldgate.cloud.api.input_guard import refuse_unstorable_text
from coldgate.cloud.api.queries_audit import AuditFilter
from coldgate.cloud.api.queries_limits import class_stays, limit_steps
from coldgate.cloud.api.queries_sites import ZoneBook
from coldgate.cloud.api.routes.audit import filters as audit_filters
from coldgate.cloud.api.routes.auth import REFUSED
from coldgate.cloud.api.series_stats import series_stats
from coldgate.cloud.api.sign_in import set_session_cookie, sign_in
from coldgate.cloud.api.writes import client_of, refusal_status, request_id_of, utc_now, writing
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.placements import placements
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.sessions import end_session
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.time_text import duration
from coldgate.cloud.web.chart import chart_data
from coldgate.cloud.web.list_filters import alert_rows, gap_rows, list_zone, typed_window
from coldgate.cloud.web.ranges import PRESETS, chart_span, form_value
from coldgate.cloud.web.times import RangeError, corrected, local_time

__all__ = ["VENDOR", "Who", "install", "refused_page", "render", "sensor_chart"]

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


#: Unit codes (UN/CEFACT, as the contract sends them) as people write them.
UNITS = {"CEL": "°C", "P1": "% RH", "FAH": "°F"}


def unit_label(code: str | None) -> str:
    return UNITS.get(code or "", code or "")


def _finite(value: object) -> float | None:
    """A number to print, or None (a template may hand over an undefined or a non-number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def bounds(low: object, high: object, unit: str | None) -> str:
    """A pair of limits in words with the unit: "2.0 to 8.0 °C", "not below 2.0 °C", "not above 8.0 °C"."""
    label = unit_label(unit if isinstance(unit, str) else None)
    low, high = _finite(low), _finite(high)
    if low is not None and high is not None:
        return f"{low:.1f} to {high:.1f} {label}".rstrip()
    if low is not None:
        return f"not below {low:.1f} {label}".rstrip()
    if high is not None:
        return f"not above {high:.1f} {label}".rstrip()
    return "—"


def render(
    request: Request, name: str, who: Principal | None, status_code: int = 200, **context: Any
) -> Response:
    """``name`` with the helpers every template may use: ``local(when, zone)`` (a time in a site's zone
    with its offset), ``stamp(ts, ts_corrected, zone)`` (the same, marked when the cloud corrected it),
    ``zones`` (the page's ``ZoneBook``: each row's zone from its site or gateway; UTC if none given)."""
    csrf = getattr(request.state, "csrf_token", "")
    helpers = {"local": local_time, "stamp": corrected, "ago": _ago, "zones": ZoneBook(),
               "unit_label": unit_label, "bounds": bounds}  # fmt: skip
    return templates.TemplateResponse(
        request, name, {"who": who, "csrf_token": csrf, **helpers, **context}, status_code=status_code,
    )  # fmt: skip


def refused_page(request: Request, who: Principal | None, exc: UserInputError, title: str) -> Response:
    """The message page for a refused read (no such lot or unit, a malformed id), with the refusal's
    status (``refusal_status``: 404, 422...) and its message, as every page that reads by id shows it."""
    return render(request, "message.html", who, refusal_status(exc), title=title, detail=str(exc))


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


def _overview(request: Request) -> dict[str, Any]:
    """The overview and its zones; "as of" is in the sites' zone when they share one, else UTC."""
    with request.app.state.engine.connect() as conn:
        view = queries_overview.overview(conn, site=None, now_ms=int(time.time() * 1000))
        zones = queries_sites.zone_book(conn)
    shared = {zones.of_site(s.site) for s in view.sites}
    return {"view": view, "zones": zones, "page_zone": shared.pop() if len(shared) == 1 else "UTC"}


@router.get("/", response_class=HTMLResponse)
def overview_page(who: Who, request: Request) -> Response:
    return render(request, "overview.html", who, **_overview(request), refresh_s=REFRESH_S)


@router.get("/overview/tiles", response_class=HTMLResponse)
def overview_tiles(who: Who, request: Request) -> Response:
    """The part of the overview htmx swaps in every few seconds."""
    return render(request, "_overview_body.html", who, **_overview(request))


Gateway = Annotated[str | None, Query(max_length=64)]
Shown = Annotated[Literal["open", "all"], Query()]
_LIST_LIMIT = 500


Site = Annotated[str | None, Query(max_length=64)]
Rule = Annotated[str | None, Query(max_length=128)]
Severity = Annotated[str | None, Query(max_length=16)]
TypedFrom = Annotated[str | None, Query(alias="from", max_length=64)]
TypedTo = Annotated[str | None, Query(alias="to", max_length=64)]
SEVERITIES = ("critical", "warning", "info")


def _list_window(
    start: str | None, end: str | None, zone: str
) -> tuple[tuple[int | None, int | None], str | None, tuple[str, str]]:
    """The time filter of a list page: (from, to) in epoch ms, the message if it could not be read (the
    list is then shown without it), and the form's values (as typed if refused, else in ``zone``)."""
    try:
        window = typed_window(start, end, zone)
    except RangeError as exc:
        return (None, None), str(exc), (start or "", end or "")
    shown = tuple("" if ms is None else form_value(ms, zone) for ms in window)
    return window, None, (shown[0], shown[1])


@router.get("/dashboard/alerts", response_class=HTMLResponse)
def alerts_page(
    who: Who, request: Request, state: Shown = "open", gateway: Gateway = None, site: Site = None,
    rule: Rule = None, severity: Severity = None, start: TypedFrom = None, end: TypedTo = None,
) -> Response:  # fmt: skip
    """Alerts, open ones first (or closed too), filtered by site, gateway, rule, severity and a time
    typed in the site's zone, each with the evidence the gateway sent and a link to its chart."""
    now = int(time.time() * 1000)
    chosen = severity if severity in SEVERITIES else None
    errors = [] if chosen or not severity else [f"severity: {severity!r} is none of {', '.join(SEVERITIES)}"]
    with request.app.state.engine.connect() as conn:
        zones, sites = queries_sites.zone_book(conn), queries_sites.sites(conn)
        zone = list_zone(zones, site, gateway)
        (start_ms, end_ms), error, typed = _list_window(start, end, zone)
        errors += [error] if error else []
        found = queries.alerts(
            conn, gateway or None, state == "open", chosen, _LIST_LIMIT,
            site=site or None, rule=rule or None, start=start_ms, end=end_ms, open_first=True,
        )  # fmt: skip
        rules = queries.alert_rules(conn)
    return render(
        request, "alerts.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if errors else 200,
        rows=alert_rows(found, now), state=state, gateway=gateway or "", site=site or "", rule=rule or "",
        severity=severity or "", severities=SEVERITIES, sites=sites, rules=rules, zones=zones, zone=zone,
        form_from=typed[0], form_to=typed[1], errors=errors, now=now, limit=_LIST_LIMIT,
        duration=duration,
    )  # fmt: skip


@router.get("/dashboard/gaps", response_class=HTMLResponse)
def gaps_page(
    who: Who, request: Request, state: Shown = "all", gateway: Gateway = None, site: Site = None,
    start: TypedFrom = None, end: TypedTo = None,
) -> Response:  # fmt: skip
    """Every monitoring interruption, open ones first (then newest), with its cause and how long it
    lasted (or has lasted so far), filtered by site, gateway and a time typed in the site's zone."""
    now = int(time.time() * 1000)
    with request.app.state.engine.connect() as conn:
        zones, sites = queries_sites.zone_book(conn), queries_sites.sites(conn)
        zone = list_zone(zones, site, gateway)
        (start_ms, end_ms), error, typed = _list_window(start, end, zone)
        only_open = True if state == "open" else None
        found = queries.gaps(
            conn, gateway or None, only_open, start_ms, end_ms, _LIST_LIMIT, site=site or None
        )
    return render(
        request, "gaps.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
        rows=gap_rows(found, now), state=state, gateway=gateway or "", site=site or "", sites=sites,
        zones=zones, zone=zone, form_from=typed[0], form_to=typed[1], errors=[error] if error else [],
        now=now, limit=_LIST_LIMIT,
    )  # fmt: skip


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


#: Points (or min/max buckets) a chart gets: about one per pixel of a wide screen.
CHART_POINTS = 1200


def sensor_chart(
    conn: Connection, gateway: str, sensor: str, start_ms: int, end_ms: int, *, now_ms: int, last: Any
) -> dict[str, Any]:
    """What a sensor's chart draws over [``start_ms``, ``end_ms``): its series, gaps, alerts, the limits
    of each stretch, the range's statistics and the chart's JSON; for the sensor page and a QA case's
    excursion alike (``last``: the sensor's last reading, whose quantity and unit it is drawn in)."""
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
    steps = limit_steps(conn, gateway=gateway, sensor=sensor, until=end_ms)
    stays = class_stays(conn, gateway, sensor)
    applied = limits_in_force(steps.get((gateway, sensor), ()), end_ms, unit=last.unit if last else None)
    # Each stretch judged by the class of the room the sensor was in then; what the gateway applied
    # where no placement with a class says.
    segments = limit_segments(stays, applied, series["from"], series["to"])
    stats = series_stats(series, temperature=quantity == "temperature")
    chart = chart_data(series, gaps, alerts, now_ms=now_ms, limits=segments)
    return {"series": series, "gaps": gaps, "alerts": alerts, "segments": segments, "stats": stats,
            "chart": chart, "quantity": quantity}  # fmt: skip


@router.get("/dashboard/sensor", response_class=HTMLResponse)
def sensor_page(
    who: Who, request: Request,
    gateway: Annotated[str, Query(max_length=64)], sensor: Annotated[str, Query(max_length=64)],
    range_: Annotated[str, Query(alias="range", max_length=20)] = "24h",
    start: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description="Default now.")] = None,
) -> Response:  # fmt: skip
    """One sensor's history: the chart (min/max envelope, mean, gaps and excursions shaded, alerts
    marked, the limits of the class of the room it was in, else as the gateway applied them), the
    range's min, max, mean and MKT, the gaps and alerts in it, and its raw readings as CSV.  Times are
    in the site's zone; a range the page cannot show is said on the page above the last 24 h."""
    now_ms = int(time.time() * 1000)
    with request.app.state.engine.connect() as conn:
        found = [s for s in queries.sensors(conn, gateway, None) if s.id == sensor]
        if not found:
            return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such sensor",
                         detail=f"no sensor {sensor!r} on gateway {gateway!r}")  # fmt: skip
        zone = queries_sites.zone_book(conn).of_gateway(gateway)
        error = None
        try:
            span = chart_span(range_, start, end, zone, now_ms=now_ms)
        except RangeError as exc:
            error, span = str(exc), chart_span("24h", None, None, zone, now_ms=now_ms)
        last = found[0].last_reading
        quantity = last.quantity if last else None
        drawn = sensor_chart(conn, gateway, sensor, span.start_ms, span.end_ms, now_ms=now_ms, last=last)
        names = {x["id"]: x["name"] for x in locations(conn)}
        where = [
            {**p, "name": names.get(p["location"] or "", p["location"])}
            for p in placements(conn, gateway=gateway, device=sensor) if p["device_kind"] == "sensor"
        ]  # fmt: skip
    series, gaps, alerts, segments = drawn["series"], drawn["gaps"], drawn["alerts"], drawn["segments"]
    stats, chart = drawn["stats"], drawn["chart"]
    asked = {"from": span.start_ms, "to": span.end_ms}
    query = urlencode(asked | ({"quantity": quantity} if quantity else {}))
    # The form shows what was typed when it was refused, else the range drawn (perhaps widened to hours).
    shown = (form_value(series["from"], zone), form_value(series["to"], zone))
    typed = (start or "", end or "") if error else shown
    return render(
        request, "sensor.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if error else 200,
        gateway=gateway, sensor=sensor, span=span, presets=PRESETS, error=error, zone=zone, last=last,
        series=series, stats=stats, gaps=gaps, alerts=alerts, chart=chart, segments=segments,
        placements=where,
        unit=last.unit if last else "", quantity=quantity, now=now_ms, form_from=typed[0], form_to=typed[1],
        csv_link=f"/gateways/{quote(gateway, safe='')}/sensors/{quote(sensor, safe='')}/readings.csv?{query}",
    )  # fmt: skip


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    # The query comes back too: a notification's acknowledge link (``?ack=``) must survive signing in.
    asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login?next=" + quote(asked, safe="/")
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
