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
test holds the two to each other: ``tests/test_audit_chain.py``).  One
msgspec call writes a whole entry (``_Canonical``: a struct whose fields are
the keys in order).  An append on PostgreSQL has the database hash the
entry, on the head it reads in the same statement (``hash_parts``), and
``audit verify`` may take bytes put together elsewhere, rebuilding here
only those that do not hash (``first_break_hashed``).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
import rfc8785

__all__ = [
    "GENESIS",
    "Break",
    "Entry",
    "Hashed",
    "canonical_entry",
    "canonical_json",
    "entry_hash",
    "first_break",
    "first_break_hashed",
    "hash_parts",
    "hashed_rows",
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


_INT_MIN, _INT_MAX = -(2**53) + 1, 2**53 - 1


def _plain(value: Any) -> bool:
    """True when msgspec writes ``value`` exactly as RFC 8785 does (sorted keys included).

    That holds for strings, booleans, null, integers JSON can hold exactly,
    and arrays and objects of them whose keys are ASCII (RFC 8785 sorts keys
    by UTF-16 code units, msgspec by code points: the two agree on ASCII).
    Floats are not plain: RFC 8785 writes them as ECMAScript does, not as
    Python or msgspec do.
    """
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is int:
        return _INT_MIN <= value <= _INT_MAX
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    return False


def canonical_json(value: Any) -> str | None:
    """``value`` as RFC 8785 canonical JSON text, as ``before``/``after`` are stored (None: nothing).

    Every audited write makes one or two of these: the common shapes (see
    ``_plain``) are written by msgspec, ~30x faster than ``rfc8785``, which
    keeps the rest (floats, non-ASCII keys, and what it refuses)."""
    if value is None:
        return None
    builtins = msgspec.to_builtins(value)
    if _plain(builtins):
        try:
            return _encode_sorted(builtins).decode()
        except UnicodeEncodeError:  # a lone surrogate: rfc8785 says what is wrong with it
            pass
    return rfc8785.dumps(builtins).decode()


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


class _Canonical(msgspec.Struct, array_like=False):
    """``Entry.hashed_fields()`` in RFC 8785 key order: msgspec writes it as the canonical JSON in one call.

    ``before``/``after`` are ``msgspec.Raw`` (already canonical JSON, written
    as they are) or None; the other fields are strings, null and one integer,
    which msgspec writes as RFC 8785 does.  Its field names are the JSON keys."""

    action: str
    actor_id: str | None
    actor_name: str
    after: msgspec.Raw | None
    at: str
    before: msgspec.Raw | None
    client: str | None
    entity_id: str
    entity_type: str
    prev_hash: str
    reason: str | None
    request_id: str | None
    seq: int


_encode = msgspec.json.Encoder().encode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_Raw = msgspec.Raw
_sha256 = hashlib.sha256


def canonical_entry(entry: Entry) -> bytes:
    """RFC 8785 canonical JSON of ``hashed_fields()``, put together directly (keys in sorted order)."""
    before, after = entry.before, entry.after
    return _encode(
        _Canonical(
            entry.action, entry.actor_id, entry.actor_name, None if after is None else _Raw(after), entry.at,
            None if before is None else _Raw(before), entry.client, entry.entity_id, entry.entity_type,
            entry.prev_hash, entry.reason, entry.request_id, entry.seq,
        )
    )  # fmt: skip


class _Front(msgspec.Struct):
    """The canonical fields that sort before ``prev_hash``, for ``hash_parts``."""

    action: str
    actor_id: str | None
    actor_name: str
    after: msgspec.Raw | None
    at: str
    before: msgspec.Raw | None
    client: str | None
    entity_id: str
    entity_type: str


class _Back(msgspec.Struct):
    """The canonical fields between ``prev_hash`` and ``seq``, for ``hash_parts``."""

    reason: str | None
    request_id: str | None


def hash_parts(entry: Entry) -> tuple[bytes, bytes]:
    """The canonical bytes of ``entry`` around its previous hash and its number, which the database fills in.

    ``front + prev_hash + back + str(seq) + "}"`` is ``canonical_entry`` of
    the entry with that ``prev_hash`` and ``seq``: ``prev_hash`` and ``seq``
    are the last two keys (``reason``/``request_id`` between them), so an
    append can have PostgreSQL hash the entry on the head it reads, in the
    statement that inserts it."""
    before, after = entry.before, entry.after
    front = _encode(
        _Front(
            entry.action, entry.actor_id, entry.actor_name, None if after is None else _Raw(after), entry.at,
            None if before is None else _Raw(before), entry.client, entry.entity_id, entry.entity_type,
        )
    )  # fmt: skip
    back = _encode(_Back(entry.reason, entry.request_id))
    return front[:-1] + b',"prev_hash":"', b'",' + back[1:-1] + b',"seq":'


def entry_hash(entry: Entry) -> str:
    """SHA-256 (hex) of the entry's canonical JSON, its previous hash included, its own hash not."""
    return _sha256(canonical_entry(entry)).hexdigest()


@dataclass(frozen=True, slots=True)
class Break:
    """Where the chain stops fitting, and how."""

    seq: int
    why: str


#: An entry as the chain check takes it: its number, previous hash and stored hash, and the canonical bytes
#: that should hash to it (None: none to offer, ask ``recheck``).
Hashed = tuple[int, str, str, bytes | None]


def hashed_rows(rows: Iterable[tuple[Any, ...]]) -> list[Hashed]:
    """Rows of an entry's fields in ``Entry``'s field order (``at`` as ``iso_utc`` text, the hash last) as
    ``first_break_hashed`` takes them: ``canonical_entry`` without an ``Entry`` each, for ``audit verify``."""
    canonical, raw, encode = _Canonical, _Raw, _encode
    return [
        (seq, prev_hash, digest, encode(canonical(
            action, actor_id, actor_name, None if after is None else raw(after), at,
            None if before is None else raw(before), client, entity_id, entity_type, prev_hash, reason,
            request_id, seq,
        )))
        for (seq, at, actor_id, actor_name, action, entity_type, entity_id, before, after, reason, request_id,
             client, prev_hash, digest) in rows
    ]  # fmt: skip


def first_break(entries: Iterable[Entry], *, after_seq: int = 0, after_hash: str = GENESIS) -> Break | None:
    """The first entry (in stored order) that does not fit the chain; None when all do.

    ``after_seq``/``after_hash``: where a check that does not start at the
    first entry picks the chain up.  Detects an edited entry (its hash is not
    what it holds), a removed or inserted one (a gap or a repeat in the
    numbering, or a previous hash that is not the last one's), and two
    swapped ones (numbering out of order).
    """
    hashed = ((e.seq, e.prev_hash, e.hash, canonical_entry(e)) for e in entries)
    return first_break_hashed(hashed, after_seq=after_seq, after_hash=after_hash)


def first_break_hashed(
    entries: Iterable[Hashed],
    *,
    after_seq: int = 0,
    after_hash: str = GENESIS,
    recheck: Callable[[int], bytes] | None = None,
) -> Break | None:
    """``first_break`` over entries whose canonical bytes someone else put together (``Hashed``).

    ``audit verify`` has the database assemble them (``log.verify``), which
    spares it building each of a million entries here.  Bytes that do not
    hash to the stored hash are not taken as the verdict when ``recheck`` is
    given: ``recheck(seq)`` returns ``canonical_entry`` of that entry, built
    here from its stored fields, and that decides.  So whoever assembled the
    bytes can make the check slower, never change what it finds.
    """
    expected_seq, previous, sha256 = after_seq + 1, after_hash, _sha256
    for seq, prev_hash, digest, canonical in entries:
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "out of order or repeated"
            why = f"expected entry {expected_seq} here, found {seq}: an entry is {what}"
            return Break(seq, why)
        if prev_hash != previous:
            return Break(seq, "its previous hash is not the hash of the entry before it")
        if canonical is None or sha256(canonical).hexdigest() != digest:
            if recheck is None or sha256(recheck(seq)).hexdigest() != digest:
                return Break(seq, "its content does not match its hash: it was changed after writing")
        expected_seq, previous = seq + 1, digest
    return None
