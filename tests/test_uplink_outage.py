"""The issue's acceptance criteria: broker outages and a broker that forgets what it held.

- The broker is stopped mid-stream while readings keep coming and an alert is
  raised during the outage: every item arrives exactly once, in order per
  sensor, and the alert overtakes the backlog.  (The issue said 60 s at 60
  readings/s; the test stops it for 15 s at 300 readings/s, a bigger backlog
  in a quarter of the time.  No uplink timer runs while it is disconnected:
  ack timeouts and heartbeats only act on a connected link, and the rig caps
  the reconnect backoff at 0.5 s, so only the backlog's size depends on how
  long the broker is away.)
- The broker restarts without persistence while batches are in flight: the
  broker's PUBACK meant nothing, the end-to-end ack still brings every item
  over, and the cloud de-duplicates what comes twice.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import defaultdict
from pathlib import Path

import pytest

from coldgate.contract.items import Alert, Reading
from coldgate.gateway.buffer.outbox import Outbox
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import alert, reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, kinds_by_seq, make_uplink, running, uplink_outbox

SENSORS = ("cr1-t01", "cr1-t02", "cr1-t03")
RATE_HZ = 100  # per sensor


async def produce(outbox: Outbox, stop: asyncio.Event) -> int:
    """Three sensors at ``RATE_HZ`` readings/s each, on a fixed schedule; returns how many were put."""
    start, tick, count = time.monotonic(), 0, 0
    while not stop.is_set():
        for sensor in SENSORS:
            outbox.put(reading(float(tick % 50) / 10, sensor=sensor, stamp=CLOCK.stamp()))
            count += 1
        tick += 1
        await asyncio.sleep(max(0.0, start + tick / RATE_HZ - time.monotonic()))
    return count


def check_exactly_once_in_order(
    cloud: FakeCloud, outbox: Outbox, *, in_order: bool = True
) -> dict[int, object]:
    """Every item once, none conflicting; and, unless ``in_order`` is False, each sensor's readings
    arriving in order."""
    items = kinds_by_seq(cloud.items(GATEWAY, outbox.stream))
    assert sorted(items) == list(range(1, outbox.committed_seq + 1)), "an item is missing"
    snap = cloud.snapshot()
    assert snap["conflicts"] == []
    firsts = [seq for gw, stream, seq in snap["arrivals"] if stream == outbox.stream]
    assert len(firsts) == len(set(firsts)) == len(items)
    per_sensor: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for seq in firsts:
        item = items[seq]
        if isinstance(item, Reading):
            per_sensor[item.sensor].append((seq, item.ts))
    for sensor, arrived in per_sensor.items():
        assert arrived == sorted(arrived) or not in_order, f"{sensor}'s readings arrived out of order"
    return items  # type: ignore[return-value]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_broker_stopped_mid_stream(mosquitto_own: MosquittoBroker, tmp_path: Path):
    outage_s = 15.0

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            uplink = make_uplink(outbox, mosquitto_own, batch_max_items=100, drain_items_per_s=1500)
            async with running(uplink):
                stop = asyncio.Event()
                producer = asyncio.create_task(produce(outbox, stop))
                await asyncio.sleep(1)
                await cloud.until(lambda: outbox.acked_seq > 0, what="acks before the outage")
                await asyncio.to_thread(mosquitto_own.stop)
                await asyncio.sleep(outage_s / 2)
                outbox.put(alert(42, stamp=CLOCK.stamp()))
                await asyncio.sleep(outage_s / 2)
                backlog = outbox.committed_seq - outbox.acked_seq
                await asyncio.to_thread(mosquitto_own.start)
                await asyncio.sleep(2)
                stop.set()
                put = await producer
                await outbox.flush_async()
                await cloud.until(
                    lambda: outbox.acked_seq == outbox.committed_seq and outbox.depth() == 0,
                    timeout=60,
                    what="backlog drained and acknowledged",
                )
            assert backlog > 3000  # 15 s of 300 readings/s were held back (more than 60 s at 60/s)
            items = check_exactly_once_in_order(cloud, outbox)
            assert outbox.committed_seq == put + 1
            (alert_seq,) = [seq for seq, item in items.items() if isinstance(item, Alert)]
            firsts = [seq for _gw, _stream, seq in cloud.snapshot()["arrivals"]]
            at = firsts.index(alert_seq)
            waiting = [seq for seq in firsts[at + 1 :] if seq < alert_seq]
            assert len(waiting) > 500, "the alert did not overtake the backlog"
            assert uplink.stats.express_batches >= 1

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_broker_killed_and_restarted_without_persistence_loses_nothing(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    """The cloud is away, so the broker holds the batches (and has PUBACKed them) when it dies.

    Whether the gateway's re-send after its reconnect or the ack timeout brings
    them depends on who is back first, the cloud or the gateway; either works.
    """

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            uplink = make_uplink(outbox, mosquitto_own, batch_max_items=50, ack_timeout_s=3)
            async with running(uplink):
                for i in range(200):
                    outbox.put(reading(sensor=SENSORS[i % 3], stamp=CLOCK.stamp()))
                await cloud.until(lambda: outbox.acked_seq == 200)
                cloud.go_offline()
                for i in range(300):
                    outbox.put(reading(sensor=SENSORS[i % 3], stamp=CLOCK.stamp()))
                await outbox.flush_async()
                await cloud.until(
                    lambda: uplink.delivery.stream_after() == 500 and uplink.link.unacknowledged == 0,
                    what="every batch PUBACKed by the broker",
                )
                mosquitto_own.kill()
                mosquitto_own.persistence = False
                shutil.rmtree(mosquitto_own.data_dir, ignore_errors=True)
                mosquitto_own.start()
                await asyncio.to_thread(cloud.come_back)
                await cloud.until(lambda: outbox.acked_seq == 500 and outbox.depth() == 0, timeout=20)
            # Exactly once, but not necessarily in order: when the gateway is back on the empty broker
            # before the cloud has subscribed again, the batches it re-sends meanwhile go nowhere and
            # come again after the ack timeout, behind later ones (seen in CI).  The cloud stores by
            # seq, so the order of arrival costs it nothing.
            check_exactly_once_in_order(cloud, outbox, in_order=False)

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_broker_restarted_without_persistence_while_acks_are_withheld(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    """The cloud has the batches but has not acknowledged them: the re-sends are de-duplicated.

    The gateway may reconnect and re-send before the cloud has subscribed again
    on the empty broker; those copies go nowhere, and the ack timeout sends
    them once more.
    """

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            cloud.hold_acks()
            uplink = make_uplink(outbox, mosquitto_own, batch_max_items=50, ack_timeout_s=2)
            async with running(uplink):
                for i in range(400):
                    outbox.put(reading(sensor=SENSORS[i % 3], stamp=CLOCK.stamp()))
                await cloud.until(lambda: len(cloud.items(GATEWAY, outbox.stream)) == 400)
                await asyncio.to_thread(mosquitto_own.restart, persistence=False)
                await cloud.until(
                    lambda: cloud.snapshot()["duplicates"] >= 400, what="re-sent after reconnect"
                )
                cloud.release_acks()
                await cloud.until(lambda: outbox.acked_seq == 400 and outbox.depth() == 0, timeout=20)
            check_exactly_once_in_order(cloud, outbox)

    asyncio.run(scenario())
