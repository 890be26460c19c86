"""The API's reading of the audit trail: filters, pages, and rows for the CSV export.

``before``/``after`` are returned as the JSON they were stored as (parsed),
and each entry keeps its ``prev_hash`` and ``hash``, so an inspector can check
a page against ``coldgate cloud audit verify`` or by hand.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, func, select

from coldgate.cloud.audit.chain import iso_utc
from coldgate.cloud.db.models import AuditEntry

__all__ = ["COLUMNS", "AuditFilter", "count", "entries", "rows"]

#: The CSV's columns, in the order of the chain's fields.
COLUMNS = (
    "seq", "at", "actor_id", "actor_name", "action", "entity_type", "entity_id", "before", "after", "reason",
    "request_id", "client", "prev_hash", "hash",
)  # fmt: skip
_PAGE = 5_000


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Each set field narrows the entries; ``action`` ending in "." matches the prefix ("user.")."""

    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    action: str | None = None
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        t = AuditEntry
        if self.entity_type is not None:
            query = query.where(t.entity_type == self.entity_type)
        if self.entity_id is not None:
            query = query.where(t.entity_id == self.entity_id)
        if self.actor is not None:
            query = query.where((t.actor_id == self.actor) | (t.actor_name == self.actor))
        if self.action is not None:
            if self.action.endswith("."):
                query = query.where(t.action.startswith(self.action, autoescape=True))
            else:
                query = query.where(t.action == self.action)
        if self.start is not None:
            query = query.where(t.at >= self.start)
        if self.end is not None:
            query = query.where(t.at < self.end)
        return query


def count(conn: Connection, where: AuditFilter) -> int:
    return int(conn.execute(where.apply(select(func.count()).select_from(AuditEntry))).scalar_one())


def _entry(row: Any) -> dict[str, Any]:
    out = dict(zip(COLUMNS, row, strict=True))
    out["at"] = iso_utc(row.at)
    for side in ("before", "after"):
        out[side] = json.loads(out[side]) if out[side] is not None else None
    return out


def _select(where: AuditFilter) -> Select[Any]:
    return where.apply(select(*(AuditEntry.__table__.c[name] for name in COLUMNS)))


def entries(
    conn: Connection, where: AuditFilter, *, limit: int, offset: int, newest_first: bool = True
) -> list[dict[str, Any]]:
    """One page of entries matching ``where``."""
    order = AuditEntry.seq.desc() if newest_first else AuditEntry.seq
    query = _select(where).order_by(order).limit(limit).offset(offset)
    return [_entry(row) for row in conn.execute(query)]


def rows(conn: Connection, where: AuditFilter, *, limit: int) -> Iterator[tuple[Any, ...]]:
    """At most ``limit`` matching entries in chain order, as stored (before/after as canonical text),
    read in pages by seq so an export of a million entries never holds them all."""
    after, left = 0, limit
    while left > 0:
        page = min(_PAGE, left)
        query = _select(where).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(page)
        batch = conn.execute(query).all()
        for row in batch:
            yield (row[0], iso_utc(row[1]), *row[2:])
        if len(batch) < page:
            return
        after, left = batch[-1][0], left - len(batch)
