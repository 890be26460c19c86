"""An LLRP RFID reader at a dock door as a source: tag reads in, one ``Movement`` per tag and pass out.

sllurp's client is thread-based: its callbacks run on its socket thread and
only hand reads over to the event loop (``call_soon_threadsafe``).  The portal
(``gateway.rules.portal.DockPortal``) lives here, not in the connection, so a
reader that drops the link mid-pass and comes back continues the same passes:
no movement is doubled by a reconnect.

Time: reads carry the reader's own clock (FirstSeenTimestampUTC, µs).  The
portal judges departures in that clock, advanced between reports by the
gateway's monotonic clock (``reader_now``), so a reader whose clock is off by
minutes still gets its departures decided T after its last read, and a burst
of buffered reports is judged by when the tags were seen, not when they came.

Liveness: the reader is asked for a KEEPALIVE every ``keepalive_s``; three
missing in a row (or the socket closing) count as a lost link.  The source
then reconnects with exponential backoff and full jitter, and the time without
a link is a ``reader_offline`` gap.  sllurp's own reconnect is off: one policy,
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from contract.items import Direction, Gap, GapCause, Movement, SubjectType
from contract.uplink import LinkState
from gateway.clock import Clock
from gateway.observations import stamp_fields
from gateway.readers.config import ReaderConfig
from gateway.readers.epc import decode_epc, report_epc_hex
from gateway.rules.portal import DockPortal, PassDecision, PortalConfig, TagRead
from gateway.sensors.source import Emit, run_steps
from gateway.sensors.stats import SensorStatus

__all__ = ["LlrpReaderSource", "portal_config"]

log = logging.getLogger(__name__)

TICK_S = 0.05
TAG_CONTENT = {
    "EnableROSpecID": False,
    "EnableSpecIndex": False,
    "EnableInventoryParameterSpecID": False,
    "EnableAntennaID": True,
    "EnableChannelIndex": False,
    "EnablePeakRSSI": True,
    "EnableFirstSeenTimestamp": True,
    "EnableLastSeenTimestamp": True,
    "EnableTagSeenCount": True,
    "EnableAccessSpecID": False,
}


def portal_config(config: ReaderConfig) -> PortalConfig:
    return PortalConfig(
        door=config.door,
        reader=config.id,
        outside_antennas=frozenset(config.outside_antennas),
        inside_antennas=frozenset(config.inside_antennas),
        presence_reads=config.presence_reads,
        presence_window_ms=config.presence_window_ms,
        depart_after_ms=config.depart_after_ms,
        stray_max_dwell_ms=config.stray_max_dwell_ms,
        min_rssi=config.min_rssi,
        one_side_wait_ms=max(4000, 2 * config.depart_after_ms),
    )


class LlrpReaderSource:
    """The ``Source`` for one LLRP reader guarding one dock door."""

    def __init__(self, config: ReaderConfig, clock: Clock) -> None:
        self.id = f"llrp:{config.id}"
        self.config = config
        self.clock = clock
        self.portal = DockPortal(portal_config(config))
        self.movements = 0
        self.connections = 0
        self._emit: Emit = lambda _item: None
        self._client: Any = None
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._reader_ms: int | None = None  # reader clock at the last report
        self._mono_at_report = 0.0
        self._last_heard = 0.0  # monotonic: last keepalive or report
        self._delay = 0.0
        self._gap_start: int | None = None
        self._since: int | None = None
        self._error: str | None = None
        self._online = False

    # ------------------------------------------------------------ the task

    async def run(self, emit: Emit) -> None:
        """Connect, read and decide until cancelled; raises nothing else."""
        self._emit = emit
        try:
            await run_steps(self._step, self._report_bug)
        finally:
            await asyncio.to_thread(self._drop_client)

    def _report_bug(self, exc: Exception) -> None:
        log.error("reader %s: %s", self.config.id, exc)
        self._error = f"internal error: {type(exc).__name__}"

    async def _step(self) -> None:
        if self._client is None:
            if not await self._connect():
                await self._wait_backoff()
                return
        try:
            kind, payload = await asyncio.wait_for(self._events.get(), TICK_S)
        except TimeoutError:
            kind, payload = "tick", None
        if kind == "tags":
            self._last_heard = self.clock.monotonic()
            self._on_tags(payload)
        elif kind == "alive":
            self._last_heard = self.clock.monotonic()
        elif kind == "down":
            await self._lost(str(payload))
        self._decide()
        if (
            self._client is not None
            and self.clock.monotonic() - self._last_heard > 3 * self.config.keepalive_s
        ):
            await self._lost(f"no keepalive for {3 * self.config.keepalive_s:g} s")

    async def _wait_backoff(self) -> None:
        """Exponential backoff with full jitter, still deciding passes (the portal keeps time)."""
        self._delay = min(self.config.reconnect_max_s, max(0.5, self._delay * 2))
        deadline = self.clock.monotonic() + random.uniform(0.25, 1.0) * self._delay
        while self.clock.monotonic() < deadline:
            self._decide()
            await asyncio.sleep(TICK_S)

    # ------------------------------------------------------------ the link

    async def _connect(self) -> bool:
        from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig

        config = self.config
        settings = {
            "antennas": sorted({*config.outside_antennas, *config.inside_antennas}),
            "tx_power": config.tx_power,
            "session": config.session,
            "tag_population": config.tag_population,
            "report_every_n_tags": 1,
            "tag_content_selector": TAG_CONTENT,
            "start_inventory": True,
            "reconnect": False,
            "keepalive_interval": int(config.keepalive_s * 1000),
        }
        if config.impinj_search_mode is not None:
            settings["impinj_search_mode"] = config.impinj_search_mode
        loop = asyncio.get_running_loop()

        def post(kind: str, payload: Any = None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._events.put_nowait, (kind, payload))

        client = LLRPReaderClient(config.host, config.port, LLRPReaderConfig(settings), timeout=5.0)
        client.add_tag_report_callback(lambda _r, tags: post("tags", list(tags)))
        client.add_message_callback("KEEPALIVE", lambda _r, _m: post("alive"))
        client.add_disconnected_callback(lambda _r: post("down", "the reader closed the connection"))
        try:
            await asyncio.to_thread(client.connect)
        except Exception as exc:  # sllurp raises socket errors and its own ReaderConfigurationError
            self._offline(f"cannot connect to {config.host}:{config.port}: {exc}")
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.hard_disconnect)
            return False
        self._client = client
        self._last_heard = self.clock.monotonic()
        self._delay = 0.0
        self.connections += 1
        self._set_online()
        log.info("reader %s: connected to %s:%d", config.id, config.host, config.port)
        return True

    async def _lost(self, why: str) -> None:
        await asyncio.to_thread(self._drop_client)
        self._offline(f"lost {self.config.host}:{self.config.port}: {why}")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        # sllurp's polite disconnect() can hang on its own race (shared/LIBRARY-NOTES); cut the socket.
        with contextlib.suppress(Exception):
            client.hard_disconnect()
        with contextlib.suppress(Exception):
            client.join(3)

    # ------------------------------------------------------------ reads and decisions

    def _on_tags(self, tags: list[dict[str, Any]]) -> None:
        now_ms = self.clock.stamp().wall_ms
        for tag in tags:
            epc = report_epc_hex(tag)
            antenna = tag.get("AntennaID")
            if epc is None or not isinstance(antenna, int):
                continue
            first_us = tag.get("FirstSeenTimestampUTC")
            last_us = tag.get("LastSeenTimestampUTC") or first_us
            ts_ms = int(last_us) // 1000 if isinstance(last_us, int) else now_ms
            rssi = tag.get("PeakRSSI")
            count = tag.get("TagSeenCount")
            self.portal.read(
                TagRead(
                    epc=epc.lower(),
                    antenna=antenna,
                    rssi=float(rssi) if isinstance(rssi, int | float) else None,
                    ts_ms=ts_ms,
                    count=count if isinstance(count, int) and count > 0 else 1,
                )
            )
            if self._reader_ms is None or ts_ms > self._reader_ms:
                self._reader_ms = ts_ms
                self._mono_at_report = self.clock.monotonic()

    def reader_now(self) -> int | None:
        """The reader's clock now: its newest read time, advanced by our monotonic clock since."""
        if self._reader_ms is None:
            return None
        return self._reader_ms + int((self.clock.monotonic() - self._mono_at_report) * 1000)

    def _decide(self) -> None:
        now = self.reader_now()
        if now is None:
            return
        for decision in self.portal.tick(now):
            self._emit(self._movement(decision))

    def _movement(self, decision: PassDecision) -> Movement:
        self.movements += 1
        decoded = decode_epc(decision.epc)
        return Movement(
            **stamp_fields(self.clock.stamp()),  # type: ignore[arg-type]
            reader=decision.reader,
            door=decision.door,
            direction=Direction(decision.direction),
            epc=decision.epc.lower(),  # the contract's form; the portal keys tags in upper case
            epc_uri=decoded.uri,
            first_seen=max(0, decision.first_seen_ms),
            last_seen=max(0, decision.first_seen_ms, decision.last_seen_ms),
            read_count=max(1, decision.read_count),
            peak_rssi=decision.peak_rssi,
            antennas=list(decision.antennas)[:64],
        )

    # ------------------------------------------------------------ gaps and status

    def _offline(self, why: str) -> None:
        self._error = why[:200]
        self._online = False
        if self._gap_start is not None:
            return
        stamp = self.clock.stamp()
        self._gap_start = self._since = stamp.wall_ms
        log.warning("reader %s offline: %s", self.config.id, why)
        self._emit(self._gap(None, why))

    def _set_online(self) -> None:
        stamp = self.clock.stamp()
        self._error = None
        self._online = True
        self._since = stamp.wall_ms
        if self._gap_start is not None:
            self._emit(self._gap(stamp.wall_ms, "connected again"))
            self._gap_start = None

    def _gap(self, end: int | None, detail: str) -> Gap:
        assert self._gap_start is not None
        return Gap(
            **stamp_fields(self.clock.stamp()),  # type: ignore[arg-type]
            subject_type=SubjectType.READER,
            subject=self.config.id,
            start=self._gap_start,
            end=None if end is None else max(end, self._gap_start),
            cause=GapCause.READER_OFFLINE,
            detail=detail[:1000],
        )

    def status(self) -> list[SensorStatus]:
        return []  # not polled: see link_state()

    def link_state(self) -> LinkState:
        return LinkState(id=self.config.id, online=self._online, since=self._since, error=self._error)
