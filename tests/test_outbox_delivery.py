"""Lanes against the cumulative ack: the uplink's bookkeeping alone, then with the outbox and a fake cloud.

The fake cloud does what the contract asks of ingest: it stores items
idempotently on seq, refuses a seq that comes back with other content, and
acknowledges the highest seq up to which every number is covered by some
batch's range (a number in a range without an item was dropped on purpose).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from coldgate.contract.codec import decode_item
from coldgate.contract.items import Alert, Reading
from coldgate.gateway.buffer.delivery import Delivery
from coldgate.gateway.buffer.lanes import PRIORITY
from coldgate.gateway.buffer.outbox import Chunk, Outbox
from tests.rig.items import T0, alert, reading
from tests.rig.outbox import open_outbox

# -- the bookkeeping alone --------------------------------------------------------------------------


def test_the_stream_moves_on_with_each_batch_and_back_to_the_ack_on_a_timeout() -> None:
    d = Delivery(acked_seq=10)
    assert d.stream_after() == 10
    d.sent(11, 20, now=0.0)
    d.sent(21, 30, now=1.0)
    assert (d.stream_after(), d.in_flight()) == (30, 2)
    assert d.acked(20) and not d.acked(15) and not d.acked(20)
    assert d.in_flight() == 1
    assert not d.expired(now=30.0, timeout_s=30.0)
    assert d.expired(now=31.0, timeout_s=30.0)
    assert (d.stream_after(), d.in_flight()) == (20, 0)


def test_a_stream_batch_must_continue_the_stream() -> None:
    d = Delivery(acked_seq=5)
    with pytest.raises(ValueError, match="starts at 8, expected 6"):
        d.sent(8, 9, now=0.0)


def test_express_reads_start_beyond_what_the_stream_already_sent() -> None:
    d = Delivery()
    d.sent(1, 100, now=0.0)
    assert d.express_after() == 100
    d.sent(150, 150, now=0.0, express=True)
    assert d.express_after() == 150
    d.sent(101, 200, now=1.0)
    assert d.express_after() == 200


def test_express_items_are_never_timed_out_only_resent_after_a_reconnect() -> None:
    d = Delivery()
    d.sent(500, 501, now=0.0, express=True)
    assert not d.expired(now=1e6, timeout_s=30.0)
    assert d.express_after() == 501 and len(d.express_in_flight()) == 1
    d.reconnected()
    assert (d.express_after(), d.stream_after(), d.express_in_flight()) == (0, 0, [])


def test_resend_from_rewinds_the_stream_but_not_below_the_ack() -> None:
    d = Delivery(acked_seq=10)
    d.sent(11, 20, now=0.0)
    d.sent(21, 30, now=0.0)
    d.resend_from(21)
    assert (d.stream_after(), d.in_flight()) == (20, 1)
    d.resend_from(3)
    assert d.stream_after() == 10


# -- the outbox, the bookkeeping and a fake cloud ----------------------------------------------------


class FakeCloud:
    def __init__(self) -> None:
        self.items: dict[int, bytes] = {}
        self.ranges: list[tuple[int, int]] = []
        self.first_seen: dict[int, int] = {}  # seq -> tick it arrived
        self.ack_when_seen: dict[int, int] = {}  # seq -> what the cloud could acknowledge then

    def receive(self, chunk: Chunk, tick: int) -> None:
        frontier = self.ack()
        for body in chunk.items:
            seq = decode_item(body).seq
            assert chunk.first_seq <= seq <= chunk.last_seq
            assert self.items.setdefault(seq, body) == body, f"seq {seq} came back with other content"
            self.first_seen.setdefault(seq, tick)
            self.ack_when_seen.setdefault(seq, frontier)
        self.ranges.append((chunk.first_seq, chunk.last_seq))

    def ack(self) -> int:
        frontier = 0
        for first, last in sorted(self.ranges):
            if first > frontier + 1:
                break
            frontier = max(frontier, last)
        return frontier


class Uplink:
    """Just enough of an uplink: a drain-rate limit on the stream, express beyond it, acks, losses."""

    def __init__(self, outbox: Outbox, cloud: FakeCloud, loss: float, seed: int) -> None:
        self.outbox, self.cloud = outbox, cloud
        self.delivery = Delivery(outbox.acked_seq)
        self.loss = loss
        self.rng = random.Random(seed)
        self.express_sends: dict[int, int] = {}

    def publish(self, chunk: Chunk, tick: int) -> None:
        if self.rng.random() >= self.loss:
            self.cloud.receive(chunk, tick)

    def tick(self, tick: int) -> None:
        d = self.delivery
        if d.in_flight() < 4:  # the drain-rate limit: one stream batch per tick
            chunk = self.outbox.read_batch(d.stream_after(), max_items=100)
            if chunk is not None:
                d.sent(chunk.first_seq, chunk.last_seq, now=tick)
                self.publish(chunk, tick)
        while (chunk := self.outbox.read_batch(d.express_after(), lane=PRIORITY)) is not None:
            d.sent(chunk.first_seq, chunk.last_seq, now=tick, express=True)
            for body in chunk.items:
                seq = decode_item(body).seq
                self.express_sends[seq] = self.express_sends.get(seq, 0) + 1
            self.publish(chunk, tick)
        ack = self.cloud.ack()
        if ack > d.acked_seq:
            self.outbox.ack(ack)
            d.acked(ack)
        d.expired(now=tick, timeout_s=5)


def backlog(outbox: Outbox, readings: int) -> None:
    for i in range(readings):
        outbox.put(alert(i) if i % 250 == 0 else reading(float(i % 40) / 4, ts=T0 + i * 1000))
    outbox.flush()


def drain(
    outbox: Outbox, uplink: Uplink, *, reconnect_every: int = 0, new_alerts_at: tuple[int, ...] = ()
) -> dict:
    committed_at: dict[int, int] = {}
    for tick in range(1, 2000):
        if reconnect_every and tick % reconnect_every == 0:
            uplink.delivery.reconnected()
        if tick in new_alerts_at:
            outbox.put(alert(100_000 + tick, ts=T0 + 10_000_000 + tick))
            outbox.flush()
            committed_at[outbox.committed_seq] = tick
        uplink.tick(tick)
        if tick > max(new_alerts_at, default=0) and uplink.delivery.acked_seq == outbox.committed_seq:
            break
    outbox.flush()
    return committed_at


def test_alerts_overtake_a_backlog_and_everything_arrives_once(tmp_path: Path) -> None:
    cloud = FakeCloud()
    with open_outbox(tmp_path, commit_max_items=10_000) as outbox:
        backlog(outbox, 3000)
        uplink = Uplink(outbox, cloud, loss=0.0, seed=1)
        committed_at = drain(outbox, uplink, new_alerts_at=(3, 12))
        assert sorted(cloud.items) == list(range(1, outbox.committed_seq + 1))
        for seq, tick in committed_at.items():
            assert cloud.first_seen[seq] == tick, "a new alert waited behind the backlog"
            assert cloud.ack_when_seen[seq] < seq - 1000  # ...which was still draining then
        assert max(uplink.express_sends.values()) == 1
        assert outbox.acked_seq == outbox.committed_seq


def test_lost_batches_and_reconnects_lose_nothing_and_resend_express_items_only_per_reconnect(
    tmp_path: Path,
) -> None:
    cloud = FakeCloud()
    with open_outbox(tmp_path, commit_max_items=10_000) as outbox:
        backlog(outbox, 3000)
        uplink = Uplink(outbox, cloud, loss=0.25, seed=7)
        drain(outbox, uplink, reconnect_every=9, new_alerts_at=(2, 20, 40))
        assert sorted(cloud.items) == list(range(1, outbox.committed_seq + 1))
        assert outbox.acked_seq == outbox.committed_seq
        reconnects = max(cloud.first_seen.values()) // 9 + 1
        assert max(uplink.express_sends.values()) <= 1 + reconnects


def test_thinned_numbers_inside_ranges_let_the_cumulative_ack_pass(tmp_path: Path) -> None:
    cloud = FakeCloud()
    with open_outbox(
        tmp_path, commit_interval_ms=10_000, commit_max_items=100_000, max_bytes=150_000
    ) as outbox:
        backlog(outbox, 3000)
        outbox.enforce_caps(10)
        assert outbox.status().shed_readings > 0
        uplink = Uplink(outbox, cloud, loss=0.1, seed=3)
        drain(outbox, uplink, reconnect_every=25)
        assert outbox.acked_seq == cloud.ack() == outbox.committed_seq
    kinds = [type(decode_item(body)) for body in cloud.items.values()]
    alerts = [item.rule for item in map(decode_item, cloud.items.values()) if isinstance(item, Alert)]
    # Every backlog alert, and an outbox.thinned record per shedding pass: the first put commits at
    # once (the leading edge), so the cap may be passed, and shed, once before the flush and once after.
    assert len(alerts) - alerts.count("outbox.thinned") == 12 and alerts.count("outbox.thinned") >= 1
    assert 0 < kinds.count(Reading) < 3000 - 12
