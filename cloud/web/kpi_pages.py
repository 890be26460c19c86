"""The KPI page (issue 17): each KPI of a site by month, as a table with its counts and a small trend
chart (inline SVG from ``svg_chart``, so the page loads nothing from outside the cloud).

Thin: the same ``kpi_store.kpi_report`` as ``GET /kpis``.  A bad period or an unknown site re-renders
the page saying why, with the refusal's status (422 or 404), and no figures.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from coldgate.cloud.api.routes.kpis import default_period
from coldgate.cloud.api.writes import refusal_status, utc_now
from coldgate.cloud.catalog.locations import KEEPING, locations
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.reports import kpi_store
from coldgate.cloud.reports.svg_chart import svg_chart
from coldgate.cloud.web.pages import Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Text16 = Annotated[str, Query(max_length=16)]


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _chart(report: dict[str, Any], series: dict[str, list[float | None]], unit: str, title: str) -> str:
    """One trend chart: a point per month (at its middle), a line per series."""
    months = report["months"]
    start, end = months[0]["from"], months[-1]["to"]
    points = {
        label: [((m["from"] + m["to"]) // 2, v) for m, v in zip(months, values, strict=True)]
        for label, values in series.items()
    }
    return svg_chart(points, start_ms=start, end_ms=end, unit=unit, title=title, width=720, height=220,
                     max_gap_ms=end - start)  # fmt: skip


def charts(report: dict[str, Any]) -> dict[str, str]:
    """The page's trend charts, by KPI."""
    months = report["months"]
    rooms = [p["location"] for p in months[0]["locations"]] if months else []

    def per_room(figure: Any) -> dict[str, list[float | None]]:
        """A series per location: ``figure`` of its row in each month."""
        return {
            room: [figure(next(p for p in m["locations"] if p["location"] == room)) for m in months]
            for room in rooms
        }

    return {
        "monitoring": _chart(
            report, per_room(lambda p: p["monitoring"]["percent"]), "%", "Monitoring completeness"
        ),
        "excursions": _chart(report, per_room(lambda p: p["excursions"]), "", "Excursions"),
        "cases": _chart(
            report,
            {
                "acknowledgement (median)": [
                    _minutes(m["cases"]["acknowledgement"]["median_s"]) for m in months
                ],
                "disposition (median)": [_minutes(m["cases"]["disposition"]["median_s"]) for m in months],
            },
            "min",
            "QA case times",
        ),
        "recalls": _chart(
            report,
            {
                "to all notified": [_minutes(m["recalls"]["to_notified"]["median_s"]) for m in months],
                "to all blocked": [_minutes(m["recalls"]["to_blocked"]["median_s"]) for m in months],
            },
            "min",
            "Recall response (median)",
        ),
        "inbound": _chart(
            report,
            {"without discrepancy": [m["inbound"]["percent"] for m in months]},
            "%",
            "Inbound accuracy",
        ),
    }


@router.get("/dashboard/kpis", response_class=HTMLResponse)
def kpi_page(
    who: Who, request: Request, site: Annotated[str, Query(max_length=64)] = "",
    first: Annotated[str | None, Query(alias="from", max_length=16)] = None,
    last: Annotated[str | None, Query(alias="to", max_length=16)] = None,
) -> Response:  # fmt: skip
    """A site's KPIs by month over a period (by default the six months up to this one)."""
    with request.app.state.engine.connect() as conn:
        sites = sorted({x["site"] for x in locations(conn) if x["kind"] in KEEPING})
        site = site or (sites[0] if sites else "")
        first, last = default_period(first or None, last or None)
        asked = {"site": site, "from": first, "to": last}
        if not site:
            return render(request, "kpis.html", who, sites=sites, asked=asked, report=None, charts={},
                          error="no site has a storage location yet")  # fmt: skip
        try:
            report = kpi_store.kpi_report(conn, site, first, last, now=utc_now())
        except UserInputError as exc:
            return render(request, "kpis.html", who, refusal_status(exc), sites=sites, asked=asked,
                          report=None, charts={}, error=str(exc))  # fmt: skip
    return render(request, "kpis.html", who, sites=sites, asked=asked, report=report, charts=charts(report),
                  error="")  # fmt: skip
