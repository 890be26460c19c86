"""The audit trail in the database: append an entry in the caller's transaction, read the chain back.

Every write of the application records itself here in the same transaction
as the change (``append``), so the two land together or not at all.  An
entry costs that write one statement, one round trip to the database, which
is what keeps the audit trail within a fifth of the write it records
(``bench/audit.py``); so both ``append`` and the chain check talk to the
driver's own connection (the caller's, in its transaction) instead of going
through SQLAlchemy's statement and row machinery for each entry.

Entries are numbered ``max + 1``, and each holds the hash of the one before:

- PostgreSQL: one ``INSERT ... SELECT`` reads the head and computes the new
  hash itself (``sha256()`` over the canonical bytes put together here, the
  head's hash and number spliced in), ``ON CONFLICT (seq) DO NOTHING``.  The
  unique check on ``seq`` sees other transactions' entries whatever the
  statement's snapshot, and waits for one still in progress: so a concurrent
  append that took the same number either turns this one into "nothing
  inserted" (it committed: read the head again and retry) or leaves the
  number free (it rolled back).  Appends queue as they did behind an advisory
  lock, and an entry is only ever written on the head committed before it,
  without a lock statement's extra round trip.
- SQLite: the database's single writer (``BEGIN IMMEDIATE``) serialises
  appends; the head is read, the entry hashed here, then inserted; the unique
  ``seq`` catches anything that slips through (the caller's transaction then
  fails and is retried or reported).
"""

from __future__ import annotations

import datetime
import queue
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from itertools import chain as concatenated
from itertools import count
from typing import Any

import msgspec
from sqlalchemy import Connection, func, select

from coldgate.cloud.audit.chain import (
    GENESIS,
    Break,
    Entry,
    Hashed,
    canonical_entry,
    canonical_json,
    entry_hash,
    first_break_hashed,
    hash_parts,
    hashed_rows,
    iso_utc,
)
from coldgate.cloud.db.models import AuditEntry

__all__ = ["SYSTEM", "Actor", "append", "entries", "head", "verify"]

#: Rows per fetch when reading the chain back.
_PAGE = 20_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a person (their user id and printed name) or a system component (no id), and,
    for a request to the API, which request and from where (the entry's request id and client)."""

    name: str
    id: str | None = None
    request_id: str | None = None
    client: str | None = None


SYSTEM = Actor("coldgate (system)")

#: The stored columns in insert order (``Entry``'s field order).
_STORED = (
    "seq", "at", "actor_id", "actor_name", "action", "entity_type", "entity_id", "before", "after", "reason",
    "request_id", "client", "prev_hash", "hash",
)  # fmt: skip

_PG_APPEND = f"""
INSERT INTO audit_log ({", ".join(_STORED)})
SELECT coalesce(last.seq, 0) + 1, %(at)s::timestamptz, %(actor_id)s, %(actor_name)s, %(action)s,
       %(entity_type)s, %(entity_id)s, %(before)s, %(after)s, %(reason)s, %(request_id)s, %(client)s,
       coalesce(last.hash, %(genesis)s),
       encode(sha256(%(front)s::bytea || convert_to(coalesce(last.hash, %(genesis)s), 'UTF8')
                     || %(back)s::bytea || convert_to((coalesce(last.seq, 0) + 1)::text || '}}', 'UTF8')),
              'hex')
FROM (SELECT 1) AS one
LEFT JOIN (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS last ON true
ON CONFLICT (seq) DO NOTHING
RETURNING seq, prev_hash, hash
"""

_SQLITE_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
_SQLITE_APPEND = f"INSERT INTO audit_log ({', '.join(_STORED)}) VALUES ({', '.join('?' * len(_STORED))})"


def append(
    conn: Connection,
    *,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: str,
    now: datetime.datetime,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
    request_id: str | None = None,
    client: str | None = None,
) -> Entry:
    """Append one entry in ``conn``'s transaction; returns it with its hash.  ``request_id`` and
    ``client`` default to the actor's."""
    request_id = request_id if request_id is not None else actor.request_id
    client = client if client is not None else actor.client
    entry = Entry(
        seq=0,
        at=iso_utc(now),
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=canonical_json(before),
        after=canonical_json(after),
        reason=reason,
        request_id=request_id,
        client=client,
        prev_hash=GENESIS,
    )
    driver = _driver(conn)
    if conn.dialect.name == "postgresql":
        front, back = hash_parts(entry)
        params = {
            "at": entry.at, "actor_id": entry.actor_id, "actor_name": entry.actor_name, "action": action,
            "entity_type": entity_type, "entity_id": entity_id, "before": entry.before, "after": entry.after,
            "reason": reason, "request_id": request_id, "client": client, "genesis": GENESIS,
            "front": front, "back": back,
        }  # fmt: skip
        with driver.cursor() as cursor:
            while True:
                cursor.execute(_PG_APPEND, params)
                written = cursor.fetchone()
                if written is not None:  # else an append that took the number committed: the head moved
                    seq, previous, digest = written
                    return msgspec.structs.replace(entry, seq=seq, prev_hash=previous, hash=digest)
    cursor = driver.cursor()
    try:
        last = cursor.execute(_SQLITE_HEAD).fetchone()
        seq, previous = (last[0] + 1, last[1]) if last is not None else (1, GENESIS)
        entry = msgspec.structs.replace(entry, seq=seq, prev_hash=previous)
        entry = msgspec.structs.replace(entry, hash=entry_hash(entry))
        # The time hashed, as SQLAlchemy stores a UTC DateTime on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff").
        at = f"{entry.at[:10]} {entry.at[11:26]}"
        cursor.execute(
            _SQLITE_APPEND,
            (seq, at, entry.actor_id, entry.actor_name, action, entity_type, entity_id, entry.before,
             entry.after, reason, request_id, client, previous, entry.hash),
        )  # fmt: skip
    finally:
        cursor.close()
    return entry


def _driver(conn: Connection) -> Any:
    """The driver's connection under ``conn``, in ``conn``'s transaction (begun as SQLAlchemy would)."""
    if not conn.in_transaction():
        conn.begin()  # what the first conn.execute() would do: the caller commits or rolls back
    return conn.connection.driver_connection


#: ``at`` as ``iso_utc`` text, by the database: PostgreSQL formats it itself; SQLite has the text SQLAlchemy
#: stored, reshaped when it is in exactly the stored form (NULL otherwise: read the slow way, ``_sqlite_at``).
_AT_SQL = {
    "postgresql": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "sqlite": (
        "CASE WHEN typeof(at) = 'text' AND at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
        "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' "
        "THEN substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z' END"
    ),
}
_PLACEHOLDER = {"postgresql": "%s", "sqlite": "?"}


def _select_entries(dialect: str) -> str:
    """The stored entries after a seq, in ``Entry``'s field order."""
    columns = ", ".join(_AT_SQL[dialect] if name == "at" else name for name in _STORED)
    return f"SELECT {columns} FROM audit_log WHERE seq > {_PLACEHOLDER[dialect]} ORDER BY seq"


def _select_hashed_sqlite() -> str:
    """``Hashed`` rows from SQLite: each entry's canonical JSON (``canonical_entry``) put together by SQLite.

    ``json_quote`` escapes text as RFC 8785 does (and msgspec: both are held
    to it by ``tests/test_audit_log.py``); ``before``/``after`` are canonical
    JSON already and go in as they are.  Bytes that do not hash to the stored
    hash are rebuilt here from the entry's fields before they count as a
    break (``first_break_hashed``'s ``recheck``), so this only saves time:
    fetching fourteen fields a row and encoding them is most of what verify
    spends otherwise.  Hence the light test on ``at`` (text with the stored
    form's space): only text that is the stored form of the hashed time
    yields the hashed bytes.  ``json_quote`` refuses a BLOB (only a tampered
    row has one): ``_hashed_pages`` then carries on the slow way."""
    parts = []
    for name in sorted(_STORED[:-1]):  # every field but the hash, in RFC 8785 key order
        if name == "at":
            iso = "substr(at, 1, 10) || 'T' || substr(at, 12) || 'Z'"
            value = f"'\"' || CASE WHEN typeof(at) = 'text' AND substr(at, 11, 1) = ' ' THEN {iso} END"
            value += " || '\"'"
        elif name in ("before", "after"):
            value = f"coalesce({name}, 'null')"
        elif name == "seq":
            value = "seq"
        else:
            value = f"json_quote({name})"  # json_quote(NULL) is 'null'
        key = ("," if parts else "{") + f'"{name}":'
        parts.append(f"'{key}' || {value}")
    document = " || ".join(parts) + " || '}'"
    return f"SELECT seq, prev_hash, hash, CAST({document} AS BLOB) FROM audit_log WHERE seq > ? ORDER BY seq"


_SQL = {
    "postgresql": {"entries": _select_entries("postgresql")},
    "sqlite": {"entries": _select_entries("sqlite"), "hashed": _select_hashed_sqlite()},
}
_AT = _STORED.index("at")
#: Server-side cursors are named, and two readers may be open on one connection.
_CURSORS = count(1)


def _pages(conn: Connection, query: str, after_seq: int) -> Iterator[list[Any]]:
    """The rows of ``query`` (``_SQL``) after ``after_seq``, by ``seq``, a page at a time."""
    return _fetch(_driver(conn), conn.dialect.name, query, after_seq)


def _fetch(driver: Any, dialect: str, query: str, after_seq: int) -> Iterator[list[Any]]:
    if dialect == "postgresql":
        # A server-side cursor, so the result is never held in memory whole; binary, so that the bytes
        # arrive as they are.
        with driver.cursor(name=f"coldgate_audit_{next(_CURSORS)}", binary=True) as cursor:
            cursor.execute(_SQL["postgresql"][query], (after_seq,))
            while page := cursor.fetchmany(_PAGE):
                yield page
        return
    cursor = driver.cursor()
    try:
        cursor.execute(_SQL["sqlite"][query], (after_seq,))
        while page := cursor.fetchmany(_PAGE):
            yield page
    finally:
        cursor.close()


def _prefetched(pages: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """``pages``, the next one fetched on another thread while this one is checked.

    For PostgreSQL, where the server reading and sending a page and this
    process checking the last one can overlap: the driver waits for the
    server without holding the GIL.  Only that thread uses the connection
    until the pages run out or are abandoned (it is joined first)."""
    ready: queue.Queue[list[Any] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                ready.put(page)
            ready.put(None)
        except BaseException as error:  # handed to the reader, raised there
            ready.put(error)
        finally:
            pages.close()

    thread = threading.Thread(target=fetch, name="audit-prefetch", daemon=True)
    thread.start()
    try:
        while (page := ready.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        stop.set()
        while thread.is_alive():  # let it past a full queue to its end
            with suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()


def _sqlite_at(conn: Connection, row: tuple[Any, ...]) -> tuple[Any, ...]:
    """``row`` with a time SQLite did not hold in the stored form read as SQLAlchemy reads it."""
    parse = AuditEntry.__table__.c.at.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None)
    (stored,) = conn.connection.driver_connection.execute(
        "SELECT at FROM audit_log WHERE seq = ?", (row[0],)
    ).fetchone()
    return (*row[:_AT], iso_utc(parse(stored) if parse is not None else stored), *row[_AT + 1 :])


def entries(conn: Connection, *, after_seq: int = 0) -> Iterator[Entry]:
    """The stored entries in stored order (by ``seq``), page by page, as the chain sees them."""
    for page in _pages(conn, "entries", after_seq):
        for row in page:
            yield Entry(*(row if row[_AT] is not None else _sqlite_at(conn, row)))


def head(conn: Connection) -> tuple[int, str]:
    """The last entry's seq and hash ((0, GENESIS) for an empty trail)."""
    last = conn.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last is not None else (0, GENESIS)


def _hashed_pages(conn: Connection) -> Iterator[list[Hashed]]:
    """Every entry as ``first_break_hashed`` takes it, a page at a time.

    PostgreSQL sends the fields and they are put together here, on pages
    fetched ahead (``_prefetched``): its own JSON quoting (``to_json``) costs
    the server more than msgspec costs this process.  SQLite puts them
    together itself (``_select_hashed_sqlite``), in this process anyway, and
    for less than fetching the fields costs."""
    if conn.dialect.name == "postgresql":
        for page in _prefetched(_pages(conn, "entries", 0)):
            yield hashed_rows(page)
        return
    done = 0
    try:
        for page in _pages(conn, "hashed", 0):
            yield page
            done = page[-1][0]
    except sqlite3.OperationalError:  # a BLOB json_quote refuses; the rest from the fields
        for page in _pages(conn, "entries", done):
            yield hashed_rows(row if row[_AT] is not None else _sqlite_at(conn, row) for row in page)


def verify(conn: Connection) -> tuple[int, Break | None]:
    """How many entries were checked, and the first that does not fit (None: the chain holds)."""
    checked = 0

    def counted() -> Iterator[list[Hashed]]:
        nonlocal checked
        for page in _hashed_pages(conn):
            checked += len(page)
            yield page

    def recheck(seq: int) -> bytes:
        return canonical_entry(next(entries(conn, after_seq=seq - 1)))

    pages = counted()
    try:
        broken = first_break_hashed(concatenated.from_iterable(pages), recheck=recheck)
    finally:
        pages.close()  # the server-side cursor, before the next statement
    if broken is not None:  # the check stopped there: the count is of all of them
        checked = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    return int(checked), broken
