"""The periodic GSP reports (issue 17): generate one (stored, audited), list what is stored, fetch a file.

* ``POST /reports/monthly``: the monthly temperature and humidity record of a location;
* ``POST /reports/excursions``: the excursion log of a period (one location, or every one of a site);
* ``POST /reports/calibration``: the calibration status of every sensor (of a site);
* ``GET /reports``: the stored reports, newest first; ``GET /reports/{id}`` the file exactly as it was
  generated (its content type, its SHA-256 in ``X-Content-SHA256``); ``GET /reports/{id}/meta``.

Who may: reading the stored reports takes ``alerts.read`` (every role that reads the records: the reports
are made of readings, excursions and their cases, which those roles see already, and an inspector's
escort must be able to hand them over).  Generating one is a write (the file is kept for good, and
audited): ``qa.decide``, held by QA and the QA manager, whose records these are; never the admin's,
the dock's or a viewer's.  A bad month, an unknown location or a period ending before it starts is a 422
or 404 naming the field (``UserInputError``, ``writes.refused``); nothing is stored then.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from coldgate.cloud.api.schemas import utc
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.identity.users import checked_text
from coldgate.cloud.reports import periodic_store

__all__ = ["router"]

router = APIRouter(prefix="/reports", tags=["reports"])
Name = Annotated[str, Field(min_length=1, max_length=64)]
ReportId = Annotated[str, Path(max_length=64)]
Format = Literal["pdf", "csv"]
ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such site, location or report."},
    422: {"description": "A field is not valid: a month that is none, a period ending before it starts."},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonthlyBody(_Body):
    site: Name
    location: Name
    month: str = Field(max_length=16, description="The month, YYYY-MM (UTC).", examples=["2026-11"])
    format: Format = "pdf"


class ExcursionBody(_Body):
    site: Name
    location: Name | None = Field(default=None, description="One location; none: every location of the site.")
    start: datetime.date = Field(description="The period's first day (UTC).")
    end: datetime.date = Field(description="The period's last day (UTC), included.")
    format: Format = "pdf"


class CalibrationBody(_Body):
    site: Name | None = Field(default=None, description="One site's sensors; none: every sensor.")
    as_of: datetime.date | None = Field(default=None, description="The day statuses are judged on; today.")
    format: Format = "pdf"


class StoredReportOut(BaseModel):
    id: str
    kind: str
    site: str | None
    location: str | None
    parameters: dict[str, Any]
    title: str
    filename: str
    content_type: str
    size: int
    sha256: str = Field(description="SHA-256 of the stored file's bytes.")
    generated_at: datetime.datetime
    generated_by: str
    download: str = Field(description="Where the file is: GET it.")


def _named(field: str, value: str) -> str:
    """A site or location of the body, refused (422 naming ``field``) unless it is text a database can
    hold and compare: the reports look it up before judging it, and PostgreSQL refused a NUL there with
    a DataError, so a 500 (found by tests/test_api_schemathesis.py)."""
    return checked_text(field, value, max_len=64)


def _maybe_named(field: str, value: str | None) -> str | None:
    """As ``_named``; None (every one) stays None."""
    return None if value is None else _named(field, value)


def _out(meta: dict[str, Any]) -> StoredReportOut:
    """The stored report's meta as the API shows it; ``generated_at`` in UTC with its zone: SQLite hands
    the stored time back naive, which broke the declared ``date-time`` (RFC 3339 needs the offset)."""
    return StoredReportOut(
        **{**meta, "generated_at": utc(meta["generated_at"])}, download=f"/reports/{meta['id']}"
    )


@router.post(
    "/monthly", response_model=StoredReportOut, status_code=status.HTTP_201_CREATED, responses=ANSWERS
)
def generate_monthly(body: MonthlyBody, request: Request) -> StoredReportOut:
    """Generate and store the monthly record of a location (daily min/max/mean, chart, excursions, gaps)."""
    with writing(request) as conn:
        meta = periodic_store.generate_monthly(
            conn, _named("site", body.site), _named("location", body.location), body.month, body.format,
            by=acting(request), now=utc_now(),
        )  # fmt: skip
    return _out(meta)


@router.post(
    "/excursions", response_model=StoredReportOut, status_code=status.HTTP_201_CREATED, responses=ANSWERS
)
def generate_excursions(body: ExcursionBody, request: Request) -> StoredReportOut:
    """Generate and store the excursion log of a period: start, end, peak, duration, case, disposition."""
    with writing(request) as conn:
        meta = periodic_store.generate_excursions(
            conn, _named("site", body.site), _maybe_named("location", body.location), body.start, body.end,
            body.format, by=acting(request), now=utc_now(),
        )  # fmt: skip
    return _out(meta)


@router.post(
    "/calibration", response_model=StoredReportOut, status_code=status.HTTP_201_CREATED, responses=ANSWERS
)
def generate_calibration(body: CalibrationBody, request: Request) -> StoredReportOut:
    """Generate and store the calibration status of every sensor: ok, due within 30 days, overdue."""
    with writing(request) as conn:
        meta = periodic_store.generate_calibration(
            conn, _maybe_named("site", body.site), body.as_of, body.format, by=acting(request), now=utc_now()
        )
    return _out(meta)


@router.get("", response_model=list[StoredReportOut])
def list_reports(
    request: Request,
    kind: Annotated[
        str | None, Query(max_length=32, description="monthly_record, excursion_log, ...")
    ] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[StoredReportOut]:
    """The stored reports, newest first."""
    with request.app.state.engine.connect() as conn:
        found = periodic_store.list_reports(conn, kind=kind, site=site, location=location, limit=limit)
    return [_out(meta) for meta in found]


@router.get(
    "/{report_id}",
    responses={
        200: {"content": {"application/pdf": {}, "text/csv": {}}, "description": "The stored file."},
        404: ANSWERS[404],
    },
    response_class=Response,
)
def report_file(report_id: ReportId, request: Request) -> Response:
    """The stored file, byte for byte as generated, with its content type and SHA-256."""
    with request.app.state.engine.connect() as conn:
        meta, body = periodic_store.report_file(conn, report_id)
    filename = meta["filename"].replace('"', "")
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-SHA256": meta["sha256"],
    }
    return Response(body, media_type=meta["content_type"], headers=headers)


@router.get("/{report_id}/meta", response_model=StoredReportOut, responses={404: ANSWERS[404]})
def report_meta(report_id: ReportId, request: Request) -> StoredReportOut:
    with request.app.state.engine.connect() as conn:
        return _out(periodic_store.report_meta(conn, report_id))
