"""Serials of a lot: which lot of a product a serialised unit belongs to, so an SGTIN tag (GTIN and
serial, no lot) can be tied to its lot, and a recall of a lot reaches each of its units.

A lot's serials are single serials (any 1-64 characters) or ranges of numeric serials of one width
("000100".."000199": the width is part of the serial, so "150" is not in that range).  A serial belongs
to at most one lot of a product: an overlap is refused naming the serial or range and the lot that
holds it.  Rows are never edited or removed (migration 0016): what was said about a unit stays.

Overlaps are found by one sweep over spans sorted by (product, numeric, width, first): spans of one
width compare as text exactly as they compare as numbers, and a non-numeric serial is a span of one
that only its equal can overlap.  The same sweep serves one API call and a 100,000-row import.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, select, text

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.bulk import bulk_insert
from coldgate.cloud.catalog.lots import lot as lot_in_force
from coldgate.cloud.catalog.products import product as product_in_force
from coldgate.cloud.catalog.versions import check_reason
from coldgate.cloud.db.models import LotSerial
from coldgate.cloud.identity.users import UserInputError, checked_text

__all__ = [
    "Span", "add_serials", "check_span", "clashes", "describe", "insert_spans", "lock_serials", "lot_of",
    "lot_serials", "stored_spans",
]  # fmt: skip

_table: Table = LotSerial.__table__  # type: ignore[assignment]
MAX_SERIAL = 64
#: Up to this many products, their stored spans are read by id; beyond, the table is read once.
_FEW = 500
#: Spans an audit entry lists one by one; beyond that it holds their count and SHA-256.
AUDIT_LISTED = 100
#: Any fixed key: every serial writer takes this transaction-scoped lock on PostgreSQL, so two
#: concurrent writers cannot both pass the overlap check (SQLite has one writer at a time anyway).
_LOCK_KEY = 0x5E_71A1


class Span(NamedTuple):
    """``first..last`` of ``product`` held by ``lot``; ``origin`` says where it was read (a file's line,
    0 for an API call, None for stored) so that a clash can be named."""

    product: str
    first: str
    last: str
    lot: str
    origin: int | None = 0

    @property
    def numeric(self) -> bool:
        return self.first.isdigit()

    @property
    def count(self) -> int:
        return int(self.last) - int(self.first) + 1 if self.numeric else 1


def _serial(field: str, value: object) -> str:
    text_ = checked_text(field, value, max_len=MAX_SERIAL)
    if not text_:
        raise UserInputError(field, "a serial is 1-64 characters, not empty")
    if text_ != text_.strip():
        raise UserInputError(field, f"{text_!r} has spaces at its ends: a scan would never match it")
    return text_


def check_span(first: object, last: object = None, *, fields: tuple[str, str] = ("first", "last")) -> tuple[
    str, str
]:
    """(first, last) of one serial (``last`` None or equal) or of a numeric range; a UserInputError names
    the field (``fields``: the names the caller's input gives them)."""
    one = _serial(fields[0], first)
    if last is None or last == one:
        return one, one
    other = _serial(fields[1], last)
    if not one.isdigit() or not other.isdigit():
        wrong = fields[0] if not one.isdigit() else fields[1]
        raise UserInputError(wrong, f"a range {one}..{other} needs numeric serials at both ends (0-9 only)")
    if len(one) != len(other):
        raise UserInputError(
            fields[1], f"{other!r} is not as wide as {one!r}: a range's ends have the same number of digits"
        )
    if other < one:
        raise UserInputError(fields[1], f"{other} is below the range's first serial {one}")
    return one, other


def describe(span: Span) -> str:
    return span.first if span.first == span.last else f"{span.first}..{span.last}"


def _where(span: Span) -> str:
    if span.origin is None:
        return "stored"
    return f"line {span.origin}" if span.origin else "this request"


def clashes(spans: Iterable[Span]) -> list[tuple[Span, Span, str]]:
    """(the span refused, the span it overlaps, why) for every overlap among ``spans``: the refused one
    is never a stored one; a span identical to a stored one of the same lot is no clash (already there)."""
    ordered = sorted(spans, key=lambda s: (s.product, s.numeric, len(s.first), s.first, s.origin is not None))
    found: list[tuple[Span, Span, str]] = []
    reach: Span | None = None  # the span reaching furthest so far in the current group
    for span in ordered:
        if reach is not None and (reach.product, reach.numeric, len(reach.first)) != (
            span.product, span.numeric, len(span.first)
        ):  # fmt: skip
            reach = None
        if reach is not None and span.first <= reach.last:
            refused, holder = (span, reach) if span.origin is not None else (reach, span)
            same = (holder.first, holder.last, holder.lot) == (refused.first, refused.last, refused.lot)
            if refused.origin is not None and not (same and holder.origin is None):
                what = f"serial {refused.first}" if refused.first == refused.last else describe(refused)
                kind = "is" if refused.first == refused.last else "overlaps"
                if kind == "overlaps" and holder.first == holder.last:
                    why = f"{what} holds serial {holder.first}, which belongs to lot {holder.lot!r}"
                elif kind == "is":
                    why = f"{what} already belongs to lot {holder.lot!r} ({describe(holder)})"
                else:
                    why = f"{what} overlaps {describe(holder)} of lot {holder.lot!r}"
                found.append((refused, holder, f"{why} ({_where(holder)})"))
        if reach is None or span.last > reach.last:
            reach = span
    return found


def lock_serials(conn: Connection) -> None:
    """Serialise serial writers until the transaction ends (PostgreSQL; SQLite writes one at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def stored_spans(conn: Connection, products: Iterable[str]) -> list[Span]:
    """Every stored span of ``products``: by their ids when they are few, else one read of the table
    (a hundred queries of 1,000 ids each took seconds to compile and send; one scan takes a fraction)."""
    ids = sorted(set(products))
    columns = (_table.c.product, _table.c.first, _table.c.last, _table.c.lot)
    if len(ids) <= _FEW:
        rows = conn.execute(select(*columns).where(_table.c.product.in_(ids))) if ids else []
        return [Span(p, f, la, lo, None) for p, f, la, lo in rows]
    wanted = set(ids)
    return [Span(p, f, la, lo, None) for p, f, la, lo in conn.execute(select(*columns)) if p in wanted]


def insert_spans(
    conn: Connection, spans: Sequence[Span], *, reason: str, by: Actor, now: datetime.datetime
) -> None:
    """Store ``spans`` in one multi-row statement per page (checked and locked by the caller)."""
    rows = [
        {"product": s.product, "first": s.first, "last": s.last, "lot": s.lot, "numeric": s.numeric,
         "width": len(s.first), "added_at": now, "added_by": by.name, "added_by_id": by.id, "reason": reason}
        for s in spans
    ]  # fmt: skip
    bulk_insert(conn, _table, rows)


def audit_summary(spans: Sequence[Span]) -> dict[str, Any]:
    """What an audit entry keeps of added spans: each (up to ``AUDIT_LISTED``), else count and hash."""
    listed = sorted(describe(s) for s in spans)
    summary: dict[str, Any] = {"spans": len(spans), "serials": sum(s.count for s in spans)}
    if len(listed) <= AUDIT_LISTED:
        summary["added"] = listed
    else:
        summary["added_sha256"] = hashlib.sha256("\n".join(listed).encode()).hexdigest()
    return summary


def add_serials(
    conn: Connection,
    product_id: str,
    lot_number: str,
    serials: Sequence[object] = (),
    ranges: Sequence[tuple[object, object]] = (),
    *,
    reason: str,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Tie ``serials`` and numeric ``ranges`` (first, last) to the lot, refusing any serial another lot
    (or this one) already holds; audited with the reason, one transaction."""
    why = check_reason(reason)
    if not serials and not ranges:
        raise UserInputError("serials", "name at least one serial or range")
    lot_in_force(conn, product_id, lot_number)  # NotFound if there is no such lot
    if not product_in_force(conn, product_id)["serialised"]:
        why = f"product {product_id!r} is not serialised: its units carry no serial"
        raise UserInputError("product", why)
    spans = [Span(product_id, *check_span(s, fields=(f"serials.{i}", "")), lot_number)
             for i, s in enumerate(serials)]  # fmt: skip
    for i, (first, last) in enumerate(ranges):
        ends = check_span(first, last, fields=(f"ranges.{i}.first", f"ranges.{i}.last"))
        spans.append(Span(product_id, *ends, lot_number))
    lock_serials(conn)
    held = stored_spans(conn, [product_id])
    found = clashes([*held, *spans])
    if found:
        problem = found[0][2]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UserInputError("serials", f"{problem}{more}")
    stored = {(s.first, s.last) for s in held}
    new = list({(s.first, s.last): s for s in spans if (s.first, s.last) not in stored}.values())
    insert_spans(conn, new, reason=why, by=by, now=now)
    summary = audit_summary(new)
    append(
        conn, actor=by, action="lot.serials", entity_type="lot", entity_id=f"{product_id}/{lot_number}",
        now=now, after=summary, reason=why,
    )  # fmt: skip
    return {"product": product_id, "lot": lot_number, **summary}


def lot_of(conn: Connection, product_id: str, serial: str) -> str | None:
    """The lot of ``product_id`` that unit ``serial`` belongs to, or None: one indexed look-up."""
    c = _table.c
    if serial.isdigit():
        row = conn.execute(
            select(c.last, c.lot)
            .where(c.product == product_id, c.numeric.is_(True), c.width == len(serial), c.first <= serial)
            .order_by(c.first.desc())
            .limit(1)
        ).first()
        return row.lot if row is not None and serial <= row.last else None
    return conn.execute(select(c.lot).where(c.product == product_id, c.first == serial)).scalar()


def lot_serials(conn: Connection, product_id: str, lot_number: str) -> list[dict[str, Any]]:
    """The lot's serials as spans, adjacent numeric ones of one width collapsed into one range."""
    lot_in_force(conn, product_id, lot_number)
    c = _table.c
    rows = conn.execute(select(c.first, c.last).where(c.product == product_id, c.lot == lot_number)).all()
    spans = sorted(
        (Span(product_id, first, last, lot_number) for first, last in rows),
        key=lambda s: (not s.numeric, len(s.first), s.first),  # ranges first, then single serials
    )
    merged: list[Span] = []
    for span in spans:
        last = merged[-1] if merged else None
        if (
            last is not None and last.numeric and span.numeric and len(last.first) == len(span.first)
            and int(last.last) + 1 == int(span.first)
        ):  # fmt: skip
            merged[-1] = last._replace(last=span.last)
        else:
            merged.append(span)
    return [{"first": s.first, "last": s.last, "serials": s.count} for s in merged]
