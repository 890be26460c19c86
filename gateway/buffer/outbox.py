"""The durable outbox: the ``Sink`` every source puts into, and what the uplink reads and acknowledges.

``put`` checks an item against the contract at once (a source learns about
its own bad item, with the field path, and nothing around it is lost) and
queues it; the writer thread (``committer.py``) numbers and commits queued
items in groups.  An item is accepted once its group has committed:
``committed_seq`` moves, listeners are called, ``flush`` returns.  Items stay
until the cloud acknowledges them end to end (``ack``), however long that is,
except routine readings shed under the caps, which the outbox reports as a
gap and an alert in the same transaction (``overflow.py``).

Lanes and the cumulative acknowledgement
----------------------------------------
The cloud acknowledges cumulatively: ack ``S`` means every seq up to ``S`` is
committed in its database or was dropped on purpose, and a batch's range
``first_seq..last_seq`` tells the cloud that a seq in the range without an
item was dropped on purpose and will never come.  Priority items (alerts,
gaps, events, movements, scans: ``lanes.py``) must overtake a backlog of
readings after an outage, which fits that contract only under these rules:

1. The *sequence stream*, ``read_batch(after_seq)``, returns every stored item
   in seq order, priority items included, and its range starts right after
   ``after_seq``: ranges are consecutive and cover thinned numbers.  It is
   the guarantee, and what the cumulative ack advances over.  It re-sends
   priority items even if they already went ahead: a range that left one out
   would tell the cloud it was dropped, and if the early copy was lost the
   item would be lost with it.  The cloud de-duplicates on (gateway,
   stream, seq).
2. The *express stream*, ``read_batch(after_seq, lane=PRIORITY)``, returns
   priority items only, in a range that holds no reading at all (it stops
   before the first routine row), so it never claims a reading was dropped.
   The cloud commits them at once; its cumulative ack (the highest seq up to
   which every number lies in some received batch's range) cannot pass them
   until the sequence stream catches up, so the outbox keeps them until then.
   Express batches are the one exception to "consecutive batches cover
   consecutive ranges": their ranges stand apart, ahead of the stream.
3. Because no ack will come for express items for a while, the uplink must
   not time them out and re-send them in a loop.  It keeps an "express sent
   up to" mark in memory, re-sends express items only after a reconnect,
   and otherwise relies on rule 1 to deliver them for sure.  The mark is not
   durable: after a restart everything unacknowledged is sent once more and
   the cloud de-duplicates.  ``delivery.Delivery`` is that bookkeeping.

Acks are applied by the writer thread in chunks; ``acked_seq`` moves at
once and reads skip acknowledged items even before they are deleted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from msgspec import structs

from coldgate.contract.codec import validate
from coldgate.contract.errors import ContractError
from coldgate.contract.ids import is_id
from coldgate.contract.items import ITEM_TYPES, Item
from coldgate.contract.uplink import MAX_BATCH_ITEMS
from coldgate.gateway.buffer import thinning
from coldgate.gateway.buffer.committer import Committer
from coldgate.gateway.buffer.lanes import PRIORITY, facts
from coldgate.gateway.buffer.outbox_db import OutboxDb
from coldgate.gateway.buffer.overflow import Caps
from coldgate.gateway.clock import Clock, Stamp
from coldgate.gateway.config import OutboxConfig
from coldgate.gateway.observations import UNSEQUENCED


class ItemRefused(ContractError):
    """``put`` of an item that breaks the contract; ``path`` and ``reason`` say where and why."""

    def __init__(self, path: str, reason: str, item: object) -> None:
        super().__init__(path, reason)
        self.item = item
        kind, subject = _describe(item)
        self.args = (f"outbox refused {kind} {subject}: {path}: {reason}",)


class AckAheadError(ValueError):
    """The cloud acknowledged a seq this gateway never assigned; report it (status ``ack_ahead``)."""

    kind = "ack_ahead"

    def __init__(self, seq: int, committed_seq: int) -> None:
        self.seq = seq
        self.committed_seq = committed_seq
        super().__init__(
            f"ack {seq} is beyond the highest sequence number this gateway has assigned ({committed_seq}): "
            "the cloud acknowledges items that were never sent (a second gateway with this id, "
            "or a replaced outbox file); ignored"
        )


class OutboxError(RuntimeError):
    """The outbox could not commit what it was given (see ``last_error``)."""


class Chunk(NamedTuple):
    """What the uplink wraps in a ``Batch``: the range it covers and the items' JSON, in seq order."""

    first_seq: int
    last_seq: int
    items: list[bytes]


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """Figures for the heartbeat (``contract.Status``) and for operators."""

    depth: int  # stored items not yet deleted after an ack
    bytes_used: int
    pending: int  # put but not committed yet
    committed_seq: int
    acked_seq: int
    oldest_unacked_ts: int | None
    transactions: int
    shed_readings: int
    last_error: str | None


def _describe(item: object) -> tuple[str, str]:
    try:
        row = facts(item)  # type: ignore[arg-type]
    except (TypeError, AttributeError):
        return type(item).__name__, ""
    return row.kind, row.subject


class Outbox:
    """``Outbox(config, gateway="gw01", clock=SystemClock())``; use as a context manager or ``close()``."""

    def __init__(
        self,
        config: OutboxConfig,
        *,
        gateway: str,
        clock: Clock,
        thin_interval_s: float = thinning.DEFAULT_INTERVAL_MS / 1000,
        check: bool = True,
        chunk: int = thinning.DEFAULT_CHUNK,
        leading_edge: bool = True,
    ) -> None:
        if config.path is None:
            raise ValueError("outbox.path is not set (it is filled in from gateway.data_dir when loading)")
        if not is_id(gateway):  # it becomes the subject of the outbox's own gap records
            raise ValueError(f"gateway id {gateway!r} is not a contract id")
        if thin_interval_s <= 0:
            raise ValueError("thin_interval_s must be positive")
        caps = Caps(config.max_bytes, int(config.max_age_s * 1000), int(thin_interval_s * 1000))
        self._db = OutboxDb.open(config.path, config.fsync, check=check)
        try:
            self._reader = OutboxDb.open_reader(config.path)
        except BaseException:
            self._db.close()
            raise
        self._reader_lock = threading.Lock()
        self._stream = self._db.meta.stream
        self._committer = Committer(
            self._db,
            gateway=gateway,
            clock=clock,
            caps=caps,
            interval_s=config.commit_interval_ms / 1000,
            max_items=config.commit_max_items,
            chunk=chunk,
            leading_edge=leading_edge,
        )
        self._closed = False
        self._committer.start()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Sink side ------------------------------------------------------------------------------

    def put(self, item: Item) -> None:
        """Queue ``item`` (seq ``UNSEQUENCED``) for the next group commit; never blocks on the disk.

        Raises ``ItemRefused`` (a ``ContractError``) for an item that breaks the
        contract, ``TypeError`` for anything that is not an item; nothing else
        queued is affected.
        """
        if not isinstance(item, ITEM_TYPES):
            raise TypeError(f"the outbox takes contract items, not {type(item).__name__}")
        if item.seq != UNSEQUENCED:
            reason = (
                f"already numbered ({item.seq}): the outbox numbers items; putting one twice would double it"
            )
            raise ItemRefused("$.seq", reason, item)
        try:
            validate(structs.replace(item, seq=1))
        except ContractError as exc:
            raise ItemRefused(exc.path, exc.reason, item) from None
        self._committer.submit(item)

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything put so far is committed (``TimeoutError`` after ``timeout``)."""
        self._committer.flush(timeout)

    async def flush_async(self, timeout: float | None = None) -> None:
        await asyncio.to_thread(self._committer.flush, timeout)

    @property
    def committed_seq(self) -> int:
        """Highest seq committed (and so assigned) so far; 0 for a new outbox."""
        return self._committer.committed_seq

    @property
    def stream(self) -> str:
        """This outbox's stream id, for ``Batch.stream``; made when the file was created."""
        return self._stream

    @property
    def previous_alive(self) -> Stamp | None:
        """The stamp of the newest item the previous run committed; None for a new outbox.

        The previous run's last sign of life, kept in the outbox's counters
        (``outbox_db``), for the gap a restart leaves (``gateway.restart_gap``).
        """
        before = self._db.previous
        if not before.alive_ts or not before.alive_boot:
            return None
        return Stamp(
            wall_ms=before.alive_ts,
            mono_ms=before.alive_mono,
            boot=before.alive_boot,
            synced=bool(before.alive_synced),
        )

    @property
    def previous_clean(self) -> bool:
        """True when the previous run closed this file cleanly (a stop, not a crash or power cut)."""
        return bool(self._db.previous.clean)

    @property
    def acked_seq(self) -> int:
        """Highest cumulative ack received (persisted when the writer deletes up to it)."""
        return self._committer.acked_seq

    def add_listener(self, listener: Callable[[int], None]) -> Callable[[], None]:
        """Call ``listener(committed_seq)`` after every commit, on the writer thread; returns a remover.

        From asyncio: ``outbox.add_listener(lambda _: loop.call_soon_threadsafe(event.set))``,
        or simply ``await outbox.wait_committed(seq)``.
        """
        return self._committer.add_listener(listener)

    async def wait_committed(self, after_seq: int) -> int:
        """Wait until ``committed_seq > after_seq``; return it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def resolve(seq: int) -> None:
            if not future.done():
                future.set_result(seq)

        def wake(seq: int) -> None:
            if seq > after_seq:
                loop.call_soon_threadsafe(resolve, seq)

        remove = self.add_listener(wake)
        try:
            if self.committed_seq > after_seq:
                return self.committed_seq
            return await future
        finally:
            remove()

    # -- the uplink side ------------------------------------------------------------------------------

    def read_batch(
        self, after_seq: int, max_items: int = 500, max_bytes: int = 131_072, lane: int | None = None
    ) -> Chunk | None:
        """The next items after ``after_seq``: every item (``lane=None``) or priority ones only.

        At least one item is returned if there is one, even when it alone is
        larger than ``max_bytes``.  ``None`` when there is nothing to send.
        See the module docstring for why there is no routine-only read.
        """
        if lane not in (None, PRIORITY):
            raise ValueError(
                f"lane must be None (every item, in seq order) or {PRIORITY} (priority items), not {lane!r}: "
                "a batch of readings alone would declare the priority items in its range dropped"
            )
        if not 1 <= max_items <= MAX_BATCH_ITEMS or max_bytes < 1:
            raise ValueError(f"max_items must be 1..{MAX_BATCH_ITEMS} and max_bytes >= 1")
        start = max(after_seq, self.acked_seq)
        with self._reader_lock:
            if lane is None:
                rows = self._reader.read_after(start, max_items, max_bytes)
            else:
                rows = self._reader.read_priority(start, max_items, max_bytes)
        if not rows:
            return None
        first = start + 1 if lane is None else rows[0][0]
        return Chunk(first, rows[-1][0], [body for _, body in rows])

    def ack(self, seq: int, stream: str | None = None) -> bool:
        """Cumulative end-to-end ack: everything <= ``seq`` may go.  True if it moved forward.

        Repeated and stale acks, and acks for another ``stream`` (an outbox
        this gateway had before), are ignored; an ack beyond ``committed_seq``
        raises ``AckAheadError`` and changes nothing.
        """
        if stream is not None and stream != self.stream:
            return False
        committed = self.committed_seq
        if seq > committed:
            raise AckAheadError(seq, committed)
        return self._committer.request_ack(seq)

    # -- figures -------------------------------------------------------------------------------------

    def depth(self) -> int:
        return self._committer.item_count

    def bytes_used(self) -> int:
        return self._committer.item_bytes

    def pending(self) -> int:
        return self._committer.pending

    def commit_durations_ms(self) -> list[float]:
        """Durations of the recent group commits (BEGIN to COMMIT, fsync included)."""
        return list(self._committer.commit_ms)

    def oldest_unacked_ts(self) -> int | None:
        with self._reader_lock:
            return self._reader.oldest_ts(self.acked_seq)

    def status(self) -> OutboxStatus:
        c = self._committer
        return OutboxStatus(
            depth=c.item_count,
            bytes_used=c.item_bytes,
            pending=c.pending,
            committed_seq=c.committed_seq,
            acked_seq=c.acked_seq,
            oldest_unacked_ts=self.oldest_unacked_ts(),
            transactions=c.transactions,
            shed_readings=c.shed_readings,
            last_error=c.last_error,
        )

    def enforce_caps(self, timeout: float | None = None) -> None:
        """Apply the age and byte caps now instead of at the next check (once a minute)."""
        self._committer.enforce_caps(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Commit what is queued, apply the last ack, and close the file cleanly."""
        if self._closed:
            return
        self._closed = True
        lost = self._committer.stop(timeout)
        with self._reader_lock:
            self._reader.close()
        if lost and self._committer.alive:
            raise OutboxError(f"writer did not stop within {timeout} s; {lost} items not committed")
        self._db.close()
        if lost:
            raise OutboxError(f"{lost} items could not be committed: {self._committer.last_error}")
