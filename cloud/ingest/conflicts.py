"""Telling a re-sent item from a different item under a key already stored.

A gateway re-sends what was not acknowledged, so a stored key arriving again
is normal and a no-op.  The same key with *different* content is not: a
gateway whose outbox was restored from an old backup, or two gateways
configured with one id, would otherwise overwrite or silently lose records.
The stored row stays (records are never edited); the newcomer goes to the
dead letters with the fields that differ.  A key held by an item of another
kind (``item_keys``: one seq, one item) is a conflict too, in field
``kind``.  Only keys that were not new are compared, so the common path
(fresh data) costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, select

from coldgate.cloud.db.writes import item_row, table_for
from coldgate.contract.items import Item

__all__ = ["find_conflicts"]

#: Filled in by ingest, not sent by the gateway.
_DERIVED = frozenset({"ts_corrected"})
_CHUNK = 1000


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:  # NaN never stored; be safe
        return True
    return bool(a == b)


def find_conflicts(
    conn: Connection, gateway: str, stream: str, items: Sequence[Item]
) -> list[tuple[Item, list[str]]]:
    """Among ``items`` whose key is already stored, those whose stored row differs, with the fields."""
    by_table: dict[str, tuple[Table, dict[int, Item]]] = {}
    for item in items:
        table = table_for(item)
        by_table.setdefault(table.name, (table, {}))[1][item.seq] = item
    conflicts: list[tuple[Item, list[str]]] = []
    for table, wanted in by_table.values():
        seqs = sorted(wanted)
        for start in range(0, len(seqs), _CHUNK):
            chunk = seqs[start : start + _CHUNK]
            stored = conn.execute(
                select(table).where(
                    table.c.gateway == gateway, table.c.stream == stream, table.c.seq.in_(chunk)
                )
            ).mappings()
            found: set[int] = set()
            for row in stored:
                found.add(row["seq"])
                item = wanted[row["seq"]]
                fresh = item_row(gateway, stream, item)
                fields = [
                    name
                    for name, value in fresh.items()
                    if name not in _DERIVED and not _same(value, row[name])
                ]
                if fields:
                    conflicts.append((item, fields))
            # Not new, yet not in this kind's table: the seq holds an item of another kind.
            conflicts.extend((wanted[seq], ["kind"]) for seq in chunk if seq not in found)
    return conflicts
