"""The gateway announces how far it has numbered (issue 11): the cloud stores a batch only within a
window (256 by default) past the ``last_seq`` of the gateway's newest status, so the real uplink
publishes its status whenever ``ANNOUNCE_EVERY_ITEMS`` items were numbered since the last one,
before the batches that carry them, and at connect (the birth) for a backlog.

Run against a private Mosquitto, with the fake cloud acknowledging and a second subscriber
recording statuses and batches in the order the broker delivered them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldgate.contract.codec import decode_topic
from coldgate.contract.topics import INGEST_FILTER
from coldgate.contract.uplink import ANNOUNCE_EVERY_ITEMS, Batch, State, Status
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, make_uplink, running, uplink_outbox

pytestmark = pytest.mark.timeout(60)

#: The cloud's default sequence window (``[ingest] sequence_window``).
WINDOW = 256
STEP = 50
HEAD = 1000


class Recorder:
    """Every up-link message, in the order the broker delivers them to one subscriber."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self._lock = threading.Lock()
        self._log: list[Status | Batch] = []
        subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="announce-recorder", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(INGEST_FILTER, qos=1)
        if not subscribed.wait(10):
            raise AssertionError("recorder not subscribed")

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        _, message = decode_topic(msg.topic, msg.payload)
        assert isinstance(message, (Status, Batch))
        with self._lock:
            self._log.append(message)

    def log(self) -> list[Status | Batch]:
        with self._lock:
            return list(self._log)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder(mosquitto_own: MosquittoBroker) -> Iterator[Recorder]:
    rec = Recorder(mosquitto_own)
    yield rec
    rec.close()


def announced(log: list[Status | Batch]) -> int:
    """``last_seq`` of the newest online status in ``log`` (0: none), as the cloud would take it."""
    for message in reversed(log):
        if isinstance(message, Status) and message.state == State.ONLINE:
            return message.last_seq or 0
    return 0


def delivered(log: list[Status | Batch]) -> int:
    return max((m.last_seq for m in log if isinstance(m, Batch)), default=0)


def windows(log: list[Status | Batch]) -> list[tuple[int, int]]:
    """(first_seq, last_seq announced before it) of every batch, in order."""
    return [(m.first_seq, announced(log[:i])) for i, m in enumerate(log) if isinstance(m, Batch)]


def test_a_connected_gateway_announces_every_128_items_before_the_batches_carrying_them(
    mosquitto_own: MosquittoBroker, recorder: Recorder, tmp_path: Path
) -> None:
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            uplink = make_uplink(outbox, mosquitto_own, heartbeat_s=3600.0, drain_items_per_s=100_000.0)
            async with running(uplink):
                await cloud.until(lambda: any(isinstance(m, Status) for m in recorder.log()), what="birth")
                for head in range(STEP, HEAD + 1, STEP):
                    for _ in range(STEP):
                        outbox.put(reading(stamp=CLOCK.stamp()))
                    await cloud.until(
                        lambda h=head: delivered(recorder.log()) == h, what=f"batches to {head}"
                    )
                    # A status within ANNOUNCE_EVERY_ITEMS of the head, never a status per item.
                    await cloud.until(
                        lambda h=head: announced(recorder.log()) >= h - ANNOUNCE_EVERY_ITEMS,
                        what=f"an announcement near {head}",
                    )
                await cloud.until(lambda: outbox.acked_seq == HEAD, what="every item acknowledged")
            log = recorder.log()
        statuses = [m for m in log if isinstance(m, Status) and m.state == State.ONLINE]
        birth, announcements = statuses[0], statuses[1:]
        assert birth.last_seq is None  # an empty outbox at connect
        steps = [s.last_seq for s in announcements]
        assert all(isinstance(seq, int) for seq in steps) and steps == sorted(steps)
        # Each announcement is more than 128 past the one before it, and at most one step more.
        for before, after in zip([0, *steps], steps, strict=False):
            assert ANNOUNCE_EVERY_ITEMS < after - before <= ANNOUNCE_EVERY_ITEMS + STEP  # type: ignore[operator]
        assert (
            HEAD // (ANNOUNCE_EVERY_ITEMS + STEP) <= len(announcements) <= HEAD // (ANNOUNCE_EVERY_ITEMS + 1)
        )
        batches = windows(log)
        assert len(batches) >= HEAD // STEP
        ahead = [(first, top) for first, top in batches if first > top + WINDOW]
        assert ahead == [], "batches the cloud would refuse as ahead of the sequence window"
        assert [m.state for m in log if isinstance(m, Status)][-1] == State.OFFLINE

    asyncio.run(scenario())


def test_a_backlog_is_announced_at_connect_before_its_batches(
    mosquitto_own: MosquittoBroker, recorder: Recorder, tmp_path: Path
) -> None:
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            for _ in range(HEAD):
                outbox.put(reading(stamp=CLOCK.stamp()))
            await outbox.flush_async(10)
            assert outbox.committed_seq == HEAD
            uplink = make_uplink(
                outbox, mosquitto_own, heartbeat_s=3600.0, drain_items_per_s=100_000.0, batch_max_items=100
            )
            async with running(uplink):
                await cloud.until(lambda: outbox.acked_seq == HEAD, what="the backlog acknowledged")
            log = recorder.log()
        assert isinstance(log[0], Status) and log[0].state == State.ONLINE
        assert log[0].last_seq == HEAD and log[0].gateway == GATEWAY
        batches = windows(log)
        assert [first for first, _ in batches][:10] == list(range(1, HEAD, 100))
        assert all(top == HEAD for _, top in batches)
        # Nothing new was numbered: the birth was the only announcement.
        assert [m.state for m in log if isinstance(m, Status)] == [State.ONLINE, State.OFFLINE]

    asyncio.run(scenario())
