"""Serials of a lot: read by anyone signed in (``catalog.read``), added with ``catalog.manage``.

``GET /catalog/products/{product}/serials/{serial}`` answers which lot a unit belongs to: what a door
check needs for an SGTIN tag, which carries GTIN and serial but no lot.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from coldgate.cloud.api.schemas_serials import LotOfSerialOut, SerialsBody, SerialsOut, SpanOut
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.catalog import serials
from coldgate.cloud.identity.users import NotFound

__all__ = ["router"]

router = APIRouter(prefix="/catalog/products/{product}", tags=["catalog"])
ProductId = Annotated[str, Path(max_length=64)]
LotNumber = Annotated[str, Path(max_length=64)]
Serial = Annotated[str, Path(max_length=64)]
NOT_FOUND = {404: {"description": "No such product, lot or serial."}}


@router.post("/lots/{lot}/serials", response_model=SerialsOut, responses=NOT_FOUND)
def add_serials(product: ProductId, lot: LotNumber, body: SerialsBody, request: Request) -> SerialsOut:
    """Tie serials and numeric ranges to the lot; 422 naming the serial or range and the lot that already
    holds it, if any does (nothing is then added).  Adding exactly what is stored for this lot is a no-op."""
    with writing(request) as conn:
        added = serials.add_serials(
            conn, product, lot, body.serials, [(r.first, r.last) for r in body.ranges],
            reason=body.reason, by=acting(request), now=utc_now(),
        )  # fmt: skip
    catalog_changed(request)
    return SerialsOut(product=product, lot=lot, spans=added["spans"], serials=added["serials"])


@router.get("/lots/{lot}/serials", response_model=list[SpanOut], responses=NOT_FOUND)
def list_serials(product: ProductId, lot: LotNumber, request: Request) -> list[SpanOut]:
    """The lot's serials, adjacent numeric ones collapsed into ranges."""
    with request.app.state.engine.connect() as conn:
        return [SpanOut(**span) for span in serials.lot_serials(conn, product, lot)]


@router.get("/serials/{serial}", response_model=LotOfSerialOut, responses=NOT_FOUND)
def lot_of_serial(product: ProductId, serial: Serial, request: Request) -> LotOfSerialOut:
    """The lot the product's unit ``serial`` belongs to; 404 if no lot holds it."""
    with request.app.state.engine.connect() as conn:
        found = serials.lot_of(conn, product, serial)
    if found is None:
        raise NotFound("serial", f"no lot of product {product!r} holds serial {serial!r}")
    return LotOfSerialOut(product=product, serial=serial, lot=found)
