"""Wall times for items stamped before the gateway's clock was synchronised.

A Pi without a real-time clock boots with a wrong wall clock until NTP
answers; items it stamps meanwhile carry ``synced = false``.  Their ``mono``
(CLOCK_BOOTTIME, ms since boot) is still right, so once any synchronised
(mono, ts) pair from the same boot arrives, every unsynchronised item of that
boot can be placed: ``anchor.ts + (item.mono - anchor.mono)``.  The original
``ts`` is evidence and is never changed; the correction goes into
``ts_corrected`` beside it.

The first anchor of a boot wins; later ones would only differ by NTP slew.
An anchor arriving after the items (the usual case: the clock syncs minutes
after boot) corrects the stored readings in one UPDATE over the index of
unsynchronised readings.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db import reading_hours
from coldgate.cloud.db.models import BootAnchor, Reading
from coldgate.contract.items import Item
from coldgate.contract.items import Reading as ReadingItem

__all__ = ["Anchor", "anchors_in", "correct_batch", "corrected_ts", "record_anchor"]

#: (mono, ts) of a synchronised moment of one boot.
Anchor = tuple[int, int]


def corrected_ts(anchor: Anchor, mono: int) -> int:
    """The wall time at ``mono`` of the boot that ``anchor`` belongs to."""
    anchor_mono, anchor_ts = anchor
    return anchor_ts + (mono - anchor_mono)


def anchors_in(items: Iterable[Item]) -> dict[str, Anchor]:
    """The first synchronised (mono, ts) of each boot among ``items``."""
    found: dict[str, Anchor] = {}
    for item in items:
        if item.synced and item.boot not in found:
            found[item.boot] = (item.mono, item.ts)
    return found


def record_anchor(
    conn: Connection, gateway: str, boot: str, anchor: Anchor, source: str, now: datetime.datetime
) -> Anchor:
    """Store ``anchor`` unless the boot has one; correct that boot's stored readings if it is new.

    Returns the anchor in force for the boot.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(BootAnchor)
        .values(gateway=gateway, boot=boot, mono=anchor[0], ts=anchor[1], source=source, received_at=now)
        .on_conflict_do_nothing()
        .returning(BootAnchor.boot)
    )
    if conn.execute(stmt).first() is None:
        stored = conn.execute(
            select(BootAnchor.mono, BootAnchor.ts).where(
                BootAnchor.gateway == gateway, BootAnchor.boot == boot
            )
        ).one()
        return (stored.mono, stored.ts)
    moved = conn.execute(
        update(Reading)
        .where(
            Reading.gateway == gateway,
            Reading.boot == boot,
            Reading.synced.is_(False),
            Reading.ts_corrected.is_(None),
        )
        .values(ts_corrected=anchor[1] + (Reading.mono - anchor[0]))
        .returning(Reading.sensor, Reading.quantity, Reading.ts, Reading.ts_corrected)
    ).all()
    # The summaries follow the readings to their corrected hours (the series selects by that time).
    reading_hours.recompute(
        conn, gateway, [(r.sensor, r.quantity, t) for r in moved for t in (r.ts, r.ts_corrected)]
    )
    return anchor


def correct_batch(
    conn: Connection,
    gateway: str,
    items: Sequence[Item],
    now: datetime.datetime,
    anchored: set[tuple[str, str]] | None = None,
) -> dict[int, int]:
    """Record the batch's anchors and return ``seq -> ts_corrected`` for its unsynced readings.

    ``anchored``: (gateway, boot) pairs already anchored in this transaction, skipped (and added to).
    """
    for boot, anchor in anchors_in(items).items():
        if anchored is not None:
            if (gateway, boot) in anchored:
                continue
            anchored.add((gateway, boot))
        record_anchor(conn, gateway, boot, anchor, "item", now)
    boots = {item.boot for item in items if not item.synced and isinstance(item, ReadingItem)}
    if not boots:
        return {}
    anchors = {
        row.boot: (row.mono, row.ts)
        for row in conn.execute(
            select(BootAnchor.boot, BootAnchor.mono, BootAnchor.ts).where(
                BootAnchor.gateway == gateway, BootAnchor.boot.in_(boots)
            )
        )
    }
    return {
        item.seq: corrected_ts(anchors[item.boot], item.mono)
        for item in items
        if not item.synced and isinstance(item, ReadingItem) and item.boot in anchors
    }
