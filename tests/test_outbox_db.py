"""The SQLite layer: opening checks, durable numbering, counters, and the reads the uplink needs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coldgate.gateway.buffer.dbfile import APPLICATION_ID, SCHEMA_VERSION, OutboxFileError
from coldgate.gateway.buffer.lanes import PRIORITY, ROUTINE
from coldgate.gateway.buffer.outbox_db import SEQ_RESERVATION, NewRow, OutboxDb, row_size
from tests.rig.items import alert, reading
from tests.rig.outbox import meta, open_outbox


def rows(first: int, lanes: str, body: bytes = b'{"x":1}') -> list[NewRow]:
    """Rows numbered from ``first``; ``lanes`` is a string like "1101" (one lane digit per row)."""
    return [
        NewRow(
            first + i,
            int(lane),
            "reading" if lane == "1" else "alert",
            "s/temperature",
            1000 + i,
            True,
            4.0,
            body,
        )
        for i, lane in enumerate(lanes)
    ]


def fill(outbox_db: OutboxDb, lanes: str) -> None:
    outbox_db.reserve(len(lanes))
    with outbox_db.transaction():
        outbox_db.insert(rows(outbox_db.meta.next_seq, lanes))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite3"


def test_new_file_is_marked_as_an_outbox(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    assert len(outbox_db.meta.stream) == 32 and outbox_db.meta.next_seq == 1
    outbox_db.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_stream_id_is_kept_across_opens(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    stream = outbox_db.meta.stream
    outbox_db.close()
    again = OutboxDb.open(db)
    assert again.meta.stream == stream
    again.close()


def test_a_file_that_is_not_sqlite_is_refused(db: Path) -> None:
    db.write_bytes(b"temperature log, not a database\n" * 200)
    with pytest.raises(OutboxFileError, match="not an SQLite database"):
        OutboxDb.open(db)


def test_another_sqlite_database_is_refused(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE readings (ts, value)")
    conn.commit()
    conn.close()
    with pytest.raises(
        OutboxFileError, match=r"not a Coldgate outbox \(application_id 0x0, tables: readings\)"
    ):
        OutboxDb.open(db)


def test_a_newer_schema_is_refused(db: Path) -> None:
    OutboxDb.open(db).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(OutboxFileError, match=r"newer Coldgate \(schema 99; this build reads up to 1\)"):
        OutboxDb.open(db)


def test_a_corrupt_file_is_refused_with_what_quick_check_found(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    for _ in range(20):
        fill(outbox_db, "1" * 200)
    outbox_db.close()
    data = bytearray(db.read_bytes())
    data[4096 * 5 : 4096 * 5 + 300] = b"\xa5" * 300  # scribble over a b-tree page
    db.write_bytes(bytes(data))
    with pytest.raises(OutboxFileError, match="corrupt"):
        OutboxDb.open(db)


def test_a_second_writer_is_refused(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    with pytest.raises(OutboxFileError, match=r"in use by another process \(pid \d+\)"):
        OutboxDb.open(db)
    outbox_db.close()
    OutboxDb.open(db).close()  # the lock went with the first writer


def test_numbering_continues_after_every_row_is_deleted(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "1101")
    with outbox_db.transaction():
        outbox_db.delete_upto(4, limit=100)
    outbox_db.close()
    outbox_db = OutboxDb.open(db)
    assert (outbox_db.meta.next_seq, outbox_db.meta.acked_seq, outbox_db.meta.item_count) == (5, 4, 0)
    with pytest.raises(ValueError, match="do not continue the numbering at 5"):
        with outbox_db.transaction():
            outbox_db.insert(rows(1, "1"))
    outbox_db.close()


def test_numbering_continues_after_the_newest_rows_are_thinned(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "11111")
    with outbox_db.transaction():
        outbox_db.delete_seqs([4, 5])
    outbox_db.close()
    outbox_db = OutboxDb.open(db)
    assert outbox_db.meta.next_seq == 6
    assert outbox_db.counted() == (3, outbox_db.meta.item_bytes)
    outbox_db.close()


def test_outbox_never_reuses_a_seq_after_acking_everything_and_reopening(tmp_path: Path) -> None:
    with open_outbox(tmp_path) as outbox:
        for value in range(10):
            outbox.put(reading(float(value)))
        outbox.flush()
        assert outbox.ack(10)
    with open_outbox(tmp_path) as outbox:
        assert (outbox.depth(), outbox.committed_seq, outbox.acked_seq) == (0, 10, 10)
        outbox.put(alert())
        outbox.flush()
        chunk = outbox.read_batch(0)
        assert chunk is not None and (chunk.first_seq, chunk.last_seq) == (11, 11)


def test_counters_follow_inserts_and_deletes(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "10101")
    with outbox_db.transaction():
        outbox_db.delete_seqs([3])
        outbox_db.delete_upto(1, limit=10)
    figures = outbox_db.meta
    assert outbox_db.counted() == (figures.item_count, figures.item_bytes) == (3, 3 * row_size(b'{"x":1}'))
    outbox_db.close()
    assert meta(db.parent)["item_count"] == 3


def test_a_failed_transaction_leaves_rows_and_counters_alone(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "111")
    with pytest.raises(RuntimeError), outbox_db.transaction():
        outbox_db.delete_seqs([1, 2])
        raise RuntimeError("disk pulled")
    assert (outbox_db.meta.item_count, outbox_db.counted()[0]) == (3, 3)
    outbox_db.close()


def test_a_huge_ack_is_deleted_in_chunks(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "1" * 25)
    with outbox_db.transaction():
        assert outbox_db.delete_upto(25, limit=10) == 10
    with outbox_db.transaction():
        assert outbox_db.delete_upto(25, limit=10) == 20
    with outbox_db.transaction():
        assert outbox_db.delete_upto(25, limit=10) == 25
    assert outbox_db.meta.item_count == 0
    outbox_db.close()


def test_normal_mode_skips_past_the_reservation_after_an_unclean_shutdown(db: Path) -> None:
    outbox_db = OutboxDb.open(db, "normal")
    fill(outbox_db, "111")
    assert outbox_db.meta.reserved_seq == 1 + 3 + SEQ_RESERVATION
    outbox_db.close()
    conn = sqlite3.connect(db)  # as if the power had gone: the clean-close mark never landed
    conn.execute("UPDATE meta SET value = 0 WHERE key = 'clean'")
    conn.commit()
    conn.close()
    outbox_db = OutboxDb.open(db, "normal")
    assert outbox_db.meta.next_seq == 1 + 3 + SEQ_RESERVATION
    outbox_db.close()
    outbox_db = OutboxDb.open(db, "normal")  # closed cleanly this time: no skip
    assert outbox_db.meta.next_seq == 1 + 3 + SEQ_RESERVATION
    outbox_db.close()


def test_full_mode_never_skips(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "111")
    outbox_db.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = 0 WHERE key = 'clean'")
    conn.commit()
    conn.close()
    outbox_db = OutboxDb.open(db)
    assert outbox_db.meta.next_seq == 4
    outbox_db.close()


def test_read_after_keeps_to_both_limits_but_returns_at_least_one(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "11111")
    assert [seq for seq, _ in outbox_db.read_after(1, max_items=2, max_bytes=10_000)] == [2, 3]
    assert [seq for seq, _ in outbox_db.read_after(0, max_items=5, max_bytes=15)] == [1, 2]
    assert [seq for seq, _ in outbox_db.read_after(0, max_items=5, max_bytes=1)] == [1]
    assert outbox_db.read_after(5, max_items=5, max_bytes=100) == []
    outbox_db.close()


def test_read_priority_stops_before_the_first_reading(db: Path) -> None:
    outbox_db = OutboxDb.open(db)
    fill(outbox_db, "1001001")  # seqs 2, 3 and 5, 6 are priority; 4 is a reading between them
    assert [seq for seq, _ in outbox_db.read_priority(0, 10, 10_000)] == [2, 3]
    assert [seq for seq, _ in outbox_db.read_priority(3, 10, 10_000)] == [5, 6]
    with outbox_db.transaction():
        outbox_db.delete_seqs([4])  # thinned: nothing stands between 3 and 5 any more
    assert [seq for seq, _ in outbox_db.read_priority(0, 10, 10_000)] == [2, 3, 5, 6]
    assert outbox_db.read_priority(6, 10, 10_000) == []
    outbox_db.close()


def test_lanes_are_what_the_reads_filter_on() -> None:
    assert (PRIORITY, ROUTINE) == (0, 1)
