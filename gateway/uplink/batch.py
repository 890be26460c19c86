"""The Batch message around stored items, without decoding and re-encoding them.

The outbox keeps every item as the JSON it validated on ``put``; wrapping
those bytes as ``msgspec.Raw`` in a struct with the fields of
``contract.Batch`` (same names, same order) produces exactly what encoding a
``Batch`` would, at a fraction of the cost on a Pi.  The size cap is applied
to the whole payload: the outbox limits the items' bytes, so the envelope and
the commas between items are reserved here.
"""

from __future__ import annotations

import msgspec

from coldgate.contract.codec import encode
from coldgate.contract.version import CONTRACT_VERSION
from coldgate.gateway.buffer.outbox import Chunk

#: Every item is at least ~100 bytes (kind, seq, ts, 32-hex boot, mono, synced), so the commas
#: between items take at most 1 % of the items' bytes.
_COMMA_SHARE = 100


class _Batch(msgspec.Struct, kw_only=True):
    """``contract.Batch`` with items as raw JSON; field order must stay the contract's."""

    v: int
    site: str
    gateway: str
    boot: str
    stream: str
    first_seq: int
    last_seq: int
    sent: int
    items: list[msgspec.Raw]


class BatchEncoder:
    """Builds Batch payloads for one gateway and one outbox stream within ``max_bytes``."""

    def __init__(self, *, site: str, gateway: str, stream: str, max_bytes: int) -> None:
        self.site = site
        self.gateway = gateway
        self.stream = stream
        self.max_bytes = max_bytes
        widest = _Batch(
            v=CONTRACT_VERSION,
            site=site,
            gateway=gateway,
            boot="0" * 32,
            stream=stream,
            first_seq=2**63 - 1,
            last_seq=2**63 - 1,
            sent=2**63 - 1,
            items=[],
        )
        self.envelope_bytes = len(encode(widest))

    @property
    def items_max_bytes(self) -> int:
        """What to ask the outbox for: the cap less the envelope and the commas."""
        room = self.max_bytes - self.envelope_bytes
        return max(1, room - room // _COMMA_SHARE)

    def encode(self, chunk: Chunk, *, boot: str, sent_ms: int) -> bytes:
        batch = _Batch(
            v=CONTRACT_VERSION,
            site=self.site,
            gateway=self.gateway,
            boot=boot,
            stream=self.stream,
            first_seq=chunk.first_seq,
            last_seq=chunk.last_seq,
            sent=sent_ms,
            items=[msgspec.Raw(item) for item in chunk.items],
        )
        return encode(batch)
