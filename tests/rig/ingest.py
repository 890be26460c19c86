"""Building up-link messages for ingest tests, the way a gateway's uplink would.

Readings are stamped ``NOW_MS + seq`` seconds apart from a fixed boot, so a
test can recompute any stored row from its seq.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldgate.contract.codec import decode, encode
from coldgate.contract.downlink import Ack
from coldgate.contract.items import Item, Quantity
from coldgate.contract.items import Reading as ReadingItem
from coldgate.contract.topics import batch_topic, status_topic
from coldgate.contract.units import Unit
from coldgate.contract.uplink import Batch, State, Status
from tests.rig.mosquitto import MosquittoBroker

SITE = "site1"
BOOT = "9f1c2e4a7b3d4c5e8f6a1b2c3d4e5f60"
STREAM = "5b2d7c4e1a9f4e3b8c6d0a1f2e3b4c5d"
NOW_MS = 1_795_000_000_000  # 2026-11-18


def reading(
    seq: int,
    *,
    sensor: str = "cr1-t01",
    value: float | None = None,
    synced: bool = True,
    boot: str = BOOT,
    ts: int | None = None,
    mono: int | None = None,
) -> ReadingItem:
    return ReadingItem(
        seq=seq,
        ts=NOW_MS + seq * 1000 if ts is None else ts,
        boot=boot,
        mono=1_000_000 + seq * 1000 if mono is None else mono,
        synced=synced,
        sensor=sensor,
        quantity=Quantity.TEMPERATURE,
        value=4.0 + (seq % 50) / 10 if value is None else value,
        unit=Unit.CEL,
    )


def batch(
    gateway: str,
    items: Sequence[Item],
    *,
    site: str = SITE,
    stream: str = STREAM,
    first_seq: int | None = None,
) -> Batch:
    return Batch(
        v=1,
        site=site,
        gateway=gateway,
        boot=BOOT,
        stream=stream,
        first_seq=items[0].seq if first_seq is None else first_seq,
        last_seq=items[-1].seq,
        sent=NOW_MS,
        items=list(items),
    )


def batch_message(
    gateway: str,
    items: Sequence[Item],
    *,
    site: str = SITE,
    stream: str = STREAM,
    first_seq: int | None = None,
) -> tuple[str, bytes]:
    """(topic, payload) of a batch of ``items`` from ``gateway``."""
    return batch_topic(site, gateway), encode(
        batch(gateway, items, site=site, stream=stream, first_seq=first_seq)
    )


def reading_batches(
    gateway: str, total: int, per_batch: int, *, site: str = SITE, stream: str = STREAM, sensors: int = 10
) -> Iterable[tuple[str, bytes]]:
    """``total`` readings numbered 1..total in batches of ``per_batch``."""
    for first in range(1, total + 1, per_batch):
        last = min(total, first + per_batch - 1)
        items = [reading(seq, sensor=f"s{seq % sensors:02d}") for seq in range(first, last + 1)]
        yield batch_message(gateway, items, site=site, stream=stream)


def status_message(
    gateway: str,
    *,
    ts: int,
    state: State = State.ONLINE,
    will: bool = False,
    site: str = SITE,
    boot: str = BOOT,
    heartbeat_s: int | None = 60,
    outbox_depth: int | None = None,
    last_acked_seq: int | None = None,
) -> tuple[str, bytes]:
    status = Status(
        v=1,
        site=site,
        gateway=gateway,
        boot=boot,
        ts=ts,
        state=state,
        will=will,
        heartbeat_s=None if will else heartbeat_s,
        outbox_depth=None if will else outbox_depth,
        last_acked_seq=None if will else last_acked_seq,
    )
    return status_topic(site, gateway), encode(status)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.05)


class Publisher:
    """Plays the gateways: publishes batches QoS 1 and collects the acks sent back."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.acks: list[Ack] = []
        self._lock = threading.Lock()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="gateways", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("coldgate/v1/+/+/down/ack", qos=1)

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(decode(msg.payload, Ack, msg.topic))

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def acked(self, gateway: str) -> int:
        with self._lock:
            return max((a.seq for a in self.acks if a.gateway == gateway and a.stream == STREAM), default=0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
