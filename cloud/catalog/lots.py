"""Lots of a product: expiry, manufacture date, and a status that only moves the ways GDP allows.

A lot is released, quarantined, recalled or rejected; "expired" is not
stored but computed from the expiry, so it can never be forgotten.  The
status moves only along :data:`MOVES` (a rejected or recalled lot never comes
back: that would be a new decision on new evidence, a QA case), each move
with its reason, as the lot's next version and an audit entry.  Who may make
a move is the API's business (``access.py``: release, quarantine and reject
are QA decisions, a recall is the recall coordinator's); this module only
refuses moves that make no sense.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.products import product
from coldgate.cloud.catalog.versions import check_reason, in_force, next_version, stamp, stamp_of
from coldgate.cloud.db.models import LotVersion
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text
from coldgate.contract.ids import Lot

__all__ = ["MOVES", "STATUSES", "lot", "lot_history", "lots", "move_lot", "put_lot"]

_table: Table = LotVersion.__table__  # type: ignore[assignment]
_ENTITY = "lot"
STATUSES = ("released", "quarantined", "recalled", "rejected")
#: Where a lot may go from each status.
MOVES: dict[str, frozenset[str]] = {
    "released": frozenset({"quarantined", "recalled"}),
    "quarantined": frozenset({"released", "rejected", "recalled"}),
    "recalled": frozenset(),
    "rejected": frozenset(),
}


def _lot_number(value: object) -> str:
    text = checked_text("lot", value, max_len=64)
    try:
        msgspec.convert(text, Lot)
    except msgspec.ValidationError:
        raise UserInputError("lot", f"{text!r} is not a lot number (1-64 characters)") from None
    if text != text.strip():
        raise UserInputError("lot", f"{text!r} has spaces at its ends: a scan would never match it")
    return text


def _date(field: str, value: object) -> datetime.date | None:
    if value is None or isinstance(value, datetime.date):
        return value
    text = checked_text(field, value, max_len=10)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UserInputError(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


def check_lot(fields: dict[str, Any]) -> dict[str, Any]:
    """The lot's own fields (not its status), checked; a UserInputError names the first wrong one."""
    allowed = ("expiry", "expiry_hour", "manufactured")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise UserInputError(unknown[0], f"is not a lot field here (fields: {', '.join(allowed)})")
    expiry = _date("expiry", fields.get("expiry"))
    manufactured = _date("manufactured", fields.get("manufactured"))
    hour = fields.get("expiry_hour")
    if hour is not None:
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise UserInputError("expiry_hour", f"{hour!r} is not an hour (0-23)")
        if expiry is None:
            raise UserInputError("expiry_hour", "an hour of expiry needs the expiry date")
    if expiry is not None and manufactured is not None and manufactured > expiry:
        raise UserInputError("manufactured", f"{manufactured} is after the expiry {expiry}")
    return {"expiry": expiry, "expiry_hour": hour, "manufactured": manufactured}


def _record(row: Any, today: datetime.date | None = None) -> dict[str, Any]:
    day = today or datetime.datetime.now(datetime.UTC).date()
    return {
        "product": row.product, "lot": row.lot,
        "expiry": row.expiry.isoformat() if row.expiry else None, "expiry_hour": row.expiry_hour,
        "manufactured": row.manufactured.isoformat() if row.manufactured else None,
        "status": row.status, "expired": row.expiry is not None and row.expiry < day, **stamp_of(row),
    }  # fmt: skip


def lots(
    conn: Connection, *, product_id: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Lots in force (of one product, in one status, when given), by product and lot."""
    query = in_force(_table, ("product", "lot")).order_by(_table.c.product, _table.c.lot)
    if product_id is not None:
        query = query.where(_table.c.product == product_id)
    if status is not None:
        query = query.where(_table.c.status == status)
    return [_record(row) for row in conn.execute(query)]


def lot_history(conn: Connection, product_id: str, lot_number: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(_table)
        .where(_table.c.product == product_id, _table.c.lot == lot_number)
        .order_by(_table.c.version)
    ).all()
    if not rows:
        raise NotFound("lot", f"no lot {lot_number!r} of product {product_id!r}")
    return [_record(row) for row in rows]


def lot(conn: Connection, product_id: str, lot_number: str) -> dict[str, Any]:
    return lot_history(conn, product_id, lot_number)[-1]


def _last(conn: Connection, product_id: str, lot_number: str) -> Any:
    return conn.execute(
        select(_table)
        .where(_table.c.product == product_id, _table.c.lot == lot_number)
        .order_by(_table.c.version.desc())
        .limit(1)
    ).first()


def _write(
    conn: Connection, values: dict[str, Any], last: Any, action: str, *, why: str, by: Actor,
    now: datetime.datetime, if_version: int | None,
) -> dict[str, Any]:  # fmt: skip
    what = f"lot {values['lot']!r} of product {values['product']!r}"
    version = next_version(last.version if last else None, if_version, what)
    conn.execute(insert(_table).values(**values, **stamp(version, by=by, now=now, reason=why, retired=False)))
    stored = select(_table).where(
        _table.c.product == values["product"], _table.c.lot == values["lot"], _table.c.version == version
    )
    after = _record(conn.execute(stored).one(), now.date())
    append(
        conn, actor=by, action=f"{_ENTITY}.{action}", entity_type=_ENTITY,
        entity_id=f"{values['product']}/{values['lot']}", now=now,
        before=_record(last, now.date()) if last else None, after=after, reason=why,
    )  # fmt: skip
    return after


def put_lot(
    conn: Connection,
    product_id: str,
    lot_number: str,
    fields: dict[str, Any],
    *,
    status: str = "released",
    reason: str,
    if_version: int | None = None,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Make a lot (in ``status``) or add a version with new dates (its status unchanged: ``move_lot``)."""
    owner = product(conn, product_id)
    if owner["retired"]:
        raise UserInputError("product", f"product {product_id!r} is retired: it takes no new lots")
    number = _lot_number(lot_number)
    checked = check_lot(fields)
    why = check_reason(reason)
    last = _last(conn, product_id, number)
    if last is None and status not in STATUSES:
        raise UserInputError("status", f"{status!r} is not a lot status ({', '.join(STATUSES)})")
    values = {"product": product_id, "lot": number, **checked, "status": last.status if last else status}
    return _write(conn, values, last, "create" if last is None else "update", why=why, by=by, now=now,
                  if_version=if_version)  # fmt: skip


def move_lot(
    conn: Connection,
    product_id: str,
    lot_number: str,
    status: str,
    *,
    reason: str,
    if_version: int | None = None,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Move the lot to ``status`` if :data:`MOVES` allows it from where it is; audited with the reason."""
    why = check_reason(reason)
    last = _last(conn, product_id, lot_number)
    if last is None:
        raise NotFound("lot", f"no lot {lot_number!r} of product {product_id!r}")
    if status not in MOVES.get(last.status, frozenset()):
        allowed = ", ".join(sorted(MOVES.get(last.status, ()))) or "nowhere: it is final"
        raise UserInputError("status", f"a {last.status} lot cannot become {status} (it may go: {allowed})")
    values = {
        "product": last.product, "lot": last.lot, "expiry": last.expiry, "expiry_hour": last.expiry_hour,
        "manufactured": last.manufactured, "status": status,
    }  # fmt: skip
    return _write(conn, values, last, "status", why=why, by=by, now=now, if_version=if_version)
