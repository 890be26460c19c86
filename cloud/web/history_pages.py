"""The environmental history pages of a lot and of one pallet or case: what the PDF prints, in the browser,
with the downloads (PDF, CSV, EPCIS 2.0, JSON) beside it.

Read through the same functions as the API's history routes (``history_store`` and ``history_json``),
and shown through the same template body as the PDF (``_history_body.html``), so the page, the PDF and
the JSON never disagree.  Times are UTC, as the printed report's.
"""

from __future__ import annotations

import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.reports import history_store
from coldgate.cloud.reports.batch_history import History
from coldgate.cloud.reports.history_json import history_content
from coldgate.cloud.reports.history_pdf import chart_svgs, duration, when
from coldgate.cloud.web.pages import Who, refused_page, render

__all__ = ["lot_history_href", "router"]

router = APIRouter(include_in_schema=False)


def lot_history_href(product: str, lot: str) -> str:
    return f"/dashboard/lots/{quote(product, safe='')}/{quote(lot, safe='')}/history"


def _now_ms() -> int:
    return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)


def _page(request: Request, who: Who, history: History, api: str, **links: str | None) -> Response:
    return render(request, "history.html", who, h=history_content(history), charts=chart_svgs(history),
                  when=when, duration=duration, api=api, **links)  # fmt: skip


@router.get("/dashboard/lots/{product}/{lot}/history", response_class=HTMLResponse)
def lot_history_page(
    who: Who, request: Request, product: Annotated[str, Path(max_length=64)],
    lot: Annotated[str, Path(max_length=64)],
) -> Response:  # fmt: skip
    """Where every unit of the lot was and what it experienced there, up to now."""
    try:
        with request.app.state.engine.connect() as conn:
            history = history_store.lot_history(conn, product, lot, as_of=_now_ms())
    except UserInputError as exc:
        return refused_page(request, who, exc, "No such lot")
    api = f"/lots/{quote(product, safe='')}/{quote(lot, safe='')}/history"
    custody = f"/dashboard/lots/{quote(product, safe='')}/{quote(lot, safe='')}/custody"
    return _page(request, who, history, api, epcis=f"{api}.epcis.json", custody_page=custody)


@router.get("/dashboard/units/{unit_id}/history", response_class=HTMLResponse)
def unit_history_page(who: Who, request: Request, unit_id: Annotated[str, Path(max_length=200)]) -> Response:
    """One pallet's or case's history."""
    try:
        with request.app.state.engine.connect() as conn:
            history = history_store.unit_history(conn, unit_id, as_of=_now_ms())
    except UserInputError as exc:
        return refused_page(request, who, exc, "No such unit")
    api = f"/units/{quote(unit_id, safe='')}/history"
    return _page(request, who, history, api, custody_page=f"/dashboard/units/{quote(unit_id, safe='')}")
