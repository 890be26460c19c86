"""Keeping the good items of a batch that holds a bad one.

A batch is refused whole by the contract decoder if any item is off.  But a
gateway re-sends the same batch until it is acknowledged, so one item a
gateway bug made invalid would stall its stream for ever, and every good
reading behind it would wait in the outbox until the outbox overflowed.  When
the envelope itself is sound, the items are decoded one by one instead: the
good ones are stored, each bad one goes to the dead letters verbatim (so
nothing is lost, and the range can be acknowledged).  A broken envelope (bad
JSON, wrong version, another gateway's id, items out of order, a last item
whose seq is not ``last_seq``) is refused whole: then nothing in it can be
trusted, least of all the range it asks to have acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta

from coldgate.contract.codec import MAX_PAYLOAD_BYTES, decode_item
from coldgate.contract.errors import ContractError
from coldgate.contract.ids import BootId, EpochMs, Id, Seq, StreamId
from coldgate.contract.items import Item
from coldgate.contract.topics import TopicInfo
from coldgate.contract.uplink import MAX_BATCH_ITEMS
from coldgate.contract.version import Version

__all__ = ["BadItem", "Salvaged", "salvage_batch"]


class _Envelope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``contract.uplink.Batch`` with its items left undecoded."""

    v: Version
    site: Id
    gateway: Id
    boot: BootId
    stream: StreamId
    first_seq: Seq
    last_seq: Seq
    sent: EpochMs
    items: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=MAX_BATCH_ITEMS)]


_DECODER = msgspec.json.Decoder(_Envelope)


class _SeqOnly(msgspec.Struct):
    """Just the seq of an item that may be invalid otherwise."""

    seq: int


_SEQ_DECODER = msgspec.json.Decoder(_SeqOnly)


@dataclass(frozen=True, slots=True)
class BadItem:
    index: int
    raw: bytes
    error: ContractError


@dataclass(frozen=True, slots=True)
class Salvaged:
    site: str
    gateway: str
    boot: str
    stream: str
    first_seq: int
    last_seq: int
    items: list[Item]
    bad: list[BadItem]


def salvage_batch(payload: bytes, info: TopicInfo) -> Salvaged | None:
    """The batch's good and bad items, or None when the envelope (or the order of seqs) is unsound."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        envelope = _DECODER.decode(payload)
    except (msgspec.MsgspecError, RecursionError, UnicodeError):
        return None
    if envelope.site != info.site or envelope.gateway != info.gateway:
        return None
    if envelope.first_seq > envelope.last_seq:
        return None
    good: list[Item] = []
    bad: list[BadItem] = []
    for index, raw in enumerate(envelope.items):
        try:
            good.append(decode_item(raw))
        except ContractError as exc:
            path = "$.items[" + str(index) + "]" + exc.path[1:]
            bad.append(BadItem(index, bytes(raw), ContractError(path, exc.reason)))
    # The batch claims first_seq..last_seq for acknowledgement; that claim stands only if its last
    # item really is last_seq (the contract's rule), else one bad item could widen the range at will.
    try:
        if _SEQ_DECODER.decode(envelope.items[-1]).seq != envelope.last_seq:
            return None
    except (msgspec.MsgspecError, RecursionError, UnicodeError):
        return None
    previous = envelope.first_seq - 1
    for item in good:
        if not previous < item.seq <= envelope.last_seq:
            return None
        previous = item.seq
    return Salvaged(
        site=envelope.site,
        gateway=envelope.gateway,
        boot=envelope.boot,
        stream=envelope.stream,
        first_seq=envelope.first_seq,
        last_seq=envelope.last_seq,
        items=good,
        bad=bad,
    )
