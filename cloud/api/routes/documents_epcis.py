"""Receiving notes from a supplier's EPCIS 2.0 shipping event (``documents.manage``): one draft per
shipment, whole or nothing; every problem a 422 naming its JSON path in the file
(``cloud/documents/epcis_import.py`` says what is mapped, refused and ignored)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.documents.epcis_import import EpcisRefused
from coldgate.cloud.documents.epcis_receiving import import_epcis

__all__ = ["router"]

router = APIRouter(tags=["documents"])
MEDIA_TYPES = ("application/json", "application/ld+json", "")


class EpcisImportOut(BaseModel):
    sha256: str = Field(description="SHA-256 of the EPCIS document as received (also in the audit entry).")
    documents: int
    lines: int
    ids: list[str] = Field(description="The draft receiving notes made, one per shipment.")
    references: list[str] = Field(description="Their references (the despatch advice, else the order).")


async def _raw(request: Request) -> bytes:
    return await request.body()


def _refusal(problems: list[dict[str, Any]], more: int, summary: str) -> JSONResponse:
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={"detail": problems, "more": more, "summary": summary},
    )


@router.post(
    "/documents/import/epcis",
    response_model=EpcisImportOut,
    responses={
        422: {"description": "Nothing made: `detail` lists each problem (path in the file, value, why)."},
        409: {"description": "A note was made meanwhile with a reference of the file: send it again."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/ld+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
def import_epcis_shipment(
    request: Request,
    site: Annotated[str, Query(max_length=64, description="The site whose dock receives the shipment.")],
    data: Annotated[bytes, Depends(_raw)],
    reason: Annotated[
        str | None,
        Query(max_length=1000, description='Audited; default "EPCIS shipping event from <party>".'),
    ] = None,
) -> Any:
    """Draft receiving notes from an EPCIS 2.0 JSON/JSON-LD document (an ``EPCISDocument``, or one event)
    a supplier sent: one per shipment (ObjectEvent/AggregationEvent with bizStep ``shipping``), referenced
    by its despatch advice (``desadv``, else ``po``), the party its ``owning_party`` source, lines per
    product and lot from SGTIN EPCs, SSCCs (their aggregations) and LGTIN quantities."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in MEDIA_TYPES:
        why = f"{media_type!r}: send application/ld+json or application/json"
        problem = {"type": "value_error", "loc": ["body", "content-type"], "msg": why, "path": "content-type",
                   "value": media_type, "why": why}  # fmt: skip
        return _refusal([problem], 0, why)
    try:
        with writing(request) as conn:
            result = import_epcis(conn, data, site=site, reason=reason, by=acting(request), now=utc_now())
    except EpcisRefused as refused:
        detail = [
            {"type": "value_error", "loc": ["body", p.path], "msg": p.why, "path": p.path, "value": p.value,
             "why": p.why}
            for p in refused.problems
        ]  # fmt: skip
        return _refusal(detail, refused.more, str(refused).removeprefix("epcis: "))
    return EpcisImportOut(**dataclasses.asdict(result))
