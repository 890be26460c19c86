"""How far ahead of a stream ingest stores a batch: the sequence window.

Sequence numbers are the gateway's, and whoever stores a number first owns
it: an item published far ahead of the real stream (a forgery under stolen
credentials, a gateway restored from an old image) would take a number the
real gateway will use later, and the real item would then be the one refused.
So a batch is stored only if its first seq lies within ``window`` of the
highest of

- what the stream has covered (every seq up to it committed),
- ranges committed earlier in the same transaction that join it,
- the ``last_seq`` the gateway announced in its newest status (of any boot:
  a restarted gateway keeps its outbox and stream, and batches of the old
  boot may still be on their way);

and its last seq lies within ``window`` of the higher of that and the last
seq its items could fill without a gap: a one-item batch cannot declare a
range (as a thinned one does) that reaches far ahead.

A real gateway never runs ahead of its own announcement by more than
``ANNOUNCE_EVERY_ITEMS`` (it publishes a status as it numbers more), and its
in-flight backlog lies below the ``last_seq`` it announced at connect, so
express batches and re-sends fit.  A batch outside is refused, not held: the
real gateway re-sends whatever is not acknowledged, so nothing real is lost,
and a forgery never reaches the tables.  A forgery inside the window can
still take a number first; the real item is then a conflict, raised as an
alert for a person (``cloud/alerts/ingest_alerts.py``), not kept silently.

A real thinned batch spans more seqs than it has items, but it lies in the
backlog the gateway announced when it connected, so it passes too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select

from coldgate.cloud.db.models import Gateway, StreamCoverage

__all__ = ["AHEAD_REASON", "announced_seq", "covered_seq", "reach", "refusal"]

#: How the reason of a batch refused by the window begins: never replayable (the real gateway
#: re-sends its own items; what is refused here and never comes again was not the gateway's).
AHEAD_REASON = "ahead of the sequence window:"


def reach(covered: int, announced: int, joined: Iterable[tuple[int, int]]) -> int:
    """The seq a batch may start just after: the higher of ``covered`` and ``announced``,
    extended through the ranges of ``joined`` (committed in this transaction) that join it."""
    top = max(covered, announced)
    for low, high in sorted(joined):
        if low > top + 1:
            break
        top = max(top, high)
    return top


def refusal(
    first_seq: int, last_seq: int, items: int, top: int, window: int, *, covered: int, announced: int
) -> str | None:
    """Why a batch of ``items`` items over ``first_seq..last_seq`` is refused, or None when it is inside."""
    where = f"(covered {covered}, announced last_seq {announced}); a real gateway re-sends it in order"
    if first_seq > top + window:
        return f"{AHEAD_REASON} first_seq {first_seq} is more than {window} past {top} {where}"
    filled = max(top, first_seq - 1 + items)
    if last_seq > filled + window:
        return (
            f"{AHEAD_REASON} last_seq {last_seq} of {items} item(s) from first_seq {first_seq} is more "
            f"than {window} past {filled} {where}"
        )
    return None


def covered_seq(conn: Connection, gateway: str, stream: str) -> int:
    """The stream's covered seq (0: nothing yet)."""
    covered = conn.execute(
        select(StreamCoverage.covered).where(
            StreamCoverage.gateway == gateway, StreamCoverage.stream == stream
        )
    ).scalar()
    return int(covered or 0)


def announced_seq(conn: Connection, gateway: str) -> int:
    """The higher of ``last_seq`` and ``last_acked_seq`` in the gateway's newest status (0: none).

    Whatever its boot: a restart keeps the outbox and its stream.  A replaced
    SD card starts a new stream at 1, which the old stream's announcement can
    only widen for, never narrow.
    """
    status: Any = conn.execute(select(Gateway.last_status).where(Gateway.id == gateway)).scalar()
    if not isinstance(status, dict):
        return 0
    best = 0
    for key in ("last_seq", "last_acked_seq"):
        value = status.get(key)
        if isinstance(value, int) and value > best:
            best = value
    return best
