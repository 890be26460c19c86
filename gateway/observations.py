"""What sources and rules hand to the outbox: contract items not yet numbered.

The gateway's records *are* the wire contract's items (``contract.items``); a
second, internal type per item would only be copied field by field.  Until the
outbox commits an item it has no sequence number, so sources and rules build
items with ``seq = UNSEQUENCED`` and the outbox gives each its durable number
(``msgspec.structs.replace(item, seq=n)``) and validates it.  ``ts`` is when
the thing was observed (the poll, the passage), not when it was stored.
"""

from __future__ import annotations

from typing import Protocol

from coldgate.contract.items import Item
from coldgate.gateway.clock import Stamp

UNSEQUENCED = 0


def stamp_fields(stamp: Stamp) -> dict[str, object]:
    """The common item fields (``contract.items.ItemBase``) for an observation at ``stamp``."""
    return {
        "seq": UNSEQUENCED,
        "ts": stamp.wall_ms,
        "boot": stamp.boot,
        "mono": stamp.mono_ms,
        "synced": stamp.synced,
    }


class Sink(Protocol):
    """Where observations go: the durable outbox in production, a list in a test.

    ``put`` must not block the event loop for long; a sink that needs I/O does
    it in batches on its own schedule.
    """

    def put(self, item: Item) -> None: ...
