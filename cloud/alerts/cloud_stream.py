"""The rows the cloud writes itself (stream ``cloud``), pure half: their identity and times.

Every watch records what it decides as contract items (gaps, alerts) in the
gateway's tables, beside the edge's own items, so they need an item identity
that can never be taken for one the gateway sent.  Kept apart from any one
watch so that each pair (``gateway_unheard``, ``stream_stuck``) depends only
on this, not on the other.  The database half (numbering, locking,
retrying) is :mod:`coldgate.cloud.alerts.cloud_stream_watch`.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

__all__ = ["CLOUD_BOOT", "CLOUD_STREAM", "cloud_item_fields", "epoch_ms", "utc"]

UTC = datetime.UTC

#: Stream and boot of every row the cloud makes itself: no gateway stream or boot id looks like this
#: (they are lowercase hex), so these rows can never collide with, or be mistaken for, edge items.
CLOUD_STREAM = "cloud"
CLOUD_BOOT = "cloud"


def utc(moment: datetime.datetime) -> datetime.datetime:
    """Aware UTC; a naive time is taken as UTC, since SQLite hands back stored times without offset."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_ms(moment: datetime.datetime) -> int:
    """Epoch milliseconds, the unit of every gap and item time in the contract."""
    return math.floor(utc(moment).timestamp() * 1000)


def cloud_item_fields(seq: int, now: datetime.datetime) -> dict[str, Any]:
    """The item fields of a row the cloud makes itself (stream ``cloud``), numbered ``seq``."""
    return {"seq": seq, "ts": epoch_ms(now), "boot": CLOUD_BOOT, "mono": 0, "synced": True}
