"""A small asyncio surface over paho-mqtt: callers see futures, handlers and events, never paho.

Like aiomqtt, but shaped for a gateway that must never lose its link for good:

- *Its own network thread and reconnect policy.*  paho's ``loop_start``
  reconnects on a fixed doubling delay without jitter and hides the connections;
  here every connection, delay and failure is an event (``Retrying``), and the
  policy is a plain object (``uplink_pacing.Backoff``) that tests replace.
- *A fresh paho client per connection* (``uplink_connection``): nothing is
  queued across connections; the durable outbox is the one queue.
- *Persistent session, MQTT 5 first.*  ``clean_start=False`` with a session
  expiry (3.1.1: ``clean_session=False``) keeps subscriptions and down-link
  messages queued while the gateway is away.  A broker that refuses MQTT 5
  (amqtt, old brokers) gets 3.1.1 from then on (``_fallback``).
- *Incoming messages are acknowledged after their handler ran* (paho's
  ``manual_ack``): a command is not PUBACKed before the gateway has taken it.

paho's callbacks run on the network thread; each hands over to the asyncio
loop with ``call_soon_threadsafe`` and does nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from coldgate.gateway.uplink.connection import Connection, LinkOptions, MqttVersion, Will
from coldgate.gateway.uplink.pacing import Backoff

__all__ = [
    "Connected",
    "Disconnected",
    "LinkDown",
    "LinkEvent",
    "LinkOptions",
    "Message",
    "MqttLink",
    "PublishRefused",
    "Retrying",
    "Will",
]

log = logging.getLogger(__name__)


class LinkDown(ConnectionError):
    """No connection now, or it ended before the broker's PUBACK; the caller re-sends later."""


class PublishRefused(RuntimeError):
    """The broker answered a publish with a failure reason (MQTT 5 only, e.g. not authorized)."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Connected:
    generation: int
    protocol: MqttVersion
    session_present: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    generation: int
    reason: str


@dataclass(frozen=True, slots=True)
class Retrying:
    attempt: int
    delay_s: float
    error: str


LinkEvent = Connected | Disconnected | Retrying


class MqttLink:
    """``async with MqttLink(options, will=...) as link``: connects, reconnects, and closes cleanly."""

    def __init__(
        self, options: LinkOptions, *, will: Callable[[], Will] | None = None, backoff: Backoff | None = None
    ) -> None:
        self.options = options
        self.backoff = backoff or Backoff()
        self._will = will
        self._handlers: dict[str, list[Callable[[Message], None]]] = {}
        self._listeners: list[Callable[[LinkEvent], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._abort = False
        self._protocol: MqttVersion = options.protocol
        self._tentative = False  # on 3.1.1 because MQTT 5 went unanswered, not refused
        self._current: Connection | None = None  # loop side: the connection publishes go to
        self._up = asyncio.Event()
        self._hooks = _Hooks(self)
        self.connects = 0

    # -- the asyncio side --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._current is not None

    @property
    def unacknowledged(self) -> int:
        """Publishes on this connection still waiting for the broker's PUBACK."""
        return len(self._current.pending) if self._current is not None else 0

    @property
    def protocol(self) -> MqttVersion:
        """The protocol in use (after a fallback, 3.1.1)."""
        return self._protocol

    def subscribe(self, topic_filter: str, handler: Callable[[Message], None]) -> None:
        """Call ``handler`` on the loop for every message matching ``topic_filter`` (re-subscribed on
        every connect); the message is acknowledged to the broker once the handler returns."""
        new = topic_filter not in self._handlers
        self._handlers.setdefault(topic_filter, []).append(handler)
        if new and self._current is not None:
            self._current.client.subscribe(topic_filter, qos=1)

    def add_listener(self, listener: Callable[[LinkEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` on the loop for every connect, disconnect and retry."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait_connected(self) -> None:
        await self._up.wait()

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[None]:
        """Send now; the future resolves on the broker's PUBACK (flow control only, not delivery).

        Raises ``LinkDown`` when not connected; the future fails with ``LinkDown``
        when the connection ends first.  Nothing is queued across connections.
        """
        connection = self._current
        if connection is None or self._loop is None:
            raise LinkDown("not connected")
        info = connection.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkDown(f"publish failed: {paho.error_string(info.rc)}")
        future: asyncio.Future[None] = self._loop.create_future()
        future.add_done_callback(_consume)
        if qos == 0:
            future.set_result(None)
        else:
            connection.pending[info.mid] = future
        return future

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("link already started")
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._network, name=f"mqtt-{self.options.client_id}", daemon=True
        )
        self._thread.start()

    async def close(self, final: tuple[str, bytes] | None = None, timeout_s: float = 5.0) -> None:
        """Publish ``final`` (topic, payload; retained) if connected, then DISCONNECT: no will."""
        if final is not None and self._current is not None:
            with contextlib.suppress(LinkDown, PublishRefused, TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self.publish(final[0], final[1], retain=True)
        await self._join()

    def abort(self) -> None:
        """End the link as a crash or a pulled cable would: no DISCONNECT, so the broker sends the will."""
        self._abort = True
        self._stop.set()

    async def _join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self.options.connect_timeout_s + 5)

    async def __aenter__(self) -> MqttLink:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._join()

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            self._loop.call_soon_threadsafe(fn, *args)

    def _emit(self, event: LinkEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("link listener failed on %s", event)

    def _on_up(self, connection: Connection, session_present: bool) -> None:
        self._current = connection
        self.connects += 1
        self._up.set()
        self._emit(Connected(connection.generation, connection.protocol, session_present))

    def _on_down(self, connection: Connection, reason: str) -> None:
        if self._current is connection:
            self._current = None
            self._up.clear()
        for future in connection.pending.values():
            if not future.done():
                future.set_exception(LinkDown(reason))
        connection.pending.clear()
        self._emit(Disconnected(connection.generation, reason))

    def _on_puback(self, connection: Connection, mid: int, failure: str | None) -> None:
        future = connection.pending.pop(mid, None)
        if future is None or future.done():
            return
        if failure is None:
            future.set_result(None)
        else:
            future.set_exception(PublishRefused(failure))

    def _on_message(self, connection: Connection, msg: paho.MQTTMessage) -> None:
        message = Message(msg.topic, bytes(msg.payload), bool(msg.retain))
        for topic_filter, handlers in list(self._handlers.items()):
            if paho.topic_matches_sub(topic_filter, message.topic):
                for handler in handlers:
                    try:
                        handler(message)
                    except Exception:
                        log.exception("handler for %s failed", message.topic)
        if msg.qos > 0 and self._current is connection:
            connection.client.ack(msg.mid, msg.qos)

    # -- the network thread ------------------------------------------------------------------------

    def _network(self) -> None:
        generation = 0
        while not self._stop.is_set():
            generation += 1
            will = self._will() if self._will is not None else None
            connection = Connection(self.options, self._protocol, generation, will, self._hooks)
            try:
                error = connection.open()
                if error is None:
                    error = connection.run(self._stop, lambda: self._abort)
            except Exception as exc:  # a paho bug must cost a reconnect, not the link for good
                log.exception("MQTT connection failed unexpectedly")
                error = f"internal error: {exc!r}"
            if connection.up_at:
                self._post(self._on_down, connection, error)
                if time.monotonic() - connection.up_at >= self.options.stable_after_s:
                    self.backoff.reset()
            connection.close()
            if self._stop.is_set():
                break
            if self._fallback(connection, error):
                continue
            delay = self.backoff.next_delay()
            self._post(self._emit, Retrying(self.backoff.attempt, delay, error))
            self._stop.wait(delay)

    def _fallback(self, connection: Connection, error: str) -> bool:
        """Whether to try MQTT 3.1.1 at once.  amqtt answers an MQTT 5 CONNECT with "unsupported
        protocol version", or, when the CONNECT has a will, misreads it and waits for bytes that never
        come.  A refusal is final; silence only earns one 3.1.1 try, which must connect to stick (a
        TCP proxy that accepts and hangs up must not downgrade a gateway for good).  Nothing depends
        on MQTT 5 (docs/contract.md): a wrong guess costs only the session expiry."""
        if connection.protocol == "3.1.1":
            if self._tentative and not connection.up_at:
                self._protocol = "5"
            self._tentative = False
            return False
        if self.options.protocol != "5" or not (connection.dropped or connection.refused_protocol):
            return False
        self._tentative = not connection.refused_protocol
        log.warning("broker %s: MQTT 5 failed (%s); trying MQTT 3.1.1", self.options.host, error)
        self._protocol = "3.1.1"
        return True


class _Hooks:
    """A connection's reports, posted to the link on the asyncio loop."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link

    def filters(self) -> list[str]:
        return list(self.link._handlers)

    def up(self, connection: Connection, session_present: bool) -> None:
        self.link._post(self.link._on_up, connection, session_present)

    def puback(self, connection: Connection, mid: int, failure: str | None) -> None:
        self.link._post(self.link._on_puback, connection, mid, failure)

    def message(self, connection: Connection, msg: paho.MQTTMessage) -> None:
        self.link._post(self.link._on_message, connection, msg)


def _consume(future: asyncio.Future[None]) -> None:
    """Mark an exception as seen: the uplink does not wait for every PUBACK, and that is fine."""
    if not future.cancelled():
        future.exception()
