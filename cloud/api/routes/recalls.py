"""Recall runs (issue 17): open a recall for lots or serials, read it back with its customer notification
list (JSON, CSV, PDF) and the stock to block, record each customer's notification, acknowledgement and
returns, and close it with an e-signature.

Reading is ``documents.read``, as the custody chain the customer list is derived from (it names the
customers already): QA, the dock and auditors follow a recall as the coordinator runs it.  Every write
is ``recall.run``.  Opening sets the lots recalled and, once committed, sends the gateways their lists
(``catalog_changed``); the rules (who must be notified before closing, what an acknowledgement needs)
are ``cloud/reports/recall.py``'s, the writes ``recall_store``'s.  Closing re-authenticates the signer
first (``cloud/api/signing.py``); a wrong password's count is committed even though the closing is
refused.

Customers are named in the path as the dispatch order names them, percent-decoded once more as a unit
id's serial is (``custody_store``): a name holding ``/`` or ``%`` sends it as ``%252F`` or ``%2525``.

Refusals: 404 an unknown recall, customer, product or lot (named); 409 what the recall's state does not
allow (closed, a customer not notified or not acknowledged at closing, an acknowledgement
before the notification); 422 a bad field, naming it (a GTIN's check digit, a class, a time).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.api.routes import connection, query_error
from coldgate.cloud.api.signing import SignatureBody, signed_write
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.reports import recall_store
from coldgate.cloud.reports.pdf import PDF, content_sha256, footer_text, render_pdf, report_html
from coldgate.cloud.reports.recall import CLASSES, RecallState

__all__ = ["CloseBody", "OpenBody", "close", "router"]

router = APIRouter(tags=["recalls"])
RecallId = Annotated[str, Path(max_length=64, description="The recall's id (recall-...).")]
Customer = Annotated[str, Path(max_length=300, description="The customer as the dispatch order names them.")]
ANSWERS: dict[int | str, dict[str, Any]] = {404: {"description": "No such recall (or customer, lot)."}}
WRITES: dict[int | str, dict[str, Any]] = {
    **ANSWERS,
    409: {"description": "The recall's state does not allow it (the message says why)."},
}
WHEN = "When it happened (ISO 8601 with a zone); default now. Not in the future, not before the recall."


class LotRef(BaseModel):
    product: str = Field(
        max_length=64, description="A GTIN (8, 12, 13 or 14 digits) or a catalog product id."
    )
    lot: str = Field(max_length=64, description="The lot number.")


class OpenBody(BaseModel):
    recall_class: str = Field(max_length=8, description=f"One of {', '.join(CLASSES)} (I: the most serious).")
    reason: str = Field(max_length=1000, description="Why the lots are recalled (the field safety notice).")
    lots: list[LotRef] = Field(default=[], max_length=recall_store.MAX_ITEMS)
    serials: list[str] = Field(
        default=[],
        max_length=recall_store.MAX_ITEMS,
        description="Units by serial: urn:epc:id:sgtin:..., {gtin}.{serial} or {product}~{serial}.",
    )
    initiated_at: datetime.datetime | None = Field(
        default=None,
        description="When the recall was decided (the notice received); default now. Response "
        "times count from it.",
    )


class CustomerEventBody(BaseModel):
    channel: str | None = Field(
        default=None, max_length=32, description="How they were notified (email, phone, letter...)."
    )
    note: str | None = Field(default=None, max_length=1000)
    at: datetime.datetime | None = Field(default=None, description=WHEN)


class ReturnBody(BaseModel):
    customer: str = Field(max_length=300)
    quantity: int = Field(ge=1, le=10_000_000, description="Pallets, cases or units as the lot is counted.")
    product: str | None = Field(
        default=None, max_length=64, description="GTIN or product id (when ambiguous)."
    )
    lot: str | None = Field(
        default=None, max_length=64, description="Needed when the recall has several lots."
    )
    note: str | None = Field(default=None, max_length=1000)
    at: datetime.datetime | None = Field(default=None, description=WHEN)


class CloseBody(BaseModel):
    reason: str = Field(max_length=1000, description="Why the recall is complete.")
    unacknowledged: str | None = Field(
        default=None,
        max_length=1000,
        description="Only when some customers never acknowledged: why the recall closes without them.",
    )
    signature: SignatureBody | None = Field(
        default=None, description="Your password (and login): closing is signed."
    )


class RecallCard(BaseModel):
    id: str
    recall_class: str
    reason: str
    state: RecallState
    initiated_at: datetime.datetime
    opened_at: datetime.datetime
    opened_by: str
    items: list[str]


class RecallList(BaseModel):
    items: list[RecallCard]


class RecallOut(BaseModel):
    id: str
    recall_class: str
    reason: str
    state: RecallState
    initiated_at: datetime.datetime
    opened_at: datetime.datetime
    opened_by: str
    items: list[dict[str, Any]] = Field(description="The lots and serials, each lot's catalog status now.")
    customers: list[dict[str, Any]] = Field(
        description="Every customer who got some: dispatches (document, reference, date, pallets, cases, "
        "quantity), notification, acknowledgement, returns."
    )
    stock: list[dict[str, Any]] = Field(description="Stock still on hand by site and location: to block.")
    events: list[dict[str, Any]]
    signatures: list[dict[str, Any]] = Field(
        description="The closing's signature, checked against the recall."
    )
    closing: dict[str, Any] | None
    response: dict[str, Any] = Field(
        description="When stock was blocked, all customers notified and acknowledged, the recall closed; "
        "each in seconds from initiated_at (to_*_s; null: not yet)."
    )


@router.get("/recalls", response_model=RecallList)
def list_recalls(
    conn: Annotated[Connection, Depends(connection)],
    state: Annotated[str | None, Query(max_length=16, description="open, notifying, closed or all.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RecallList:
    """Recalls, newest opened first."""
    if state not in (None, "all", *RecallState):
        choices = ", ".join(RecallState)
        raise query_error("state", state, f"{state!r} is not a recall state (one of {choices}, or all)")
    found = recall_store.list_recalls(conn, state=state, limit=limit, offset=offset)
    return RecallList(items=[RecallCard(**x) for x in found])


@router.post("/recalls", response_model=RecallOut, status_code=201, responses=WRITES)
def open_recall(body: OpenBody, request: Request) -> RecallOut:
    """Open a recall: its lots are set recalled and the gateways sent their lists."""
    opened = _as_signed_in(
        request, recall_store.open_recall, recall_class=body.recall_class, reason=body.reason,
        lots=[(x.product, x.lot) for x in body.lots], serials=body.serials, initiated_at=body.initiated_at,
    )  # fmt: skip
    catalog_changed(request)
    return RecallOut(**opened)


@router.get("/recalls/{recall_id}", response_model=RecallOut, responses=ANSWERS)
def get_recall(recall_id: RecallId, conn: Annotated[Connection, Depends(connection)]) -> RecallOut:
    """The recall, its customers, the stock to block, what was recorded, and its response times."""
    return RecallOut(**recall_store.recall_detail(conn, recall_id))


@router.get(
    "/recalls/{recall_id}/customers.csv",
    responses={**ANSWERS, 200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
def customers_csv(recall_id: RecallId, conn: Annotated[Connection, Depends(connection)]) -> Response:
    """The customer notification list: a row per customer, dispatch document and lot."""
    text = recall_store.customer_csv(conn, recall_id)
    disposition = f'attachment; filename="{recall_id}-customers.csv"'
    return Response(text, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": disposition})


@router.get(
    "/recalls/{recall_id}/customers.pdf",
    responses={**ANSWERS, 200: {"content": {PDF: {}}}},
    response_class=Response,
)
def customers_pdf(recall_id: RecallId, conn: Annotated[Connection, Depends(connection)]) -> Response:
    """The customer notification list and the stock to block, printed (A4, the content's SHA-256 in the
    footer: the same list gives the same hash whenever it is printed)."""
    recall = recall_store.recall_detail(conn, recall_id)
    shown = ("id", "recall_class", "reason", "initiated_at", "opened_at", "items", "customers", "stock")
    digest = content_sha256(jsonable_encoder({k: recall[k] for k in shown}))
    now = utc_now()
    html = report_html(
        "report_recall.html", title=f"Recall {recall_id}: customer notification list", r=recall,
        generated_at=now, sha256=digest, utc=_utc,
    )  # fmt: skip
    disposition = f'attachment; filename="{recall_id}-customers.pdf"'
    return Response(render_pdf(html, footer=footer_text(digest, now)), media_type=PDF,
                    headers={"Content-Disposition": disposition})  # fmt: skip


def _utc(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _as_signed_in(
    request: Request, write: Callable[..., dict[str, Any]], *args: Any, **fields: Any
) -> dict[str, Any]:
    """``write(conn, *args, **fields)`` in a write transaction as the signed-in person (``by``, the
    permissions they hold, ``now``): every recall write but the signed closing, for this router and the
    recall page alike."""
    principal: Principal = request.state.principal
    with writing(request) as conn:
        return write(conn, *args, by=acting(request), held=principal.permissions, now=utc_now(), **fields)


def record(
    request: Request, recall_id: str, customer: str, kind: str, body: CustomerEventBody
) -> dict[str, Any]:
    """A customer's notification or acknowledgement, for this router and the recall page alike."""
    return _as_signed_in(
        request, recall_store.record_customer_event, recall_id, customer, kind, channel=body.channel,
        note=body.note, at=body.at,
    )  # fmt: skip


def _customer_event_route(kind: str, description: str) -> None:
    """``POST /recalls/{recall_id}/customers/{customer}/{kind}`` (its operation named ``customer_{kind}``):
    a customer's notification and acknowledgement take the same body and the same write, but each its
    own path, so that a client names what it records."""

    def route(
        recall_id: RecallId, customer: Customer, body: CustomerEventBody, request: Request
    ) -> RecallOut:
        return RecallOut(**record(request, recall_id, unquote(customer), kind, body))

    router.post(
        f"/recalls/{{recall_id}}/customers/{{customer}}/{kind}", response_model=RecallOut, responses=WRITES,
        name=f"customer_{kind}", description=description,
    )(route)  # fmt: skip


_customer_event_route(
    "notified",
    "Record that the customer was notified (``channel``: how); several notifications are kept, the\n"
    "first counts for the response time.",
)
_customer_event_route(
    "acknowledged", "Record the customer's acknowledgement (after their notification; once)."
)


def add_return(request: Request, recall_id: str, body: ReturnBody) -> dict[str, Any]:
    """A quantity of a lot returned by a customer, for this router and the recall page alike."""
    return _as_signed_in(
        request, recall_store.record_return, recall_id, body.customer, quantity=body.quantity,
        product=body.product, lot=body.lot, note=body.note, at=body.at,
    )  # fmt: skip


@router.post("/recalls/{recall_id}/returns", response_model=RecallOut, responses=WRITES)
def record_return(recall_id: RecallId, body: ReturnBody, request: Request) -> RecallOut:
    """Record a quantity of a lot returned by a customer (several returns add up)."""
    return RecallOut(**add_return(request, recall_id, body))


def close(request: Request, recall_id: str, body: CloseBody) -> dict[str, Any]:
    """Close the recall with the signed-in person's signature, for this router and the page alike: the
    signer re-authenticated first, a failed attempt's count and audit entry committed, then refused; a
    refused closing is itself audited (who tried to close, and why it was refused)."""
    principal: Principal = request.state.principal
    by, now = acting(request), utc_now()
    return signed_write(
        request, body.signature, now,
        lambda conn, signer: recall_store.close_recall(
            conn, recall_id, reason=body.reason, unacknowledged=body.unacknowledged, signer=signer, by=by,
            held=principal.permissions, now=now,
        ),
        lambda conn, refusal: recall_store.record_refusal(conn, recall_id, "close", refusal, by=by, now=now),
    )  # fmt: skip


@router.post(
    "/recalls/{recall_id}/close",
    response_model=RecallOut,
    responses={**WRITES, 403: {"description": "The password is wrong, or you may not close recalls."}},
)
def close_recall(recall_id: RecallId, body: CloseBody, request: Request) -> RecallOut:
    """Close the recall, signed (once every customer is notified and has acknowledged, or with
    ``unacknowledged`` saying why not)."""
    return RecallOut(**close(request, recall_id, body))
