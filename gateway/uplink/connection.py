"""One MQTT connection: a fresh paho client, its CONNECT, and its network loop until it ends.

``gateway.uplink.mqtt_link`` keeps a link up by making one ``Connection`` after
another; everything here runs on the link's network thread, and paho's
callbacks only hand their facts over (``LinkHooks``, which post to asyncio).
A fresh client per connection is the point: paho keeps unacknowledged
publishes in memory and re-sends them after a reconnect, while the gateway's
durable outbox already re-sends everything the cloud has not acknowledged;
paho's copy would only double the traffic and, over a flapping link, pile up
message ids.  Dropped with its connection, it leaves the outbox the one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("coldgate.gateway.uplink.mqtt_link")
_paho_log = logging.getLogger("coldgate.gateway.uplink.mqtt_link.paho")

MqttVersion = Literal["5", "3.1.1"]
UNSUPPORTED_PROTOCOL = 132  # MQTT 5 CONNACK reason; paho maps a 3.1.1 broker's return code 1 onto it
STOP_GRACE_S = 2.0


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class LinkOptions:
    host: str
    port: int
    client_id: str
    protocol: MqttVersion = "5"
    keepalive_s: int = 60
    #: MQTT 5: how long the broker keeps subscriptions and queued messages while the gateway is away.
    session_expiry_s: int = 86_400
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    connect_timeout_s: float = 10.0  # TCP and TLS handshake
    connack_timeout_s: float = 5.0
    #: QoS 1 publishes awaiting PUBACK; more wait in order in paho.  Brokers that enforce MQTT 5's
    #: Receive Maximum disconnect a client that exceeds it: HiveMQ's default is 10, EMQX's 32.
    max_inflight: int = 10
    #: A connection that held this long resets the backoff ceiling.
    stable_after_s: float = 10.0


class LinkHooks(Protocol):
    """What a connection reports, from the network thread; the link posts each to asyncio."""

    def filters(self) -> list[str]: ...

    def up(self, connection: Connection, session_present: bool) -> None: ...

    def puback(self, connection: Connection, mid: int, failure: str | None) -> None: ...

    def message(self, connection: Connection, msg: paho.MQTTMessage) -> None: ...


class Connection:
    """A paho client for one connection; ``open`` then ``run`` on the network thread, then ``close``."""

    def __init__(
        self,
        options: LinkOptions,
        protocol: MqttVersion,
        generation: int,
        will: Will | None,
        hooks: LinkHooks,
    ) -> None:
        self.options = options
        self.protocol = protocol
        self.generation = generation
        self.hooks = hooks
        self.connack: Any = None  # paho's ReasonCode once CONNACK arrived
        self.dropped = False  # MQTT 5 CONNECT sent, and the broker hung up or left it unanswered
        self.ended = ""
        self.up_at = 0.0
        self.pending: dict[int, asyncio.Future[None]] = {}  # loop side: PUBACKs awaited, by mid
        self.client = self._client(will)

    def _client(self, will: Will | None) -> paho.Client:
        o = self.options
        v5 = self.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=o.client_id,
            clean_session=None if v5 else False,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.enable_logger(_paho_log)
        client.connect_timeout = o.connect_timeout_s
        client.max_inflight_messages_set(o.max_inflight)
        if o.username is not None:
            client.username_pw_set(o.username, o.password)
        if o.tls is not None:
            client.tls_set_context(o.tls)
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # With a write-registration callback set, a publish from the asyncio thread only queues the
        # packet and wakes the network thread's select(); without one, paho (not in loop_start mode)
        # writes from the caller's thread, and two threads writing one socket can interleave packets.
        client.on_socket_register_write = _leave_writing_to_the_network_thread
        return client

    @property
    def refused_protocol(self) -> bool:
        c = self.connack
        return c is not None and c.is_failure and c.value == UNSUPPORTED_PROTOCOL

    def open(self) -> str | None:
        """TCP, TLS and CONNECT (blocking); the error text, or None once CONNECT is on its way."""
        o = self.options
        try:
            if self.protocol == "5":
                properties = Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = o.session_expiry_s
                self.client.connect(o.host, o.port, o.keepalive_s, clean_start=False, properties=properties)
            else:
                self.client.connect(o.host, o.port, o.keepalive_s)
        except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake, DNS
            return f"cannot connect to {o.host}:{o.port}: {exc}"
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]
        return None

    def run(self, stop: threading.Event, abort: Callable[[], bool]) -> str:
        """paho's network loop until the connection ends; why it ended.  On ``stop`` it sends
        DISCONNECT (no will), or with ``abort()`` just cuts the socket (the broker sends the will)."""
        client = self.client
        started = time.monotonic()
        stopping_since = 0.0
        while True:
            if stop.is_set() and not stopping_since:
                stopping_since = time.monotonic()
                if abort():
                    _shut(client)
                else:
                    client.disconnect()
            rc = client.loop(timeout=0.1)
            if stopping_since and self.ended:  # DISCONNECT sent and the socket closed
                return self.ended
            if self.connack is not None and self.connack.is_failure:
                return f"broker refused the connection: {self.connack}"
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self.dropped = self.protocol == "5" and self.connack is None and not stopping_since
                return self.ended or f"connection lost: {paho.error_string(rc)}"
            now = time.monotonic()
            if self.connack is None and now - started > self.options.connack_timeout_s:
                self.dropped = self.protocol == "5"
                return f"no CONNACK within {self.options.connack_timeout_s:g} s"
            if stopping_since and now - stopping_since > STOP_GRACE_S:
                return "closed"

    def close(self) -> None:
        """Close the socket pair now rather than when the garbage collector gets to the client."""
        self.client._reset_sockets()

    # -- paho's callbacks (network thread) ---------------------------------------------------------

    def _on_connect(self, client: paho.Client, _u: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connack = reason
        if reason.is_failure:
            return
        self.up_at = time.monotonic()
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if receive_maximum is not None and receive_maximum < self.options.max_inflight:
            log.warning(
                "broker allows %d QoS 1 messages in flight, this link sends up to %d: lower max_inflight "
                "(paho cannot follow the broker's Receive Maximum on an open connection)",
                receive_maximum,
                self.options.max_inflight,
            )
        filters = self.hooks.filters()
        if filters:
            client.subscribe([(f, 1) for f in filters])
        self.hooks.up(self, bool(flags.session_present))

    def _on_disconnect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.ended = f"disconnected: {reason}"

    def _on_publish(self, client: paho.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        self.hooks.puback(self, mid, str(reason) if reason.is_failure else None)

    def _on_message(self, client: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self.hooks.message(self, msg)


def _shut(client: paho.Client) -> None:
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]


def _leave_writing_to_the_network_thread(client: paho.Client, userdata: Any, sock: Any) -> None:
    pass
