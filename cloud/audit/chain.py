"""The audit trail's hash chain, pure: what an entry hashes to, and the first entry that does not fit.

Each entry's hash is SHA-256 over the canonical JSON (RFC 8785) of the
entry with the previous entry's hash in it, so
the same entry hashes the same on SQLite and PostgreSQL, whatever the driver
or time zone: every field is text, an integer or JSON, and times are written
as UTC ISO 8601 with microseconds before they are hashed.  Changing,
removing, inserting or reordering an entry breaks the chain at that entry;
rewriting the whole tail consistently does not, which is what the
checkpoints outside the database are for.

The canonical bytes are put together here rather than by the ``rfc8785``
package, which is 5x slower than a 1,000,000-entry check can afford: the
keys are fixed (so their order is), ``before`` and ``after`` are stored as
the canonical JSON ``rfc8785`` made of them when they were written, and
msgspec writes strings and integers exactly as RFC 8785 does (a property
test holds the two to each other: ``tests/test_audit_chain.py``).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import rfc8785

__all__ = [
    "GENESIS",
    "Break",
    "Entry",
    "canonical_entry",
    "canonical_json",
    "entry_hash",
    "first_break",
    "iso_utc",
]

#: The previous hash of the first entry.
GENESIS = "0" * 64


_NO_OFFSET = datetime.timedelta(0)


def iso_utc(moment: datetime.datetime) -> str:
    """``moment`` as hashed and shown: UTC, microseconds, ``Z`` (naive means UTC, as SQLite returns it)."""
    offset = moment.utcoffset()
    if offset is not None and offset != _NO_OFFSET:
        moment = moment.astimezone(datetime.UTC)
    # The first 26 characters are the date and time to the microsecond, with or without an offset.
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def canonical_json(value: Any) -> str | None:
    """``value`` as RFC 8785 canonical JSON text, as ``before``/``after`` are stored (None: nothing)."""
    if value is None:
        return None
    return rfc8785.dumps(msgspec.to_builtins(value)).decode()


class Entry(msgspec.Struct, frozen=True):
    """One audit entry as stored; ``before``/``after`` are canonical JSON text (None: nothing).

    A msgspec struct, not a dataclass: a check builds one per entry, millions of them."""

    seq: int
    at: str  # iso_utc
    actor_id: str | None
    actor_name: str
    action: str
    entity_type: str
    entity_id: str
    before: str | None
    after: str | None
    reason: str | None
    request_id: str | None
    client: str | None
    prev_hash: str
    hash: str = ""

    def hashed_fields(self) -> dict[str, Any]:
        """The entry as the JSON object whose canonical form is hashed (its own hash left out)."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "before": None if self.before is None else msgspec.json.decode(self.before),
            "after": None if self.after is None else msgspec.json.decode(self.after),
            "reason": self.reason,
            "request_id": self.request_id,
            "client": self.client,
            "prev_hash": self.prev_hash,
        }


_encode = msgspec.json.encode


def _text(value: str | None) -> bytes:
    return b"null" if value is None else _encode(value)


def canonical_entry(entry: Entry) -> bytes:
    """RFC 8785 canonical JSON of ``hashed_fields()``, put together directly (keys in sorted order)."""
    return b"".join(
        (
            b'{"action":', _encode(entry.action),
            b',"actor_id":', _text(entry.actor_id),
            b',"actor_name":', _encode(entry.actor_name),
            b',"after":', b"null" if entry.after is None else entry.after.encode(),
            b',"at":', _encode(entry.at),
            b',"before":', b"null" if entry.before is None else entry.before.encode(),
            b',"client":', _text(entry.client),
            b',"entity_id":', _encode(entry.entity_id),
            b',"entity_type":', _encode(entry.entity_type),
            b',"prev_hash":', _encode(entry.prev_hash),
            b',"reason":', _text(entry.reason),
            b',"request_id":', _text(entry.request_id),
            b',"seq":', _encode(entry.seq),
            b"}",
        )
    )  # fmt: skip


def entry_hash(entry: Entry) -> str:
    """SHA-256 (hex) of the entry's canonical JSON, its previous hash included, its own hash not."""
    return hashlib.sha256(canonical_entry(entry)).hexdigest()


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain stops fitting, and how."""

    seq: int
    why: str


def first_break(entries: Iterable[Entry], *, after_seq: int = 0, after_hash: str = GENESIS) -> Break | None:
    """The first entry (in stored order) that does not fit the chain; None when all do.

    ``after_seq``/``after_hash``: where a check that does not start at the
    first entry picks the chain up.  Detects an edited entry (its hash is not
    what it holds), a removed or inserted one (a gap or a repeat in the
    numbering, or a previous hash that is not the last one's), and two
    swapped ones (numbering out of order).
    """
    expected_seq, previous = after_seq + 1, after_hash
    for entry in entries:
        if entry.seq != expected_seq:
            what = "missing" if entry.seq > expected_seq else "out of order or repeated"
            why = f"expected entry {expected_seq} here, found {entry.seq}: an entry is {what}"
            return Break(entry.seq, why)
        if entry.prev_hash != previous:
            return Break(entry.seq, "its previous hash is not the hash of the entry before it")
        actual = entry_hash(entry)
        if entry.hash != actual:
            return Break(entry.seq, "its content does not match its hash: it was changed after writing")
        expected_seq, previous = entry.seq + 1, entry.hash
    return None
