"""What the dock portal costs: tag reads/s through portal logic into the outbox, decision latency, CPU, RSS.

The workload is the simulator's dock-door scenarios (``simulator.rfid_scenarios``):
pallets of 200 SGTIN-96 cases plus an SSCC-96 pallet tag, alternating inbound
and outbound, read by an outside and an inside antenna with realistic RSSI
curves, plus goods staged near the door.  Reads go through the same path as in
the gateway: ``DockPortal.read`` per read, ``tick`` every 50 ms of read time
(the reader source's tick), each decision turned into a ``Movement`` by
``gateway.dock.passage`` (EPC decoded once, as the reader source does) and put
into a real outbox on disk.  The clock is the reads' own, so the run is as fast
as the CPU allows: the reads/s figure is the sustained ceiling of one core.

Latency is measured twice: in read time, how long after the departure
threshold (last read + T) a decision was taken (bounded by the tick); and in
wall time, how long one tick takes to decide (what a burst of departures adds).
The issue's goals: ≥ 5,000 reads/s on one core, p99 ≤ 100 ms past the
threshold; a four-antenna reader peaks around 1,100 reads/s.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config import OutboxConfig
from coldgate.gateway.dock import passage
from coldgate.gateway.rules.dock_portal import DockPortal, PassDecision, PortalConfig, TagRead
from coldgate.simulator.rfid_scenarios import merge, pallet_pass, strays

TICK_MS = 50  # as gateway.readers.llrp_source ticks (TICK_S)


def workload(pallets: int) -> list[tuple[int, int, str, float | None, int]]:
    """``pallets`` passes 20 s apart, alternating in and out, with staged goods near the door."""
    streams = []
    for n in range(pallets):
        direction = "in" if n % 2 == 0 else "out"
        streams.append(pallet_pass(direction, start_ms=n * 20_000, seed=n, first_serial=1 + n * 1000))
    streams.append(strays(20, antenna=2, duration_ms=pallets * 20_000, seed=99))
    return merge(*streams)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pallets", type=int, default=40)
    args = parser.parse_args()
    reads = workload(args.pallets)
    config = PortalConfig(
        door="dock2", reader="dock2-r1", outside_antennas=frozenset({1}), inside_antennas=frozenset({2})
    )
    portal = DockPortal(config)
    clock = SystemClock()
    lateness_ms: list[float] = []
    tick_wall_ms: list[float] = []
    moved = 0
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        outbox_config = OutboxConfig(path=str(Path(tmp) / "outbox.sqlite3"))
        with Outbox(outbox_config, gateway="dock2-pi", clock=clock) as outbox:

            def decide(decisions: list[PassDecision]) -> None:
                nonlocal moved
                for d in decisions:
                    lateness_ms.append(d.decided_ms - (d.last_seen_ms + config.depart_after_ms))
                    outbox.put(passage(d, clock.stamp()).movement)
                    moved += 1

            usage0 = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            next_tick = reads[0][0] + TICK_MS
            for ts, antenna, epc, rssi, count in reads:
                while ts >= next_tick:
                    t0 = time.perf_counter()
                    decide(portal.tick(next_tick))
                    tick_wall_ms.append((time.perf_counter() - t0) * 1000)
                    next_tick += TICK_MS
                portal.read(TagRead(epc, antenna, rssi, ts, count))
            end = reads[-1][0] + 60_000
            while next_tick <= end:
                decide(portal.tick(next_tick))
                next_tick += TICK_MS
            outbox.flush()  # the movements are on disk: part of the cost
            elapsed = time.perf_counter() - started
            usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    reads_per_s = len(reads) / elapsed
    expected = args.pallets * 201
    print(f"{len(reads):,} reads, {args.pallets} pallets: {moved:,} movements (expected {expected:,})")
    print(f"{reads_per_s:,.0f} reads/s through portal + outbox; CPU {cpu_s:.2f} s for {elapsed:.2f} s wall")
    print(
        f"decision after the threshold (read time): p50 {statistics.median(lateness_ms):.0f} ms, "
        f"p99 {percentile(lateness_ms, 99):.0f} ms (tick every {TICK_MS} ms; one-sided tags wait longer)"
    )
    print(
        f"tick processing (wall): p99 {percentile(tick_wall_ms, 99):.2f} ms, max {max(tick_wall_ms):.2f} ms"
    )
    rss_mb = usage1.ru_maxrss / 1024
    p99_total = percentile(lateness_ms, 99) + percentile(tick_wall_ms, 99)
    print(
        f"RESULT reads_per_s={reads_per_s:.0f} movements={moved} expected={expected} "
        f"p99_past_threshold_ms={p99_total:.1f} cpu_pct={100 * cpu_s / elapsed:.0f} rss_mb={rss_mb:.1f}"
    )


if __name__ == "__main__":
    main()
