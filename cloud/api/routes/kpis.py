"""The KPIs (issue 17) of a site, per month: ``GET /kpis`` (JSON) and ``GET /kpis.csv``.

Derived on every call from the records (``kpi_store``); nothing is stored, so there is nothing to
correct by hand.  ``from`` and ``to`` are months (``YYYY-MM``, UTC, both included; by default the six
months up to this one); a month that is none or a period ending before it starts is a 422 naming the
field, an unknown site a 404.  Read with ``alerts.read``: every role that reads the records the KPIs
summarise (a QA manager judging response times, a warehouse manager judging receiving and monitoring).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from coldgate.cloud.api.writes import utc_now
from coldgate.cloud.reports import kpi_store, kpis

__all__ = ["default_period", "router"]

router = APIRouter(tags=["kpis"])
Site = Annotated[str, Query(min_length=1, max_length=64, description="The site's id.")]
MonthQuery = Annotated[
    str | None, Query(max_length=16, description="A month, YYYY-MM (UTC), or an epoch ms: its month.")
]
ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such site."},
    422: {"description": "A month that is none, or a period ending before it starts or over 36 months."},
}


def default_period(first: str | None, last: str | None) -> tuple[str, str]:
    """The period asked, by default the six months up to this one (or up to ``last``)."""
    if last is None:
        last = utc_now().strftime("%Y-%m")
    if first is None:
        try:
            ending = kpis.months(last, last)[0].name
        except ValueError:
            return last, last  # the store names what is wrong with it
        year, month = int(ending[:4]), int(ending[5:7])
        index = year * 12 + month - 1 - 5
        first = f"{index // 12:04d}-{index % 12 + 1:02d}"
    return first, last


def _report(request: Request, site: str, first: str | None, last: str | None) -> dict[str, Any]:
    first, last = default_period(first, last)
    with request.app.state.engine.connect() as conn:
        return kpi_store.kpi_report(conn, site, first, last, now=utc_now())


@router.get("/kpis", responses=ANSWERS)
def kpi_json(
    request: Request, site: Site,
    first: Annotated[MonthQuery, Query(alias="from")] = None,
    last: Annotated[MonthQuery, Query(alias="to")] = None,
) -> dict[str, Any]:  # fmt: skip
    """Each month's KPIs with their counts: per location monitoring completeness and excursions; QA
    case acknowledgement and disposition times; recall response times; inbound accuracy; and the
    trace completion time as measured now."""
    return _report(request, site, first, last)


@router.get("/kpis.csv", response_class=Response, responses=ANSWERS)
def kpi_csv(
    request: Request, site: Site,
    first: Annotated[MonthQuery, Query(alias="from")] = None,
    last: Annotated[MonthQuery, Query(alias="to")] = None,
) -> Response:  # fmt: skip
    """The same figures as CSV: one row per site, month, KPI and subject, with its unit and count."""
    report = _report(request, site, first, last)
    name = f"kpis-{site}-{report['from']}-{report['to']}.csv".replace('"', "")
    return Response(kpis.kpis_csv(report), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
