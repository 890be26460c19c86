"""Every contract message survives encode -> decode unchanged."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract import (
    ITEM_TYPES,
    MESSAGE_TYPES,
    Batch,
    Scan,
    decode,
    decode_item,
    decode_topic,
    encode,
    examples,
    topics,
    validate,
)
from tests.rig.strategies import for_struct, items

pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_every_message_round_trips(name, data):
    type_ = MESSAGE_TYPES[name]
    msg = data.draw(for_struct(type_))
    assert decode(encode(msg), type_) == msg


@pytest.mark.parametrize("type_", ITEM_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_item_round_trips_alone(type_, data):
    item = data.draw(for_struct(type_))
    assert decode_item(encode(item)) == item
    assert validate(item) == item


@settings(max_examples=40, deadline=None)
@given(st.lists(items(), min_size=1, max_size=12), st.integers(1, 10**12))
def test_batches_of_mixed_items_round_trip_on_their_topic(batch_items, first):
    renumbered = [msgspec.structs.replace(item, seq=first + 2 * i) for i, item in enumerate(batch_items)]
    batch = Batch(
        v=1,
        site="s1",
        gateway="gw-7",
        boot="0123abcd",
        stream="89abcdef",
        first_seq=first,
        last_seq=renumbered[-1].seq,
        sent=0,
        items=renumbered,
    )
    info, decoded = decode_topic(topics.batch_topic("s1", "gw-7"), encode(batch))
    assert (info.site, info.gateway, info.name) == ("s1", "gw-7", "batch")
    assert decoded == batch


@pytest.mark.parametrize("name", sorted(examples.MESSAGES))
def test_examples_are_valid_and_decode_on_their_topic(name):
    msg = examples.MESSAGES[name]
    assert validate(msg) == msg
    topic = topics.topic(examples.SITE, examples.GATEWAY, name)
    info, decoded = decode_topic(topic, encode(msg))
    assert decoded == msg and info.spec.name == name


@pytest.mark.parametrize("item", [*examples.ITEMS.values(), examples.READING_ERROR])
def test_item_examples_are_valid(item):
    assert validate(item) == item


def test_last_will_is_minimal():
    assert msgspec.json.decode(encode(examples.STATUS_WILL)).keys() == {
        "v",
        "site",
        "gateway",
        "boot",
        "ts",
        "state",
        "will",
    }


def test_defaults_are_left_out_of_the_payload():
    assert b"quality" not in encode(examples.READING)
    assert b'"errors"' not in encode(examples.SCAN)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_scan_raw_keeps_any_bytes(raw):
    scan = msgspec.structs.replace(examples.SCAN, raw=raw.decode("latin-1"))
    assert decode_item(encode(scan)).raw_bytes() == raw  # type: ignore[union-attr]
    assert isinstance(scan, Scan)


def test_str_and_memoryview_payloads_decode_too():
    data = encode(examples.ACK)
    assert decode(data.decode(), type(examples.ACK)) == examples.ACK
    assert decode(memoryview(data), type(examples.ACK)) == examples.ACK
