"""Opening the outbox file: one writer, the right file, intact, in WAL mode, schema up to date.

One file in WAL mode, written by one thread of one process (an advisory lock
on ``<path>.lock`` refuses a second gateway process, which would number items
twice), read by any number of connections: WAL readers never block the writer.

Durability, ``fsync`` in ``[outbox]``:

- ``"full"`` (default): ``PRAGMA synchronous=FULL``.  In WAL mode SQLite then
  fsyncs the WAL at every commit, so an item that counts as committed survives
  a power cut.  Cost: one fsync per group commit.
- ``"normal"``: ``PRAGMA synchronous=NORMAL``.  The WAL is synced only at
  checkpoints.  A crash of the process (``kill -9``) still loses nothing and
  nothing is ever corrupted, but a power cut can roll back the commits since
  the last checkpoint (up to ~4 MiB of WAL, some 15,000 readings).

Measured with ``python -m bench.outbox`` (three runs on a shared 2-vCPU VM,
virtio ext4 disk; ranges are the spread between runs):

=====================================  ===================  ===================
                                       full                 normal
=====================================  ===================  ===================
put→commit, groups of 500              77,000-114,000 /s    103,000-117,000 /s
commit of 500 readings, p50 / p99      2.8-5.2 / 8-21 ms    2.6 / 9-20 ms
commit of 1 reading (≈ the fsync) p50  0.15-1.05 ms         0.04-0.05 ms
written to storage per commit          17.5 KB              13.4 KB
on disk per reading                    271 B                271 B
500 readings/s for 5 s                 lost 0, duplicated 0; put→durable p50 101 ms, p99 201 ms
=====================================  ===================  ===================

On this disk an fsync costs well under the time it takes to number, encode
and validate a group of 500, so the two modes are close.  An SD card is
another matter: its fsync takes milliseconds with long tails, and every
commit rewrites whole 4 KiB WAL pages (the 13-18 KB per commit above)
whatever it holds.  Group commit is what protects the card: at a 200 ms
interval there are at most five commits a second however many readings
arrive, at the default 20 ms fifty; so ``commit_interval_ms`` trades
put→durable latency for wear, while the fsync policy hardly changes the
wear.  ``python -m bench.uplink`` measures both, put→consumer with fsync on
(acks' deletes riding on the next commit):

=====================  ===========================  ===========================
                       20 ms (default)              200 ms
=====================  ===========================  ===========================
10 readings/s          p50 3 ms, 16.4 KB a reading  p50 104 ms, 6.3 KB a reading
500 readings/s         p50 15 ms, 3.2 KB a reading  p50 113 ms, 0.8 KB a reading
=====================  ===========================  ===========================

The default meets the latency goal (p50 ≤ 20 ms, p99 ≤ 100 ms at both rates);
a site that polls every few seconds writes the same at either interval (a
reading after a quiet interval is committed at once), so only a site
streaming tens of readings a second on a plain SD card should raise it.

``"full"`` stays the default (a reading that counts as stored is on the
card when the power goes: the cold-chain promise); ``"normal"`` is for a
card whose fsync stalls make the commit interval unreachable, at the price
of the last seconds before a power cut.
Rerun the bench with ``--dir`` on the target card before choosing.

Start-up runs ``PRAGMA quick_check`` (0.8-1.5 ms per MiB here, so under 1 s
for a full 512 MiB outbox; an SD card reads slower): a damaged file is
refused with what SQLite found instead of being written on.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Final, Literal

Fsync = Literal["full", "normal"]

SCHEMA_VERSION: Final = 1
APPLICATION_ID: Final = 0x43474F42  # "CGOB" in the file header: this file is a Coldgate outbox

_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE items (
            seq INTEGER PRIMARY KEY,  -- the durable sequence number, unique per stream
            lane INTEGER NOT NULL,    -- 0 priority, 1 routine (gateway/buffer/lanes.py)
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,    -- sensor/quantity for readings, else the item's subject
            ts INTEGER NOT NULL,
            synced INTEGER NOT NULL,
            value REAL,               -- a reading's value, for min/max thinning
            size INTEGER NOT NULL,    -- len(body) + ROW_OVERHEAD: what counts against max_bytes
            body BLOB NOT NULL        -- the contract item as JSON, carrying its seq
        )""",
        "CREATE INDEX items_by_lane ON items (lane, seq)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL) WITHOUT ROWID",  # keys: Meta's fields
    ),
}


class OutboxFileError(RuntimeError):
    """The outbox file cannot be used: not an outbox, corrupt, too new, or in use."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def open_writer(
    path: Path, fsync: Fsync, check: bool, initial: dict[str, object]
) -> tuple[sqlite3.Connection, int]:
    """Lock, identify, check and migrate ``path``; ``initial`` fills ``meta`` of a new file."""
    if fsync not in ("full", "normal"):
        raise ValueError(f"fsync must be 'full' or 'normal', not {fsync!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(path)
    except OSError as exc:
        # A data folder that cannot be made or a lock file that cannot be opened (permissions, a read-only
        # card): the operator's to fix, so the message names the path, not a traceback.
        where = f": {exc.filename}" if exc.filename else ""
        raise OutboxFileError(path, f"cannot be created or locked ({exc.strerror or exc}{where})") from None
    try:
        conn = _connect(path)
    except BaseException:
        os.close(lock_fd)
        raise
    try:
        fresh = _identify(conn, path)
        _configure(conn, path, fsync)
        if check and not fresh:
            problems = check_file(conn, "quick_check")
            if problems != ["ok"]:
                raise OutboxFileError(path, "corrupt (quick_check: " + "; ".join(problems[:5]) + ")")
        _migrate(conn, initial)
        return conn, lock_fd
    except BaseException as exc:
        conn.close()
        os.close(lock_fd)
        if isinstance(exc, sqlite3.OperationalError):  # locked, unreadable, disk I/O: not the file's fault
            raise OutboxFileError(path, f"cannot be opened ({exc})") from None
        if isinstance(exc, sqlite3.DatabaseError):
            raise OutboxFileError(path, f"corrupt ({exc}); move it away to start a new stream") from None
        raise


def open_reader(path: Path) -> sqlite3.Connection:
    """A query-only connection to a file the writer has set up."""
    conn = _connect(path)
    conn.execute("PRAGMA query_only=1")
    return conn


def check_file(conn: sqlite3.Connection, pragma: str = "integrity_check") -> list[str]:
    return [row[0] for row in conn.execute(f"PRAGMA {pragma}")]


def _lock(path: Path) -> int:
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise OutboxFileError(
            path, f"in use by another process (pid {holder}); one gateway per outbox"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _identify(conn: sqlite3.Connection, path: Path) -> bool:
    """True for a new, empty file; raise unless the file is a Coldgate outbox this build can read."""
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError as exc:
        raise OutboxFileError(
            path, f"not an SQLite database ({exc}); move it away or set outbox.path"
        ) from None
    if app_id == 0 and version == 0 and not tables:
        return True
    if app_id != APPLICATION_ID:
        shown = ", ".join(tables[:5]) or "none"
        raise OutboxFileError(path, f"not a Coldgate outbox (application_id {app_id:#x}, tables: {shown})")
    if version > SCHEMA_VERSION:
        raise OutboxFileError(
            path, f"written by a newer Coldgate (schema {version}; this build reads up to {SCHEMA_VERSION})"
        )
    return False


def _configure(conn: sqlite3.Connection, path: Path, fsync: Fsync) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise OutboxFileError(path, f"cannot use write-ahead logging here (journal_mode stays {mode!r})")
    conn.execute(f"PRAGMA synchronous={fsync.upper()}")
    conn.execute("PRAGMA journal_size_limit=16777216")  # truncate a WAL that grew past 16 MiB
    conn.execute("PRAGMA temp_store=MEMORY")


def _migrate(conn: sqlite3.Connection, initial: dict[str, object]) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[step]:
                conn.execute(statement)
        if version == 0:
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(initial.items()))
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
