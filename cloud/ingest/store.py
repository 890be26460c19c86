"""One MQTT message into the database, inside the caller's transaction.

This is ingest without the network: the worker hands each message here and
commits, then acknowledges.  Whatever the payload, the outcome is either
stored data or a dead letter naming what is wrong and where; a
``ContractError`` never escapes.  Database errors do escape: the worker must
roll back and retry, since acknowledging then would lose the message.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from sqlalchemy import Connection, insert

from cloud.db.models import DeadLetter
from cloud.db.writes import insert_new
from cloud.ingest.clock_correction import correct_batch, record_anchor
from cloud.ingest.conflicts import find_conflicts
from cloud.ingest.coverage import advance_coverage
from cloud.ingest.registry import apply_status, note_sensors, touch_gateway
from cloud.ingest.salvage import salvage_batch
from contract.codec import decode, encode
from contract.errors import ContractError
from contract.items import Item
from contract.items import Reading as ReadingItem
from contract.topics import BATCH, STATUS, TopicInfo, parse_topic
from contract.uplink import Batch, Status

__all__ = ["AckDue", "Outcome", "dead_letter", "store_message"]


@dataclass(frozen=True, slots=True)
class AckDue:
    """An ack the worker publishes after the commit."""

    site: str
    gateway: str
    stream: str
    seq: int


@dataclass(slots=True)
class Outcome:
    """What one message did; the worker sums these for its statistics."""

    kind: str  # "batch", "status" or "dead_letter"
    new: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    ack: AckDue | None = None
    gateway: str | None = None
    site: str | None = None
    #: Readings stored for the first time, for the optional time-series mirror.
    new_readings: list[ReadingItem] = field(default_factory=list)


def dead_letter(
    conn: Connection,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    now: datetime.datetime,
    gateway: str | None = None,
    path: str | None = None,
) -> None:
    """Keep a message (or one item of it) that could not be stored, verbatim, with why."""
    conn.execute(
        insert(DeadLetter).values(
            received_at=now, topic=topic, payload=bytes(payload), reason=reason, gateway=gateway, path=path
        )
    )


def store_message(
    conn: Connection, topic: str, payload: bytes, now: datetime.datetime, *, retained: bool = False
) -> Outcome:
    """Store one up-link message, or dead-letter it; raises only database errors.

    ``retained``: the broker's stored copy of a status, not news from the gateway.
    """
    try:
        info = parse_topic(topic)
    except ContractError as exc:
        dead_letter(conn, topic=topic, payload=payload, reason=exc.reason, now=now, path=exc.path)
        return Outcome("dead_letter", dead_letters=1)
    if info.name == STATUS.name:
        return _store_status(conn, info, topic, payload, now, retained)
    if info.name == BATCH.name:
        return _store_batch(conn, info, topic, payload, now)
    dead_letter(
        conn,
        topic=topic,
        payload=payload,
        reason=f"{info.name} is a down-link message; gateways may not publish it",
        now=now,
        gateway=info.gateway,
        path="$",
    )
    return Outcome("dead_letter", dead_letters=1, gateway=info.gateway, site=info.site)


def _store_status(
    conn: Connection, info: TopicInfo, topic: str, payload: bytes, now: datetime.datetime, retained: bool
) -> Outcome:
    try:
        status = decode(payload, Status, topic)
    except ContractError as exc:
        dead_letter(
            conn,
            topic=topic,
            payload=payload,
            reason=exc.reason,
            now=now,
            gateway=info.gateway,
            path=exc.path,
        )
        return Outcome("dead_letter", dead_letters=1, gateway=info.gateway, site=info.site)
    apply_status(conn, info.site, status, now, retained=retained)
    clock = status.clock
    if clock is not None and clock.synced and clock.mono is not None:
        record_anchor(conn, status.gateway, status.boot, (clock.mono, status.ts), "status", now)
    return Outcome("status", gateway=info.gateway, site=info.site)


def _store_batch(
    conn: Connection, info: TopicInfo, topic: str, payload: bytes, now: datetime.datetime
) -> Outcome:
    outcome = Outcome("batch", gateway=info.gateway, site=info.site)
    try:
        batch = decode(payload, Batch, topic)
    except ContractError as exc:
        salvaged = salvage_batch(payload, info)
        if salvaged is None or not salvaged.bad:
            dead_letter(
                conn,
                topic=topic,
                payload=payload,
                reason=exc.reason,
                now=now,
                gateway=info.gateway,
                path=exc.path,
            )
            outcome.kind = "dead_letter"
            outcome.dead_letters = 1
            return outcome
        stream, first_seq, last_seq, items = (
            salvaged.stream,
            salvaged.first_seq,
            salvaged.last_seq,
            salvaged.items,
        )
        for bad in salvaged.bad:
            reason = f"item of batch {stream} {first_seq}..{last_seq} refused: {bad.error.reason}"
            dead_letter(
                conn,
                topic=topic,
                payload=bad.raw,
                reason=reason,
                now=now,
                gateway=info.gateway,
                path=bad.error.path,
            )
        outcome.dead_letters += len(salvaged.bad)
    else:
        stream, first_seq, last_seq, items = batch.stream, batch.first_seq, batch.last_seq, batch.items
    gateway = info.gateway
    touch_gateway(conn, info.site, gateway, now)
    if items:
        _store_items(conn, outcome, topic, gateway, stream, items, now)
    covered = advance_coverage(
        conn, site=info.site, gateway=gateway, stream=stream, first_seq=first_seq, last_seq=last_seq, now=now
    )
    if covered > 0:
        outcome.ack = AckDue(info.site, gateway, stream, covered)
    return outcome


def _store_items(
    conn: Connection,
    outcome: Outcome,
    topic: str,
    gateway: str,
    stream: str,
    items: list[Item],
    now: datetime.datetime,
) -> None:
    corrections = correct_batch(conn, gateway, items, now)
    new = insert_new(conn, gateway, stream, items, corrections)
    outcome.new += len(new)
    repeated = [item for item in items if item.seq not in new]
    outcome.duplicates += len(repeated)
    if repeated:
        for item, fields in find_conflicts(conn, gateway, stream, repeated):
            reason = (
                f"conflict: ({gateway}, {stream}, {item.seq}) is stored with other content "
                f"(differs in {', '.join(fields)}); the stored item is kept"
            )
            path = f"$.items[seq={item.seq}]"
            dead_letter(
                conn, topic=topic, payload=encode(item), reason=reason, now=now, gateway=gateway, path=path
            )
            outcome.conflicts += 1
            outcome.dead_letters += 1
        outcome.duplicates -= outcome.conflicts
    fresh = [item for item in items if isinstance(item, ReadingItem) and item.seq in new]
    if fresh:
        note_sensors(conn, gateway, (item.sensor for item in fresh))
        outcome.new_readings = fresh
