"""Building up-link messages for ingest tests, the way a gateway's uplink would.

Readings are stamped ``NOW_MS + seq`` seconds apart from a fixed boot, so a
test can recompute any stored row from its seq.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import Engine

from coldgate.cloud.identity.enrolment import enrol_gateway
from coldgate.contract.codec import decode, encode
from coldgate.contract.downlink import Ack
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Item
from coldgate.contract.items import Reading as ReadingItem
from coldgate.contract.topics import batch_topic, status_topic
from coldgate.contract.uplink import Batch, DocumentVersions, State, Status
from tests.rig import items
from tests.rig.mosquitto import MosquittoBroker

SITE = "site1"
BOOT = "9f1c2e4a7b3d4c5e8f6a1b2c3d4e5f60"
STREAM = "5b2d7c4e1a9f4e3b8c6d0a1f2e3b4c5d"
NOW_MS = 1_795_000_000_000  # 2026-11-18
ACK_FILTER = "coldgate/v1/+/+/down/ack"
#: The gateways the cloud of the ingest tests has enrolled for ``SITE`` (``enrol``); ingest stores
#: nothing from any other id, as in a deployment.
ENROLLED = tuple(f"gw{n:02d}" for n in range(30))


def enrol(engine: Engine, gateways: Iterable[str] = ENROLLED, *, site: str = SITE) -> None:
    """Enrol ``gateways`` for ``site`` in the cloud database, as ``coldgate cloud gateways enroll`` does."""
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        for gateway in gateways:
            enrol_gateway(conn, gateway, site, "password", now)


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
    """Reading number ``seq`` of the ingest tests: time and value follow from the number."""
    return items.reading(
        4.0 + (seq % 50) / 10 if value is None else value,
        seq=seq,
        ts=NOW_MS + seq * 1000 if ts is None else ts,
        boot=boot,
        mono=1_000_000 + seq * 1000 if mono is None else mono,
        synced=synced,
        sensor=sensor,
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


def announced_batches(
    gateway: str, total: int, per_batch: int, *, site: str = SITE, stream: str = STREAM
) -> Iterator[tuple[str, bytes]]:
    """``reading_batches`` after the status announcing them, as a gateway with that backlog sends
    them at connect: the cloud may then take them in any order (the sequence window)."""
    yield announce_message(gateway, total, site=site)
    yield from reading_batches(gateway, total, per_batch, site=site, stream=stream)


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
    last_seq: int | None = None,
    uptime_s: int | None = None,
    versions: DocumentVersions | None = None,
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
        last_seq=None if will else last_seq,
        uptime_s=None if will else uptime_s,
        versions=None if will else versions,
    )
    return status_topic(site, gateway), encode(status)


def announce_message(gateway: str, last_seq: int, *, site: str = SITE, ts: int = NOW_MS) -> tuple[str, bytes]:
    """The birth status a gateway publishes at connect, announcing its ``last_seq``: the cloud then
    takes batches up to it in any order (the sequence window)."""
    return status_message(gateway, ts=ts, site=site, last_seq=last_seq)


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
        self.client.subscribe(ACK_FILTER, qos=1)

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


def unique_tag(request: pytest.FixtureRequest) -> str:
    """A per-test suffix for MQTT client ids and share groups.

    The session broker keeps persistent sessions, with their subscriptions,
    across tests: a worker id reused by a later test would inherit an old
    shared subscription and a share of messages meant for nobody.
    """
    return f"{abs(hash(request.node.nodeid)) % 10**8}"


def mqtt_client(broker: MosquittoBroker, client_id: str) -> paho.Client:
    """A connected MQTT 5 client with a clean session and its network loop running."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(64)  # the uplink's window is batches, not single messages
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


@dataclass
class AckWatcher:
    """Plays the gateways' down-link side: records every end-to-end ack the cloud publishes.

    ``log`` keeps (monotonic time, gateway, seq) so a test can ask what was
    acknowledged during an interval (the outage test does).
    """

    broker: MosquittoBroker
    client_id: str
    log: list[tuple[float, str, int]] = field(default_factory=list)
    highest: dict[str, int] = field(default_factory=dict)
    #: Payloads on ack topics that are no acks: none may come from the cloud.
    foreign: list[tuple[str, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt_client(self.broker, self.client_id)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.subscribe(ACK_FILTER, qos=1)
        if not self._subscribed.wait(10):
            raise AssertionError("ack watcher not subscribed")

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        try:
            ack = decode(msg.payload, Ack, msg.topic)
        except ContractError:  # a hostile client may publish anything on an ack topic (no ACL here)
            with self._lock:
                self.foreign.append((msg.topic, msg.payload))
            return
        with self._lock:
            self.log.append((time.monotonic(), ack.gateway, ack.seq))
            self.highest[ack.gateway] = max(self.highest.get(ack.gateway, 0), ack.seq)

    def acked(self, gateway: str) -> int:
        with self._lock:
            return self.highest.get(gateway, 0)

    def between(self, start: float, end: float) -> list[tuple[float, str, int]]:
        with self._lock:
            return [entry for entry in self.log if start <= entry[0] <= end]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class GatewayPublisher(threading.Thread):
    """One gateway's uplink: its batches, QoS 1, from its own client and thread."""

    def __init__(
        self,
        broker: MosquittoBroker,
        client_id: str,
        messages: Iterator[tuple[str, bytes]],
        pause_s: float = 0.0,
    ) -> None:
        super().__init__(name=f"publish-{client_id}", daemon=True)
        self.client = mqtt_client(broker, client_id)
        self.messages = messages
        self.pause_s = pause_s
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            pending: list[paho.MQTTMessageInfo] = []
            for topic, payload in self.messages:
                pending.append(self.client.publish(topic, payload, qos=1))
                self.sent += 1
                if self.pause_s:
                    time.sleep(self.pause_s)
            for info in pending:
                info.wait_for_publish(120)
                if info.rc != paho.MQTT_ERR_SUCCESS:
                    raise AssertionError(f"publish failed: rc={info.rc}")
        except BaseException as exc:  # reported by join_ok() in the test thread
            self.error = exc

    def join_ok(self, timeout: float = 300) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} still publishing"
        if self.error is not None:
            raise self.error
        self.client.disconnect()
        self.client.loop_stop()


