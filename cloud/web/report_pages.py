"""The reports page (issue 17): the stored GSP reports with their hashes and download links, and the
forms that generate one (monthly record, excursion log, calibration status).

Thin: the same store functions as ``POST /reports/...`` (``periodic_store``), in one transaction with
the audit entry (``writing``).  A refused form (a month that is none, a period ending before it starts,
an unknown location) re-renders the page saying why, with the refusal's status and nothing stored; a
generated report redirects back to the list with it on top (POST, redirect, GET).  Downloads are the
API's ``GET /reports/{id}``: the browser's session is a credential there too.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api.writes import acting, refusal_status, utc_now, writing
from coldgate.cloud.catalog.locations import KEEPING, locations
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.reports import periodic_store
from coldgate.cloud.web.pages import Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Field64 = Annotated[str, Form(max_length=64)]
Short = Annotated[str, Form(max_length=16)]
KIND_NAMES = {
    "monthly_record": "Monthly record",
    "excursion_log": "Excursion log",
    "calibration_status": "Calibration status",
}


def _page(
    request: Request, who: Who, *, error: str = "", status_code: int = 200, kind: str = "", done: str = "",
    asked: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    with request.app.state.engine.connect() as conn:
        reports = periodic_store.list_reports(conn, kind=kind or None)
        rooms = [x for x in locations(conn) if x["kind"] in KEEPING]
    today = utc_now().date()
    last_month = (today.replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    return render(
        request, "reports.html", who, status_code, reports=reports, rooms=rooms,
        sites=sorted({x["site"] for x in rooms}), kinds=KIND_NAMES, kind=kind, error=error, done=done,
        asked=asked or {}, last_month=last_month, today=today.isoformat(),
        month_start=today.replace(day=1).isoformat(),
    )  # fmt: skip


@router.get("/dashboard/reports", response_class=HTMLResponse)
def reports_page(
    who: Who, request: Request, kind: Annotated[str, Query(max_length=32)] = "",
    done: Annotated[str, Query(max_length=64)] = "",
) -> Response:  # fmt: skip
    """The stored reports, newest first, and (for QA) the forms to generate one."""
    return _page(request, who, kind=kind, done=done)


def _generated(request: Request, who: Who, asked: dict[str, str], make: Any) -> Response:
    try:
        with writing(request) as conn:
            meta = make(conn)
    except UserInputError as exc:
        return _page(request, who, error=str(exc), status_code=refusal_status(exc), asked=asked)
    return RedirectResponse(
        "/dashboard/reports?" + urlencode({"done": meta["id"]}), status_code=status.HTTP_303_SEE_OTHER
    )


def _date(field: str, text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UserInputError(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


@router.post("/dashboard/reports/monthly", response_class=HTMLResponse)
def monthly_form(
    who: Who, request: Request, site: Field64 = "", location: Field64 = "", month: Short = "",
    format: Short = "pdf",
) -> Response:  # fmt: skip
    """Generate the monthly record of a location; ``location`` may be "site/location" from the picker."""
    if "/" in location and not site:
        site, location = location.split("/", 1)
    asked = {"form": "monthly", "site": site, "location": location, "month": month}
    return _generated(request, who, asked, lambda conn: periodic_store.generate_monthly(
        conn, site, location, month, format, by=acting(request), now=utc_now()))  # fmt: skip


@router.post("/dashboard/reports/excursions", response_class=HTMLResponse)
def excursions_form(
    who: Who, request: Request, site: Field64 = "", location: Field64 = "", start: Short = "",
    end: Short = "", format: Short = "pdf",
) -> Response:  # fmt: skip
    """Generate the excursion log of a period, for a site's every location or one."""
    if "/" in location:
        site, location = location.split("/", 1)
    asked = {"form": "excursions", "site": site, "location": location, "start": start, "end": end}

    def make(conn: Any) -> dict[str, Any]:
        first, last = _date("start", start), _date("end", end)
        return periodic_store.generate_excursions(conn, site, location or None, first, last, format,
                                                  by=acting(request), now=utc_now())  # fmt: skip

    return _generated(request, who, asked, make)


@router.post("/dashboard/reports/calibration", response_class=HTMLResponse)
def calibration_form(
    who: Who, request: Request, site: Field64 = "", as_of: Short = "", format: Short = "pdf"
) -> Response:
    """Generate the calibration status of every sensor (of a site)."""
    asked = {"form": "calibration", "site": site, "as_of": as_of}

    def make(conn: Any) -> dict[str, Any]:
        today = _date("as_of", as_of) if as_of else None
        return periodic_store.generate_calibration(conn, site or None, today, format, by=acting(request),
                                                   now=utc_now())  # fmt: skip

    return _generated(request, who, asked, make)
