"""The audit chain's canonical bytes, put together by hand for speed (here, in pieces around what the database
fills in, or by the database), are RFC 8785's exactly."""

from __future__ import annotations

import hashlib

import msgspec
import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.audit.chain import (
    GENESIS,
    Entry,
    canonical_entry,
    canonical_json,
    entry_hash,
    first_break,
    first_break_hashed,
    hash_parts,
    hashed_rows,
)

_text = st.text(max_size=40)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(-(2.0**53) + 1, 2.0**53 - 1, allow_nan=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    maybe = st.none() | _text
    return Entry(
        seq=draw(st.integers(1, 2**53 - 1)),
        at=draw(_text),
        actor_id=draw(maybe),
        actor_name=draw(_text),
        action=draw(_text),
        entity_type=draw(_text),
        entity_id=draw(_text),
        before=canonical_json(draw(_json)),
        after=canonical_json(draw(_json)),
        reason=draw(maybe),
        request_id=draw(maybe),
        client=draw(maybe),
        prev_hash=draw(st.just(GENESIS) | st.text("0123456789abcdef", min_size=64, max_size=64)),
    )


@given(entries())
def test_the_fast_canonical_form_is_rfc8785(entry: Entry) -> None:
    assert canonical_entry(entry) == rfc8785.dumps(entry.hashed_fields())
    assert entry_hash(entry) == hashlib.sha256(rfc8785.dumps(entry.hashed_fields())).hexdigest()


@given(entries(), entries())
def test_a_chain_of_two_holds_and_any_change_breaks_it(first: Entry, second: Entry) -> None:
    first = msgspec.structs.replace(first, seq=1, prev_hash=GENESIS)
    first = msgspec.structs.replace(first, hash=entry_hash(first))
    second = msgspec.structs.replace(second, seq=2, prev_hash=first.hash)
    second = msgspec.structs.replace(second, hash=entry_hash(second))
    assert first_break([first, second]) is None
    changed = msgspec.structs.replace(second, reason=(second.reason or "") + "!")
    broken = first_break([first, changed])
    assert broken is not None and broken.seq == 2
    assert first_break([second, first]) is not None


_plain_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(_json | _plain_json)
def test_canonical_json_is_rfc8785_whichever_way_it_is_written(value: object) -> None:
    # msgspec writes the plain shapes, rfc8785 the rest (floats, non-ASCII keys): the text is the same.
    expected = None if value is None else rfc8785.dumps(value).decode()  # None: nothing, not "null"
    assert canonical_json(value) == expected


def test_canonical_json_refuses_what_rfc8785_refuses() -> None:
    for value in ({"n": 2**53}, {"s": "\ud800"}, {1: "x"}):
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json(value)


@given(entries(), st.integers(1, 2**53 - 1), st.text("0123456789abcdef", min_size=64, max_size=64))
def test_the_parts_the_database_hashes_around_are_canonical(entry: Entry, seq: int, prev: str) -> None:
    front, back = hash_parts(entry)
    whole = msgspec.structs.replace(entry, seq=seq, prev_hash=prev)
    assert front + prev.encode() + back + str(seq).encode() + b"}" == canonical_entry(whole)


@given(st.lists(entries(), min_size=1, max_size=5))
def test_rows_hash_as_their_entries(drawn: list[Entry]) -> None:
    rows = [tuple(getattr(e, name) for name in e.__struct_fields__) for e in drawn]
    assert [c for *_, c in hashed_rows(rows)] == [canonical_entry(e) for e in drawn]


def test_bytes_from_elsewhere_that_do_not_hash_are_rechecked_before_they_break_the_chain() -> None:
    chain, previous = [], GENESIS
    for seq in (1, 2, 3):
        entry = Entry(seq=seq, at="2026-12-06T12:00:00.000000Z", actor_id=None, actor_name="a", action="x",
                      entity_type="t", entity_id=str(seq), before=None, after='{"a":1}', reason=None,
                      request_id=None, client=None, prev_hash=previous)  # fmt: skip
        entry = msgspec.structs.replace(entry, hash=entry_hash(entry))
        chain.append(entry)
        previous = entry.hash
    # Entry 2's bytes as a database might have put them together differently (or not at all: None).
    changed = msgspec.structs.replace(chain[1], reason="changed")
    for wrong in (b'{"something":"else"}', None):
        hashed = [(e.seq, e.prev_hash, e.hash, wrong if e.seq == 2 else canonical_entry(e)) for e in chain]
        assert first_break_hashed(hashed, recheck=lambda seq: canonical_entry(chain[seq - 1])) is None
        broken = first_break_hashed(hashed)
        assert broken is not None and broken.seq == 2 and "does not match its hash" in broken.why
        broken = first_break_hashed(hashed, recheck=lambda _seq: canonical_entry(changed))
        assert broken is not None and broken.seq == 2
