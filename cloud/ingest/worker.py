"""An ingest worker: MQTT messages in, database commit, then the MQTT ack and the end-to-end ack.

Order is the whole point.  A message is PUBACKed to the broker (paho
``manual_ack``) only after the transaction that stored it committed, and the
gateway's cumulative ack goes out only then too.  If the database is down,
nothing is acknowledged: the broker keeps the messages in the worker's
persistent session (stable client id, ``clean_start=False``) and the gateway
keeps them in its outbox, so a crash at any point loses nothing and a
re-delivery is a no-op.

Workers are stateless and share one MQTT 5 shared subscription
(``$share/<group>/...``); the database serialises what must be serialised
(``stream_coverage`` rows).  On MQTT 3.1.1 there is no shared subscription,
so one worker subscribes to the plain filter.

Messages are committed in groups (one transaction for up to
``max_group_messages`` messages): a commit per 500-reading batch would cap a
worker at the disk's fsync rate.  If a group fails on something other than
the database being unreachable, its messages are stored one per transaction,
so the one that breaks the database is dead-lettered alone.

A batch beyond the sequence window (``cloud/ingest/sequence_window.py``) is
not refused at once: with two workers, the status that announces it or the
batch before it may be in the other worker's transaction, committing now.
It waits, unacknowledged, and is tried again with the next groups for up to
``AHEAD_WAIT_S``; only then is it refused.  A forgery far ahead waits too,
and is refused all the same.

paho runs its own network thread (``loop_start``); ``on_message`` queues,
and decodes batches ahead (up to ``DECODE_AHEAD`` of them) while the worker
thread waits for the database on the group before: decoding is a tenth of a
worker's time per reading, and one worker otherwise does it and then waits.
The worker thread does the database work; paho's ``ack`` and ``publish`` are
safe to call from it.
"""

from __future__ import annotations

import datetime
import logging
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.ingest.dead_letter_budget import Spent
from coldgate.cloud.ingest.dead_letter_payload import KeptPayload, cut
from coldgate.cloud.ingest.dead_letters import dead_letter
from coldgate.cloud.ingest.group import AckDue, Group, Outcome, gateway_of
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message
from coldgate.cloud.ingest.refusals import refuse_oversized
from coldgate.contract.codec import MAX_PAYLOAD_BYTES, decode, encode
from coldgate.contract.downlink import Ack
from coldgate.contract.errors import ContractError
from coldgate.contract.items import Reading
from coldgate.contract.topics import BATCH, INGEST_FILTER, QOS, ack_topic, parse_topic, shared_ingest_filter
from coldgate.contract.uplink import Batch
from coldgate.contract.version import CONTRACT_VERSION
from coldgate.mqtt_secrets import read_secret, tls_context

__all__ = ["IngestStats", "IngestWorker", "Mirror"]

log = logging.getLogger(__name__)

#: Unacknowledged messages the broker may send us before waiting (MQTT 5 Receive Maximum).
RECEIVE_MAXIMUM = 256
#: How long the broker keeps the session (and our unacknowledged messages) while we are away.
#: Short on purpose: Mosquitto keeps dealing a shared subscription's messages to an offline
#: member's session (measured on 2.0.11), where they would wait until that worker came back.
#: The gateways' outboxes are the durable queue: what the broker drops is re-sent unacknowledged.
SESSION_EXPIRY_S = 300
#: How long a batch beyond the sequence window waits for what brings it inside, and how often it is
#: tried again meanwhile.
AHEAD_WAIT_S = 2.0
AHEAD_RETRY_S = 0.05
#: QoS 0 messages (never a gateway's) are dropped while the inbox holds more than this.
INBOX_QOS0_MAX_BYTES = 32 * 1024 * 1024
#: Batches decoded ahead of the worker thread at most (a group): what they hold in memory stays bounded.
DECODE_AHEAD = 64


class Mirror(Protocol):
    """The optional time-series mirror; called after the commit, must not block."""

    def mirror(self, gateway: str, site: str, readings: list[Reading]) -> None: ...


@dataclass(slots=True)
class IngestStats:
    """Counters since start; read by the demo's status line and the benchmark."""

    messages: int = 0
    batches: int = 0
    statuses: int = 0
    new: int = 0
    new_readings: int = 0
    duplicates: int = 0
    conflicts: int = 0
    dead_letters: int = 0
    #: Dead letters over their source's budget: counted, not kept.
    dead_letters_dropped: int = 0
    #: Messages from gateways that are not enrolled (nothing stored).
    not_enrolled: int = 0
    #: Items of batches refused for starting ahead of the sequence window.
    ahead: int = 0
    #: QoS 0 messages dropped while the inbox was full (gateways publish QoS 1).
    qos0_dropped: int = 0
    acks_published: int = 0
    commits: int = 0
    db_retries: int = 0
    lock_retries: int = 0
    last_db_error: str | None = None
    connected: bool = False
    by_gateway: dict[str, int] = field(default_factory=dict)

    #: The fields that add up across workers.
    COUNTERS: ClassVar[tuple[str, ...]] = (
        "messages",
        "batches",
        "statuses",
        "new",
        "new_readings",
        "duplicates",
        "conflicts",
        "dead_letters",
        "dead_letters_dropped",
        "not_enrolled",
        "ahead",
        "qos0_dropped",
        "acks_published",
        "commits",
        "db_retries",
        "lock_retries",
    )

    def add(self, outcome: Outcome) -> None:
        self.messages += 1
        self.batches += outcome.kind == "batch"
        self.statuses += outcome.kind == "status"
        self.new += outcome.new
        self.new_readings += len(outcome.new_readings)
        self.duplicates += outcome.duplicates
        self.conflicts += outcome.conflicts
        self.dead_letters += outcome.dead_letters
        self.dead_letters_dropped += outcome.dead_letters_dropped
        self.not_enrolled += outcome.kind == "not_enrolled"
        self.ahead += outcome.ahead
        if outcome.gateway is not None and outcome.new:
            self.by_gateway[outcome.gateway] = self.by_gateway.get(outcome.gateway, 0) + outcome.new


_qos0_logged: dict[str, float] = {}


def _log_qos0_drop(client_id: str) -> None:
    """At most a line a minute per worker: the counter has the number."""
    now = time.monotonic()
    if now - _qos0_logged.get(client_id, -60.0) >= 60.0:
        _qos0_logged[client_id] = now
        log.warning("%s: dropping QoS 0 messages while the inbox is full (gateways publish QoS 1)", client_id)


def _topic(msg: paho.MQTTMessage) -> str:
    """The topic as text even when it is not UTF-8 (paho's ``topic`` raises then; brokers
    should refuse such topics, but ingest must not depend on it)."""
    try:
        return msg.topic
    except UnicodeDecodeError:
        return bytes(msg._topic).decode("utf-8", "backslashreplace")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


#: SQLSTATEs of a transaction the database rolled back because it lost a race: deadlock, serialization.
_RACE_STATES = frozenset({"40P01", "40001"})


def _lost_a_race(exc: BaseException) -> bool:
    """Retry at once: the database itself is fine (psycopg raises these as OperationalError)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _RACE_STATES


def _unreachable(exc: BaseException) -> bool:
    """The database could not be reached (retry later), as opposed to refusing this data."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class IngestWorker:
    """One worker: ``start()``, then ``stop()``; ``stats`` may be read from any thread."""

    def __init__(
        self,
        engine: Engine,
        mqtt: CloudMqttConfig,
        n: int = 1,
        *,
        mirror: Mirror | None = None,
        limits: IngestLimits | None = None,
        max_group_messages: int = 64,
        max_group_bytes: int = 8 * 1024 * 1024,
        clock: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self.engine = engine
        self.config = mqtt
        self.client_id = mqtt.worker_client_id(n)
        self.mirror = mirror
        self.limits = limits or IngestLimits()
        self.max_group_messages = max_group_messages
        self.max_group_bytes = max_group_bytes
        self.clock = clock
        self.stats = IngestStats()
        self._lock = threading.Lock()
        self._inbox: queue.Queue[paho.MQTTMessage] = queue.Queue()
        #: Batches beyond the sequence window: (when to try again, until when they may wait, message).
        self._waiting: list[tuple[float, float, paho.MQTTMessage]] = []
        #: Messages of the group in hand that may still wait (``id(msg)`` -> deadline).
        self._may_wait: dict[int, float] = {}
        #: Messages of the group just committed that were deferred.
        self._deferred: list[paho.MQTTMessage] = []
        #: What is kept of messages over ``limits.max_message_bytes`` (``id(msg)`` -> prefix, size, hash).
        self._cut: dict[int, KeptPayload] = {}
        #: Batches decoded on arrival (``id(msg)`` -> batch); one that does not decode is left to ingest.
        self._decoded: dict[int, Batch] = {}
        #: Payload bytes waiting in the inbox.
        self._inbox_bytes = 0
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ingest-{self.client_id}", daemon=True)
        self._client = self._make_client()

    # -- MQTT ---------------------------------------------------------------------------------------

    @property
    def v5(self) -> bool:
        return self.config.protocol == "5"

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if self.v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            manual_ack=True,
        )
        if self.config.username is not None:
            password = None
            if self.config.password_file is not None:
                password = read_secret(self.config.password_file, "mqtt.password_file")
            client.username_pw_set(self.config.username, password)
        if self.config.address.tls:
            client.tls_set_context(tls_context(self.config, "mqtt"))
        client.reconnect_delay_set(0.5, 10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: paho.Client, _u: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.client_id, reason)
            return
        with self._lock:
            self.stats.connected = True
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # Acks are small and latency-bound; Nagle would hold each for the next PUBACK round trip.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        topic_filter = shared_ingest_filter(self.config.shared_group) if self.v5 else INGEST_FILTER
        client.subscribe(topic_filter, qos=QOS)

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._lock:
            self.stats.connected = False
        if not self._stop.is_set():
            log.warning("%s: disconnected from the broker (%s); paho reconnects", self.client_id, reason)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        size = len(msg.payload)
        if msg.qos == 0 and self._inbox_bytes > INBOX_QOS0_MAX_BYTES:
            # Gateways publish QoS 1, which the broker meters by RECEIVE_MAXIMUM; QoS 0 it does not,
            # so a flood of it is dropped here rather than held.
            with self._lock:
                self.stats.qos0_dropped += 1
            _log_qos0_drop(self.client_id)
            return
        if size > self.limits.max_message_bytes:
            self._cut[id(msg)] = cut(msg.payload)
            msg.payload = b""
            size = 0
        elif len(self._decoded) < DECODE_AHEAD:
            self._decode_ahead(msg)
        with self._lock:
            self._inbox_bytes += size
        self._inbox.put(msg)

    def _decode_ahead(self, msg: paho.MQTTMessage) -> None:
        """Decode a batch here, in paho's thread, while the worker thread waits for the database."""
        topic = _topic(msg)
        try:
            if parse_topic(topic).name == BATCH.name:
                self._decoded[id(msg)] = decode(msg.payload, Batch, topic)
        except ContractError:
            pass  # ingest decodes it again and dead-letters what is wrong, saying where

    # -- running ------------------------------------------------------------------------------------

    def start(self, wait_subscribed_s: float | None = 10.0) -> IngestWorker:
        """Connect and start consuming; with ``wait_subscribed_s``, return once subscribed."""
        address = self.config.address
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
            # The broker drops, for this worker, what the contract could never accept; anything
            # smaller arrives, and past max_message_bytes is cut, counted and logged as it does
            # (bench.dead_letter_flood: the flood costs a worker ~20 MB at its peak).
            properties.MaximumPacketSize = MAX_PAYLOAD_BYTES + 65536
            self._client.connect_async(
                address.host, address.port, self.config.keepalive_s, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(address.host, address.port, self.config.keepalive_s)
        self._client.loop_start()
        self._thread.start()
        if wait_subscribed_s is not None and not self._subscribed.wait(wait_subscribed_s):
            self.stop()
            raise ConnectionError(
                f"{self.client_id}: not subscribed at {self.config.broker} within {wait_subscribed_s} s"
            )
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the group in hand (commit and ack it), then disconnect.  Queued messages stay
        unacknowledged in this worker's session (kept ``SESSION_EXPIRY_S``); if it does not come
        back, the gateways re-send them, since nothing unacknowledged leaves an outbox."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> IngestWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> IngestStats:
        with self._lock:
            copy = IngestStats(**{name: getattr(self.stats, name) for name in IngestStats.__slots__})
            copy.by_gateway = dict(self.stats.by_gateway)
            return copy

    def _run(self) -> None:
        while not self._stop.is_set():
            group = self._due_waiting()
            if not group:
                try:
                    group = [self._inbox.get(timeout=self._wait_s())]
                except queue.Empty:
                    continue
            size = sum(len(msg.payload) for msg in group)
            while len(group) < self.max_group_messages and size < self.max_group_bytes:
                try:
                    msg = self._inbox.get_nowait()
                except queue.Empty:
                    break
                group.append(msg)
                size += len(msg.payload)
            committed = self._commit_with_retry(group)
            if committed is None:  # stopping while the database is down: leave them to the broker
                return
            try:
                self._after_commit(group, *committed)
            except Exception:
                # Committed; a missing PUBACK or ack only means a re-send, which is a no-op.
                log.exception("%s: acknowledging a committed group failed", self.client_id)

    def _wait_again(self, deferred: list[paho.MQTTMessage]) -> None:
        """Deferred batches wait (unacknowledged) for their next try; the group's deadlines are done."""
        now = time.monotonic()
        for msg in deferred:
            deadline = self._may_wait.get(id(msg), now + AHEAD_WAIT_S)
            self._waiting.append((now + AHEAD_RETRY_S, deadline, msg))
        self._may_wait.clear()

    def _due_waiting(self) -> list[paho.MQTTMessage]:
        """Waiting batches due for another try, which may wait again until their deadline."""
        now = time.monotonic()
        due = [entry for entry in self._waiting if entry[0] <= now]
        if not due:
            return []
        self._waiting = [entry for entry in self._waiting if entry[0] > now]
        for _, deadline, msg in due:
            self._may_wait[id(msg)] = deadline
        return [msg for _, _, msg in due]

    def _wait_s(self) -> float:
        if not self._waiting:
            return 0.2
        return max(0.0, min(0.2, min(entry[0] for entry in self._waiting) - time.monotonic()))

    def _may_defer(self, msg: paho.MQTTMessage) -> bool:
        """A batch seen for the first time may wait; a waiting one until its deadline."""
        deadline = self._may_wait.get(id(msg))
        return deadline is None or time.monotonic() < deadline

    # -- the database -------------------------------------------------------------------------------

    def _commit_with_retry(
        self, group: list[paho.MQTTMessage]
    ) -> tuple[list[Outcome], dict[tuple[str, str], AckDue]] | None:
        delay = 0.2
        while True:
            try:
                return self._commit(group)
            except Exception as exc:
                if _lost_a_race(exc):
                    # Another worker held a row we needed; the database rolled us back. Go again soon.
                    with self._lock:
                        self.stats.lock_retries += 1
                    log.info("%s: %s; retrying the group", self.client_id, str(exc).splitlines()[0])
                    if self._stop.wait(random.uniform(0.0, 0.05)):
                        return None
                    continue
                if not _unreachable(exc):
                    # Not even the dead letter could be written: a bug. Keep the messages (no ack) and
                    # try again later rather than let the worker thread die with them.
                    log.exception("%s: a group could not be stored nor dead-lettered", self.client_id)
                with self._lock:
                    self.stats.db_retries += 1
                    self.stats.last_db_error = str(exc).splitlines()[0][:200]
                log.warning("%s: database unavailable, retrying in %.1f s: %s", self.client_id, delay, exc)
            if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                return None
            delay = min(delay * 2, 5.0)

    def _commit(self, group: list[paho.MQTTMessage]) -> tuple[list[Outcome], dict[tuple[str, str], AckDue]]:
        """All of ``group`` in one transaction; on a data error, one message per transaction.

        Stored in gateway order (stable, so a stream keeps its order): every worker then takes the
        gateway and coverage row locks in the same order and none can deadlock another.
        """
        ordered = sorted(group, key=lambda msg: gateway_of(_topic(msg)))
        try:
            with self.engine.begin() as conn:
                now = self.clock()
                state = Group(limits=self.limits)
                outcomes = [self._ingest(conn, msg, now, group=state) for msg in ordered]
                acks = state.finish(conn, now)
            self._deferred = [
                msg for msg, outcome in zip(ordered, outcomes, strict=True) if outcome.kind == "deferred"
            ]
            return outcomes, acks
        except Exception as exc:
            if _unreachable(exc) or _lost_a_race(exc):
                raise
            if len(group) > 1:
                log.info("%s: a group of %d failed (%s); storing one by one", self.client_id, len(group), exc)
            outcomes = []
            acks: dict[tuple[str, str], AckDue] = {}
            self._deferred = []
            for msg in ordered:
                outcome = self._commit_alone(msg)
                outcomes.append(outcome)
                if outcome.kind == "deferred":
                    self._deferred.append(msg)
                if outcome.ack is not None:
                    acks[(outcome.ack.gateway, outcome.ack.stream)] = outcome.ack
            return outcomes, acks

    def _ingest(
        self,
        conn: Connection,
        msg: paho.MQTTMessage,
        now: datetime.datetime,
        *,
        group: Group | None = None,
        item_by_item: bool = False,
    ) -> Outcome:
        kept = self._cut.get(id(msg))
        if kept is not None:
            return refuse_oversized(conn, _topic(msg), kept, now, self.limits)
        return ingest_message(
            conn,
            _topic(msg),
            msg.payload,
            now,
            retained=msg.retain,
            group=group,
            item_by_item=item_by_item,
            limits=self.limits,
            defer_ahead=self._may_defer(msg),
            decoded=self._decoded.get(id(msg)),
        )

    def _commit_alone(self, msg: paho.MQTTMessage) -> Outcome:
        """One message in its own transaction; if the database refuses it, item by item (the refused
        items dead-lettered, the rest stored and the range acknowledged, so the stream goes on)."""
        for item_by_item in (False, True):
            try:
                with self.engine.begin() as conn:
                    return self._ingest(conn, msg, self.clock(), item_by_item=item_by_item)
            except Exception as exc:
                if _unreachable(exc) or _lost_a_race(exc):
                    raise
                failure = exc
        # Not even item by item (a bug, or a refusal outside the items): keep it verbatim with the reason.
        log.error(
            "%s: message on %s could not be stored; dead-lettered",
            self.client_id,
            _topic(msg),
            exc_info=failure,
        )
        first_line = str(failure).splitlines()[0][:300] if str(failure) else ""
        reason = f"could not be stored: {type(failure).__name__}: {first_line}"
        with self.engine.begin() as conn:
            spent = dead_letter(
                conn,
                topic=_topic(msg),
                payload=msg.payload,
                reason=reason,
                now=self.clock(),
                path="$",
                budget=self.limits.budget,
            )
        return Outcome("dead_letter", dead_letters=1, dead_letters_dropped=spent is not Spent.KEPT)

    # -- after the commit ---------------------------------------------------------------------------

    def _after_commit(
        self, group: list[paho.MQTTMessage], outcomes: list[Outcome], acks: dict[tuple[str, str], AckDue]
    ) -> None:
        waiting = {id(msg) for msg in self._deferred}
        self._wait_again(self._deferred)
        self._deferred = []
        # Counted before anything is acknowledged: whoever sees an ack may read the counters.
        with self._lock:
            for outcome in outcomes:
                if outcome.kind != "deferred":
                    self.stats.add(outcome)
            self.stats.commits += 1
        done = [msg for msg in group if id(msg) not in waiting]
        with self._lock:
            self._inbox_bytes -= sum(len(msg.payload) for msg in done)
        for msg in done:
            self._cut.pop(id(msg), None)
            self._decoded.pop(id(msg), None)
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)
        ts = int(self.clock().timestamp() * 1000)
        for due in acks.values():
            ack = Ack(v=CONTRACT_VERSION, gateway=due.gateway, stream=due.stream, seq=due.seq, ts=ts)
            self._client.publish(ack_topic(due.site, due.gateway), encode(ack), qos=QOS)
            with self._lock:
                self.stats.acks_published += 1
        if self.mirror is not None:
            for outcome in outcomes:
                if outcome.new_readings and outcome.gateway and outcome.site:
                    self.mirror.mirror(outcome.gateway, outcome.site, outcome.new_readings)
