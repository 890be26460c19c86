"""The catalog pages (read-only): temperature classes, products and lots as they are in force, and the
history of each record, every version with who made it, when, why and what it changed.

Read through the same functions as the JSON API's catalog routes (``cloud/catalog/``: ``classes``,
``products``, ``lots`` and their ``*_history``), so a page never shows what the API would not.  The
catalog belongs to no site: its times are shown in the zone all sites share (else UTC), as the
overview's are.  What a version changed is worked out here from two consecutive versions (pure:
``changes``), since the stored rows are whole versions, not differences.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from coldgate.cloud.api import queries_sites
from coldgate.cloud.catalog import lots, products, temperature_classes
from coldgate.cloud.identity.users import NotFound
from coldgate.cloud.web.list_filters import list_zone
from coldgate.cloud.web.pages import Who, render

__all__ = ["KINDS", "changes", "router"]

router = APIRouter(include_in_schema=False)

#: What each kind of record shows of a version, in order, with its label; "retired" is every kind's.
CLASS_FIELDS = ("description", "low", "high", "pre_alarm_margin", "alarm_delay_s", "hysteresis", "alarm_on",
                "humidity_low", "humidity_high", "mkt_window_s")  # fmt: skip
PRODUCT_FIELDS = ("name", "gtin", "hibc_lic", "hibc_pcn", "hibc_uom", "ma_id", "temperature_class",
                  "tor_budget_s", "serialised", "retention")  # fmt: skip
LOT_FIELDS = ("status", "expiry", "expiry_hour", "manufactured")
#: The kinds the history page knows, with the words its title uses.
KINDS = {"class": "Temperature class", "product": "Product", "lot": "Lot"}

Key = Annotated[str | None, Query(max_length=64)]


def _flat_class(record: dict[str, Any]) -> dict[str, Any]:
    """A class version with its spec's fields beside its own (the spec is what the gateways apply)."""
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
    return {**record, **spec}


def _shown(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def changes(before: dict[str, Any] | None, after: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    """What ``after`` changed from ``before`` (the previous version), field by field: "high: 8.0 → 6.0";
    the first version is "created"; a version that changed none of ``fields`` says so (a reason-only
    version, or one that changed what this page does not show)."""
    if before is None:
        return ["created"]
    said = [
        f"{name}: {_shown(before.get(name))} → {_shown(after.get(name))}"
        for name in (*fields, "retired")
        if before.get(name) != after.get(name)
    ]
    return said or ["no field changed"]


def _dated(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``at``: when its version was made, as a datetime the page shows in its zone."""
    return {**record, "at": datetime.datetime.fromisoformat(record["changed_at"])}


def _versions(history: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Newest first, each with ``changed`` (its differences from the one before) and ``at`` (a datetime)."""
    rows = []
    for number, version in enumerate(history):
        before = history[number - 1] if number else None
        rows.append({**_dated(version), "changed": changes(before, version, fields)})
    return rows[::-1]


def _zone(conn: Connection) -> str:
    return list_zone(queries_sites.zone_book(conn), None, None)


@router.get("/dashboard/catalog", response_class=HTMLResponse)
def catalog_page(
    who: Who, request: Request, status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
    product: Key = None,
) -> Response:  # fmt: skip
    """Classes, products and lots in force; lots filtered by status and product (the product filter
    narrows the products listed too).  An unknown status is said on the page, and the lots are shown
    unfiltered by it, as the other list pages do with a filter they cannot apply."""
    chosen = status_ if status_ in lots.STATUSES else None
    errors = [] if chosen or not status_ else [f"status: {status_!r} is none of {', '.join(lots.STATUSES)}"]
    with request.app.state.engine.connect() as conn:
        classes = [_dated(_flat_class(c)) for c in temperature_classes.classes(conn)]
        every_product = [_dated(p) for p in products.products(conn)]
        found = [_dated(x) for x in lots.lots(conn, product_id=product or None, status=chosen)]
        zone = _zone(conn)
    shown = [p for p in every_product if not product or p["id"] == product]
    return render(
        request, "catalog.html", who, status.HTTP_422_UNPROCESSABLE_CONTENT if errors else 200,
        classes=classes, products=shown, all_products=every_product, lots=found, statuses=lots.STATUSES,
        status=status_ or "", product=product or "", errors=errors, zone=zone,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Record:
    """One catalog record a history page shows: its title, how to read its versions (oldest first), the
    fields to compare, and the catalog's filter that lists it."""

    title: str
    read: Callable[[Connection], list[dict[str, Any]]]
    fields: tuple[str, ...]
    back: dict[str, str]


def _record(kind: str, name: str | None, product: str | None, lot: str | None) -> Record | str:
    """The record the address names, or what is missing from it."""
    if kind == "class":
        if not name:
            return "name: which temperature class (?name=...)"

        def read_class(conn: Connection) -> list[dict[str, Any]]:
            return [_flat_class(v) for v in temperature_classes.class_history(conn, name)]

        return Record(f"Temperature class {name}", read_class, CLASS_FIELDS, {})
    if not product:
        return f"product: which {kind} (?product=...{'&lot=...' if kind == 'lot' else ''})"
    if kind == "product":
        return Record(f"Product {product}", lambda conn: products.product_history(conn, product),
                      PRODUCT_FIELDS, {"product": product})  # fmt: skip
    if not lot:
        return "lot: which lot of the product (?product=...&lot=...)"
    return Record(f"Lot {lot} of product {product}", lambda conn: lots.lot_history(conn, product, lot),
                  LOT_FIELDS, {"product": product})  # fmt: skip


@router.get("/dashboard/catalog/{kind}", response_class=HTMLResponse)
def history_page(
    who: Who, request: Request, kind: str, name: Key = None, product: Key = None, lot: Key = None
) -> Response:
    """Every version of one class (``?name=``), product (``?product=``) or lot (``?product=&lot=``),
    newest first: who made it, when, why and what it changed.  Unknown kinds and records are 404 pages."""
    if kind not in KINDS:
        return _not_found(request, who, f"{kind!r} is none of {', '.join(KINDS)}")
    record = _record(kind, name, product, lot)
    if isinstance(record, str):
        return _not_found(request, who, record)
    try:
        with request.app.state.engine.connect() as conn:
            versions = _versions(record.read(conn), record.fields)
            zone = _zone(conn)
    except NotFound as exc:
        return _not_found(request, who, str(exc))
    return render(request, "catalog_history.html", who, record=record, kind=kind, versions=versions,
                  zone=zone)  # fmt: skip


def _not_found(request: Request, who: Who, detail: str) -> Response:
    return render(request, "message.html", who, status.HTTP_404_NOT_FOUND, title="No such catalog record",
                  detail=detail)  # fmt: skip
