"""The drain rate holds back a backlog, never live traffic (issue 18).

The rate (``uplink.drain_items_per_s``) exists so that a day of backlog from every gateway of a site
coming back at once does not flood a cellular link or the cloud.  Applied to everything, it also capped
a site producing more than the rate: live readings fell further behind every second (measured: 46 % of
1,000 readings/s delivered inside the window, latency growing without bound).  Here the rate is set
far below the traffic on purpose, so either behaviour shows by a margin no loaded machine blurs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, make_uplink, running, uplink_outbox

RATE = 40.0  # items/s
BACKLOG, LIVE = 400, 800  # 10 s and 20 s of the rate


@pytest.mark.timeout(120)
def test_the_backlog_drains_at_the_rate_and_live_items_go_at_once(
    mosquitto_own: MosquittoBroker, tmp_path: Path
) -> None:
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            for n in range(BACKLOG):  # held while the link was down
                outbox.put(reading(float(n % 50) / 10, stamp=CLOCK.stamp()))
            await outbox.flush_async()
            uplink = make_uplink(outbox, mosquitto_own, batch_max_items=50, drain_items_per_s=RATE)
            async with running(uplink):
                await cloud.until(lambda: outbox.acked_seq > 0, what="the first of the backlog acknowledged")
                started = time.monotonic()
                await asyncio.sleep(2)
                # Two seconds in: one batch (the bucket's burst) and two seconds of the rate, not all.
                assert outbox.acked_seq <= 50 + 3 * RATE < BACKLOG, outbox.acked_seq
                await cloud.until(lambda: outbox.acked_seq == BACKLOG, timeout=60, what="the backlog drained")
                drained_s = time.monotonic() - started
                # Live: committed while the link is up, sent at once (20 s of the rate, far less here).
                for n in range(LIVE):
                    outbox.put(reading(float(n % 50) / 10, stamp=CLOCK.stamp()))
                await outbox.flush_async()
                live_started = time.monotonic()
                await cloud.until(lambda: outbox.acked_seq == BACKLOG + LIVE, timeout=LIVE / RATE / 2,
                                  what="the live items delivered, not held to the drain rate")  # fmt: skip
                live_s = time.monotonic() - live_started
            assert drained_s >= (BACKLOG - 50) / RATE * 0.8, drained_s  # the backlog was held to the rate
            print(f"\nbacklog of {BACKLOG} drained in {drained_s:.1f} s; {LIVE} live items in {live_s:.2f} s")

    asyncio.run(scenario())
