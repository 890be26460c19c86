"""The recall pages (issue 17): the recalls and the form that opens one; one recall with its customer
notification list, the stock to block, what was recorded with each customer, the response times and the
signed closing; and the notification list as a page to print (or save as PDF from the browser).

Read and written through the same functions as the JSON API (``recall_store``, and the routes' own
``record``, ``add_return`` and ``close`` for the writes, so re-authentication and refusals cannot
differ).  A refusal re-renders the page saying why, nothing changed; a done write redirects back (POST,
redirect, GET).  The forms are shown to those who hold ``recall.run``; everyone who reads custody reads
the recall.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from coldgate.cloud.api import queries_sites
from coldgate.cloud.api.auth import SESSION_COOKIE
from coldgate.cloud.api.routes.recalls import (
    CloseBody,
    CustomerEventBody,
    ReturnBody,
    add_return,
    close,
    record,
)
from coldgate.cloud.api.signing import SignatureBody
from coldgate.cloud.api.writes import acting, catalog_changed, refusal_status, utc_now, writing
from coldgate.cloud.identity.sessions import session_key
from coldgate.cloud.identity.signatures import signed_in_session
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.reports import recall_store
from coldgate.cloud.reports.recall import CLASSES, RecallState
from coldgate.cloud.time_text import duration
from coldgate.cloud.web.custody_pages import lot_href
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import Who, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
RecallId = Annotated[str, Path(max_length=64)]
Said = Annotated[str | None, Query(max_length=300)]
Line = Annotated[str, Form(max_length=1000)]
CHANNELS = ("email", "phone", "letter", "fax", "visit", "portal")


def _href(recall_id: str) -> str:
    return f"/dashboard/recalls/{quote(recall_id, safe='')}"


def _parse_lots(text: str) -> list[tuple[str, str]]:
    """Lots as typed, one a line: the GTIN (or product id) and the lot number, apart by a space."""
    lots = []
    for n, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2:
            raise UserInputError(
                "lots", f"line {n} ({line.strip()!r}): write the GTIN or product, a space, the lot"
            )
        lots.append((words[0], words[1]))
    return lots


def _when(text: str, field: str) -> datetime.datetime | None:
    if not text.strip():
        return None
    try:
        return datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(
            field, f"{text!r} is not a time (ISO 8601 with a zone, 2026-12-02T08:00Z)"
        ) from None


@router.get("/dashboard/recalls", response_class=HTMLResponse)
def recalls_page(
    who: Who, request: Request, state: Annotated[str | None, Query(max_length=16)] = None
) -> Response:
    """The recalls, newest first; the opening form for the recall coordinator."""
    return _list(request, who, state=state)


def _list(
    request: Request,
    who: Who,
    *,
    state: str | None = None,
    error: str | None = None,
    code: int = 200,
    asked: dict[str, str] | None = None,
) -> Response:
    errors = [error] if error else []
    with request.app.state.engine.connect() as conn:
        try:
            found = recall_store.list_recalls(conn, state=state or None)
        except UserInputError as exc:
            errors.append(f"filter not applied: {exc}")
            state, code = None, status.HTTP_422_UNPROCESSABLE_CONTENT
            found = recall_store.list_recalls(conn)
        zone = list_zone(queries_sites.zone_book(conn), None, None)
    return render(
        request,
        "recalls.html",
        who,
        code,
        recalls=found,
        states=list(RecallState),
        state=state or "",
        classes=CLASSES,
        errors=errors,
        asked=asked or {},
        zone=zone,
    )


@router.post("/dashboard/recalls", response_class=HTMLResponse)
def open_form(
    who: Who,
    request: Request,
    recall_class: Annotated[str, Form(max_length=8)] = "",
    reason: Line = "",
    lots: Annotated[str, Form(max_length=20_000)] = "",
    serials: Annotated[str, Form(max_length=20_000)] = "",
    initiated_at: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Open a recall from the form: its lots are set recalled and the gateways sent their lists."""
    asked = {
        "recall_class": recall_class,
        "reason": reason,
        "lots": lots,
        "serials": serials,
        "initiated_at": initiated_at,
    }
    try:
        with writing(request) as conn:
            opened = recall_store.open_recall(
                conn,
                recall_class=recall_class,
                reason=reason,
                lots=_parse_lots(lots),
                serials=[s.strip() for s in serials.splitlines() if s.strip()],
                initiated_at=_when(initiated_at, "initiated_at"),
                by=acting(request),
                held=who.permissions,
                now=utc_now(),
            )
    except UserInputError as exc:
        return _list(request, who, error=str(exc), code=refusal_status(exc), asked=asked)
    catalog_changed(request)
    return _back(opened["id"], "recall opened: its lots are recalled and the gateways' lists sent")


def _zone(conn: Any, recall: dict[str, Any]) -> str:
    sites = {s["site"] for s in recall["stock"]}
    sites |= {d["site"] for c in recall["customers"] for d in c["dispatches"]}
    return list_zone(queries_sites.zone_book(conn), next(iter(sites)) if len(sites) == 1 else None, None)


def _durations(response: dict[str, Any]) -> list[tuple[str, str | None]]:
    words = {
        "to_blocked_s": "All stock blocked",
        "to_notified_s": "All customers notified",
        "to_acknowledged_s": "All customers acknowledged",
        "to_closed_s": "Closed",
    }
    return [
        (label, None if response[key] is None else duration(response[key], brief=True))
        for key, label in words.items()
    ]


def _recall_page(
    request: Request,
    who: Who,
    recall_id: str,
    *,
    template: str = "recall.html",
    done: str | None = None,
    error: str | None = None,
    code: int = 200,
) -> Response:
    try:
        with request.app.state.engine.connect() as conn:
            recall = recall_store.recall_detail(conn, recall_id)
            zone = _zone(conn, recall)
            login_asked = True
            if who.via == "session" and who.user_id:
                key = session_key(request.cookies.get(SESSION_COOKIE, ""))
                login_asked = not signed_in_session(conn, key, who.user_id)
    except NotFound as exc:
        return render(
            request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such recall", detail=str(exc)
        )
    lots = [f"{i['product']}/{i['lot']}" for i in recall["items"] if i["lot"]]
    return render(
        request,
        template,
        who,
        code,
        recall=recall,
        zone=zone,
        durations=_durations(recall["response"]),
        may_run="recall.run" in who.permissions and recall["state"] != "closed",
        channels=CHANNELS,
        lots=list(dict.fromkeys(lots)),
        lot_href=lot_href,
        login_asked=login_asked,
        done=done,
        error=error,
        now=utc_now(),
    )


@router.get("/dashboard/recalls/{recall_id}", response_class=HTMLResponse)
def recall_page(who: Who, request: Request, recall_id: RecallId, done: Said = None) -> Response:
    """One recall: its customers, the stock to block, what was recorded, response times, the closing."""
    return _recall_page(request, who, recall_id, done=done)


@router.get("/dashboard/recalls/{recall_id}/print", response_class=HTMLResponse)
def print_page(who: Who, request: Request, recall_id: RecallId) -> Response:
    """The customer notification list to print, or to save as PDF from the browser's print dialog."""
    return _recall_page(request, who, recall_id, template="recall_print.html")


def _back(recall_id: str, said: str) -> Response:
    return RedirectResponse(
        f"{_href(recall_id)}?{urlencode({'done': said[:300]})}", status.HTTP_303_SEE_OTHER
    )


def _refused(request: Request, who: Who, recall_id: str, exc: UserInputError) -> Response:
    return _recall_page(request, who, recall_id, error=str(exc), code=refusal_status(exc))


@router.post("/dashboard/recalls/{recall_id}/customer", response_class=HTMLResponse)
def customer_form(
    who: Who,
    request: Request,
    recall_id: RecallId,
    customer: Annotated[str, Form(max_length=300)] = "",
    kind: Annotated[str, Form(max_length=16)] = "",
    channel: Annotated[str, Form(max_length=32)] = "",
    note: Line = "",
    at: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Record a customer's notification or acknowledgement."""
    try:
        body = CustomerEventBody(channel=channel or None, note=note or None, at=_when(at, "at"))
        record(request, recall_id, customer, kind, body)
    except UserInputError as exc:
        return _refused(request, who, recall_id, exc)
    return _back(recall_id, f"{customer}: {kind}")


@router.post("/dashboard/recalls/{recall_id}/returns", response_class=HTMLResponse)
def return_form(
    who: Who,
    request: Request,
    recall_id: RecallId,
    customer: Annotated[str, Form(max_length=300)] = "",
    lot: Annotated[str, Form(max_length=130)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    note: Line = "",
) -> Response:
    """Record a quantity of a lot returned by a customer."""
    product, _, number = lot.partition("/")
    try:
        if len(product) > 64 or len(number) > 64:
            raise UserInputError("lot", f"{lot!r} is not one of the recall's lots (product/lot)")
        if not quantity.strip().isdigit() or not 1 <= int(quantity) <= 10_000_000:
            raise UserInputError(
                "quantity", f"{quantity!r} is not a quantity (a whole number, 1 to 10,000,000)"
            )
        body = ReturnBody(
            customer=customer,
            quantity=int(quantity),
            product=product or None,
            lot=number or None,
            note=note or None,
        )
        add_return(request, recall_id, body)
    except UserInputError as exc:
        return _refused(request, who, recall_id, exc)
    return _back(recall_id, f"return of {quantity} from {customer} recorded")


@router.post("/dashboard/recalls/{recall_id}/close", response_class=HTMLResponse)
def close_form(
    who: Who,
    request: Request,
    recall_id: RecallId,
    reason: Line = "",
    unacknowledged: Line = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    login: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Close the recall, signed (the dialog's password, and login when asked)."""
    signature = SignatureBody(password=password, login=login or None) if password else None
    body = CloseBody(reason=reason, unacknowledged=unacknowledged or None, signature=signature)
    try:
        close(request, recall_id, body)
    except UserInputError as exc:
        return _refused(request, who, recall_id, exc)
    return _back(recall_id, "recall closed and signed")
