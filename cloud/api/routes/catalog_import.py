"""CSV import of products, lots and serials (``catalog.manage``): a whole file, or nothing.

The body is the file itself (``Content-Type: text/csv``, UTF-8, a header row naming the columns, in any
order; an empty cell is no value).  ``?reason=`` says why (kept on every version made and in the one
audit entry of the import, with the file's SHA-256).  200 with the counts; or 422 naming every bad row
(``line`` as a spreadsheet numbers it, the header being line 1), ``column``, ``value`` and ``why``: the
first 100, and how many more (``more``).  Nothing is written unless every row is good.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, status
from fastapi.responses import JSONResponse

from coldgate.cloud.api.schemas_serials import ImportOut
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.catalog.csv_import import import_csv
from coldgate.cloud.catalog.csv_read import ImportRefused

__all__ = ["router"]

router = APIRouter(prefix="/catalog/import", tags=["catalog"])
CsvFile = Annotated[bytes, Body(media_type="text/csv", description="The CSV file, UTF-8, header row first.")]
Reason = Annotated[str, Query(max_length=1000, description="Why the file is imported (audited).")]
ANSWERS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Nothing imported: `detail` lists each bad row (line, column, value, why); `more` "
          "counts those beyond the first 100."},
    409: {"description": "The catalog changed while importing: import the file again."},
}  # fmt: skip


def _import(kind: str, data: bytes, reason: str, request: Request) -> ImportOut | JSONResponse:
    try:
        with writing(request) as conn:
            result = import_csv(conn, kind, data, reason=reason, by=acting(request), now=utc_now())
    except ImportRefused as refused:
        detail = [
            {"type": "value_error", "loc": ["body", e.line, e.column], "msg": e.why, "line": e.line,
             "column": e.column, "value": e.value, "why": e.why}
            for e in refused.errors
        ]  # fmt: skip
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": detail, "more": refused.more, "summary": str(refused).removeprefix("file: ")},
        )
    catalog_changed(request)
    return ImportOut(**dataclasses.asdict(result))


@router.post("/products", response_model=ImportOut, responses=ANSWERS)
def import_products(reason: Reason, request: Request, body: CsvFile = b"") -> Any:
    """Products: columns ``id``, ``name``, ``temperature_class`` (required), ``gtin``, ``hibc_lic``,
    ``hibc_pcn``, ``hibc_uom``, ``ma_id``, ``tor_budget_s`` (seconds), ``serialised`` (true/false, yes/no,
    1/0; empty: false).  A new id makes a product; a stored one gets its next version if a value changed
    (not if retired: that is the API's); the same rules as ``PUT /catalog/products/{product}``."""
    return _import("products", body, reason, request)


@router.post("/lots", response_model=ImportOut, responses=ANSWERS)
def import_lots(reason: Reason, request: Request, body: CsvFile = b"") -> Any:
    """Lots: columns ``product``, ``lot`` (required), ``expiry``, ``manufactured`` (YYYY-MM-DD),
    ``expiry_hour`` (0-23), ``status`` (released, quarantined, recalled, rejected; empty: released).  A
    lot stored with the same values is left as it is; with other values it is refused (a stored lot
    changes through the API, status moves by their own routes)."""
    return _import("lots", body, reason, request)


@router.post("/serials", response_model=ImportOut, responses=ANSWERS)
def import_serials(reason: Reason, request: Request, body: CsvFile = b"") -> Any:
    """Serials: columns ``product``, ``lot``, ``first`` (required), ``last``: one serial per row (``last``
    empty), or a range of numeric serials of one width ``first``..``last``.  The lot must exist and its
    product be serialised; a serial held by another lot, or twice in the file, is refused."""
    return _import("serials", body, reason, request)
