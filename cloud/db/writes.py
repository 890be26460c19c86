"""Idempotent batch writes of contract items.

Gateways re-send whatever was not acknowledged, so the same
(gateway, stream, seq) arrives many times: each insert is
``INSERT ... ON CONFLICT DO NOTHING`` and the count of new rows comes back from
``RETURNING``, so ingest can tell a re-delivery from fresh data without a
SELECT first.  The caller owns the transaction: ingest acknowledges only after
its commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import psycopg
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from coldgate.cloud.db import models, reading_hours
from coldgate.contract.items import Alert, Gap, Item, Reading

__all__ = ["BINDABLE", "insert_items", "insert_new", "item_row", "table_for"]

_BASE_FIELDS = ("seq", "ts", "boot", "mono", "synced")


def table_for(item: Item) -> Table:
    """The table that stores items of this kind."""
    if isinstance(item, Reading):
        return models.Reading.__table__  # type: ignore[return-value]
    if isinstance(item, Gap):
        return models.Gap.__table__  # type: ignore[return-value]
    if isinstance(item, Alert):
        return models.Alert.__table__  # type: ignore[return-value]
    return models.EdgeItem.__table__  # type: ignore[return-value]


def item_row(gateway: str, stream: str, item: Item) -> dict[str, Any]:
    """The row of ``item`` in its table: key and time evidence, then the kind's own fields."""
    row: dict[str, Any] = {"gateway": gateway, "stream": stream}
    row.update({name: getattr(item, name) for name in _BASE_FIELDS})
    if isinstance(item, Reading):
        row.update(
            sensor=item.sensor,
            quantity=str(item.quantity),
            value=item.value,
            unit=str(item.unit),
            quality=str(item.quality),
            reason=item.reason,
            ts_corrected=None,
        )
    elif isinstance(item, Gap):
        row.update(
            subject_type=str(item.subject_type),
            subject=item.subject,
            start=item.start,
            end=item.end,
            cause=str(item.cause),
            detail=item.detail,
        )
    elif isinstance(item, Alert):
        row.update(
            alert_id=item.alert_id,
            action=str(item.action),
            rule=item.rule,
            subject_type=str(item.subject_type),
            subject=item.subject,
            severity=str(item.severity),
            message=item.message,
            evidence=msgspec.to_builtins(item.evidence),
        )
    else:
        body = msgspec.to_builtins(item)
        kind = body.pop("kind")
        for name in _BASE_FIELDS:
            body.pop(name, None)
        row.update(kind=kind, body=body)
    return row


#: The edge items binding binds to documents (``cloud/documents/binding_store.py``).
BINDABLE = frozenset({"movement", "scan"})
_queue: Table = models.BindingQueue.__table__  # type: ignore[assignment]


def insert_items(conn: Connection, gateway: str, site: str, stream: str, items: Iterable[Item]) -> int:
    """Insert a batch's items, skipping those already stored; returns how many were new.

    ``site`` is accepted because a batch carries it; it is recorded on the
    gateway row by ingest, not per item.
    """
    del site
    return len(insert_new(conn, gateway, stream, items))


def insert_new(
    conn: Connection,
    gateway: str,
    stream: str,
    items: Iterable[Item],
    ts_corrected: dict[int, int] | None = None,
) -> set[int]:
    """Insert items, skipping keys already stored; returns the seqs that were new.

    Every item claims its key in ``item_keys`` first and only the newly
    claimed ones are inserted: the partitioned ``readings`` table cannot be
    unique on (gateway, stream, seq) by itself, and a seq taken by one kind
    must not be taken again by another in its own table.  A key already
    stored is "not new" whatever its content or kind: telling a conflict from
    a duplicate is ingest's job, and it needs the new seqs to do so.  ``ts_corrected`` maps a
    reading's seq to its clock-corrected time.
    """
    corrections = ts_corrected or {}
    items = list(items)
    all_readings = [item for item in items if isinstance(item, Reading)]
    new: set[int] = set()
    new_readings: set[int] = set()
    if conn.dialect.name == "postgresql" and all_readings:
        new = _copy_readings(conn, gateway, stream, all_readings, corrections)  # summaries included
        items = [item for item in items if not isinstance(item, Reading)]
    rows_by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for item in items:
        table = table_for(item)
        row = item_row(gateway, stream, item)
        if item.seq in corrections and "ts_corrected" in row:
            row["ts_corrected"] = corrections[item.seq]
        rows_by_table.setdefault(table.name, (table, []))[1].append(row)
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for table, rows in rows_by_table.values():
        rows = _claim_keys(conn, dialect_insert, rows)
        if not rows:
            continue
        stmt = dialect_insert(table).on_conflict_do_nothing().returning(table.c.seq)
        stored_seqs = set(conn.execute(stmt, rows).scalars())
        new |= stored_seqs
        if table.name == "edge_items":  # what binding will bind, queued in this same transaction
            queued = [{"gateway": gateway, "stream": stream, "seq": r["seq"]} for r in rows
                      if r["seq"] in stored_seqs and r["kind"] in BINDABLE]  # fmt: skip
            if queued:
                conn.execute(dialect_insert(_queue).on_conflict_do_nothing(), queued)
        if table.name == "readings":
            new_readings = stored_seqs
    if new_readings:
        # The first of two readings with one seq is the one stored, on both paths.
        stored = {r.seq: r for r in reversed(all_readings)}
        readings = (stored[s] for s in sorted(new_readings))
        reading_hours.add(conn, reading_hours.deltas(gateway, readings, corrections))
    return new


def _claim_keys(
    conn: Connection, dialect_insert: Callable[[Table], Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Insert the rows' keys into ``item_keys``; return the rows whose key was new.

    All rows share one (gateway, stream), so the returned seqs identify them.
    """
    keys: Table = models.ItemKey.__table__  # type: ignore[assignment]
    stmt = dialect_insert(keys).on_conflict_do_nothing().returning(keys.c.seq)
    key_rows = [
        {"gateway": r["gateway"], "stream": r["stream"], "seq": r["seq"], "ts": r["ts"]} for r in rows
    ]
    claimed = set(conn.execute(stmt, key_rows).scalars())
    # A seq twice in one call is claimed once; keep its first row only.
    first = {r["seq"]: r for r in reversed(rows)}
    return [r for seq, r in first.items() if seq in claimed]


#: Columns of ``readings`` in COPY order, after (gateway, stream).
_READING_COLUMNS = "seq, ts, boot, mono, synced, sensor, quantity, value, unit, quality, reason, ts_corrected"
_STAGE = "ingest_readings_copy"


def _copy_readings(
    conn: Connection, gateway: str, stream: str, readings: list[Reading], corrections: dict[int, int]
) -> set[int]:
    """PostgreSQL: COPY the readings into a temporary table, then claim keys, insert and add them to the
    hourly summaries in one statement.

    A multi-row ``INSERT ... VALUES`` of 500 readings spends most of its time
    in the driver, splitting and converting a huge query string (measured:
    10,000 readings/s); COPY streams rows without SQL text and the
    set-based insert does the de-duplication on the server.  The first of
    two readings with one seq is the one stored, as on the generic path.
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    try:
        return _copy_with(raw, gateway, stream, readings, corrections)
    except psycopg.Error as exc:
        # The raw cursor bypasses SQLAlchemy, so wrap its errors as SQLAlchemy would: callers tell
        # "database down" (OperationalError, retry) from "data refused" (DataError, dead-letter) by them.
        disconnect = conn.dialect.is_disconnect(exc, raw, None)
        if disconnect:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            "COPY readings", None, exc, psycopg.Error, connection_invalidated=disconnect
        ) from exc


#: Claim the staged readings' keys, store the readings whose key was new, add those to the hourly
#: summaries; the new seqs come back.
_CLAIM_AND_INSERT = f"""
WITH claimed AS (
    INSERT INTO item_keys (gateway, stream, seq, ts)
    SELECT %(gateway)s, %(stream)s, seq, ts FROM {_STAGE}
    ON CONFLICT DO NOTHING
    RETURNING seq
), stored AS (
    INSERT INTO readings (gateway, stream, {_READING_COLUMNS})
    SELECT %(gateway)s, %(stream)s, {_READING_COLUMNS.replace("seq,", "s.seq,", 1)}
    FROM {_STAGE} s JOIN claimed c ON c.seq = s.seq
    RETURNING gateway, seq, sensor, quantity, ts, ts_corrected, value, unit, quality
), summed AS ({reading_hours.add_from("stored")})
SELECT seq FROM stored
"""


def _copy_with(
    raw: Any, gateway: str, stream: str, readings: list[Reading], corrections: dict[int, int]
) -> set[int]:
    # One seq once (the first), so the server needs no DISTINCT ON and the summaries count it once.
    first: dict[int, Reading] = {}
    for r in readings:
        first.setdefault(r.seq, r)
    with raw.cursor() as cursor:
        # One round trip: the table outlives the transaction (ON COMMIT DELETE ROWS empties it), but not
        # a rollback of the transaction that created it, hence IF NOT EXISTS every time.
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} ("
            "seq bigint, ts bigint, boot varchar(64), mono bigint, synced boolean, "
            "sensor varchar(64), quantity varchar(32), value double precision, unit varchar(8), "
            "quality varchar(16), reason text, ts_corrected bigint) ON COMMIT DELETE ROWS; "
            f"TRUNCATE {_STAGE}"
        )
        with cursor.copy(f"COPY {_STAGE} ({_READING_COLUMNS}) FROM STDIN") as copy:
            write_row = copy.write_row
            for r in first.values():
                write_row(
                    (r.seq, r.ts, r.boot, r.mono, r.synced, r.sensor, r.quantity, r.value, r.unit, r.quality,
                     r.reason, corrections.get(r.seq))
                )  # fmt: skip
        cursor.execute(_CLAIM_AND_INSERT, {"gateway": gateway, "stream": stream})
        return {row[0] for row in cursor.fetchall()}
