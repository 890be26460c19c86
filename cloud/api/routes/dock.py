"""Dock doors: what passed a door and bound to no document (``documents.read``), and assigning such an
item to a document by hand (``documents.manage``, audited).

A resource of its own (a door of a site, not a document): an item that fits no open document is kept
unbound at its door, never dropped (issue 15), and the dock must see it to assign it later or to call
the supplier.  The window defaults to the last 24 hours, the dock's working memory; ``limit`` bounds
the answer, so a window may be as long as the caller likes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from coldgate.cloud.api.routes import check_range, parse_time
from coldgate.cloud.api.routes.windows import TIME_HELP
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.documents import dock_decisions, reconciliation_store

__all__ = ["DAY_MS", "router"]

router = APIRouter(tags=["dock"])
DAY_MS = 24 * 3600 * 1000
Name = Annotated[str, Path(max_length=64)]


class UnboundItem(BaseModel):
    gateway: str
    stream: str
    seq: int
    kind: str = Field(description="movement or scan.")
    direction: str = Field(description="in, out or unknown.")
    time: int = Field(description="When it passed (a movement's first read, a scan's time), epoch ms.")
    label: str = Field(description="The identifier as read (EPC URI, barcode).")
    product: str | None
    lot: str | None
    serial: str | None
    sscc: str | None
    quantity: int
    unit: str | None
    how: str
    reason: str = Field(description="Why it fits no document.")
    unresolved: list[dict[str, Any]] = Field(description="Identifiers that named nothing in the catalog.")


class UnboundOut(BaseModel):
    site: str
    door: str
    start: int = Field(alias="from")
    end: int = Field(alias="to")
    items: list[UnboundItem]
    more: bool = Field(description="True when limit cut the list: narrow the window to see the rest.")


@router.get(
    "/doors/{site}/{door}/unbound",
    response_model=UnboundOut,
    response_model_by_alias=True,
    responses={404: {"description": "The site has no such dock door."}},
)
def unbound(
    site: Name,
    door: Name,
    request: Request,
    from_: Annotated[
        str | None, Query(alias="from", description=f"Inclusive; default: to - 24 h. {TIME_HELP}")
    ] = None,
    to: Annotated[str | None, Query(description=f"Exclusive; default: now. {TIME_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:
    """Items that passed the door in the window and bound to no document, newest first, with why."""
    end = parse_time(to, "to") if to is not None else int(utc_now().timestamp() * 1000)
    start = parse_time(from_, "from") if from_ is not None else max(0, end - DAY_MS)
    check_range(start, end, to or str(end), max_ms=None)
    with request.app.state.engine.connect() as conn:
        found = reconciliation_store.unbound_at_door(conn, site, door, start, end, limit=limit + 1)
    items = [UnboundItem(**x) for x in found[:limit]]
    return UnboundOut.model_validate({"site": site, "door": door, "from": start, "to": end, "items": items,
                                      "more": len(found) > limit})  # fmt: skip


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: Any = Field(description="The item's key, as the unbound list gives it: gateway, stream, seq.")
    stream: Any
    seq: Any
    document: Any = Field(description="An open document (released or in progress) of the door's site.")
    line: Any = Field(default=None, description="Its line; left out: the line binding would pick there.")
    reason: str = Field(max_length=2000, description="Why it belongs there (kept in the audit trail).")


class AssignedOut(BaseModel):
    item: str = Field(description="gateway/stream/seq.")
    document: str
    line: int | None
    how: str = Field(description="assigned.")
    binding: str = Field(description="The binding's reason: document, line, who and why.")


@router.post(
    "/doors/{site}/{door}/unbound/assign",
    response_model=AssignedOut,
    responses={404: {"description": "No such item left unbound at this door."},
               409: {"description": "The item is bound to a document already."}},
)  # fmt: skip
def assign(site: Name, door: Name, body: AssignBody, request: Request) -> AssignedOut:
    """Assign an item that bound to no document to one being worked (and a line), with the reason: it
    binds there at once and on every re-run of binding; the assignment is a record, never edited."""
    fields = body.model_dump(exclude={"reason"})
    with writing(request) as conn:
        done = dock_decisions.assign_item(conn, site, door, fields, reason=body.reason, by=acting(request),
                                          now=utc_now())  # fmt: skip
    return AssignedOut(**done)
