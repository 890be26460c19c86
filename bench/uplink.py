"""What the uplink drains end to end: outbox → Mosquitto → a de-duplicating, acknowledging consumer.

A backlog of readings (as after an outage) is put into a fresh outbox, then
the uplink is started against a private Mosquitto with the test rig's fake
cloud acknowledging after each batch; the figures are items/s until the last
ack, batches, bytes per item on the wire, and the PUBACK-free round trips the
in-flight window allows.  ``--drain-rate`` shows the backlog limiter at work
(``inf``: only the window and the cloud bound it).

Run from the repository root (it uses ``tests/rig``): ``python -m bench.uplink``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from pathlib import Path

from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config import OutboxConfig, UplinkConfig
from coldgate.gateway.uplink.drain import Uplink
from coldgate.gateway.uplink.pacing import DEFAULT_DRAIN_ITEMS_PER_S, Backoff
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK

GATEWAY, SITE = "gw01", "ams-dc1"


async def drain(broker: MosquittoBroker, outbox: Outbox, args: argparse.Namespace) -> dict[str, float]:
    config = UplinkConfig(
        broker=broker.url,
        client_id=GATEWAY,
        batch_max_items=args.batch_items,
        inflight_max_batches=args.window,
    )
    uplink = Uplink(
        config,
        gateway=GATEWAY,
        site=SITE,
        outbox=outbox,
        clock=SystemClock(),
        drain_items_per_s=args.drain_rate,
        backoff=Backoff(0.05, 0.5),
    )
    with FakeCloud(broker.host, broker.port) as cloud:
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(uplink.run(stop))
        await cloud.until(lambda: outbox.acked_seq == outbox.committed_seq, timeout=3600)
        elapsed = time.perf_counter() - started
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
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch-items", type=int, default=500)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument(
        "--drain-rate", type=float, default=math.inf, help=f"default {DEFAULT_DRAIN_ITEMS_PER_S}"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            config = OutboxConfig(path=f"{tmp}/outbox.sqlite3", fsync="normal")
            with Outbox(config, gateway=GATEWAY, clock=SystemClock()) as outbox:
                for i in range(args.items):
                    outbox.put(reading(4.0 + i % 23 / 10, sensor=f"cr1-t{i % 10:02d}", stamp=CLOCK.stamp()))
                outbox.flush()
                figures = asyncio.run(drain(broker, outbox, args))
        finally:
            broker.stop()
    print(
        f"{figures['items']:.0f} readings drained and acknowledged in {figures['seconds']:.2f} s: "
        f"{figures['items_per_s']:,.0f} items/s, {figures['batches']:.0f} batches "
        f"of up to {args.batch_items} items, window {args.window}, "
        f"{figures['bytes_per_item']:.0f} bytes per item on the wire, drain limit {args.drain_rate:g}/s, "
        f"{figures['timeouts']:.0f} ack timeouts"
    )
    print(
        f"RESULT items_per_s={figures['items_per_s']:.0f} bytes_per_item={figures['bytes_per_item']:.0f} "
        f"batches={figures['batches']:.0f} ack_timeouts={figures['timeouts']:.0f}"
    )


if __name__ == "__main__":
    main()
