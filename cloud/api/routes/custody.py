"""Custody: where every unit of a lot was, when, and on which document; and one unit's chain
(``documents.read``, like the documents the chain is made from).

The chain is derived from the bound movements and scans (``cloud/documents/custody_store.py``), never
kept by hand, so these routes only read.  Times are given twice: ISO 8601 UTC to the millisecond (what
people and EPCIS read) and epoch ms (what the rest of the API takes and returns).

Paths:

* ``/lots/{gtin}/{lot}/custody``: ``gtin`` is a GTIN of any GS1 length (8, 12, 13 or 14 digits, read as
  the GTIN-14 the catalog keeps) or a catalog product id (HIBC and MA products have no GTIN).
* ``/units/{unit_id}/custody``: ``unit_id`` is an SSCC (18 digits), an SGTIN pure identity URI
  (``urn:epc:id:sgtin:4006381.033393.1000``), ``{gtin}.{serial}`` or ``{product}~{serial}``; a serial
  holding ``/`` or ``%`` is percent-escaped as in an EPC URI, and that again in the URL (``%252F``).

A malformed GTIN, SSCC or unit id is a 422 naming the path parameter and what is wrong; an unknown
product, lot or unit a 404 saying which.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from coldgate.cloud.api.routes import parse_time
from coldgate.cloud.api.routes.windows import TIME_HELP
from coldgate.cloud.documents import custody_store
from coldgate.cloud.documents.custody import Unit
from coldgate.cloud.time_text import iso_ms

__all__ = ["LOT_HELP", "UNIT_HELP", "router", "unit_kind"]

router = APIRouter(tags=["custody"])
GTIN_HELP = "A GTIN (8, 12, 13 or 14 digits) or a catalog product id (HIBC and MA products have no GTIN)."
LOT_HELP = "The lot number (batch) as the catalog and the labels have it."
UNIT_HELP = (
    "An SSCC (18 digits); an SGTIN pure identity URI (urn:epc:id:sgtin:4006381.033393.1000); "
    "{gtin}.{serial} (04006381333931.1000); or {product}~{serial} with the catalog's product id. A serial "
    "holding / or % is percent-escaped as in an EPC URI (%2F, %25), and that again in the URL (%252F)."
)
ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such product, lot or unit."},
    422: {"description": "A malformed GTIN, SSCC or unit id: the path parameter is named, with why."},
}


def unit_kind(unit: Unit) -> str:
    """``pallet``, ``case`` (serialised) or ``lot`` (a quantity of the lot, from unserialised labels)."""
    if unit.sscc is not None:
        return "pallet"
    return "lot" if unit.counted else "case"


class EventOut(BaseModel):
    what: str = Field(description="receipt, put-away, transfer in, transfer out or dispatch.")
    at: str = Field(description="ISO 8601 UTC.")
    at_ms: int
    item: str = Field(description="The movement or scan that recorded it: gateway/stream/seq.")
    item_kind: str = Field(description="movement or scan.")
    site: str
    door: str | None = Field(description="The dock door it passed (None: a put-away scan in a room).")
    document: str | None = Field(description="The document it was bound to (None: a put-away scan).")
    document_kind: str | None
    reference: str | None = Field(description="The document's reference (ship notice, customer order).")


class StayOut(BaseModel):
    unit: str = Field(description="sscc:…, serial:product/serial or lot:product/lot.")
    unit_kind: str = Field(description="pallet, case or lot (a quantity from unserialised labels).")
    product: str | None
    lot: str | None
    serial: str | None
    sscc: str | None
    quantity: int
    site: str
    location: str | None = Field(description="Where it was (None: out of our hands, with party).")
    party: str | None = Field(
        description="Who had it once it left us (a customer, a transfer's destination)."
    )
    start: str = Field(alias="from", description="ISO 8601 UTC.")
    end: str | None = Field(alias="to", description="ISO 8601 UTC; None: still there.")
    from_ms: int
    to_ms: int | None
    began_by: EventOut
    ended_by: EventOut | None


class StockOut(BaseModel):
    site: str
    location: str
    product: str
    lot: str
    status: str | None = Field(description="The lot's status in the catalog (released, quarantined, ...).")
    pallets: int
    cases: int = Field(description="Serialised cases.")
    quantity: int = Field(description="Counted from unserialised labels.")


class LotCustodyOut(BaseModel):
    product: str = Field(description="The catalog's product id.")
    gtin: str | None
    lot: str
    status: str | None = Field(description="The lot's status in the catalog (None: not in the catalog).")
    expiry: str | None
    pallets: list[str] = Field(
        description="SSCCs counted as the lot's: a pallet whose item names the lot, or that a line naming "
        "the lot lists (in its document's latest version)."
    )
    units: int = Field(description="Distinct pallets, cases and counted lots with a chain.")
    stock_at: str | None = Field(description="When stock was taken (None: now, the stays still open).")
    stock: list[StockOut]
    stays: list[StayOut] = Field(description="Every stay of every unit, by unit, then from.")


class UnitCustodyOut(BaseModel):
    unit_id: str = Field(description="As asked.")
    unit: str
    unit_kind: str
    product: str | None
    gtin: str | None
    lot: str | None
    serial: str | None
    sscc: str | None
    status: str | None = Field(description="Its lot's status in the catalog, when the lot is known.")
    stays: list[StayOut]


def _event(event: custody_store.Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {"what": event.what, "at": iso_ms(event.time), "at_ms": event.time, "item": str(event.item),
            "item_kind": event.item_kind, "site": event.site, "door": event.door, "document": event.document,
            "document_kind": event.document_kind, "reference": event.reference}  # fmt: skip


def stay_out(stay: custody_store.Stay) -> dict[str, Any]:
    """A stay as the API says it (the pages show the same fields)."""
    unit = stay.unit
    return {"unit": unit.key, "unit_kind": unit_kind(unit), "product": unit.product, "lot": unit.lot,
            "serial": unit.serial, "sscc": unit.sscc, "quantity": stay.quantity, "site": stay.site,
            "location": stay.location, "party": stay.party, "from": iso_ms(stay.start),
            "to": iso_ms(stay.end), "from_ms": stay.start, "to_ms": stay.end,
            "began_by": _event(stay.began_by), "ended_by": _event(stay.ended_by)}  # fmt: skip


@router.get(
    "/lots/{gtin}/{lot}/custody",
    response_model=LotCustodyOut,
    response_model_by_alias=True,
    responses=ANSWERS,
)
def lot_custody(
    gtin: Annotated[str, Path(max_length=64, description=GTIN_HELP)],
    lot: Annotated[str, Path(max_length=64, description=LOT_HELP)],
    request: Request,
    at: Annotated[
        str | None, Query(description=f"Stock on hand at this time instead of now. {TIME_HELP}")
    ] = None,
) -> Any:
    """Where every unit of the lot was, from when to when, and which event on which document began and
    ended each stay; and the stock on hand per location (now, or ``at``), with the lot's status."""
    when = parse_time(at, "at") if at is not None else None
    with request.app.state.engine.connect() as conn:
        found = custody_store.lot_custody(conn, gtin, lot)
    lot_of = {"product": found.product, "lot": found.lot, "status": found.status}
    stock = found.stock if when is None else custody_store.stock_at(found.stays, when)
    return {**lot_of, "gtin": found.gtin, "expiry": found.expiry, "pallets": list(found.pallets),
            "units": found.units, "stock_at": iso_ms(when),
            "stock": [{**s._asdict(), **lot_of} for s in stock],
            "stays": [stay_out(s) for s in found.stays]}  # fmt: skip


@router.get("/units/{unit_id}/custody", response_model=UnitCustodyOut, response_model_by_alias=True,
            responses=ANSWERS)  # fmt: skip
def unit_custody(
    unit_id: Annotated[str, Path(max_length=200, description=UNIT_HELP)], request: Request
) -> Any:
    """Where one pallet or serialised case was, from when to when, and on which documents."""
    with request.app.state.engine.connect() as conn:
        found = custody_store.unit_custody(conn, unit_id)
    unit = found.unit
    return {"unit_id": unit_id, "unit": unit.key, "unit_kind": unit_kind(unit), "product": unit.product,
            "gtin": found.gtin, "lot": unit.lot, "serial": unit.serial, "sscc": unit.sscc,
            "status": found.status, "stays": [stay_out(s) for s in found.stays]}  # fmt: skip
