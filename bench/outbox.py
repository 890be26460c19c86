"""What the durable outbox costs: put→commit throughput, commit latency, bytes on disk, and loss at 500/s.

The figures back the trade-off documented in ``gateway/buffer/db.py``
(fsync "full" versus "normal") and answer the issue's reference point:
ThingsBoard IoT Gateway 3.8.5 with SQLite storage silently lost 0.7-6.7 % of
readings at 500 readings/s on this kind of machine.  Here a paced run at 500
readings/s counts what was stored against what was put.

Run it where the gateway keeps its data (``--dir`` on the SD card of a Pi):
fsync latency is a property of the storage, and /tmp may be RAM.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from coldgate.contract.items import Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.buffer.outbox_db import OutboxDb
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config import OutboxConfig
from coldgate.gateway.observations import stamp_fields


def readings(clock: SystemClock, count: int, start: int = 0) -> list[Reading]:
    """Ten cold-room sensors, temperature and humidity, with plausible values."""
    out = []
    for i in range(start, start + count):
        humidity = i % 2 == 1
        out.append(
            Reading(
                **stamp_fields(clock.stamp()),  # type: ignore[arg-type]
                sensor=f"cr{i % 10 // 2 + 1}-th{i % 10:02d}",
                quantity=Quantity.HUMIDITY if humidity else Quantity.TEMPERATURE,
                value=round(45.0 + i % 17 / 10, 1) if humidity else round(4.0 + i % 23 / 10, 1),
                unit=Unit.P1 if humidity else Unit.CEL,
            )
        )
    return out


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def disk_writes() -> int:
    """Bytes this process has caused to be written to storage (Linux /proc/self/io)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def throughput(where: Path, fsync: str, count: int, group: int = 500) -> dict[str, float]:
    """Put ``count`` readings as fast as possible with group commit (200 ms / ``group`` items); flush."""
    clock = SystemClock()
    items = readings(clock, count)
    config = OutboxConfig(
        path=str(where / f"throughput-{fsync}-{group}.sqlite3"),
        fsync=fsync,  # type: ignore[arg-type]
        commit_max_items=group,
    )
    with Outbox(config, gateway="gw01", clock=clock) as outbox:
        written = disk_writes()
        start = time.perf_counter()
        for item in items:
            outbox.put(item)
        outbox.flush()
        elapsed = time.perf_counter() - start
        written = disk_writes() - written
        commits = outbox.commit_durations_ms()
        body = outbox.bytes_used() / count
    size = os.path.getsize(config.path)  # type: ignore[arg-type]
    return {
        "items_per_s": count / elapsed,
        "commit_p50_ms": percentile(commits, 50),
        "commit_p99_ms": percentile(commits, 99),
        "commits": len(commits),
        "disk_bytes_per_reading": size / count,
        "counted_bytes_per_reading": body,
        "written_bytes_per_reading": written / count,
    }


def paced(
    where: Path, rate: float, seconds: float, *, leading_edge: bool = True, name: str = "paced"
) -> dict[str, float]:
    """Put readings at ``rate`` per second, then count what the file holds, how many transactions
    stored them and what they wrote.  ``leading_edge`` False: the reference, every group waiting its
    full interval from its first item (the outbox before it committed at the leading edge)."""
    clock = SystemClock()
    path = where / f"{name}.sqlite3"
    put_at: list[float] = []
    committed_at: dict[int, float] = {}
    total = max(1, int(rate * seconds))
    config = OutboxConfig(path=str(path))
    with Outbox(config, gateway="gw01", clock=clock, leading_edge=leading_edge) as outbox:
        outbox.add_listener(lambda seq: committed_at.setdefault(seq, time.perf_counter()))
        outbox.flush()  # the outbox's own opening writes are not the readings'
        transactions, written = outbox.status().transactions, disk_writes()
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            item = readings(clock, 1, i)[0]
            put_at.append(time.perf_counter())
            outbox.put(item)
        outbox.flush()
        transactions = outbox.status().transactions - transactions
        written = disk_writes() - written
    conn = sqlite3.connect(path)
    stored, distinct, lowest, highest = conn.execute(
        "SELECT count(*), count(DISTINCT body), min(seq), max(seq) FROM items"
    ).fetchone()
    conn.close()
    # Commits are cumulative: a put is durable at the first commit whose seq reaches it.
    marks = sorted(committed_at.items())
    latencies, mark = [], 0
    for seq, put in enumerate(put_at, start=1):
        while marks[mark][0] < seq:
            mark += 1
        latencies.append((marks[mark][1] - put) * 1000)
    return {
        "put": total,
        "stored": stored,
        "lost": total - stored,
        "duplicated": stored - distinct,
        "gap_free": float(lowest == 1 and highest == stored),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p99_ms": percentile(latencies, 99),
        "commits_per_reading": transactions / total,
        "written_bytes_per_reading": written / total,
    }


def live(where: Path, rate: float, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Live traffic at ``rate`` readings/s, committed at the leading edge and, as the reference measured
    in the same run, by the trailing wait: (leading, reference)."""
    name = f"live-{rate:g}"
    return (paced(where, rate, seconds, name=name),
            paced(where, rate, seconds, leading_edge=False, name=f"{name}-ref"))  # fmt: skip


def check_cost(where: Path) -> tuple[float, float]:
    """Seconds per MiB for the start-up quick_check, measured on the throughput file."""
    path = where / "throughput-full-500.sqlite3"
    mib = os.path.getsize(path) / 1_048_576
    start = time.perf_counter()
    OutboxDb.open(path).close()
    return mib, (time.perf_counter() - start) / mib


def filesystem(where: Path) -> str:
    try:
        return subprocess.run(
            ["df", "--output=fstype,source", str(where)], capture_output=True, text=True, check=True
        ).stdout.split()[-2]
    except (OSError, subprocess.CalledProcessError, IndexError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the outbox files")
    parser.add_argument("--count", type=int, default=100_000, help="readings for the throughput runs")
    parser.add_argument("--rate", type=float, default=500.0, help="readings/s for the paced run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the paced run")
    parser.add_argument("--live-seconds", type=float, default=10.0, help="length of each live run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        where = Path(tmp)
        print(f"outbox files in {where} ({filesystem(where)}), default group commit (200 ms / 500 items)")
        results = {}
        for fsync in ("full", "normal"):
            r = results[fsync] = throughput(where, fsync, args.count)
            print(
                f"fsync={fsync:6}  {r['items_per_s']:>9,.0f} readings/s put→commit  "
                f"commit p50 {r['commit_p50_ms']:.2f} ms  p99 {r['commit_p99_ms']:.2f} ms "
                f"({r['commits']:.0f} commits of up to 500)"
            )
            print(
                f"               on disk {r['disk_bytes_per_reading']:.0f} B/reading "
                f"(counted against max_bytes: {r['counted_bytes_per_reading']:.0f} B), "
                f"written to storage {r['written_bytes_per_reading']:.0f} B/reading"
            )
        for fsync in ("full", "normal"):
            one = throughput(where, fsync, 2000, group=1)
            print(
                f"fsync={fsync:6}  one reading per commit (the fsync alone): "
                f"p50 {one['commit_p50_ms']:.2f} ms  p99 {one['commit_p99_ms']:.2f} ms, "
                f"{one['items_per_s']:,.0f} commits/s, "
                f"written {one['written_bytes_per_reading']:,.0f} B/commit"
            )
        mib, per_mib = check_cost(where)
        print(f"start-up quick_check: {per_mib * 1000:.1f} ms per MiB ({mib:.1f} MiB file)")
        p = paced(where, args.rate, args.seconds)
        print(
            f"paced {args.rate:.0f} readings/s for {args.seconds:g} s (fsync=full): put {p['put']:.0f}, "
            f"stored {p['stored']:.0f}, lost={p['lost']:.0f} duplicated={p['duplicated']:.0f} "
            f"gap_free={bool(p['gap_free'])}; put→durable p50 {p['latency_p50_ms']:.0f} ms, "
            f"p99 {p['latency_p99_ms']:.0f} ms"
        )
        lives = {rate: live(where, rate, args.live_seconds) for rate in (1.0, 50.0, 500.0)}
        for rate, (lead, ref) in lives.items():
            print(
                f"live {rate:g} readings/s for {args.live_seconds:g} s: put→durable p50 "
                f"{lead['latency_p50_ms']:.1f} ms, p99 {lead['latency_p99_ms']:.1f} ms (trailing wait: "
                f"{ref['latency_p50_ms']:.1f} / {ref['latency_p99_ms']:.1f} ms); commits per reading "
                f"{lead['commits_per_reading']:.3f} ({ref['commits_per_reading']:.3f}); written "
                f"{lead['written_bytes_per_reading']:,.0f} B/reading "
                f"({ref['written_bytes_per_reading']:,.0f})"
            )
        slow, fast = lives[1.0], lives[500.0]
        print(
            f"RESULT full_items_per_s={results['full']['items_per_s']:.0f} "
            f"normal_items_per_s={results['normal']['items_per_s']:.0f} "
            f"commit_p99_ms={results['full']['commit_p99_ms']:.2f} "
            f"normal_commit_p99_ms={results['normal']['commit_p99_ms']:.2f} "
            f"bytes_per_reading={results['full']['disk_bytes_per_reading']:.0f} "
            f"paced_{args.rate:.0f}_lost={p['lost']:.0f} "
            f"live_1_p50_ms={slow[0]['latency_p50_ms']:.1f} "
            f"live_1_ref_p50_ms={slow[1]['latency_p50_ms']:.1f} "
            f"live_1_commits_per_reading={slow[0]['commits_per_reading']:.3f} "
            f"live_1_ref_commits_per_reading={slow[1]['commits_per_reading']:.3f} "
            f"live_500_p50_ms={fast[0]['latency_p50_ms']:.1f} "
            f"live_500_ref_p50_ms={fast[1]['latency_p50_ms']:.1f} "
            f"live_500_commits_per_reading={fast[0]['commits_per_reading']:.4f} "
            f"live_500_ref_commits_per_reading={fast[1]['commits_per_reading']:.4f}"
        )


if __name__ == "__main__":
    main()
