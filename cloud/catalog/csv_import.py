"""CSV import of products, lots and serials: a whole file in one transaction, or nothing.

The file is read and every row checked first (``csv_read``, ``csv_check``: pure, against one read of
what is stored), so a refusal names every bad row and nothing was written; only a clean file is
written, in multi-row inserts (no statement per row: 100,000 rows in seconds), with one audit entry
for the import (the file's SHA-256, kind, counts, reason) and the versions it makes carrying the
import's reason, as any other write would.  A concurrent writer that claims the same key between the
read and the write makes the insert fail: the transaction rolls back and the caller hears a 409.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog import csv_check
from coldgate.cloud.catalog.bulk import bulk_insert
from coldgate.cloud.catalog.csv_check import COLUMNS, Plan, StoredLot
from coldgate.cloud.catalog.csv_read import Problems, Row, read_rows
from coldgate.cloud.catalog.products import _identifiers
from coldgate.cloud.catalog.serials import insert_spans, lock_serials, stored_spans
from coldgate.cloud.catalog.temperature_classes import classes
from coldgate.cloud.catalog.versions import Conflict, check_reason, in_force, stamp
from coldgate.cloud.db.models import LotVersion, ProductIdentifier, ProductVersion
from coldgate.cloud.identity.users import UserInputError

__all__ = ["KINDS", "ImportResult", "check_file", "import_csv"]

KINDS = tuple(COLUMNS)
_products: Table = ProductVersion.__table__  # type: ignore[assignment]
_ids: Table = ProductIdentifier.__table__  # type: ignore[assignment]
_lots: Table = LotVersion.__table__  # type: ignore[assignment]
#: Rows per DELETE ... IN (...) of the identifiers index.
_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class ImportResult:
    kind: str
    sha256: str
    rows: int
    created: int
    updated: int
    unchanged: int


def _kind(kind: str) -> str:
    if kind not in COLUMNS:
        raise UserInputError("kind", f"{kind!r} is not an import kind ({', '.join(KINDS)})")
    return kind


def _stored_products(conn: Connection) -> dict[str, dict[str, Any]]:
    return {row.id: row._asdict() for row in conn.execute(in_force(_products, ("id",)))}


def _product_flags(conn: Connection) -> dict[str, tuple[bool, bool]]:
    """Each product in force → (retired, serialised): what lots and serials need, in one light read."""
    p = _products.c
    top = select(p.id, func.max(p.version).label("top")).group_by(p.id).subquery()
    query = select(p.id, p.retired, p.serialised).join(top, and_(p.id == top.c.id, p.version == top.c.top))
    return {key: (bool(retired), bool(serialised)) for key, retired, serialised in conn.execute(query)}


def _plan_products(conn: Connection, rows: list[Row], problems: Problems) -> Plan:
    holders = {(r.scheme, r.value): r.product for r in conn.execute(select(_ids))}
    names = {c["name"] for c in classes(conn)}
    return csv_check.check_product_rows(rows, problems, names, _stored_products(conn), holders)


def _plan_lots(conn: Connection, rows: list[Row], problems: Problems) -> Plan:
    products = {key: retired for key, (retired, _) in _product_flags(conn).items()}
    stored = {
        (r.product, r.lot): StoredLot(r.expiry, r.expiry_hour, r.manufactured, r.status)
        for r in conn.execute(in_force(_lots, ("product", "lot")))
    }
    return csv_check.check_lot_rows(rows, problems, products, stored)


def _plan_serials(conn: Connection, rows: list[Row], problems: Problems) -> Plan:
    serialised = {key: flags[1] and not flags[0] for key, flags in _product_flags(conn).items()}
    lots = {(r.product, r.lot) for r in conn.execute(select(_lots.c.product, _lots.c.lot).distinct())}
    lock_serials(conn)  # held until the import commits: no other writer slips a serial in between
    wanted = {row.cells.get("product") for row in rows} & serialised.keys()
    return csv_check.check_serial_rows(rows, problems, serialised, lots, stored_spans(conn, wanted))


_PLANNERS: dict[str, Callable[[Connection, list[Row], Problems], Plan]] = {
    "products": _plan_products, "lots": _plan_lots, "serials": _plan_serials,
}  # fmt: skip


def check_file(conn: Connection, kind: str, data: bytes) -> tuple[list[Row], Plan]:
    """The file's rows and what importing it would write; ``ImportRefused`` naming every problem."""
    required, optional = COLUMNS[_kind(kind)]
    rows, problems = read_rows(kind, data, required, optional)
    plan = _PLANNERS[kind](conn, rows, problems)
    refused = problems.refusal(kind)
    if refused is not None:
        raise refused
    return rows, plan


def _write_products(conn: Connection, plan: Plan, version_stamp: Callable[[int], dict[str, Any]]) -> None:
    items = [(key, checked, 1) for key, checked in plan.created]
    items += [(key, checked, version) for (key, checked), version in plan.updated]
    changed = [key for (key, _), _ in plan.updated]
    for start in range(0, len(changed), _CHUNK):
        conn.execute(delete(_ids).where(_ids.c.product.in_(changed[start : start + _CHUNK])))
    claims = [
        {"scheme": scheme, "value": value, "product": key}
        for key, checked, _ in items
        for scheme, value, _ in _identifiers(checked)
    ]
    bulk_insert(conn, _products, [{"id": k, **c, **version_stamp(v)} for k, c, v in items])
    bulk_insert(conn, _ids, claims)


def _write_lots(conn: Connection, plan: Plan, version_stamp: Callable[[int], dict[str, Any]]) -> None:
    first = version_stamp(1)
    rows = [
        {"product": p, "lot": lot, "expiry": v.expiry, "expiry_hour": v.expiry_hour,
         "manufactured": v.manufactured, "status": v.status, **first}
        for (p, lot), v in plan.created
    ]  # fmt: skip
    bulk_insert(conn, _lots, rows)


def import_csv(
    conn: Connection, kind: str, data: bytes, *, reason: str, by: Actor, now: datetime.datetime
) -> ImportResult:
    """Import the ``kind`` file ``data`` whole, in ``conn``'s transaction, audited once; or refuse it
    (``ImportRefused``, nothing written)."""
    why = check_reason(reason)
    rows, plan = check_file(conn, kind, data)
    digest = hashlib.sha256(data).hexdigest()

    def version_stamp(version: int) -> dict[str, Any]:
        return stamp(version, by=by, now=now, reason=why, retired=False)

    try:
        if kind == "products":
            _write_products(conn, plan, version_stamp)
        elif kind == "lots":
            _write_lots(conn, plan, version_stamp)
        else:
            insert_spans(conn, plan.created, reason=why, by=by, now=now)
    except IntegrityError:
        raise Conflict("file", "the catalog changed while the file was imported: import it again") from None
    result = ImportResult(kind, digest, len(rows), len(plan.created), len(plan.updated), plan.unchanged)
    append(
        conn, actor=by, action="catalog.import", entity_type="catalog_import", entity_id=f"{kind}:{digest}",
        now=now, after=asdict(result), reason=why,
    )  # fmt: skip
    return result
