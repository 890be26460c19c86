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
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from coldgate.cloud.alerts.ingest_alerts import AHEAD_RULE, CAPPED_RULE, CONFLICT_RULE, raise_for_person
from coldgate.cloud.config import IngestConfig
from coldgate.cloud.db.models import DeadLetter, Gateway
from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.identity.enrolment import Admission, admission
from coldgate.cloud.ingest.clock_correction import correct_batch, record_anchor
from coldgate.cloud.ingest.conflicts import find_conflicts
from coldgate.cloud.ingest.coverage import advance_coverage
from coldgate.cloud.ingest.dead_letter_budget import Budget, Spent, spend
from coldgate.cloud.ingest.dead_letter_payload import PREFIX_BYTES, KeptPayload
from coldgate.cloud.ingest.dead_letter_payload import keep as keep_payload
from coldgate.cloud.ingest.registry import apply_status, note_sensors, touch_gateway
from coldgate.cloud.ingest.salvage import salvage_batch
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON, announced_seq, covered_seq, reach, refusal
from coldgate.cloud.ingest.unknown_gateways import note_unknown
from coldgate.contract.codec import decode, encode
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Item, Severity
from coldgate.contract.items import Reading as ReadingItem
from coldgate.contract.topics import BATCH, STATUS, TopicInfo, parse_topic
from coldgate.contract.uplink import Batch, Status

__all__ = [
    "CONFLICT_REASON",
    "ITEM_REASONS",
    "NOT_ENROLLED_REASON",
    "NOT_ENROLLED_SOURCE",
    "AckDue",
    "Group",
    "IngestLimits",
    "Outcome",
    "batch_header",
    "cut",
    "dead_letter",
    "gateway_of",
    "ingest_message",
    "refuse_oversized",
]

#: How the reasons of dead letters holding one item of a batch begin (salvaged, refused by the
#: database, conflicting): a replay tells them by these (cloud/ingest/replay.py).
ITEM_REASONS = ("item of batch", "item refused by the database")
CONFLICT_REASON = "conflict:"
#: How the reason of a message from a gateway the cloud does not take data from begins; never
#: replayable (an enrolled gateway re-sends its own unacknowledged items).
NOT_ENROLLED_REASON = "not enrolled:"
#: The one dead-letter budget all gateways that are not enrolled share: their ids are chosen by
#: whoever publishes, so a budget per id would be no bound.
NOT_ENROLLED_SOURCE = "(not enrolled)"
NO_GATEWAY_SOURCE = "(no gateway)"

log = logging.getLogger(__name__)


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

    kind: str  # "batch", "status", "dead_letter", "not_enrolled" or "deferred" (nothing written)
    new: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    #: Dead letters past their source's budget: counted, not kept.
    dead_letters_dropped: int = 0
    #: Items of batches refused for starting ahead of the sequence window.
    ahead: int = 0
    ack: AckDue | None = None
    gateway: str | None = None
    site: str | None = None
    #: Readings stored for the first time, for the optional time-series mirror.
    new_readings: list[ReadingItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class IngestLimits:
    """``[ingest]`` of the cloud config, as ingest uses it."""

    window: int = 256
    budget: Budget = field(default_factory=Budget)
    #: Larger messages are cut to a prefix as they arrive and dead-lettered.
    max_message_bytes: int = 1 << 20

    @classmethod
    def from_config(cls, config: IngestConfig) -> IngestLimits:
        budget = Budget(
            window_s=config.dead_letter_window_s,
            rows=config.dead_letters_per_window,
            bytes=config.dead_letter_bytes_per_window,
        )
        return cls(window=config.sequence_window, budget=budget, max_message_bytes=config.max_message_bytes)


@dataclass(slots=True)
class Group:
    """What one transaction has done so far, so that per-batch bookkeeping runs once per group.

    A worker commits up to 64 messages at once; touching the gateway row,
    recording boot anchors and sensors, and advancing stream coverage per
    message cost as much as inserting the readings (measured: ~13 µs of
    ~29 µs per reading).  Coverage is advanced in ``finish``, stream by stream
    in sorted order, after every gateway row: with the worker storing its
    group sorted by gateway, all workers take row locks in one order, so two
    of them cannot deadlock.
    """

    limits: IngestLimits = field(default_factory=lambda: IngestLimits())
    touched: set[str] = field(default_factory=set)
    admitted: dict[tuple[str, str], Admission] = field(default_factory=dict)
    #: False for a replay: the messages are old, so the gateway was not heard now (its last_seen
    #: and online state, which the unheard-gateway watchdog turns into audit rows, are left alone).
    seen: bool = True
    anchored: set[tuple[str, str]] = field(default_factory=set)
    sensors: set[tuple[str, str]] = field(default_factory=set)
    ranges: dict[tuple[str, str, str], list[tuple[int, int]]] = field(default_factory=dict)
    boots: dict[tuple[str, str], str] = field(default_factory=dict)

    def admit(self, conn: Connection, gateway: str, site: str) -> Admission:
        """Whether ``gateway`` may write under ``site``, asked once per transaction."""
        key = (gateway, site)
        if key not in self.admitted:
            self.admitted[key] = admission(conn, gateway, site)
        return self.admitted[key]

    def touch(self, conn: Connection, site: str, gateway: str, now: datetime.datetime) -> None:
        if gateway not in self.touched:
            if self.seen:
                touch_gateway(conn, site, gateway, now)
            else:  # locked all the same, so row locks are still taken in the workers' order
                conn.execute(select(Gateway.id).where(Gateway.id == gateway).with_for_update())
            self.touched.add(gateway)

    def finish(self, conn: Connection, now: datetime.datetime) -> dict[tuple[str, str], AckDue]:
        """Advance coverage for every stream the group wrote to; the acks now due, by (gateway, stream)."""
        acks: dict[tuple[str, str], AckDue] = {}
        for (gateway, stream, site), ranges in sorted(self.ranges.items()):
            covered = 0
            for first_seq, last_seq in _merged_ranges(ranges):
                covered = advance_coverage(
                    conn,
                    site=site,
                    gateway=gateway,
                    stream=stream,
                    first_seq=first_seq,
                    last_seq=last_seq,
                    now=now,
                    boot=self.boots.get((gateway, stream)),
                )
            if covered > 0:
                acks[(gateway, stream)] = AckDue(site, gateway, stream, covered)
        self.ranges.clear()
        return acks


def _merged_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent or overlapping ranges joined, lowest first."""
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def gateway_of(topic: str) -> str:
    """The gateway a topic names ("" if none): workers store a group sorted by it (see ``Group``)."""
    parts = topic.split("/")
    return parts[3] if len(parts) > 3 else ""


class _DeadLetterLog:
    """A warning per dead letter, at most one per source every ``every_s``; the quiet ones are
    counted in the next line.  Shared by the worker threads of one process."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, source: str, topic: str, reason: str, kept: KeptPayload, *, dropped: bool) -> None:
        now = time.monotonic()
        with self._lock:
            last, quiet = self._last.get(source, (-math.inf, 0))
            if now - last < self.every_s:
                self._last[source] = (last, quiet + 1)
                return
            self._last[source] = (now, 0)
        more = f" ({quiet} more from {source} since the last line)" if quiet else ""
        cut = (
            ", not kept: over its budget" if dropped else f", kept {len(kept.data)}" if kept.truncated else ""
        )
        size = f"{kept.size} bytes{cut}"
        log.warning("dead letter from %s on %s: %s [%s]%s", source, topic, reason, size, more)


_log_dead_letter = _DeadLetterLog()


def dead_letter(
    conn: Connection,
    *,
    topic: str,
    payload: bytes,
    reason: str,
    now: datetime.datetime,
    gateway: str | None = None,
    path: str | None = None,
    batch: dict[str, Any] | None = None,
    budget: Budget | None = None,
    source: str | None = None,
    kept: KeptPayload | None = None,
) -> Spent:
    """Keep a message (or one item of it) that could not be stored, with why; whether it was kept.

    ``batch`` is given for one item of a batch (``payload`` is then the item
    alone): the batch's stream, boot and range, without which the item could
    not be replayed once whatever refused it is fixed.

    The payload is kept as is when it could ever become data, else only its
    first bytes with the size and SHA-256 of the whole (``dead_letter_payload``):
    a flood of garbage must not fill the database.  The texts are made storable
    (no NUL, no lone surrogate), since the dead-letter table must take whatever
    the rest of ingest could not.  Gateways re-send what is not acknowledged, so
    the same refusal comes back again and again: it is counted in ``repeats``
    of the first row rather than stored anew, free of charge.  A new one is
    charged to ``source`` (``gateway`` unless given; ``dead_letter_budget``):
    past its budget it is only counted, and the first one dropped in a window
    is logged and, for a gateway, raised as an alert.  ``kept``: what is left
    of a payload cut before it got here (``refuse_oversized``); ``payload`` is
    then its prefix.
    """
    topic, reason = _storable(topic), _storable(reason)
    path = None if path is None else _storable(path)
    if batch is not None:
        batch = {key: _storable(value) if isinstance(value, str) else value for key, value in batch.items()}
    payload = bytes(payload)
    if kept is None:
        kept = keep_payload(payload)
        body = payload
    else:  # only a prefix is here: the whole is known by its hash
        body = kept.sha256.encode()
    digest = hashlib.sha256()
    for part in (topic.encode(), b"\x00", (path or "").encode(), b"\x00", body):
        digest.update(part)
    fingerprint = digest.hexdigest()
    source = source or gateway or NO_GATEWAY_SOURCE
    if _repeated(conn, fingerprint, batch, now):
        _log_dead_letter(source, topic, reason, kept, dropped=False)
        return Spent.KEPT
    budget = budget or Budget()
    spent = spend(conn, source, len(kept.data), now, budget)
    _log_dead_letter(source, topic, reason, kept, dropped=spent is not Spent.KEPT)
    if spent is Spent.FIRST_DROPPED:
        _report_capped(conn, source, gateway, budget, now)
    if spent is not Spent.KEPT:
        return spent
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(DeadLetter).values(
        received_at=now,
        topic=topic,
        **kept.columns(),
        reason=reason,
        gateway=gateway,
        path=path,
        fingerprint=fingerprint,
        repeats=0,
        last_received_at=now,
        # Left out when None: JSON columns would store a JSON null, which is not SQL NULL.
        **({"batch": batch} if batch is not None else {}),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[DeadLetter.fingerprint],
            set_={
                "repeats": DeadLetter.repeats + 1,
                "last_received_at": stmt.excluded.last_received_at,
                # A letter kept before its batch header was recorded gets it from the repeat.
                "batch": func.coalesce(DeadLetter.batch, stmt.excluded.batch),
            },
        )
    )
    return Spent.KEPT


def _repeated(
    conn: Connection, fingerprint: str, batch: dict[str, Any] | None, now: datetime.datetime
) -> bool:
    """Count a repeat of a dead letter already kept; False when there is none."""
    values: dict[str, Any] = {"repeats": DeadLetter.repeats + 1, "last_received_at": now}
    if batch is not None:  # a letter kept before its batch header was recorded gets it from the repeat
        values["batch"] = func.coalesce(DeadLetter.batch, literal(batch, DeadLetter.__table__.c.batch.type))
    done = conn.execute(update(DeadLetter).where(DeadLetter.fingerprint == fingerprint).values(**values))
    return bool(done.rowcount)


def _report_capped(
    conn: Connection, source: str, gateway: str | None, budget: Budget, now: datetime.datetime
) -> None:
    """The first dead letter of ``source`` dropped in a window: a log line, and an alert if a gateway's."""
    limits = f"{budget.rows} letters or {budget.bytes} bytes per {budget.window_s:.0f} s"
    log.warning(
        "dead letters from %s are over their budget (%s): counting, not keeping, the rest", source, limits
    )
    if gateway is not None and source == gateway:
        raise_for_person(
            conn,
            gateway=gateway,
            rule=CAPPED_RULE,
            key="budget",
            message=(
                f"Gateway {gateway} sent more refused messages than are kept ({limits}); the rest of "
                "this window are only counted (dead_letter_budgets). Look at its dead letters."
            ),
            details={"rows": budget.rows, "bytes": budget.bytes, "window_s": budget.window_s},
            now=now,
            quiet_s=budget.window_s,
        )


def _storable(text: str) -> str:
    """``text`` as every database stores it: lone surrogates and NUL written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


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
    """
    if group is None:
        own = Group(limits=limits or IngestLimits())
        outcome = _ingest(conn, topic, payload, now, retained, own, item_by_item, defer_ahead)
        acks = own.finish(conn, now)
        if outcome.kind == "batch" and outcome.gateway is not None and acks:
            outcome.ack = next(iter(acks.values()))
        return outcome
    return _ingest(conn, topic, payload, now, retained, group, item_by_item, defer_ahead)


def _ingest(
    conn: Connection,
    topic: str,
    payload: bytes,
    now: datetime.datetime,
    retained: bool,
    group: Group,
    item_by_item: bool,
    defer_ahead: bool,
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
        return _not_enrolled(conn, info, topic, payload, admitted.refused, now, group)
    if info.name == STATUS.name:
        return _ingest_status(conn, info, topic, payload, now, retained, group)
    if info.name == BATCH.name:
        return _ingest_batch(conn, info, topic, payload, now, group, item_by_item, defer_ahead)
    reason = f"{info.name} is a down-link message; gateways may not publish it"
    return _refused(conn, info, topic, payload, ContractError("$", reason), now, group)


def _not_enrolled(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    why: str,
    now: datetime.datetime,
    group: Group,
    kept: KeptPayload | None = None,
) -> Outcome:
    """Nothing is stored from a gateway the cloud does not take data from: the first message of its
    id is logged and kept as a dead letter (under the budget all such gateways share), the rest
    counted in ``unknown_gateways``."""
    outcome = Outcome("not_enrolled")
    size = len(payload) if kept is None else kept.size
    if note_unknown(conn, info.gateway, info.site, why, size, now):
        log.warning("refused a message on %s: %s; nothing from it is stored", topic, why)
        spent = dead_letter(
            conn,
            topic=topic,
            payload=payload,
            reason=f"{NOT_ENROLLED_REASON} {why}",
            now=now,
            gateway=info.gateway,
            path="$",
            budget=group.limits.budget,
            source=NOT_ENROLLED_SOURCE,
            kept=kept,
        )
        outcome.dead_letters, outcome.dead_letters_dropped = 1, int(spent is not Spent.KEPT)
    return outcome


def refuse_oversized(
    conn: Connection, topic: str, kept: KeptPayload, now: datetime.datetime, limits: IngestLimits
) -> Outcome:
    """A message over ``limits.max_message_bytes``, of which the worker kept only a prefix with the
    size and hash of the whole (``cut``): dead-lettered as such, charged to its source."""
    reason = (
        f"payload of {kept.size} bytes is over ingest's limit of {limits.max_message_bytes} bytes "
        "([ingest] max_message_bytes)"
    )
    budget = limits.budget
    try:
        info = parse_topic(topic)
    except ContractError:
        spent = dead_letter(conn, topic=topic, payload=kept.data, reason=reason, now=now, path="$",
                            budget=budget, kept=kept)  # fmt: skip
        return Outcome("dead_letter", dead_letters=1, dead_letters_dropped=spent is not Spent.KEPT)
    group = Group(limits=limits)
    admitted = group.admit(conn, info.gateway, info.site)
    if admitted.refused is not None:
        return _not_enrolled(conn, info, topic, kept.data, admitted.refused, now, group, kept)
    spent = dead_letter(conn, topic=topic, payload=kept.data, reason=reason, now=now, gateway=info.gateway,
                        path="$", budget=budget, kept=kept)  # fmt: skip
    dropped = int(spent is not Spent.KEPT)
    return Outcome(
        "dead_letter", dead_letters=1, dead_letters_dropped=dropped, gateway=info.gateway, site=info.site
    )


def cut(payload: bytes) -> KeptPayload:
    """What is kept of a payload over the size limit: its first bytes, with the size and hash of the
    whole, taken as it arrives so that the whole need not be held while it waits."""
    return KeptPayload(
        payload[:PREFIX_BYTES], len(payload), hashlib.sha256(payload).hexdigest(), truncated=True
    )


def _refused(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    error: ContractError,
    now: datetime.datetime,
    group: Group,
) -> Outcome:
    """A whole message from a gateway's topic dead-lettered, with the path and reason of ``error``."""
    where = {"gateway": info.gateway, "path": error.path}
    spent = dead_letter(
        conn, topic=topic, payload=payload, reason=error.reason, now=now, budget=group.limits.budget, **where
    )
    dropped = int(spent is not Spent.KEPT)
    return Outcome(
        "dead_letter", dead_letters=1, dead_letters_dropped=dropped, gateway=info.gateway, site=info.site
    )


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
        return _refused(conn, info, topic, payload, exc, now, group)
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
) -> Outcome:
    outcome = Outcome("batch", gateway=info.gateway, site=info.site)
    try:
        batch = decode(payload, Batch, topic)
    except ContractError as exc:
        salvaged = salvage_batch(payload, info)
        if salvaged is None or not salvaged.bad:
            return _refused(conn, info, topic, payload, exc, now, group)
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
        _refuse_ahead(conn, info, topic, payload, ahead, header, now, group, outcome)
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
    covered = covered_seq(conn, info.gateway, stream)
    if first_seq <= covered + 1 and last_seq <= covered + window:
        return None  # the common case, without reading the announcement: the next stretch, or a re-send
    announced = announced_seq(conn, info.gateway)
    top = reach(covered, announced, group.ranges.get((info.gateway, stream, info.site), []))
    return refusal(first_seq, last_seq, items, top, window, covered=covered, announced=announced)


def _refuse_ahead(
    conn: Connection,
    info: TopicInfo,
    topic: str,
    payload: bytes,
    why: str,
    header: dict[str, Any],
    now: datetime.datetime,
    group: Group,
    outcome: Outcome,
) -> None:
    """Keep the refused batch as evidence, and tell a person once in a while."""
    spent = dead_letter(
        conn, topic=topic, payload=payload, reason=why, now=now, gateway=info.gateway, path="$.first_seq",
        batch=header, budget=group.limits.budget,
    )  # fmt: skip
    outcome.dead_letters += 1
    outcome.dead_letters_dropped += spent is not Spent.KEPT
    raise_for_person(
        conn,
        gateway=info.gateway,
        rule=AHEAD_RULE,
        key=header["stream"],
        message=(
            f"Gateway {info.gateway}, stream {header['stream']}: a batch of seqs "
            f"{header['first_seq']}..{header['last_seq']} was refused, {why.removeprefix(AHEAD_REASON)}. "
            "A real gateway's items come again in order; one that never does was not the gateway's."
        ),
        details={key: value for key, value in header.items() if key != "boot"},
        now=now,
        quiet_s=group.limits.budget.window_s,
    )


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


def _report_conflicts(
    conn: Connection, gateway: str, stream: str, seqs: list[int], now: datetime.datetime, group: Group
) -> None:
    """Two different items under one number: a person decides which is the gateway's (the stored one
    stays, records are never edited; the newcomer is in the dead letters)."""
    shown = ", ".join(str(seq) for seq in seqs[:20]) + (" ..." if len(seqs) > 20 else "")
    raise_for_person(
        conn,
        gateway=gateway,
        rule=CONFLICT_RULE,
        key=stream,
        message=(
            f"Gateway {gateway}, stream {stream}: {len(seqs)} item(s) arrived with content other than "
            f"the item stored under the same number (seq {shown}). The stored item is kept and the "
            "newcomer is a dead letter: decide which one is the gateway's."
        ),
        details={"stream": stream, "count": len(seqs), "first_seq": seqs[0], "seqs": shown},
        now=now,
        severity=Severity.CRITICAL,
        quiet_s=group.limits.budget.window_s,
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
            _report_conflicts(conn, gateway, stream, [item.seq for item, _ in conflicts], now, group)
    fresh = [item for item in items if isinstance(item, ReadingItem) and item.seq in new]
    if fresh:
        sensors = {item.sensor for item in fresh if (gateway, item.sensor) not in group.sensors}
        if sensors:
            note_sensors(conn, gateway, sensors)
            group.sensors.update((gateway, sensor) for sensor in sensors)
        outcome.new_readings.extend(fresh)
