"""The outbox's rows: numbering, counters, and the statements the outbox needs.

One ``OutboxDb`` is one connection: the writer's (``open``: every write, from
one thread) or a reader's (``open_reader``).  Opening, locking and the
durability settings are in ``dbfile.py``.

Sequence numbers: each outbox file gets a random ``stream`` id when it is
created (the contract's idempotency key is gateway, stream and seq), so a
gateway with a replaced SD card starts again at seq 1 without colliding with
what the cloud holds.  ``next_seq`` lives in ``meta`` and is updated in the same
transaction as the rows it numbers, so it never goes backwards, even when
every item has been acknowledged and deleted or the newest rows were thinned.
In ``"normal"`` mode a power cut could roll back items that were already
sent; reusing their numbers would make the cloud dead-letter the new items as
conflicts (same gateway, stream and seq, other content).  So in that mode numbers are
reserved in durable blocks of ``SEQ_RESERVATION`` (one fully synced
transaction per block), and after an unclean shutdown numbering resumes past
the block: the skipped numbers fall inside the next batch's range, which the
cloud reads as "dropped on purpose, never coming".

The last sign of life: ``alive_*`` in ``meta`` are the stamp (wall time, boot,
monotonic offset) of the newest item committed, written by the same
transaction as the item, so keeping them costs the SD card no write of its
own.  With ``clean`` they tell the next start how long nobody was
monitoring and whether the process stopped cleanly (``gateway.restart_gap``);
``OutboxDb.previous`` holds them as the file was opened.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final, NamedTuple

from coldgate.contract.ids import MAX_SEQ
from coldgate.gateway.buffer import dbfile
from coldgate.gateway.buffer.dbfile import Fsync, OutboxFileError
from coldgate.gateway.buffer.lanes import PRIORITY, ROUTINE
from coldgate.gateway.buffer.thinning import RowMeta

SEQ_RESERVATION: Final = 10_000
#: Bytes a row costs on disk beyond its JSON (record header, columns, index entry, page slack);
#: measured by bench/outbox.py, so that ``max_bytes`` is close to the real file size.
ROW_OVERHEAD: Final = 80

__all__ = ["Meta", "NewRow", "OutboxDb", "OutboxFileError", "row_size"]


class NewRow(NamedTuple):
    seq: int
    lane: int
    kind: str
    subject: str
    ts: int
    synced: bool
    value: float | None
    body: bytes


@dataclass
class Meta:
    """Durable counters, written in the same transaction as the rows they describe."""

    stream: str = ""  # this outbox's stream id (contract: seq is unique per gateway and stream)
    next_seq: int = 1
    reserved_seq: int = 1  # "normal" mode: numbers below this were reserved durably
    acked_seq: int = 0  # everything <= this was acknowledged and deleted
    item_count: int = 0
    item_bytes: int = 0
    clean: int = 1  # 1 after a clean close, 0 while open
    alive_ts: int = 0  # wall time of the newest item committed (0: none yet)
    alive_boot: str = ""  # its boot id
    alive_mono: int = 0  # its monotonic offset in that boot
    alive_synced: int = 0  # 1 when its wall time was NTP-synchronised

    def note_alive(self, ts: int, boot: str, mono: int, synced: bool) -> None:
        """Move the last sign of life to an item just committed; never back in time within a boot."""
        if boot == self.alive_boot and mono < self.alive_mono:
            return
        self.alive_ts, self.alive_boot, self.alive_mono, self.alive_synced = ts, boot, mono, int(synced)


def row_size(body: bytes) -> int:
    return len(body) + ROW_OVERHEAD


class OutboxDb:
    """One connection to the outbox file; ``open`` for the writer, ``open_reader`` for readers."""

    def __init__(self, conn: sqlite3.Connection, path: Path, fsync: Fsync, lock_fd: int | None) -> None:
        self._conn = conn
        self.path = path
        self.fsync = fsync
        self._lock_fd = lock_fd
        self.meta = self._load_meta() if lock_fd is not None else Meta()
        #: ``meta`` as the file was opened, before this run marked it open: the previous run's end.
        self.previous = replace(self.meta)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], fsync: Fsync = "full", *, check: bool = True) -> OutboxDb:
        """Open (or create) the outbox for writing: lock, identify, check, migrate (``dbfile``)."""
        initial = asdict(Meta(stream=uuid.uuid4().hex))
        conn, lock_fd = dbfile.open_writer(Path(path), fsync, check, initial)
        try:
            db = cls(conn, Path(path), fsync, lock_fd)
            db._start()
        except BaseException:
            conn.close()
            os.close(lock_fd)
            raise
        return db

    @classmethod
    def open_reader(cls, path: str | os.PathLike[str]) -> OutboxDb:
        """A query-only connection; the writer must have created the file."""
        return cls(dbfile.open_reader(Path(path)), Path(path), "full", None)

    def _start(self) -> None:
        with self._synced():
            if self.fsync == "normal" and not self.meta.clean:
                # A power cut may have rolled back numbers that were already sent: skip them.
                self.meta.next_seq = max(self.meta.next_seq, self.meta.reserved_seq)
            self.meta.clean = 0

    def close(self) -> None:
        """Mark the file closed cleanly (writer), checkpoint the WAL into it, release the lock."""
        try:
            if self._lock_fd is not None:  # the writer; a reader leaves the file alone
                with self._synced():
                    self.meta.clean = 1
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._conn.close()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- writing (the writer thread only) ---------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT; ``meta`` is written at the end and restored on failure."""
        before = replace(self.meta)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._write_meta(before)
            self._conn.execute("COMMIT")
        except BaseException:
            self.meta = before
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _synced(self) -> Iterator[None]:
        """A transaction fsynced at commit whatever the fsync setting (it cannot change inside one)."""
        if self.fsync == "normal":
            self._conn.execute("PRAGMA synchronous=FULL")
        try:
            with self.transaction():
                yield
        finally:
            if self.fsync == "normal":
                self._conn.execute("PRAGMA synchronous=NORMAL")

    def reserve(self, count: int) -> None:
        """Make sure the next ``count`` numbers are reserved durably ("normal" mode; else a no-op)."""
        if self.fsync == "normal" and self.meta.next_seq + count > self.meta.reserved_seq:
            with self._synced():
                self.meta.reserved_seq = self.meta.next_seq + count + SEQ_RESERVATION

    def insert(self, rows: Sequence[NewRow]) -> None:
        """OutboxDb rows numbered ``next_seq, next_seq + 1, ...`` (inside ``transaction``)."""
        if not rows:
            return
        first, last = rows[0].seq, rows[-1].seq
        if first != self.meta.next_seq or last - first != len(rows) - 1 or last > MAX_SEQ:
            raise ValueError(f"rows {first}..{last} do not continue the numbering at {self.meta.next_seq}")
        if self.fsync == "normal" and last >= self.meta.reserved_seq:
            raise ValueError(f"seq {last} is beyond the durable reservation {self.meta.reserved_seq}")
        sizes = [row_size(row.body) for row in rows]
        self._conn.executemany(
            "INSERT INTO items (seq, lane, kind, subject, ts, synced, value, size, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row[:7], size, row.body) for row, size in zip(rows, sizes, strict=True)],
        )
        self.meta.next_seq = last + 1
        self.meta.item_count += len(rows)
        self.meta.item_bytes += sum(sizes)

    def delete_upto(self, seq: int, limit: int) -> int:
        """Delete at most ``limit`` of the rows <= ``seq``; return the seq deleted up to."""
        row = self._conn.execute(
            "SELECT seq FROM items WHERE seq <= ? ORDER BY seq LIMIT 1 OFFSET ?", (seq, limit - 1)
        ).fetchone()
        bound = seq if row is None else row[0]
        self._delete_where("seq <= ?", (bound,))
        self.meta.acked_seq = max(self.meta.acked_seq, bound)
        return bound

    def rows_upto(self, seq: int) -> tuple[int, int]:
        """(rows, bytes) still stored at or below ``seq``: acknowledged but not yet deleted."""
        count, size = self._conn.execute(
            "SELECT count(*), total(size) FROM items WHERE seq <= ?", (seq,)
        ).fetchone()
        return int(count), int(size)

    def delete_seqs(self, seqs: Sequence[int]) -> None:
        """Delete the given rows (thinning); the counters come from the rows themselves."""
        self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (seq INTEGER PRIMARY KEY)")
        self._conn.executemany("INSERT OR IGNORE INTO doomed (seq) VALUES (?)", [(s,) for s in seqs])
        self._delete_where("seq IN (SELECT seq FROM doomed)", ())
        self._conn.execute("DELETE FROM doomed")

    def _delete_where(self, where: str, args: tuple[int, ...]) -> None:
        count, size = self._conn.execute(
            f"SELECT count(*), total(size) FROM items WHERE {where}", args
        ).fetchone()
        self._conn.execute(f"DELETE FROM items WHERE {where}", args)
        self.meta.item_count -= count
        self.meta.item_bytes -= int(size)

    # -- reading ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction, so several SELECTs see the same committed state."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def read_after(self, after_seq: int, max_items: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Items with seq > ``after_seq`` in seq order, at least one, within both limits."""
        cursor = self._conn.execute(
            "SELECT seq, body FROM items WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, max_items)
        )
        return _within(cursor, max_bytes)

    def read_priority(self, after_seq: int, max_items: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Lane-0 items after ``after_seq`` up to the first routine row: a range with no reading in it."""
        with self.snapshot():
            cursor = self._conn.execute(
                "SELECT seq, body FROM items WHERE lane = ? AND seq > ? ORDER BY seq LIMIT ?",
                (PRIORITY, after_seq, max_items),
            )
            rows = _within(cursor, max_bytes)
            if not rows:
                return rows
            routine = self._conn.execute(
                "SELECT seq FROM items WHERE lane = ? AND seq > ? ORDER BY seq LIMIT 1", (ROUTINE, rows[0][0])
            ).fetchone()
        return rows if routine is None else [row for row in rows if row[0] < routine[0]]

    def routine_rows(self, after_seq: int, limit: int) -> list[RowMeta]:
        cursor = self._conn.execute(
            "SELECT seq, subject, ts, synced, size, value FROM items"
            " WHERE lane = ? AND seq > ? ORDER BY seq LIMIT ?",
            (ROUTINE, after_seq, limit),
        )
        return [
            RowMeta(seq, subject, ts, bool(synced), size, value)
            for seq, subject, ts, synced, size, value in cursor
        ]

    def oldest_ts(self, after_seq: int) -> int | None:
        row = self._conn.execute(
            "SELECT ts FROM items WHERE seq > ? ORDER BY seq LIMIT 1", (after_seq,)
        ).fetchone()
        return None if row is None else int(row[0])

    def counted(self) -> tuple[int, int]:
        """(rows, bytes) counted from the rows themselves: a full scan, for checks and tests."""
        count, size = self._conn.execute("SELECT count(*), total(size) FROM items").fetchone()
        return int(count), int(size)

    def read_meta(self) -> Meta:
        """The durable counters as the file holds them now (readers too: ``coldgate gateway status``)."""
        return self._load_meta()

    def integrity_check(self) -> list[str]:
        return dbfile.check_file(self._conn)

    # -- internals ----------------------------------------------------------------------------

    def _load_meta(self) -> Meta:
        stored = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        return Meta(
            **{key: type(default)(stored[key]) for key, default in asdict(Meta()).items() if key in stored}
        )

    def _write_meta(self, before: Meta) -> None:
        old, new = asdict(before), asdict(self.meta)
        changed = [(key, value) for key, value in new.items() if old[key] != value]
        # An upsert: a file made before a key existed gains it at its first change.
        self._conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            changed,
        )


def _within(cursor: sqlite3.Cursor, max_bytes: int) -> list[tuple[int, bytes]]:
    rows: list[tuple[int, bytes]] = []
    total = 0
    for seq, body in cursor:
        if rows and total + len(body) > max_bytes:
            break
        rows.append((seq, body))
        total += len(body)
    return rows
