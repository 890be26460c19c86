"""Replay dead letters once whatever refused them is fixed (a contract extended, a bug mended).

A dead letter is the only copy of what it holds once its range was
acknowledged (an item refused inside an otherwise good batch: the gateway
has deleted it).  After an upgrade that accepts it, ``coldgate cloud
dead-letters replay`` runs it through the same ``ingest_message`` as live
ingest, so it is judged, de-duplicated and covered exactly like a re-send.

* A whole batch message is replayed as it came.  One item of a batch
  (``DeadLetter.batch`` set) is replayed as a batch of that one item, with
  the stream and boot of the batch it came in; the item's bytes are spliced
  in verbatim, so the contract judges exactly what the gateway sent.
* Only batches are offered: a status has been superseded by a newer one
  (laid over the registry it would misstate the gateway), a message on a
  foreign topic names no stream, a conflict stays a conflict (the stored
  item is kept by design), and an item kept before its batch header was
  recorded (before migration 0003) has no stream to go to.
* The item must lie in its batch's range (``first_seq..last_seq``): a
  refused item can carry any seq, and one outside would invent a range the
  gateway never sent (a false hole, or an acknowledgement of a seq it has
  not sent yet).
* The gateway must be registered, and is not "heard" by a replay: its
  ``last_seen`` and online state stay as they are, since the unheard-gateway
  watchdog turns them into audit rows.
* A replay is one transaction.  If ``ingest_message`` would dead-letter again
  (still invalid, still conflicting), the transaction is rolled back, so a
  replay never bumps a dead letter's ``repeats`` nor writes part of it.
* Every attempt appends a ``dead_letter_replays`` row (outcome ``stored``,
  ``duplicate`` or ``refused`` with the reason); the dead letter itself is
  never edited or deleted.  A dead letter stored or found duplicate once is
  not offered again.
* The cloud publishes no MQTT ack from here: coverage is advanced in the
  database, and the next live batch of that stream carries the ack.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import msgspec
from sqlalchemy import Connection, Engine, and_, insert, or_, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.models import DeadLetter, DeadLetterReplay, Gateway
from coldgate.cloud.ingest.dead_letters import CONFLICT_REASON, ITEM_REASONS, NOT_ENROLLED_REASON
from coldgate.cloud.ingest.group import Group, Outcome
from coldgate.cloud.ingest.message import ingest_message
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON
from coldgate.contract.codec import decode
from coldgate.contract.errors import ContractError
from coldgate.contract.topics import BATCH, parse_topic
from coldgate.contract.uplink import Batch
from coldgate.contract.version import CONTRACT_VERSION

__all__ = ["DONE", "ReplayResult", "replay_dead_letters", "replayable"]

log = logging.getLogger(__name__)

#: Outcomes after which a dead letter is not offered for replay again.
DONE = ("stored", "duplicate")


@dataclass(frozen=True, slots=True)
class ReplayResult:
    dead_letter_id: int
    outcome: str  # "stored", "duplicate" or "refused"
    new_items: int
    detail: str


class _StillRefused(Exception):
    """Rolls a replay's transaction back; carries why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def replayable(engine: Engine, *, ids: Sequence[int] | None = None, gateway: str | None = None) -> list[int]:
    """Ids of batch dead letters a replay could store and has not yet stored, oldest first."""
    done = (
        select(DeadLetterReplay.id)
        .where(DeadLetterReplay.dead_letter_id == DeadLetter.id, DeadLetterReplay.outcome.in_(DONE))
        .exists()
    )
    item_without_batch = and_(
        DeadLetter.batch.is_(None), or_(*(DeadLetter.reason.startswith(p) for p in ITEM_REASONS))
    )
    query = (
        select(DeadLetter.id)
        .where(
            ~done,
            DeadLetter.topic.endswith(f"/up/{BATCH.name}"),
            ~DeadLetter.truncated,  # only a prefix of garbage was kept: nothing to replay
            ~DeadLetter.reason.startswith(CONFLICT_REASON),
            # Not the gateway's own data, or not known to be: an enrolled gateway re-sends its own.
            ~DeadLetter.reason.startswith(NOT_ENROLLED_REASON),
            ~DeadLetter.reason.startswith(AHEAD_REASON),
            ~item_without_batch,
        )
        .order_by(DeadLetter.id)
    )
    if ids is not None:
        query = query.where(DeadLetter.id.in_(list(ids)))
    if gateway is not None:
        query = query.where(DeadLetter.gateway == gateway)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def replay_dead_letters(
    engine: Engine,
    *,
    by: str,
    now: datetime.datetime,
    ids: Sequence[int] | None = None,
    gateway: str | None = None,
    report: Callable[[ReplayResult], None] | None = None,
) -> list[ReplayResult]:
    """Replay each replayable dead letter (all, or those of ``ids`` / ``gateway``); one result each.

    ``report`` is called with each result as soon as it is committed, so a
    caller can show progress that survives a later failure.  Raises only when
    the database itself fails (unreachable, locked): what was replayed before
    that is committed, logged and reported.
    """
    results = []
    for ident in replayable(engine, ids=ids, gateway=gateway):
        result = _replay_one(engine, ident, by, now)
        log.info("dead letter %d replayed by %s: %s (%s)", ident, by, result.outcome, result.detail)
        results.append(result)
        if report is not None:
            report(result)
    return results


def _replay_one(engine: Engine, ident: int, by: str, now: datetime.datetime) -> ReplayResult:
    with engine.connect() as conn:
        row = conn.execute(
            select(DeadLetter.topic, DeadLetter.payload, DeadLetter.batch).where(DeadLetter.id == ident)
        ).one()
    try:
        topic, payload = _message(row.topic, bytes(row.payload), row.batch, now)
        with engine.begin() as conn:
            gateway = parse_topic(topic).gateway
            if conn.execute(select(Gateway.id).where(Gateway.id == gateway)).first() is None:
                raise _StillRefused(f"gateway {gateway} is not registered: replay once it has connected")
            group = Group(seen=False)
            outcome = ingest_message(conn, topic, payload, now, group=group)
            group.finish(conn, now)
            if outcome.kind != "batch" or outcome.dead_letters:
                raise _StillRefused(_why(topic, payload, outcome))
            result = ReplayResult(
                ident, "stored" if outcome.new else "duplicate", outcome.new, _done_text(outcome)
            )
            _record(conn, result, by, now)
            return result
    except _StillRefused as refused:
        result = ReplayResult(ident, "refused", 0, refused.detail[:2000])
    except DBAPIError as exc:
        if isinstance(exc, (OperationalError, InterfaceError)) or exc.connection_invalidated:
            raise
        first_line = str(exc.orig or exc).splitlines()[0][:300]
        result = ReplayResult(
            ident, "refused", 0, f"refused by the database: {type(exc.orig or exc).__name__}: {first_line}"
        )
    except Exception as exc:  # a bug on odd stored data: recorded, and the run goes on to the next
        log.exception("dead letter %d could not be replayed", ident)
        result = ReplayResult(
            ident, "refused", 0, f"could not be replayed: {type(exc).__name__}: {exc}"[:2000]
        )
    with engine.begin() as conn:
        _record(conn, result, by, now)
    return result


def _message(
    topic: str, payload: bytes, batch: dict[str, Any] | None, now: datetime.datetime
) -> tuple[str, bytes]:
    """The message to store: as it came, or one item wrapped in a batch like the one it came in."""
    try:
        info = parse_topic(topic)
    except ContractError as exc:
        raise _StillRefused(f"{exc.path}: {exc.reason}") from None
    if info.name != BATCH.name:
        raise _StillRefused(
            f"only batches are replayed, not {info.name} messages (a newer status has superseded it)"
        )
    if batch is None:
        return topic, payload
    fields = batch if isinstance(batch, dict) else {}
    stream, boot = fields.get("stream"), fields.get("boot")
    first, last = fields.get("first_seq"), fields.get("last_seq")
    if not (isinstance(stream, str) and isinstance(boot, str) and _is_int(first) and _is_int(last)):
        raise _StillRefused(f"its batch header is unusable: {str(batch)[:200]}")
    try:
        item = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError, ValueError) as exc:
        raise _StillRefused(f"the item is not JSON: {str(exc)[:200]}") from None
    seq = item.get("seq") if isinstance(item, dict) else None
    if not _is_int(seq):
        raise _StillRefused("the item has no integer seq, so it cannot be placed in its stream")
    if not first <= seq <= last:
        raise _StillRefused(f"the item's seq {seq} lies outside its batch {first}..{last}")
    header = msgspec.json.encode(
        {
            "v": CONTRACT_VERSION,
            "site": info.site,
            "gateway": info.gateway,
            "boot": boot,
            "stream": stream,
            "first_seq": seq,
            "last_seq": seq,
            "sent": int(now.timestamp() * 1000),
        }
    )
    return topic, header[:-1] + b',"items":[' + payload + b"]}"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _why(topic: str, payload: bytes, outcome: Outcome) -> str:
    if outcome.conflicts:
        return "still conflicts with the item stored under its key (the stored item is kept)"
    try:
        decode(payload, Batch, topic)
    except ContractError as exc:
        return f"{exc.path}: {exc.reason}"
    return "refused again (see the dead letters of this gateway)"


def _done_text(outcome: Outcome) -> str:
    if outcome.new:
        return f"{outcome.new} new item(s) stored" + (
            f", {outcome.duplicates} already stored" if outcome.duplicates else ""
        )
    return f"all {outcome.duplicates} item(s) were already stored"


def _record(conn: Connection, result: ReplayResult, by: str, now: datetime.datetime) -> None:
    """The attempt, and its audit entry, in the transaction that stored what it stored (or alone)."""
    append(
        conn,
        actor=Actor(by),
        action="dead_letter.replay",
        entity_type="dead_letter",
        entity_id=str(result.dead_letter_id),
        now=now,
        after={"outcome": result.outcome, "new_items": result.new_items, "detail": result.detail},
    )
    conn.execute(
        insert(DeadLetterReplay).values(
            dead_letter_id=result.dead_letter_id,
            replayed_at=now,
            by=by,
            outcome=result.outcome,
            new_items=result.new_items,
            detail=result.detail,
        )
    )
