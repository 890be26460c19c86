"""The uplink: drains the durable outbox over MQTT until the cloud acknowledges every item.

The broker's PUBACK only says the broker has the message; a broker restarted
without persistence, or a cloud consumer that never returns, loses it anyway.
So an item leaves the outbox only on the cloud's ``ack`` (published after its
database commit), and everything not acknowledged is sent again after a
reconnect or ``ack_timeout_s``; the cloud de-duplicates on (gateway, stream,
seq).  ``gateway.buffer.delivery.Delivery`` keeps the positions; this module
decides *when*:

- on every wake-up (a commit in the outbox, an ack, a reconnect, a timer) the
  sequence stream is sent as far as the in-flight window
  (``inflight_max_batches``, far below paho's 65,535 message ids) and the drain
  rate allow; then express batches carry alerts and gaps past a held-back
  backlog, never rate-limited (their own window bounds them);
- the drain rate (``uplink.drain_items_per_s``) holds back the *backlog* only:
  what the outbox had committed when the link came up.  Items committed while
  the link is up are live and go at once (the window bounds them), else a site
  producing more than the rate would fall further behind every second;
- one MQTT connection and one publisher keep batches in seq order;
- the status (birth on connect, heartbeat, will, offline on shutdown) is
  retained, so whoever looks next sees the newest; it is also published
  whenever ``ANNOUNCE_EVERY_ITEMS`` items were numbered since the last one,
  before the batches that carry them: the cloud stores a batch only within a
  window ahead of the ``last_seq`` announced (docs/contract.md, "The sequence
  window"), so an express batch or a fast stream never runs past it.

Down-link messages arrive on the gateway's one subscription (``.../down/#``):
acks and commands are handled here, documents by ``gateway.uplink.downlink``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from msgspec import structs

from coldgate.contract.codec import decode, encode, validate
from coldgate.contract.downlink import Ack, Command
from coldgate.contract.errors import ContractError
from coldgate.contract.topics import ACK, COMMAND, batch_topic, gateway_filter, parse_topic, status_topic
from coldgate.contract.uplink import ANNOUNCE_EVERY_ITEMS, State, Status
from coldgate.gateway.buffer.delivery import Delivery
from coldgate.gateway.buffer.lanes import PRIORITY
from coldgate.gateway.buffer.outbox import AckAheadError, Chunk, Outbox
from coldgate.gateway.clock import Clock
from coldgate.gateway.config import UplinkConfig
from coldgate.gateway.status import StatusErrors, build_status, will_status
from coldgate.gateway.uplink.batch import BatchEncoder
from coldgate.gateway.uplink.commands import CommandDesk
from coldgate.gateway.uplink.downlink import Downlink
from coldgate.gateway.uplink.mqtt_link import (
    Connected,
    Disconnected,
    LinkDown,
    LinkEvent,
    LinkOptions,
    Message,
    MqttLink,
    PublishRefused,
    Will,
)
from coldgate.gateway.uplink.options import link_options
from coldgate.gateway.uplink.pacing import Backoff, DrainLimiter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UplinkStats:
    batches: int = 0
    express_batches: int = 0
    items: int = 0
    timeouts: int = 0
    connects: int = 0
    acks: int = 0


class Uplink:
    """``await Uplink(config, gateway=..., site=..., outbox=..., clock=...).run(stop)``."""

    def __init__(
        self,
        config: UplinkConfig,
        *,
        gateway: str,
        site: str,
        outbox: Outbox,
        clock: Clock,
        status_provider: Callable[[], Status] | None = None,
        downlink: Downlink | None = None,
        on_command: Callable[[Command], None] | None = None,
        errors: StatusErrors | None = None,
        drain_items_per_s: float | None = None,
        backoff: Backoff | None = None,
        options: LinkOptions | None = None,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.site = site
        self.outbox = outbox
        self.clock = clock
        self.downlink = downlink
        if errors is None:
            errors = downlink.errors if downlink is not None else StatusErrors()
        self.errors = errors
        self.status_provider = status_provider or self.default_status
        self.stats = UplinkStats()
        self.delivery = Delivery(outbox.acked_seq)
        self.encoder = BatchEncoder(
            site=site, gateway=gateway, stream=outbox.stream, max_bytes=config.batch_max_bytes
        )
        self._drain_rate = config.drain_items_per_s if drain_items_per_s is None else drain_items_per_s
        #: The last seq of the backlog: what the outbox had committed when the link came up.  Only it
        #: drains at ``_drain_rate``; later items are live.
        self._backlog_until = 0
        self._started = clock.monotonic()
        self._batch_topic = batch_topic(site, gateway)
        self._status_topic = status_topic(site, gateway)
        self._wake = asyncio.Event()
        self._stopping = False
        #: ``last_seq`` of the last status published (0: none yet on this connection).
        self._announced = 0
        self.commands = CommandDesk(
            sink=outbox,
            clock=clock,
            errors=self.errors,
            resend_from=self._resend_from,
            ping=self._publish_status,
            on_command=on_command,
        )
        self.link = MqttLink(
            options or link_options(config, client_id=gateway),
            will=lambda: Will(self._status_topic, encode(will_status(site, gateway, clock))),
            backoff=backoff,
        )
        if config.username not in (None, gateway):
            # Not a config error: the gateway must still start (the local alarm works without the
            # cloud), but the shipped broker refuses every publish of such a login; say so in every
            # status until it is fixed (deploy/README.md, "Upgrading a broker").
            self._error(
                "login_not_gateway_id",
                f'uplink.username "{config.username}" is not the gateway id "{gateway}": the broker '
                "grants a gateway its topics by the username it logs in with, so it will refuse this one",
            )

    # -- status -------------------------------------------------------------------------------------

    def default_status(self) -> Status:
        """The status without the app's parts (sensors, alarm): outbox, clock, versions, errors."""
        return build_status(
            site=self.site,
            gateway=self.gateway,
            clock=self.clock,
            outbox=self.outbox,
            heartbeat_s=self.config.heartbeat_s,
            started_mono=self._started,
            versions=self.downlink.versions if self.downlink else None,
            errors=self.errors.recent(),
        )

    def _status(self) -> Status:
        try:
            return validate(self.status_provider())
        except Exception as exc:  # a bad sensor entry must not silence the heartbeat
            log.exception("status provider failed; sending the uplink's own status")
            self._error("status_invalid", f"status provider failed: {exc}")
            return self.default_status()

    def _publish_status(self, status: Status | None = None) -> None:
        status = status or self._status()
        with contextlib.suppress(LinkDown):
            puback = self.link.publish(self._status_topic, encode(status), retain=True)
            puback.add_done_callback(self._check_puback)
            self._announced = max(self._announced, status.last_seq or self.outbox.committed_seq)

    def _error(self, kind: str, message: str) -> None:
        log.error("%s: %s", kind, message)
        self.errors.add(kind, message, self.clock.stamp().wall_ms)

    # -- running ------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; then an offline status is published and the link closed cleanly."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        remove = self.outbox.add_listener(lambda _seq: loop.call_soon_threadsafe(self._wake.set))
        self.link.subscribe(gateway_filter(self.site, self.gateway), self._on_down)
        self.link.add_listener(self._on_link)
        self.link.start()
        tasks = [
            asyncio.create_task(self._send_loop(), name="uplink-send"),
            asyncio.create_task(self._heartbeat_loop(), name="uplink-heartbeat"),
        ]
        try:
            await stop.wait()
        finally:
            self._stopping = True
            for task in tasks:
                task.cancel()
            self._wake.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            offline = structs.replace(self._status(), state=State.OFFLINE, heartbeat_s=None)
            await self.link.close(final=(self._status_topic, encode(offline)))
            remove()

    def _on_link(self, event: LinkEvent) -> None:
        if isinstance(event, Connected):
            self.stats.connects += 1
            log.info("uplink connected (MQTT %s, session present: %s)", event.protocol, event.session_present)
            self.delivery.reconnected()  # what was in flight may be lost with the old connection
            self._backlog_until = self.outbox.committed_seq
            self._announced = 0
            self._publish_status()  # birth
            self._wake.set()
        elif isinstance(event, Disconnected):
            log.log(
                logging.INFO if self._stopping else logging.WARNING, "uplink disconnected: %s", event.reason
            )
        else:
            log.info("uplink: %s; next attempt in %.1f s", event.error, event.delay_s)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.config.heartbeat_s)
            if self.link.connected:
                self._publish_status()

    async def _send_loop(self) -> None:
        limiter = DrainLimiter(self._drain_rate, self.config.batch_max_items, self.clock.monotonic())
        while not self._stopping:
            self._wake.clear()
            try:
                delay = self._send(limiter) if self.link.connected else None
            except Exception:  # a bug or a disk error must not end the uplink; try again soon
                log.exception("uplink send failed")
                delay = 1.0
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
            # arrives as the event fires, and this loop would then outlive the uplink.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _send(self, limiter: DrainLimiter) -> float | None:
        """Publish what the window and the rate allow; return when to look again (None: on a wake-up)."""
        cfg, delivery = self.config, self.delivery
        now = self.clock.monotonic()
        if self.outbox.committed_seq > self._announced + ANNOUNCE_EVERY_ITEMS:
            self._publish_status()
        delivery.acked(self.outbox.acked_seq)  # the outbox reads from its ack on; keep the two in step
        if delivery.expired(now, cfg.ack_timeout_s):
            self.stats.timeouts += 1
            log.warning(
                "no ack for %.0f s; sending again from seq %d", cfg.ack_timeout_s, delivery.acked_seq + 1
            )
        delays: list[float] = []
        while delivery.in_flight() < cfg.inflight_max_batches:
            after = delivery.stream_after()
            want = min(cfg.batch_max_items, self.outbox.committed_seq - after)
            if want <= 0:
                break
            if after < self._backlog_until:  # the backlog drains at the rate, up to its end
                want = min(want, self._backlog_until - after)
                granted = limiter.grant(want, now)
                if not granted:
                    delays.append(limiter.wait_s(want, now))
                    break
            else:  # live: at once
                granted = want
            chunk = self.outbox.read_batch(after, granted, self.encoder.items_max_bytes)
            if after < self._backlog_until:
                limiter.refund(granted - (len(chunk.items) if chunk else 0))
            if chunk is None or not self._publish(chunk, now, express=False):
                break
        while len(delivery.express_in_flight()) < cfg.inflight_max_batches:
            after = delivery.express_after()
            chunk = self.outbox.read_batch(
                after, cfg.batch_max_items, self.encoder.items_max_bytes, lane=PRIORITY
            )
            if chunk is None or not self._publish(chunk, now, express=True):
                break
        if delivery.in_flight():
            delays.append(min(1.0, cfg.ack_timeout_s / 10))
        return min(delays) if delays else None

    def _publish(self, chunk: Chunk, now: float, *, express: bool) -> bool:
        stamp = self.clock.stamp()
        payload = self.encoder.encode(chunk, boot=stamp.boot, sent_ms=stamp.wall_ms)
        if len(payload) > self.encoder.max_bytes and len(chunk.items) > 1:
            log.warning(
                "batch %d..%d is %d bytes, over the cap", chunk.first_seq, chunk.last_seq, len(payload)
            )
        try:
            puback = self.link.publish(self._batch_topic, payload)
        except LinkDown:
            return False
        puback.add_done_callback(self._check_puback)
        self.delivery.sent(chunk.first_seq, chunk.last_seq, now, express=express)
        self.stats.batches += 1
        self.stats.express_batches += express
        self.stats.items += len(chunk.items)
        return True

    def _check_puback(self, puback: asyncio.Future[None]) -> None:
        """A broker that refuses a batch (an ACL, MQTT 5 only) would otherwise look like a cloud that
        never acknowledges: the same batch re-sent after every timeout, and nobody told why."""
        if not puback.cancelled() and isinstance(puback.exception(), PublishRefused):
            self._error("publish_refused", f"the broker refused a publish: {puback.exception()}")

    # -- down-link ----------------------------------------------------------------------------------

    def _on_down(self, message: Message) -> None:
        try:
            name = parse_topic(message.topic).name
        except ContractError:
            return
        if name == ACK.name:
            self._on_ack(message)
        elif name == COMMAND.name:
            self.commands.handle(message)
        elif self.downlink is not None:
            before = (self.downlink.versions, self.errors.recent())
            self.downlink.handle(message)
            if (self.downlink.versions, self.errors.recent()) != before:
                self._publish_status()  # the cloud learns at once what is in force, or why not

    def _resend_from(self, seq: int) -> None:
        self.delivery.resend_from(seq)
        self._wake.set()

    def _on_ack(self, message: Message) -> None:
        try:
            ack = decode(message.payload, Ack, message.topic)
        except ContractError as exc:
            self._error("ack_invalid", str(exc))
            return
        if ack.stream != self.outbox.stream:
            log.info("ack for stream %s ignored (this outbox is %s)", ack.stream, self.outbox.stream)
            return
        try:
            self.outbox.ack(ack.seq, ack.stream)
        except AckAheadError as exc:
            self._error(exc.kind, str(exc))
            return
        self.stats.acks += 1
        if self.delivery.acked(ack.seq):
            self._wake.set()
