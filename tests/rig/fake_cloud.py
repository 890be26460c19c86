"""A stand-in for cloud ingest: de-duplicates and acknowledges the way the real one will.

- Subscribes to every gateway's up-link (``coldgate/v1/+/+/up/#``) with a
  persistent session, MQTT 5 (or 3.1.1 for amqtt), and PUBACKs a message only
  after it has "committed" it (here: into memory).
- Keeps items by (gateway, stream, seq): the same item again is a duplicate
  and a no-op; another item under the same key is a *conflict*, recorded.
- Acknowledges cumulatively per (gateway, stream): the highest seq up to which
  every number lies in the range of some received batch, so express batches
  (ranges standing apart, ahead of the stream) are held until the stream
  catches up (docs/contract.md, "Express batches").  The ack is re-published
  for every batch, duplicates included: a gateway re-sends because it missed
  the last ack.
- Can hold its acks back or go offline, to play a slow or absent cloud.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from coldgate.contract.codec import decode_topic, encode
from coldgate.contract.downlink import Ack
from coldgate.contract.errors import ContractError
from coldgate.contract.topics import INGEST_FILTER, ack_topic
from coldgate.contract.uplink import Batch, Status

Key = tuple[str, str]  # (gateway, stream)


@dataclass(frozen=True, slots=True)
class Received:
    """One batch as it arrived."""

    gateway: str
    stream: str
    first_seq: int
    last_seq: int
    seqs: tuple[int, ...]
    size: int
    new: int  # items not seen before


@dataclass(slots=True)
class StreamState:
    site: str
    items: dict[int, bytes] = field(default_factory=dict)
    ranges: list[tuple[int, int]] = field(default_factory=list)  # not yet merged into ``covered``
    covered: int = 0  # every seq <= covered lies in some received batch's range
    acked: int = 0  # last ack published


class FakeCloud:
    """``with FakeCloud(host, port) as cloud:``; state is read under a lock from any thread."""

    def __init__(self, host: str, port: int, *, client_id: str = "fake-cloud", protocol: str = "5") -> None:
        self.host = host
        self.port = port
        self.v5 = protocol == "5"
        self._lock = threading.Lock()
        self._holding = False
        self.streams: dict[Key, StreamState] = {}
        self.arrivals: list[tuple[str, str, int]] = []  # first arrival of each item, in order
        #: ``time.perf_counter()`` at each item's first arrival, for latency figures (``bench.uplink``).
        self.arrived_at: dict[tuple[str, str, int], float] = {}
        self.batches: list[Received] = []
        self.duplicates = 0
        self.conflicts: list[tuple[str, str, int]] = []
        self.statuses: list[Status] = []
        self.dead_letters: list[ContractError] = []
        self.acks_published = 0
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if self.v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(0.05, 0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._subscribed = threading.Event()

    # -- running -------------------------------------------------------------------------------------

    def start(self) -> FakeCloud:
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
            self._client.connect(self.host, self.port, 30, clean_start=False, properties=properties)
        else:
            self._client.connect(self.host, self.port, 30)
        self._client.loop_start()
        self._wait_subscribed()
        return self

    def _wait_subscribed(self) -> None:
        if not self._subscribed.wait(10):
            raise AssertionError("fake cloud: no SUBACK within 10 s")

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> FakeCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def go_offline(self) -> None:
        """The cloud's consumer disappears; its persistent session keeps collecting messages."""
        self._client.disconnect()
        self._client.loop_stop()

    def come_back(self) -> None:
        self._subscribed.clear()
        self._client.reconnect()
        self._client.loop_start()
        self._wait_subscribed()

    def hold_acks(self) -> None:
        with self._lock:
            self._holding = True

    def release_acks(self) -> None:
        with self._lock:
            self._holding = False
            keys = list(self.streams)
        for key in keys:
            self._publish_ack(key)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish as the cloud (down-link documents, commands, hand-made acks)."""
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    # -- reading the state (any thread) ---------------------------------------------------------------

    def items(self, gateway: str, stream: str) -> dict[int, bytes]:
        with self._lock:
            state = self.streams.get((gateway, stream))
            return dict(state.items) if state else {}

    def acked(self, gateway: str, stream: str) -> int:
        with self._lock:
            state = self.streams.get((gateway, stream))
            return state.acked if state else 0

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "arrivals": list(self.arrivals),
                "batches": list(self.batches),
                "duplicates": self.duplicates,
                "conflicts": list(self.conflicts),
                "statuses": list(self.statuses),
            }

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Block (a plain thread) until ``condition()``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake cloud: not reached in {timeout} s: {what}")
            time.sleep(0.02)

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """``wait_for`` for a test running on the asyncio loop (the uplink must keep running)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"fake cloud: not reached in {timeout} s: {what}")
            await asyncio.sleep(0.02)

    # -- the consumer (paho's thread) -----------------------------------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe(INGEST_FILTER, qos=1)

    def _on_subscribe(self, _c: paho.Client, _u: Any, _mid: int, _reasons: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            info, message = decode_topic(msg.topic, msg.payload)
        except ContractError as exc:
            with self._lock:
                self.dead_letters.append(exc)
        else:
            if isinstance(message, Batch):
                self._commit(info.site, message, msg.payload)
            elif isinstance(message, Status):
                with self._lock:
                    self.statuses.append(message)
        client.ack(msg.mid, msg.qos)  # only now: "after the database commit"

    def _commit(self, site: str, batch: Batch, payload: bytes) -> None:
        key = (batch.gateway, batch.stream)
        new = 0
        with self._lock:
            state = self.streams.setdefault(key, StreamState(site))
            for item in batch.items:
                body = encode(item)
                old = state.items.get(item.seq)
                if old is None:
                    state.items[item.seq] = body
                    self.arrivals.append((batch.gateway, batch.stream, item.seq))
                    self.arrived_at[(batch.gateway, batch.stream, item.seq)] = time.perf_counter()
                    new += 1
                elif old == body:
                    self.duplicates += 1
                else:
                    self.conflicts.append((batch.gateway, batch.stream, item.seq))
            state.ranges.append((batch.first_seq, batch.last_seq))
            _advance(state)
            seqs = tuple(item.seq for item in batch.items)
            self.batches.append(
                Received(
                    batch.gateway, batch.stream, batch.first_seq, batch.last_seq, seqs, len(payload), new
                )
            )
        self._publish_ack(key)

    def _publish_ack(self, key: Key) -> None:
        with self._lock:
            state = self.streams[key]
            if self._holding or state.covered < 1:
                return
            state.acked = state.covered
            gateway, stream = key
            ack = Ack(v=1, gateway=gateway, stream=stream, seq=state.covered, ts=time.time_ns() // 1_000_000)
            self.acks_published += 1
        self._client.publish(ack_topic(state.site, gateway), encode(ack), qos=1)


def _advance(state: StreamState) -> None:
    """Merge every range that touches ``covered`` into it."""
    moved = True
    while moved:
        moved = False
        for first, last in list(state.ranges):
            if first <= state.covered + 1:
                state.covered = max(state.covered, last)
                state.ranges.remove((first, last))
                moved = True
