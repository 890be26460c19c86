"""Ingest one MQTT message into the database, inside the caller's transaction.

This is ingest without the network: the worker hands each message here and
commits, then acknowledges.  Whatever the payload, the outcome is either
stored data or a dead letter naming what is wrong and where; a
``ContractError`` never escapes.  Database errors do escape: the worker must
roll back and retry, since acknowledging then would lose the message.

Named for what it takes in, not "store": in the cloud that word is only the
verb (written to the database), and the gateway's outbox is its own thing.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.ingest.clock_correction import correct_batch, record_anchor
from coldgate.cloud.ingest.conflicts import find_conflicts
from coldgate.cloud.ingest.dead_letter_budget import Spent
from coldgate.cloud.ingest.dead_letters import (
    CONFLICT_REASON,
    ITEM_REASONS,
    dead_letter,
)
from coldgate.cloud.ingest.group import Group, Outcome
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.refusals import (
    not_enrolled,
    refuse_ahead,
    refuse_whole,
    report_conflicts,
)
from coldgate.cloud.ingest.registry import apply_status, note_sensors
from coldgate.cloud.ingest.salvage import salvage_batch
from coldgate.cloud.ingest.sequence_window import announced_seq, reach, refusal
from coldgate.contract.codec import decode, encode
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Item
from coldgate.contract.items import Reading as ReadingItem
from coldgate.contract.topics import BATCH, STATUS, TopicInfo, parse_topic
from coldgate.contract.uplink import Batch, Status

__all__ = ["batch_header", "ingest_message"]

log = logging.getLogger(__name__)


def ingest_message(
    conn: Connection,
    topic: str,
    payload: bytes,
    now: datetime.datetime,
    *,
    retained: bool = False,
    group: Group | None = None,
    item_by_item: bool = False,
    limits: IngestLimits | None = None,
    defer_ahead: bool = False,
    decoded: Batch | None = None,
) -> Outcome:
    """Ingest one up-link message: store what it carries, or dead-letter it; raises only database errors.

    ``retained``: the broker's stored copy of a status, not news from the
    gateway.  ``group``: the transaction's shared state; the caller then calls
    ``group.finish`` before committing and takes the acks from there.  Without
    one, the message is its own group and ``Outcome.ack`` is filled in.
    ``item_by_item``: store each item under a savepoint and dead-letter the
    ones the database refuses (a NUL character on PostgreSQL, say), so that
    one such item cannot stall its stream; slower, for retries only.
    ``limits``: the sequence window and dead-letter budget, when there is no ``group``.
    ``defer_ahead``: a batch beyond the sequence window writes nothing and comes back as
    kind "deferred", for the caller to try again shortly (``IngestWorker``): another worker may
    be committing the status or the batch that brings it inside.
    ``decoded``: the payload already decoded as a ``Batch`` (the worker decodes ahead, while the
    database works on the group before); anything else is decoded here.
    """
    if group is None:
        own = Group(limits=limits or IngestLimits())
        outcome = _ingest(conn, topic, payload, now, retained, own, item_by_item, defer_ahead, decoded)
        acks = own.finish(conn, now)
        if outcome.kind == "batch" and outcome.gateway is not None and acks:
            outcome.ack = next(iter(acks.values()))
        return outcome
    return _ingest(conn, topic, payload, now, retained, group, item_by_item, defer_ahead, decoded)


def _ingest(
    conn: Connection,
    topic: str,
    payload: bytes,
    now: datetime.datetime,
    retained: bool,
    group: Group,
    item_by_item: bool,
    defer_ahead: bool,
    decoded: Batch | None = None,
) -> Outcome:
    try:
        info = parse_topic(topic)
    except ContractError as exc:
        spent = dead_letter(
            conn,
            topic=topic,
            payload=payload,
            reason=exc.reason,
            now=now,
            path=exc.path,
            budget=group.limits.budget,
        )
        return Outcome("dead_letter", dead_letters=1, dead_letters_dropped=spent is not Spent.KEPT)
    admitted = group.admit(conn, info.gateway, info.site)
    if admitted.refused is not None:
        return not_enrolled(conn, info, topic, payload, admitted.refused, now, group)
    if info.name == STATUS.name:
        return _ingest_status(conn, info, topic, payload, now, retained, group)
    if info.name == BATCH.name:
        return _ingest_batch(conn, info, topic, payload, now, group, item_by_item, defer_ahead, decoded)
    reason = f"{info.name} is a down-link message; gateways may not publish it"
    return refuse_whole(conn, info, topic, payload, ContractError("$", reason), now, group)


def _ingest_status(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    now: datetime.datetime,
    retained: bool,
    group: Group,
) -> Outcome:
    try:
        status = decode(payload, Status, topic)
    except ContractError as exc:
        return refuse_whole(conn, info, topic, payload, exc, now, group)
    apply_status(conn, info.site, status, now, retained=retained)
    clock = status.clock
    if clock is not None and clock.synced and clock.mono is not None:
        record_anchor(conn, status.gateway, status.boot, (clock.mono, status.ts), "status", now)
    return Outcome("status", gateway=info.gateway, site=info.site)


def _ingest_batch(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    now: datetime.datetime,
    group: Group,
    item_by_item: bool,
    defer_ahead: bool,
    decoded: Batch | None = None,
) -> Outcome:
    outcome = Outcome("batch", gateway=info.gateway, site=info.site)
    try:
        batch = decoded if decoded is not None else decode(payload, Batch, topic)
    except ContractError as exc:
        salvaged = salvage_batch(payload, info)
        if salvaged is None or not salvaged.bad:
            return refuse_whole(conn, info, topic, payload, exc, now, group)
        boot, bad = salvaged.boot, salvaged.bad
        stream, first_seq, last_seq, items = (
            salvaged.stream,
            salvaged.first_seq,
            salvaged.last_seq,
            salvaged.items,
        )
    else:
        boot, bad = batch.boot, []
        stream, first_seq, last_seq, items = batch.stream, batch.first_seq, batch.last_seq, batch.items
    gateway = info.gateway
    header = batch_header(stream, boot, first_seq, last_seq)
    ahead = _ahead_of_window(conn, info, group, stream, (first_seq, last_seq), len(items) + len(bad))
    if ahead is not None and defer_ahead:
        outcome.kind = "deferred"
        return outcome
    group.touch(conn, info.site, gateway, now)
    if ahead is not None:
        refuse_ahead(conn, info, topic, payload, ahead, header, now, group, outcome)
        outcome.ahead = len(items) + len(bad)
        return outcome
    for each in bad:
        reason = f"{ITEM_REASONS[0]} {stream} {first_seq}..{last_seq} refused: {each.error.reason}"
        spent = dead_letter(
            conn,
            topic=topic,
            payload=each.raw,
            reason=reason,
            now=now,
            gateway=gateway,
            path=each.error.path,
            batch=header,
            budget=group.limits.budget,
        )
        outcome.dead_letters += 1
        outcome.dead_letters_dropped += spent is not Spent.KEPT
    if items:
        if item_by_item:
            for item in items:
                _write_one_refusable(conn, outcome, topic, gateway, header, item, now, group)
        else:
            _write_items(conn, outcome, topic, gateway, header, items, now, group)
    group.ranges.setdefault((gateway, stream, info.site), []).append((first_seq, last_seq))
    group.boots[(gateway, stream)] = boot
    return outcome


def _ahead_of_window(
    conn: Connection, info: TopicInfo, group: Group, stream: str, span: tuple[int, int], items: int
) -> str | None:
    """Why a batch of ``items`` items over ``span`` lies beyond the sequence window, or None."""
    first_seq, last_seq = span
    window = group.limits.window
    covered = group.covered_seq(conn, info.gateway, stream)
    joined = group.ranges.get((info.gateway, stream, info.site), [])
    # The common case needs no announcement: the next stretch of the stream (perhaps after batches
    # earlier in this transaction), or a re-send.
    if (
        refusal(first_seq, last_seq, items, reach(covered, 0, joined), window, covered=covered, announced=0)
        is None
    ):
        return None
    announced = announced_seq(conn, info.gateway)
    top = reach(covered, announced, joined)
    return refusal(first_seq, last_seq, items, top, window, covered=covered, announced=announced)


def batch_header(stream: str, boot: str, first_seq: int, last_seq: int) -> dict[str, Any]:
    """What a dead-lettered item keeps of its batch (``DeadLetter.batch``)."""
    return {"stream": stream, "boot": boot, "first_seq": first_seq, "last_seq": last_seq}


def _write_one_refusable(
    conn: Connection,
    outcome: Outcome,
    topic: str,
    gateway: str,
    header: dict[str, Any],
    item: Item,
    now: datetime.datetime,
    group: Group,
) -> None:
    # What the savepoint adds to the group's caches must go if the savepoint is rolled back.
    anchored, sensors = set(group.anchored), set(group.sensors)
    try:
        with conn.begin_nested():
            _write_items(conn, outcome, topic, gateway, header, [item], now, group)
    except DBAPIError as exc:
        group.anchored, group.sensors = anchored, sensors
        if isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated:
            raise
        first_line = str(exc.orig or exc).splitlines()[0][:300]
        reason = f"{ITEM_REASONS[1]}: {type(exc.orig or exc).__name__}: {first_line}"
        spent = _dead_item(conn, topic, gateway, header, item, reason, now, group)
        outcome.dead_letters += 1
        outcome.dead_letters_dropped += spent is not Spent.KEPT


def _dead_item(
    conn: Connection,
    topic: str,
    gateway: str,
    header: dict[str, Any],
    item: Item,
    reason: str,
    now: datetime.datetime,
    group: Group,
) -> Spent:
    """Dead-letter one decoded item of a batch, with the batch it came in (for a replay)."""
    path = f"$.items[seq={item.seq}]"
    return dead_letter(
        conn,
        topic=topic,
        payload=encode(item),
        reason=reason,
        now=now,
        gateway=gateway,
        path=path,
        batch=header,
        budget=group.limits.budget,
    )


def _write_items(
    conn: Connection,
    outcome: Outcome,
    topic: str,
    gateway: str,
    header: dict[str, Any],
    items: list[Item],
    now: datetime.datetime,
    group: Group,
) -> None:
    stream: str = header["stream"]
    corrections = correct_batch(conn, gateway, items, now, group.anchored)
    new = insert_new(conn, gateway, stream, items, corrections)
    outcome.new += len(new)
    repeated = [item for item in items if item.seq not in new]
    outcome.duplicates += len(repeated)
    if repeated:
        conflicts = find_conflicts(conn, gateway, stream, repeated)
        for item, fields in conflicts:
            reason = (
                f"{CONFLICT_REASON} ({gateway}, {stream}, {item.seq}) is stored with other content "
                f"(differs in {', '.join(fields)}); the stored item is kept"
            )
            spent = _dead_item(conn, topic, gateway, header, item, reason, now, group)
            outcome.dead_letters_dropped += spent is not Spent.KEPT
        outcome.conflicts += len(conflicts)
        outcome.dead_letters += len(conflicts)
        outcome.duplicates -= len(conflicts)
        if conflicts:
            report_conflicts(conn, gateway, stream, [item.seq for item, _ in conflicts], now, group)
    fresh = [item for item in items if isinstance(item, ReadingItem) and item.seq in new]
    if fresh:
        sensors = {item.sensor for item in fresh if (gateway, item.sensor) not in group.sensors}
        if sensors:
            note_sensors(conn, gateway, sensors)
            group.sensors.update((gateway, sensor) for sensor in sensors)
        outcome.new_readings.extend(fresh)
