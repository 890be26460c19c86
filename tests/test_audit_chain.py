"""The audit chain's canonical bytes, put together by hand for speed, are RFC 8785's exactly."""

from __future__ import annotations

import hashlib

import msgspec
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
