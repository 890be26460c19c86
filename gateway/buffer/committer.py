"""The outbox's writer: one thread, one connection, every write (group commit, acks, shedding).

A dedicated thread rather than asyncio: ``sqlite3`` releases the GIL while
SQLite writes and fsyncs, so a thread with its own connection keeps the event
loop free without turning the storage layer into async code, and a single
writer means numbering is serial by construction and no two connections
fight over SQLite's write lock.

Group commit: ``submit`` only appends to an in-memory queue.  The thread
commits what has queued once ``commit_max_items`` are waiting, or the
oldest waiting item is ``commit_interval_ms`` old, or someone flushes; one
transaction numbers the items (``next_seq`` onwards), stores them and moves
``next_seq``.  At the *leading edge*: an item arriving when nothing was
committed for an interval is committed at once.  At one reading a second
every reading is then durable at once instead of an interval later, in as many
transactions as before (one a reading); steady faster traffic commits as
before; a burst after a quiet spell commits its first items at once, then
groups as before (``bench.outbox``'s live runs count the transactions and
bytes).  An item counts as accepted once that transaction has committed;
until then it exists only in memory, which is the price of not paying an
fsync per reading.  An alert does not wait: its group is committed at once
(alerts are rare, and a person is waiting for them).

Acknowledged items are deleted in the next group's transaction, or
``ACK_DELAY_S`` after the ack if no group comes: not in a transaction of
their own per ack, which at 10 readings/s doubled the fsyncs and the bytes
written (``bench.uplink``).  An ack lost to a crash in that second only makes
the uplink send those items again, and the cloud stores each once.  The
depth and bytes published leave acknowledged rows out at once (a read, no
write), so the status never shows delivered items as waiting; a large ack is
deleted a chunk at a time, and a group waiting (an alert) goes between chunks.

Failures (disk full, I/O error) roll the transaction back, put the items back
at the head of the queue and retry with back-off; the error is kept in
``last_error`` for the status.  Nothing is dropped for a failing disk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from msgspec import structs

from coldgate.contract.codec import encode
from coldgate.contract.items import Alert, Item
from coldgate.gateway.buffer import thinning
from coldgate.gateway.buffer.lanes import facts
from coldgate.gateway.buffer.outbox_db import NewRow, OutboxDb
from coldgate.gateway.buffer.overflow import Caps, shed_pass
from coldgate.gateway.clock import Clock

log = logging.getLogger(__name__)

AGE_CHECK_S: Final = 60.0
#: Seconds an acknowledgement may wait for a group's transaction to carry its deletes.
ACK_DELAY_S: Final = 1.0
ACK_DELETE_CHUNK: Final = 5000  # rows per ack transaction, so a huge ack never stalls commits
_BACKOFF_S: Final = (0.05, 0.2, 1.0, 5.0)
_STOP_ATTEMPTS: Final = 3

Listener = Callable[[int], None]


class Committer:
    """Owns the writer ``OutboxDb``; every other thread talks to it through the methods below."""

    def __init__(
        self,
        db: OutboxDb,
        *,
        gateway: str,
        clock: Clock,
        caps: Caps,
        interval_s: float,
        max_items: int,
        chunk: int = thinning.DEFAULT_CHUNK,
        leading_edge: bool = True,
    ) -> None:
        """``leading_edge`` False makes every group wait its full interval from its first item, as the
        outbox did before: only the benchmark's reference asks for it."""
        self._db = db
        self._gateway = gateway
        self._clock = clock
        self._caps = caps
        self._interval_s = interval_s
        self._max_items = max_items
        self._chunk = chunk
        self._cond = threading.Condition()
        self._pending: deque[Item] = deque()
        self._first_pending_at = 0.0
        self._urgent = False  # an alert waits in the group: commit it now
        self._ack_since = 0.0  # monotonic time of the first ack not yet applied
        self._counted_ack = db.meta.acked_seq  # the ack the published depth and bytes leave out
        self._leading_edge = leading_edge
        self._last_commit_at = float("-inf")  # monotonic time the last group committed
        self._submitted = 0
        self._done = 0
        self._flushers = 0
        self._caps_wanted = 0
        self._caps_done = 0
        self._stop = False
        self._listeners: list[Listener] = []
        self._next_age_check = 0.0
        self._shed_again_at = 0
        self._over_reported = False
        # Published state: written by the writer thread, read by anyone.
        self.committed_seq = db.meta.next_seq - 1
        self.acked_seq = db.meta.acked_seq  # highest acknowledgement received
        self.item_count = db.meta.item_count
        self.item_bytes = db.meta.item_bytes
        self.transactions = 0
        self.shed_readings = 0
        self.last_error: str | None = None
        self.commit_ms: deque[float] = deque(maxlen=1024)  # recent transaction durations, for the status
        self._thread = threading.Thread(target=self._run, name="outbox-writer", daemon=True)

    # -- called from any thread ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: Item) -> None:
        with self._cond:
            if self._stop:
                raise RuntimeError("the outbox is closed")
            if not self._pending:
                self._first_pending_at = time.monotonic()
            self._pending.append(item)
            self._submitted += 1
            if isinstance(item, Alert):
                self._urgent = True
                self._cond.notify_all()
            elif len(self._pending) >= self._max_items or len(self._pending) == 1:
                self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        with self._cond:
            self._listeners.append(listener)

        def remove() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def request_ack(self, seq: int) -> bool:
        """Record a cumulative ack; True when it moved forward.  The writer deletes in the background."""
        with self._cond:
            if seq <= self.acked_seq:
                return False
            if self.acked_seq <= self._db.meta.acked_seq:
                self._ack_since = time.monotonic()
            self.acked_seq = seq
            self._cond.notify_all()
            return True

    def flush(self, timeout: float | None) -> None:
        """Block until everything submitted before the call is committed."""
        with self._cond:
            target = self._submitted
            self._flushers += 1
            self._cond.notify_all()
            try:
                if not self._cond.wait_for(
                    lambda: self._done >= target or not self._thread.is_alive(), timeout
                ):
                    raise TimeoutError(
                        f"outbox flush timed out after {timeout} s (last error: {self.last_error})"
                    )
                if self._done < target:
                    raise RuntimeError(f"the outbox writer stopped (last error: {self.last_error})")
            finally:
                self._flushers -= 1

    def enforce_caps(self, timeout: float | None) -> None:
        """Run a shedding pass now (age and bytes) and wait for it."""
        with self._cond:
            self._caps_wanted += 1
            target = self._caps_wanted
            self._next_age_check = 0.0
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._caps_done >= target, timeout):
                raise TimeoutError(f"outbox shedding pass timed out after {timeout} s")

    def stop(self, timeout: float | None) -> int:
        """Commit what is queued, stop the thread; return how many items could not be committed."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return self._submitted - self._done

    # -- the writer thread --------------------------------------------------------------------------

    def _group_due_at(self) -> float:
        """When the waiting group is due: at once if its first item came after a quiet interval (nothing
        committed for ``interval_s`` before it), else an interval after its first item.  Counting the
        busy case from the first item, not from the last commit, keeps the transactions of steady traffic
        what they were (counting from the commit's end made 10 % more at 50 readings/s, measured)."""
        if self._leading_edge and self._first_pending_at >= self._last_commit_at + self._interval_s:
            return self._first_pending_at
        return self._first_pending_at + self._interval_s

    def _group_due(self, now: float) -> bool:
        if not self._pending:
            return False
        if self._stop or self._flushers > 0 or self._urgent or len(self._pending) >= self._max_items:
            return True
        return now >= self._group_due_at()

    def _ack_due(self, now: float) -> bool:
        return self.acked_seq > self._db.meta.acked_seq and (
            self._stop or self._flushers > 0 or now >= self._ack_since + ACK_DELAY_S
        )

    def _ready(self, now: float) -> bool:
        if self._stop or self._caps_wanted > self._caps_done or self._ack_due(now):
            return True
        if self.acked_seq > self._counted_ack:
            return True
        return now >= self._next_age_check or self._group_due(now)

    def _wait_s(self, now: float) -> float:
        deadline = self._next_age_check
        if self._pending:
            deadline = min(deadline, self._group_due_at())
        if self.acked_seq > self._db.meta.acked_seq:
            deadline = min(deadline, self._ack_since + ACK_DELAY_S)
        return max(0.0, deadline - now)

    def _run(self) -> None:
        failures = 0
        while True:
            self.turned_at = time.monotonic()  # a sign of life for the systemd watchdog (gateway.loop_watch)
            with self._cond:
                while not self._ready(now := time.monotonic()):
                    self._cond.wait(self._wait_s(now))
                group: list[Item] = []
                if self._group_due(now):  # a burst drains in back-to-back groups: its head is overdue
                    group = [self._pending.popleft() for _ in range(min(len(self._pending), self._max_items))]
                    self._urgent = False
                stopping, caps_wanted, ack_due = self._stop, self._caps_wanted, self._ack_due(now)
            try:
                if group:
                    self._commit(group)
                    group = []
                if ack_due:
                    self._apply_ack()
                self._count()
                self._maybe_shed(caps_wanted)
                failures = 0
            except Exception as exc:  # an I/O error, a full disk: keep everything and retry
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("outbox write failed (attempt %d); retrying", failures)
                with self._cond:
                    self._pending.extendleft(reversed(group))
                    if stopping and failures >= _STOP_ATTEMPTS:
                        return
                    self._cond.wait(_BACKOFF_S[min(failures, len(_BACKOFF_S)) - 1])
                continue
            with self._cond:
                if stopping and not self._pending and self.acked_seq <= self._db.meta.acked_seq:
                    return

    def _rows(self, items: list[Item], first_seq: int) -> list[NewRow]:
        """Number ``items`` from ``first_seq`` and encode each with its number.

        Not validated again: ``Outbox.put`` checked every item against the
        contract (items are frozen, so nothing changed since), and the one field
        set here, ``seq``, is checked against the contract's range by
        ``OutboxDb.insert``.  Decoding every item a second time cost a Pi as much
        as encoding it.
        """
        rows: list[NewRow] = []
        for seq, item in enumerate(items, start=first_seq):
            body = encode(structs.replace(item, seq=seq))
            lane, kind, subject, value = facts(item)
            rows.append(NewRow(seq, lane, kind, subject, item.ts, item.synced, value, body))
        return rows

    def _commit(self, group: list[Item]) -> None:
        self._db.reserve(len(group))
        started = time.perf_counter()
        acked = self.acked_seq
        with self._db.transaction():
            self._db.insert(self._rows(group, self._db.meta.next_seq))
            newest = group[-1]  # put order: the last one put is the latest sign of life
            self._db.meta.note_alive(newest.ts, newest.boot, newest.mono, newest.synced)
            if acked > self._db.meta.acked_seq:  # the acks' deletes ride along: no transaction of their own
                self._db.delete_upto(acked, ACK_DELETE_CHUNK)
        self.commit_ms.append((time.perf_counter() - started) * 1000)
        self._last_commit_at = time.monotonic()
        self._published(done=len(group))

    def _take_counts(self) -> None:
        """Publish the rows and bytes stored and not acknowledged (what the status calls the outbox's
        depth), and which ack they leave out, so that the loop does not count the same ack again."""
        meta, acked = self._db.meta, self.acked_seq
        count, size = meta.item_count, meta.item_bytes
        if acked > meta.acked_seq:
            rows, rows_size = self._db.rows_upto(acked)
            count, size = count - rows, size - rows_size
        with self._cond:
            self.item_count, self.item_bytes = count, size
            self._counted_ack = acked
            self._cond.notify_all()

    def _count(self) -> None:
        if self.acked_seq != self._counted_ack:
            self._take_counts()

    def _published(self, done: int = 0) -> None:
        meta = self._db.meta
        self._take_counts()
        with self._cond:
            self.committed_seq = meta.next_seq - 1
            self.transactions += 1
            self._done += done
            self._cond.notify_all()
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self.committed_seq)
            except Exception:
                log.exception("outbox commit listener failed")

    def _apply_ack(self) -> None:
        """One chunk of the acknowledged rows' deletes; the loop comes round for the rest, so that a group
        waiting meanwhile (an alert) is not held behind a large ack."""
        target = self.acked_seq
        if target > self._db.meta.acked_seq:
            with self._db.transaction():
                self._db.delete_upto(target, ACK_DELETE_CHUNK)
            self._take_counts()
            with self._cond:
                self.transactions += 1
            if self._db.meta.item_bytes <= self._caps.max_bytes:
                self._over_reported = False

    def _maybe_shed(self, caps_wanted: int) -> None:
        now_mono = time.monotonic()
        age_due = now_mono >= self._next_age_check
        used = self._db.meta.item_bytes
        bytes_due = used > self._caps.max_bytes and used >= self._shed_again_at
        if age_due or bytes_due:
            self._shed(age_due)
            if age_due:
                self._next_age_check = now_mono + AGE_CHECK_S
        with self._cond:
            self._caps_done = max(self._caps_done, caps_wanted)
            self._cond.notify_all()

    def _shed(self, age_due: bool) -> None:
        caps = self._caps
        dropped, records, self._over_reported = shed_pass(
            self._db,
            caps=caps,
            now=self._clock.stamp(),
            gateway=self._gateway,
            acked_seq=self.acked_seq,
            age_due=age_due,
            over_reported=self._over_reported,
            number=self._rows,
            chunk=self._chunk,
        )
        if records:
            self.shed_readings += dropped
            self._published()
        used = self._db.meta.item_bytes
        self._shed_again_at = used + max(65_536, caps.max_bytes // 100) if used > caps.max_bytes else 0
