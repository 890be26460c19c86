"""kill -9 at random instants: the outbox must come back intact, with every committed item, once.

A child process puts items as fast as it can (with an ack now and then, so
deletes are in flight too) and writes each committed seq to its stdout from
the commit listener, which runs only after COMMIT has returned.  The parent
SIGKILLs it at a random moment, reopens the file and checks: integrity_check
is ok; every seq the child reported committed is still there unless acked;
the rows of a run are gap-free and in put order, no item is stored twice;
the counters match the rows; the next run numbers on without reusing a seq.
Runs alternate between fsync "full" and "normal" (a kill, unlike a power
cut, must not cost "normal" anything either).
"""

from __future__ import annotations

import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coldgate.contract.codec import decode_item

ROOT = Path(__file__).resolve().parents[1]
KILLS = 24

CHILD = """
import os, sys, time
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.config import OutboxConfig
from tests.rig.items import alert, reading
from tests.rig.clocks import FakeClock
import msgspec

path, fsync = sys.argv[1], sys.argv[2]
run, interval, group = (int(arg) for arg in sys.argv[3:6])
config = OutboxConfig(path=path, fsync=fsync, commit_interval_ms=interval, commit_max_items=group)
outbox = Outbox(config, gateway="gw01", clock=FakeClock())
outbox.add_listener(lambda seq: os.write(1, b"c %d\\n" % seq))
os.write(1, b"ready %d %d\\n" % (outbox.committed_seq, outbox.acked_seq))
i = 0
while True:
    item = alert(i) if i % 50 == 0 else reading(float(i % 300) / 10)
    outbox.put(msgspec.structs.replace(item, mono=run * 10_000_000 + i))  # mono: which put this was
    i += 1
    if i % 1000 == 0 and outbox.committed_seq > outbox.acked_seq + 300:
        outbox.ack(outbox.committed_seq - 300)
    while outbox.pending() > 5000:
        time.sleep(0.001)
"""


def start_child(
    path: Path, fsync: str, run: int, rng: random.Random
) -> tuple[subprocess.Popen[bytes], int, int]:
    args = [str(path), fsync, str(run), str(rng.choice([0, 1, 5])), str(rng.choice([1, 64, 500]))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, cwd=ROOT, env=env)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 30)
    assert ready, "child did not start"
    words = child.stdout.readline().split()
    assert words[0] == b"ready", words
    return child, int(words[1]), int(words[2])


def inspect(path: Path) -> tuple[dict[str, int | str], list[tuple[int, int]], tuple[int, int]]:
    conn = sqlite3.connect(path)  # recovers the WAL like the gateway would
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        rows = [
            (seq, decode_item(body)) for seq, body in conn.execute("SELECT seq, body FROM items ORDER BY seq")
        ]
        counted = conn.execute("SELECT count(*), total(size) FROM items").fetchone()
    finally:
        conn.close()
    for seq, item in rows:
        assert item.seq == seq, f"row {seq} holds an item numbered {item.seq}"
    return meta, [(seq, item.mono) for seq, item in rows], (counted[0], int(counted[1]))


@pytest.mark.slow
def test_kill_9_at_random_instants_never_loses_or_doubles_a_committed_item(tmp_path: Path) -> None:
    rng = random.Random(1741079700)
    path = tmp_path / "outbox.sqlite3"
    survivors: dict[int, int] = {}  # seq -> mono of every unacked row seen so far
    next_seq = 1
    committed_total = 0
    for run in range(KILLS):
        fsync = "full" if run % 2 == 0 else "normal"
        child, start_seq, _ = start_child(path, fsync, run, rng)
        assert start_seq >= next_seq - 1, (
            f"run {run} numbers from {start_seq + 1}, reusing seqs below {next_seq}"
        )
        time.sleep(rng.uniform(0.02, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.stdout is not None
        reported = [
            int(line.split()[1]) for line in child.stdout.read().splitlines() if line.startswith(b"c ")
        ]
        child.stdout.close()

        meta, rows, counted = inspect(path)
        acked = int(meta["acked_seq"])
        next_seq = int(meta["next_seq"])
        seqs = [seq for seq, _ in rows]
        assert counted == (meta["item_count"], meta["item_bytes"])
        if reported:
            assert next_seq - 1 >= max(reported), "a committed seq was taken back"
            committed_total += max(reported) - start_seq
        assert {seq for seq in reported if seq > acked} <= set(seqs), "a committed item was lost"
        for seq, mono in survivors.items():
            if seq > acked:
                assert dict(rows).get(seq) == mono, f"item {seq} from an earlier run changed or vanished"
        this_run = [(seq, mono) for seq, mono in rows if seq > start_seq]
        assert [seq for seq, _ in this_run] == list(range(max(acked, start_seq) + 1, next_seq)), (
            "a gap in a run"
        )
        monos = [mono for _, mono in this_run]
        assert monos == sorted(monos) and len(set(monos)) == len(monos), "an item doubled or reordered"
        survivors = dict(rows)
    assert committed_total > 1000, "the children hardly committed anything; the test proves little"
