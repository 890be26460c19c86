"""Products: read by anyone signed in; a new version by whoever holds ``catalog.manage``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from coldgate.cloud.api.schemas_catalog import ProductBody, ProductOut
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.catalog import products

__all__ = ["router"]

router = APIRouter(prefix="/catalog/products", tags=["catalog"])
ProductId = Annotated[str, Path(max_length=64)]
NOT_FOUND = {404: {"description": "No such product."}}


@router.get("", response_model=list[ProductOut])
def list_products(
    request: Request,
    gtin: Annotated[str | None, Query(max_length=14, description="Only the product of this GTIN-14.")] = None,
    retired: Annotated[bool, Query()] = False,
) -> list[ProductOut]:
    with request.app.state.engine.connect() as conn:
        return [ProductOut(**p) for p in products.products(conn, retired=retired, gtin=gtin)]


@router.get("/{product}", response_model=ProductOut, responses=NOT_FOUND)
def get_product(product: ProductId, request: Request) -> ProductOut:
    with request.app.state.engine.connect() as conn:
        return ProductOut(**products.product(conn, product))


@router.get("/{product}/history", response_model=list[ProductOut], responses=NOT_FOUND)
def product_history(product: ProductId, request: Request) -> list[ProductOut]:
    with request.app.state.engine.connect() as conn:
        return [ProductOut(**p) for p in products.product_history(conn, product)]


@router.put("/{product}", response_model=ProductOut, responses={409: {"description": "if_version is stale."}})
def put_product(product: ProductId, body: ProductBody, request: Request) -> ProductOut:
    """Make the product or add its next version; its identifiers are its own or refused, audited."""
    fields = body.model_dump(exclude={"reason", "if_version", "retired"})
    with writing(request) as conn:
        made = products.put_product(
            conn, product, fields, reason=body.reason, retired=body.retired, if_version=body.if_version,
            by=acting(request), now=utc_now(),
        )  # fmt: skip
    catalog_changed(request)
    return ProductOut(**made)
