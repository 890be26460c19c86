"""What a dead letter keeps of its payload: all of what could be data, a prefix of garbage.

A dead letter exists so that a person can see what was refused and, once the
cause is fixed, replay it.  Only a JSON document within the contract's size
limit can ever become data again (a newer contract version, a fixed bug): it is
kept whole.  Anything else (bytes that are not JSON, or a payload over
``MAX_PAYLOAD_BYTES``) can never be replayed, and a client that sends megabytes
of it must not fill the database: only the first ``PREFIX_BYTES`` are kept,
with the size and the SHA-256 of the whole, which are enough to recognise it
again and to show an inspector what arrived.  Pure: the caller stores the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import msgspec

from coldgate.contract.codec import MAX_PAYLOAD_BYTES

__all__ = ["PREFIX_BYTES", "KeptPayload", "cut", "keep"]

#: Bytes of a non-replayable payload that are kept: a look at what it was, no more.
PREFIX_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class KeptPayload:
    data: bytes
    size: int  # of the whole payload as it arrived
    sha256: str  # of the whole payload
    truncated: bool

    def columns(self) -> dict[str, object]:
        """The ``dead_letters`` columns this fills."""
        return {"payload": self.data, "payload_size": self.size, "payload_sha256": self.sha256,
                "truncated": self.truncated}  # fmt: skip


def _could_be_data(payload: bytes) -> bool:
    if len(payload) > MAX_PAYLOAD_BYTES:
        return False
    try:
        msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def keep(payload: bytes) -> KeptPayload:
    """The payload to store: whole when it could become data, else its first ``PREFIX_BYTES``."""
    whole = hashlib.sha256(payload).hexdigest()
    if len(payload) <= PREFIX_BYTES or _could_be_data(payload):
        return KeptPayload(payload, len(payload), whole, truncated=False)
    return KeptPayload(payload[:PREFIX_BYTES], len(payload), whole, truncated=True)


def cut(payload: bytes) -> KeptPayload:
    """What is kept of a payload over the size limit: its first bytes, with the size and hash of the
    whole, taken as it arrives so that the whole need not be held while it waits."""
    return KeptPayload(
        payload[:PREFIX_BYTES], len(payload), hashlib.sha256(payload).hexdigest(), truncated=True
    )
