"""The catalog in force as the lookups binding and reconciliation take (``identifiers.CatalogIndex``).

The database edge of the pure steps: one read of products, lots, lot serials and a site's
locations, turned into plain mappings, so that binding a whole batch (or re-binding every stored
item after a correction) costs one catalog read, not one per item.

* Retired products still identify their labels and tags: goods of a discontinued product are
  still received, returned and recalled, and a tag must not turn "unidentified" the day the product
  leaves the range.  Where an identifier names a product in force and a retired one (a GTIN given
  again), the one in force wins.
* Single serials are an exact look-up, numeric ranges a sorted list per product (the index bisects
  it): a lot of 100,000 serials is usually one range, not 100,000 entries.
* Locations are a site's: a dock door's class is that of the location on its inside (a door itself
  keeps no class), which is what a receipt through it must keep.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection

from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.lots import lots
from coldgate.cloud.catalog.products import products
from coldgate.cloud.catalog.serials import stored_spans
from coldgate.cloud.documents.identifiers import CatalogIndex, LotInfo, SerialSpan

__all__ = ["catalog_index"]


def _labels(product: dict[str, Any]) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if product["gtin"] is not None:
        found.append(("gtin", product["gtin"]))
    if product["hibc_lic"] is not None:
        found.append(("hibc", (product["hibc_lic"] + product["hibc_pcn"], product["hibc_uom"])))
    if product["ma_id"] is not None:
        found.append(("ma", product["ma_id"]))
    return found


def catalog_index(conn: Connection, site: str) -> CatalogIndex:
    """Everything identification and reconciliation look up at ``site``, from the catalog in force."""
    every = products(conn, retired=True)
    # In force first: its labels win over a retired product's that carried the same identifier.
    every.sort(key=lambda p: (bool(p["retired"]), p["id"]))
    by_scheme: dict[str, dict[Any, str]] = {"gtin": {}, "hibc": {}, "ma": {}}
    for product in every:
        for scheme, label in _labels(product):
            by_scheme[scheme].setdefault(label, product["id"])
    serial_lots: dict[tuple[str, str], str] = {}
    spans: dict[str, list[SerialSpan]] = {}
    for span in stored_spans(conn, [p["id"] for p in every]):
        if span.first == span.last:
            serial_lots[(span.product, span.first)] = span.lot
        else:
            spans.setdefault(span.product, []).append(SerialSpan(span.first, span.last, span.lot))
    ranges = {product: tuple(sorted(found, key=lambda s: s.first)) for product, found in spans.items()}
    lot_info = {
        (x["product"], x["lot"]): LotInfo(
            status=x["status"],
            expiry=datetime.date.fromisoformat(x["expiry"]) if x["expiry"] else None,
            expiry_hour=x["expiry_hour"],
        )
        for x in lots(conn)
    }
    places = locations(conn, site=site)
    return CatalogIndex(
        gtins=by_scheme["gtin"],
        hibc=by_scheme["hibc"],
        ma=by_scheme["ma"],
        serial_lots=serial_lots,
        serial_spans=ranges,
        lots=lot_info,
        product_classes={p["id"]: p["temperature_class"] for p in every},
        location_classes={x["id"]: x["temperature_class"] for x in places if x["temperature_class"]},
        door_locations={x["id"]: x["inside"] for x in places if x["kind"] == "dock_door" and x["inside"]},
    )
