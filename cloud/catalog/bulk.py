"""Many rows into one table at once, in the caller's transaction: what makes a 100,000-row import take
seconds.

PostgreSQL: ``COPY ... FROM STDIN`` through the driver (psycopg adapts each value as it would a
parameter; the service's role needs only INSERT for it, and the append-only triggers, which guard
UPDATE and DELETE, are not involved).  SQLAlchemy's multi-row INSERT pages took five times as long.
SQLite: one ``executemany`` of the driver, each value converted by the column type's own SQLAlchemy
bind processor (so stored exactly as every other write stores it: times in its text form), without
SQLAlchemy's per-row parameter handling, which took as long as the inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.exc import IntegrityError

__all__ = ["bulk_insert"]


def bulk_insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table`` in ``conn``'s transaction."""
    if not rows:
        return
    names = list(rows[0])
    if conn.dialect.name != "postgresql":
        _executemany(conn, table, names, rows)
        return
    columns = ", ".join(f'"{name}"' for name in names)
    import psycopg

    if not conn.in_transaction():
        conn.begin()
    driver = conn.connection.driver_connection
    statement = f'COPY "{table.name}" ({columns}) FROM STDIN'
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[name] for name in names])
    except psycopg.IntegrityError as exc:  # as SQLAlchemy would have raised it: callers catch that
        raise IntegrityError(statement, None, exc) from exc


def _executemany(conn: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]) -> None:
    dialect = conn.dialect
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    plain = [n for n, p in zip(names, processors, strict=True) if p is None]
    converted = [(n, p) for n, p in zip(names, processors, strict=True) if p is not None]
    columns = ", ".join(f'"{name}"' for name in [*plain, *(n for n, _ in converted)])
    marks = ", ".join("?" for _ in names)
    params = [(*(row[n] for n in plain), *(p(row[n]) for n, p in converted)) for row in rows]
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', params)
