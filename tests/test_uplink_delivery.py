"""The uplink against a private Mosquitto and the fake cloud: delivery, acks, window, batching."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest

from coldgate.contract.codec import decode_status, encode
from coldgate.contract.downlink import Ack, Command, CommandAction
from coldgate.contract.items import Event, EventType
from coldgate.contract.topics import ack_topic, command_topic, status_topic
from coldgate.contract.uplink import State
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import alert, reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, SITE, kinds_by_seq, make_uplink, running, uplink_outbox

pytestmark = pytest.mark.timeout(60)


def test_items_arrive_exactly_once_and_acks_empty_the_outbox(mosquitto_own: MosquittoBroker, tmp_path: Path):
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            async with running(make_uplink(outbox, mosquitto_own)) as uplink:
                for i in range(600):
                    outbox.put(reading(float(i % 40), sensor=f"cr1-t0{i % 3}", stamp=CLOCK.stamp()))
                    if i == 300:
                        outbox.put(alert(stamp=CLOCK.stamp()))
                await cloud.until(lambda: outbox.acked_seq == 601, what="every item acknowledged")
                await cloud.until(lambda: outbox.depth() == 0, what="outbox emptied")
                items = cloud.items(GATEWAY, outbox.stream)
                assert sorted(items) == list(range(1, 602))
                snap = cloud.snapshot()
                assert snap["conflicts"] == []
                assert uplink.stats.items >= 601
                assert cloud.acked(GATEWAY, outbox.stream) == 601
                birth = [s for s in snap["statuses"] if s.state == State.ONLINE]
                assert birth and birth[0].gateway == GATEWAY and birth[0].heartbeat_s == 60

    asyncio.run(scenario())


def test_the_window_holds_while_the_cloud_withholds_acks_and_batches_stay_under_the_byte_cap(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    window, cap = 3, 4096

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            cloud.hold_acks()
            uplink = make_uplink(
                outbox,
                mosquitto_own,
                batch_max_items=50,
                batch_max_bytes=cap,
                inflight_max_batches=window,
                drain_items_per_s=10_000,
            )
            async with running(uplink):
                for i in range(2000):
                    outbox.put(reading(float(i % 40), sensor=f"cr1-t0{i % 3}", stamp=CLOCK.stamp()))
                await outbox.flush_async()
                await cloud.until(lambda: len(cloud.snapshot()["batches"]) >= window, what="a full window")
                await asyncio.sleep(0.5)  # time enough to overrun the window, if it were not kept
                held = cloud.snapshot()["batches"]
                assert len(held) == window
                assert [b.first_seq for b in held[1:]] == [b.last_seq + 1 for b in held[:-1]]
                cloud.release_acks()
                await cloud.until(lambda: outbox.acked_seq == 2000, what="backlog drained")
            batches = cloud.snapshot()["batches"]
            assert max(b.size for b in batches) <= cap
            assert max(len(b.seqs) for b in batches) <= 50
            assert len(batches) >= 2000 * 170 // cap  # the byte cap, not the item cap, cut them
            assert sorted(cloud.items(GATEWAY, outbox.stream)) == list(range(1, 2001))

    asyncio.run(scenario())


def test_clean_shutdown_leaves_a_retained_offline_status(mosquitto_own: MosquittoBroker, tmp_path: Path):
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            async with running(make_uplink(outbox, mosquitto_own)):
                outbox.put(reading(stamp=CLOCK.stamp()))
                await cloud.until(lambda: outbox.acked_seq == 1)
            await cloud.until(lambda: cloud.snapshot()["statuses"][-1].state == State.OFFLINE)
            last = cloud.snapshot()["statuses"][-1]
            assert last.will is False and last.outbox_depth is not None

    asyncio.run(scenario())


def test_an_ack_for_another_stream_is_ignored_and_an_ack_ahead_is_reported(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    def ack(stream: str, seq: int) -> bytes:
        return encode(Ack(v=1, gateway=GATEWAY, stream=stream, seq=seq, ts=1_741_079_706_900))

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            cloud.hold_acks()
            async with running(make_uplink(outbox, mosquitto_own)) as uplink:
                for _ in range(10):
                    outbox.put(reading(stamp=CLOCK.stamp()))
                await cloud.until(lambda: len(cloud.items(GATEWAY, outbox.stream)) == 10)
                topic = ack_topic(SITE, GATEWAY)
                cloud.publish(topic, ack("0" * 32, 10))  # an outbox this gateway had before
                cloud.publish(topic, ack(outbox.stream, 4))
                await cloud.until(lambda: outbox.acked_seq == 4, what="the valid ack applied")
                assert outbox.acked_seq == 4  # and the foreign one, on the same topic before it, was not

                cloud.publish(topic, ack(outbox.stream, 10_000))
                await cloud.until(lambda: "ack_ahead" in uplink.errors.kinds(), what="ack ahead reported")
                assert outbox.acked_seq == 4
                ping = Command(
                    v=1, gateway=GATEWAY, command_id="c-1", issued=1, action=CommandAction.PING, by="qa"
                )
                cloud.publish(command_topic(SITE, GATEWAY), encode(ping))

                def reported() -> bool:
                    statuses = cloud.snapshot()["statuses"]
                    return any(e.kind == "ack_ahead" for s in statuses for e in s.errors)

                await cloud.until(reported, what="ack_ahead in a published status")
                cloud.release_acks()
                await cloud.until(lambda: outbox.acked_seq >= 11, what="drained, ping outcome included")
            events = [
                i for i in kinds_by_seq(cloud.items(GATEWAY, outbox.stream)).values() if isinstance(i, Event)
            ]
            assert [(e.event, e.data["command_id"]) for e in events] == [(EventType.COMMAND_DONE, "c-1")]

    asyncio.run(scenario())


def test_resend_from_command_sends_the_stream_again_and_the_cloud_deduplicates(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            cloud.hold_acks()
            async with running(make_uplink(outbox, mosquitto_own)):
                for _ in range(10):
                    outbox.put(reading(stamp=CLOCK.stamp()))
                await cloud.until(lambda: len(cloud.items(GATEWAY, outbox.stream)) == 10)
                resend = Command(
                    v=1,
                    gateway=GATEWAY,
                    command_id="c-2",
                    issued=1,
                    action=CommandAction.RESEND_FROM,
                    by="ops",
                    args={"seq": 3},
                )
                cloud.publish(command_topic(SITE, GATEWAY), encode(resend))
                await cloud.until(lambda: cloud.snapshot()["duplicates"] >= 8, what="3..10 sent again")
                cloud.release_acks()
                await cloud.until(lambda: outbox.acked_seq == 11 and outbox.depth() == 0)
            assert cloud.snapshot()["conflicts"] == []

    asyncio.run(scenario())


def test_status_is_retained_for_whoever_looks_next(mosquitto_own: MosquittoBroker, tmp_path: Path):
    async def scenario() -> None:
        with uplink_outbox(tmp_path) as outbox:
            async with running(make_uplink(outbox, mosquitto_own, heartbeat_s=5)):
                await asyncio.sleep(0.3)
                with FakeCloud(mosquitto_own.host, mosquitto_own.port, client_id="late") as late:
                    await late.until(lambda: bool(late.snapshot()["statuses"]))
                    status = late.snapshot()["statuses"][0]
        assert status.state == State.ONLINE and status.heartbeat_s == 5
        assert status.clock is not None and status.clock.mono is not None
        assert decode_status(encode(status), status_topic(SITE, GATEWAY)) == status
        assert msgspec.structs.asdict(status)["last_seq"] is None  # nothing put yet

    asyncio.run(scenario())
