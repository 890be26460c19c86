"""The audit trail in the database: append an entry in the caller's transaction, read the chain back.

Every write of the application records itself here in the same transaction
as the change (``append``), so the two land together or not at all.
Entries are numbered ``max + 1``: on PostgreSQL a transaction-scoped advisory
lock makes appends queue instead of collide; on SQLite the database's single
writer does the same, and the unique ``seq`` catches anything that slips
through (the caller's transaction then fails and is retried or reported).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, func, insert, select, text

from coldgate.cloud.audit.chain import GENESIS, Break, Entry, canonical_json, entry_hash, first_break, iso_utc
from coldgate.cloud.db.models import AuditEntry

__all__ = ["SYSTEM", "Actor", "append", "entries", "head", "verify"]

#: Any 64-bit number, the same in every process: the advisory lock appends queue on.
_ADVISORY_KEY = 0x636F6C6467617465  # "coldgate"
_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a person (their user id and printed name) or a system component (no id), and,
    for a request to the API, which request and from where (the entry's request id and client)."""

    name: str
    id: str | None = None
    request_id: str | None = None
    client: str | None = None


SYSTEM = Actor("coldgate (system)")


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
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
    last_seq, previous = head(conn)
    seq = last_seq + 1
    before_text, after_text = canonical_json(before), canonical_json(after)
    entry = Entry(
        seq=seq,
        at=iso_utc(now),
        actor_id=actor.id,
        actor_name=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before_text,
        after=after_text,
        reason=reason,
        request_id=request_id,
        client=client,
        prev_hash=previous,
    )
    digest = entry_hash(entry)
    stored = msgspec.structs.replace(entry, hash=digest)
    conn.execute(insert(AuditEntry).values({**msgspec.structs.asdict(stored), "at": now}))
    return stored


def entries(conn: Connection, *, after_seq: int = 0) -> Iterator[Entry]:
    """The stored entries in stored order (by ``seq``), page by page, as the chain sees them."""
    table = AuditEntry.__table__
    columns = [table.c[name] for name in _COLUMNS]
    while True:
        query = select(*columns).where(table.c.seq > after_seq).order_by(table.c.seq).limit(_PAGE)
        rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield Entry(row[0], iso_utc(row[1]), *row[2:])
        after_seq = rows[-1][0]


#: The columns of an entry in ``Entry``'s field order (positional: the chain check reads millions).
_COLUMNS = (
    "seq", "at", "actor_id", "actor_name", "action", "entity_type", "entity_id", "before", "after", "reason",
    "request_id", "client", "prev_hash", "hash",
)  # fmt: skip


def head(conn: Connection) -> tuple[int, str]:
    """The last entry's seq and hash ((0, GENESIS) for an empty trail)."""
    last = conn.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return (last.seq, last.hash) if last is not None else (0, GENESIS)


def verify(conn: Connection) -> tuple[int, Break | None]:
    """How many entries were checked, and the first that does not fit (None: the chain holds)."""
    count = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    return int(count), first_break(entries(conn))
