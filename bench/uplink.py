"""What the uplink delivers end to end: outbox → Mosquitto → a de-duplicating, acknowledging consumer.

Two measurements, each against a private Mosquitto with the test rig's fake cloud acknowledging after
each batch:

* **Backlog drain.**  A backlog of readings (as after an outage; 1,000,000 by default) is put into a
  fresh outbox, then the uplink is started; one second in, an alert is raised.  The figures: items/s
  until the last ack, the drain time (goal: a million in 60 s or less), how long the alert took from
  being put to reaching the consumer past the backlog (goal: 1 s or less), batches and bytes per item
  on the wire.  ``--drain-rate`` shows the backlog limiter at work (``inf``, the default here: only the
  window and the cloud bound it; a gateway's default is ``uplink.drain_items_per_s``, 500).
* **Live traffic.**  Readings put at 500/s and at 10/s with fsync on (``fsync = "full"``, the default),
  each reading timed from ``Outbox.put`` to its first arrival at the consumer (goal: p50 ≤ 20 ms, p99 ≤
  100 ms at both rates), at each commit interval of ``--commit-intervals`` (the outbox's
  ``commit_interval_ms``; the default first): the latency is almost all the group commit's wait, and
  what a shorter interval costs is counted beside it, per reading, in outbox transactions (commits of
  readings and of acks) and in bytes this process caused to be written (``/proc/self/io``: the outbox's
  WAL and checkpoints; the broker is another process): the wear an SD card takes.

CPU and peak RSS are this process's, which holds the outbox, the uplink *and* the fake consumer (the
broker runs apart): an upper bound for the gateway's share.

Run from the repository root (it uses ``tests/rig``): ``python -m bench.uplink``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.outbox import disk_writes, percentile
from coldgate.contract.codec import decode_item
from coldgate.contract.items import Reading
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config import OutboxConfig, UplinkConfig
from coldgate.gateway.uplink.drain import Uplink
from coldgate.gateway.uplink.pacing import DEFAULT_DRAIN_ITEMS_PER_S, Backoff
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import alert, reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK

GATEWAY, SITE = "gw01", "ams-dc1"
#: The outbox's default ``commit_interval_ms``.
DEFAULT_INTERVAL_MS = OutboxConfig(path="-").commit_interval_ms
LIVE_RATES = (500.0, 10.0)


def _uplink(broker: MosquittoBroker, outbox: Outbox, args: argparse.Namespace, drain_rate: float) -> Uplink:
    config = UplinkConfig(
        broker=broker.url,
        client_id=GATEWAY,
        batch_max_items=args.batch_items,
        inflight_max_batches=args.window,
    )
    return Uplink(
        config,
        gateway=GATEWAY,
        site=SITE,
        outbox=outbox,
        clock=SystemClock(),
        drain_items_per_s=drain_rate,
        backoff=Backoff(0.05, 0.5),
    )


class Usage:
    """This process's CPU time over a wall-clock stretch, and its peak RSS so far."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def figures(self) -> tuple[float, float]:
        """(CPU % of one core since start, peak RSS in MB)."""
        cpu = (time.process_time() - self.cpu) / max(1e-9, time.perf_counter() - self.wall) * 100
        return cpu, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def drain(broker: MosquittoBroker, outbox: Outbox, args: argparse.Namespace) -> dict[str, float]:
    """The backlog drained and acknowledged, with an alert raised one second in."""
    uplink = _uplink(broker, outbox, args, args.drain_rate)
    with FakeCloud(broker.host, broker.port) as cloud:
        stop = asyncio.Event()
        usage = Usage()
        started = time.perf_counter()
        task = asyncio.create_task(uplink.run(stop))
        await asyncio.sleep(1.0)
        backlog_left = outbox.committed_seq - outbox.acked_seq
        raised = time.perf_counter()
        outbox.put(alert(1, stamp=CLOCK.stamp()))
        await outbox.flush_async()
        alert_seq = outbox.committed_seq
        key = (GATEWAY, outbox.stream, alert_seq)
        await cloud.until(lambda: key in cloud.arrived_at, timeout=600, what="the alert")
        alert_s = cloud.arrived_at[key] - raised
        await cloud.until(lambda: outbox.acked_seq == outbox.committed_seq, timeout=3600)
        elapsed = time.perf_counter() - started
        cpu, rss = usage.figures()
        stop.set()
        await task
        batches = cloud.snapshot()["batches"]
    wire = sum(b.size for b in batches)
    return {
        "items": outbox.committed_seq,
        "seconds": elapsed,
        "items_per_s": outbox.committed_seq / elapsed,
        "batches": len(batches),
        "bytes_per_item": wire / max(1, outbox.committed_seq),
        "timeouts": uplink.stats.timeouts,
        "alert_ms": alert_s * 1000,
        "backlog_at_alert": backlog_left,
        "cpu_percent": cpu,
        "rss_mb": rss,
    }


async def live(
    broker: MosquittoBroker, outbox: Outbox, args: argparse.Namespace, rate: float
) -> dict[str, float]:
    """Readings put at ``rate`` per second while the link is up, each timed from put to the consumer."""
    uplink = _uplink(broker, outbox, args, DEFAULT_DRAIN_ITEMS_PER_S)
    count = max(1, int(rate * args.live_seconds))
    put_at: list[float] = []
    with FakeCloud(broker.host, broker.port) as cloud:
        stop = asyncio.Event()
        task = asyncio.create_task(uplink.run(stop))
        await cloud.until(lambda: uplink.link.connected, what="the uplink connected")
        await asyncio.sleep(0.5)
        outbox.flush()  # the outbox's own opening writes are not the readings'
        transactions, written = outbox.status().transactions, disk_writes()
        usage = Usage()
        start = time.perf_counter()
        for n in range(count):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            put_at.append(time.perf_counter())
            # The value says which put it was: the consumer's item is matched back to its put.
            outbox.put(reading(n / 1000, sensor=f"cr1-t{n % 10:02d}", stamp=CLOCK.stamp()))
        await cloud.until(lambda: outbox.acked_seq == outbox.committed_seq == count, timeout=120)
        cpu, rss = usage.figures()
        outbox.flush()  # the last acks' deletes
        transactions = outbox.status().transactions - transactions
        written = disk_writes() - written
        stop.set()
        await task
        arrived = dict(cloud.arrived_at)
        bodies = {seq: body for state in cloud.streams.values() for seq, body in state.items.items()}
    latencies = []
    for seq, body in bodies.items():
        item = decode_item(body)
        assert isinstance(item, Reading) and item.value is not None
        latencies.append((arrived[(GATEWAY, outbox.stream, seq)] - put_at[round(item.value * 1000)]) * 1000)
    return {
        "count": count,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "cpu_percent": cpu,
        "rss_mb": rss,
        "transactions_per_reading": transactions / count,
        "written_bytes_per_reading": written / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000, help="the backlog's readings")
    parser.add_argument("--batch-items", type=int, default=500)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument(
        "--drain-rate", type=float, default=math.inf,
        help=f"the backlog's drain rate, items/s (a gateway's default: {DEFAULT_DRAIN_ITEMS_PER_S:g})",
    )  # fmt: skip
    parser.add_argument("--live-seconds", type=float, default=10.0, help="length of each live run")
    parser.add_argument(
        "--commit-intervals", default=f"{DEFAULT_INTERVAL_MS},20",
        help="the outbox's commit_interval_ms values of the live runs, comma-separated (the default first)",
    )  # fmt: skip
    args = parser.parse_args()
    intervals = [int(v) for v in args.commit_intervals.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            lives: dict[tuple[int, float], dict[str, float]] = {}
            for interval in intervals:
                for rate in LIVE_RATES:
                    # fsync "full", the default
                    path = f"{tmp}/live-{rate:g}-{interval}.sqlite3"
                    config = OutboxConfig(path=path, commit_interval_ms=interval)
                    with Outbox(config, gateway=GATEWAY, clock=SystemClock()) as outbox:
                        lives[interval, rate] = asyncio.run(live(broker, outbox, args, rate))
            config = OutboxConfig(path=f"{tmp}/outbox.sqlite3", fsync="normal")
            with Outbox(config, gateway=GATEWAY, clock=SystemClock()) as outbox:
                for i in range(args.items):
                    outbox.put(reading(4.0 + i % 23 / 10, sensor=f"cr1-t{i % 10:02d}", stamp=CLOCK.stamp()))
                outbox.flush()
                figures = asyncio.run(drain(broker, outbox, args))
        finally:
            broker.stop()
    for (interval, rate), f in lives.items():
        print(
            f"live {rate:g} readings/s for {args.live_seconds:g} s (fsync full, commit every {interval} ms)"
            ": "
            f"put→consumer p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms (goal 20 / 100 ms); "
            f"{f['transactions_per_reading']:.3f} transactions and {f['written_bytes_per_reading']:,.0f} B "
            f"written per reading; CPU {f['cpu_percent']:.1f} % of a core, peak RSS {f['rss_mb']:.0f} MB "
            "(outbox, uplink and consumer)"
        )
    print(
        f"{figures['items']:.0f} readings drained and acknowledged in {figures['seconds']:.2f} s (goal 60 s "
        f"for a million): {figures['items_per_s']:,.0f} items/s, {figures['batches']:.0f} batches "
        f"of up to {args.batch_items} items, window {args.window}, "
        f"{figures['bytes_per_item']:.0f} bytes per item on the wire, drain limit {args.drain_rate:g}/s, "
        f"{figures['timeouts']:.0f} ack timeouts; an alert raised 1 s in, with "
        f"{figures['backlog_at_alert']:,.0f} items still to go, reached the consumer in "
        f"{figures['alert_ms']:.0f} ms (goal 1,000 ms); "
        f"CPU {figures['cpu_percent']:.0f} % of a core, peak RSS {figures['rss_mb']:.0f} MB"
    )
    default = intervals[0]
    fast, slow = lives[default, 500.0], lives[default, 10.0]
    others = " ".join(
        f"live_{rate:g}_{key}_at_{interval}ms={f[key]:.{digits}f}"
        for (interval, rate), f in lives.items()
        for key, digits in (("p50_ms", 1), ("p99_ms", 1), ("transactions_per_reading", 3),
                            ("written_bytes_per_reading", 0))
    )  # fmt: skip
    print(
        f"RESULT items_per_s={figures['items_per_s']:.0f} bytes_per_item={figures['bytes_per_item']:.0f} "
        f"batches={figures['batches']:.0f} ack_timeouts={figures['timeouts']:.0f} "
        f"drain_s={figures['seconds']:.1f} drain_items={figures['items']:.0f} drain_goal_s=60 "
        f"alert_during_drain_ms={figures['alert_ms']:.0f} alert_goal_ms=1000 "
        f"live_500_p50_ms={fast['p50_ms']:.1f} live_500_p99_ms={fast['p99_ms']:.1f} "
        f"live_10_p50_ms={slow['p50_ms']:.1f} live_10_p99_ms={slow['p99_ms']:.1f} live_goal_p50_ms=20 "
        f"live_goal_p99_ms=100 live_500_cpu_percent={fast['cpu_percent']:.1f} "
        f"drain_cpu_percent={figures['cpu_percent']:.0f} peak_rss_mb={figures['rss_mb']:.0f} "
        f"commit_interval_ms={default} {others} load1={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
