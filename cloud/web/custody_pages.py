"""The custody pages (read-only): a lot's chain, where every unit of it was, from when to when and on
which document, with its stock on hand and the customers who got it; and one pallet's or case's chain.

Read through the same function as the JSON API's custody routes (``custody_store``), in the API's own
shape of a stay (``routes.custody.stay_out``), so a page never shows what the API would not.  A lot of
10,000 cases has some 30,000 stays: the page lists the first ``STAYS_SHOWN`` and says so (the API
gives them all); the stock and the customers are always whole.  Times are in the lot's site's zone
(the shared one when its units were at several sites).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from coldgate.cloud.api import queries_sites
from coldgate.cloud.api.routes.custody import stay_out, unit_kind
from coldgate.cloud.documents import custody_store
from coldgate.cloud.documents.custody import Unit
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import Who, refused_page, render

__all__ = ["STAYS_SHOWN", "lot_href", "router", "unit_href"]

router = APIRouter(include_in_schema=False)
#: Stays a lot's page lists at most.
STAYS_SHOWN = 1000


def unit_href(unit: Unit) -> str | None:
    """The unit's page: a pallet by its SSCC, a case as ``{product}~{serial}`` (the serial escaped as in
    an EPC URI, then for the URL); None for a lot counted by quantity (it has the lot's page)."""
    if unit.sscc is not None:
        return f"/dashboard/units/{unit.sscc}"
    if unit.counted or unit.product is None or unit.serial is None:
        return None
    return "/dashboard/units/" + quote(f"{unit.product}~{quote(unit.serial, safe='')}", safe="~")


def lot_href(product: str, lot: str) -> str:
    return f"/dashboard/lots/{quote(product, safe='')}/{quote(lot, safe='')}/custody"


def _customers(stays: tuple[custody_store.Stay, ...]) -> list[dict[str, Any]]:
    """Who got the lot, and when (what a recall asks first): per party, the units, the quantity, the
    first and last hand-over and the documents, in the order they first got some."""
    found: dict[str, dict[str, Any]] = {}
    for stay in stays:
        if stay.party is None or stay.began_by.what != "dispatch":
            continue
        fresh = {"party": stay.party, "units": 0, "quantity": 0, "first": stay.start, "last": stay.start,
                 "documents": {}}  # fmt: skip
        entry = found.setdefault(stay.party, fresh)
        entry["units"] += 1
        entry["quantity"] += stay.quantity
        entry["first"], entry["last"] = min(entry["first"], stay.start), max(entry["last"], stay.start)
        if stay.began_by.document is not None:
            entry["documents"][stay.began_by.document] = stay.began_by.reference
    return sorted(found.values(), key=lambda e: (e["first"], e["party"]))


def _zone(request: Request, sites: set[str]) -> str:
    with request.app.state.engine.connect() as conn:
        return list_zone(queries_sites.zone_book(conn), next(iter(sites)) if len(sites) == 1 else None, None)


def _rows(stays: tuple[custody_store.Stay, ...]) -> list[dict[str, Any]]:
    return [{**stay_out(s), "href": unit_href(s.unit)} for s in stays]


@router.get("/dashboard/lots/{product}/{lot}/custody", response_class=HTMLResponse)
def lot_custody_page(
    who: Who, request: Request, product: Annotated[str, Path(max_length=64)],
    lot: Annotated[str, Path(max_length=64)],
) -> Response:  # fmt: skip
    """A lot's custody: stock on hand now, who got it, its pallets, and every unit's stays."""
    try:
        with request.app.state.engine.connect() as conn:
            found = custody_store.lot_custody(conn, product, lot)
    except UserInputError as exc:
        return refused_page(request, who, exc, "No such lot")
    zone = _zone(request, {s.site for s in found.stays})
    shown = found.stays[:STAYS_SHOWN]
    return render(
        request, "custody_lot.html", who, custody=found, zone=zone, stays=_rows(shown),
        total=len(found.stays),
        customers=_customers(found.stays), pallets=[(p, f"/dashboard/units/{p}") for p in found.pallets],
        api=f"/lots/{quote(found.product, safe='')}/{quote(found.lot, safe='')}/custody",
    )  # fmt: skip


@router.get("/dashboard/units/{unit_id}", response_class=HTMLResponse)
def unit_custody_page(who: Who, request: Request, unit_id: Annotated[str, Path(max_length=200)]) -> Response:
    """One pallet's or case's custody: every stay, from receipt to the customer."""
    try:
        with request.app.state.engine.connect() as conn:
            found = custody_store.unit_custody(conn, unit_id)
    except UserInputError as exc:
        return refused_page(request, who, exc, "No such unit")
    unit = found.unit
    zone = _zone(request, {s.site for s in found.stays})
    lot_page = lot_href(unit.product, unit.lot) if unit.product and unit.lot else None
    return render(
        request, "custody_unit.html", who, custody=found, unit=unit, kind=unit_kind(unit), zone=zone,
        stays=_rows(found.stays), lot_page=lot_page, api=f"/units/{quote(unit_id, safe='')}/custody",
    )  # fmt: skip
