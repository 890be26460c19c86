"""Which version of each down-link document each gateway is due, recorded before it is published.

For every enrolled gateway and each document kind, the document is built
from the catalog in force; if its content differs from the last version
recorded for that gateway (``downlink_documents``, by content digest), the
next version is recorded, with the time it was issued.  Otherwise the last
version is rebuilt as it was (same version, same issue time, same bytes),
ready to be published again when a gateway is born or the broker lost its
retained copy.  The record is made in the caller's transaction and
published only after it commits, so a gateway never holds a version the
cloud has no record of.

A document too large for one message is published in parts
(``documents.split``); ``Due.parts`` holds each part's payload, ``Due.payload``
the whole document's encoding (what is recorded: digest and size).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from coldgate.cloud.alerts.cloud_stream import epoch_ms
from coldgate.cloud.catalog.lots import lots
from coldgate.cloud.catalog.products import products
from coldgate.cloud.catalog.serials import stored_spans
from coldgate.cloud.catalog.temperature_classes import classes
from coldgate.cloud.db.models import DownlinkDocument, GatewayEnrolment, LotSerial, LotVersion, ProductVersion
from coldgate.cloud.db.models import TemperatureClassVersion as ClassVersion
from coldgate.cloud.downlink.documents import (
    PART_BYTES,
    Built,
    build_master,
    build_recalls,
    content_digest,
    split,
)
from coldgate.contract.codec import encode

__all__ = ["KINDS", "Due", "catalog_marker", "due_documents"]

KINDS = ("master", "recall")
_docs: Table = DownlinkDocument.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Due:
    """One gateway's document as it should stand on the broker now."""

    gateway: str
    site: str
    kind: str
    version: int
    #: The whole document, encoded (as one message, were it small enough).
    payload: bytes
    built: Built
    #: True when this call recorded the version (the content changed): it must be published.
    new: bool
    #: What is published: part k's payload on the part-k topic; just ``payload`` for a document that fits.
    parts: tuple[bytes, ...] = ()
    #: How many parts the version before this one had, as far as its recorded size tells (0: none):
    #: the part topics beyond this version's are cleared.
    previous_parts: int = 0

    def __post_init__(self) -> None:
        if not self.parts:
            object.__setattr__(self, "parts", (self.payload,))


def catalog_marker(conn: Connection) -> tuple[Any, ...]:
    """Changes whenever the catalog does (rows are only ever added): cheap enough to ask every second."""
    marker: list[Any] = []
    for model in (ClassVersion, ProductVersion, LotVersion):
        table = model.__table__
        marker.extend(conn.execute(select(func.count(), func.max(table.c.changed_at))).one())  # type: ignore[attr-defined]
    marker.extend(conn.execute(select(func.count(), func.max(LotSerial.added_at))).one())
    return tuple(marker)


def held_serials(conn: Connection, in_force: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """Each serial the catalog ties to a recalled or quarantined lot, ranges written out (the contract's
    recall list names units one by one), by (product, lot)."""
    held = {(x["product"], x["lot"]) for x in in_force if x["status"] in ("recalled", "quarantined")}
    found: dict[tuple[str, str], list[str]] = {}
    for span in stored_spans(conn, {product for product, _ in held}):
        if (span.product, span.lot) not in held:
            continue
        if span.first == span.last:
            units = [span.first]
        else:
            width = len(span.first)
            units = [str(n).zfill(width) for n in range(int(span.first), int(span.last) + 1)]
        found.setdefault((span.product, span.lot), []).extend(units)
    return found


def _enrolled(conn: Connection) -> list[tuple[str, str]]:
    e = GatewayEnrolment
    rows = conn.execute(select(e.gateway, e.site).where(e.revoked_at.is_(None)).order_by(e.gateway))
    return [(row.gateway, row.site) for row in rows]


def _last(conn: Connection, gateway: str, kind: str) -> Any:
    return conn.execute(
        select(_docs)
        .where(_docs.c.gateway == gateway, _docs.c.kind == kind)
        .order_by(_docs.c.version.desc())
        .limit(1)
    ).first()


def due_documents(conn: Connection, now: datetime.datetime, gateways: set[str] | None = None) -> list[Due]:
    """Every enrolled gateway's documents (only ``gateways``' when given), recording new versions."""
    in_force = {"classes": classes(conn), "products": products(conn), "lots": lots(conn)}
    # A recalled lot of a product since retired must still be stopped at the door: the recall list names
    # products in force and retired alike (the master data, what a door recognises, only those in force).
    in_force["ever"] = products(conn, retired=True)
    in_force["serials"] = held_serials(conn, in_force["lots"])
    due: list[Due] = []
    for gateway, site in _enrolled(conn):
        if gateways is not None and gateway not in gateways:
            continue
        for kind in KINDS:
            due.append(_due(conn, gateway, site, kind, in_force, now))
    return due


def _build(gateway: str, kind: str, catalog: dict[str, Any], version: int, issued: int) -> Built:
    if kind == "master":
        return build_master(
            gateway, catalog["classes"], catalog["products"], catalog["lots"], version=version, issued=issued
        )
    return build_recalls(
        gateway,
        catalog["ever"],
        catalog["lots"],
        version=version,
        issued=issued,
        serials=catalog["serials"],
    )


def _due(conn: Connection, gateway: str, site: str, kind: str, catalog: dict[str, Any],
         now: datetime.datetime) -> Due:  # fmt: skip
    last = _last(conn, gateway, kind)
    if last is not None:
        built = _build(gateway, kind, catalog, last.version, epoch_ms(last.issued))
        if content_digest(built.document) == last.content_sha256:
            payload = encode(built.document)
            return Due(gateway, site, kind, last.version, payload, built, new=False,
                       parts=tuple(split(built.document, payload)))  # fmt: skip
    version = (last.version if last is not None else 0) + 1
    built = _build(gateway, kind, catalog, version, epoch_ms(now))
    payload = encode(built.document)
    conn.execute(
        insert(_docs).values(
            gateway=gateway, kind=kind, version=version, issued=now,
            content_sha256=content_digest(built.document), entries=built.entries, size=len(payload),
        )
    )  # fmt: skip
    previous = -(-last.size // PART_BYTES) if last is not None and last.size else 0
    return Due(gateway, site, kind, version, payload, built, new=True,
               parts=tuple(split(built.document, payload)), previous_parts=previous)  # fmt: skip
