"""An LLRP RFID reader at a dock door as a source: tag reads in, one ``Movement`` per tag and pass out.

sllurp's client is thread-based: its callbacks run on its socket thread and
only hand reads over to the event loop (``call_soon_threadsafe``), tagged with
the connection they came from, so a late event of a dropped connection cannot
touch the next one.  sllurp's own reconnect is off: one policy, here.

Time: reads carry the reader's own clock (LastSeenTimestampUTC, µs), which
may be minutes off, reset to 1970, or step.  ``ReaderClockMap`` places them on
the gateway's monotonic clock (CLOCK_BOOTTIME ms): the reader's clock keeps
the order and spacing of its reads, ours decides when they happened.  The
portal (``gateway.rules.dock_portal.DockPortal``) works in that one time line, so
it survives a reconnect (no movement doubled or lost by a dropped link) and a
pushed configuration (the dock hands the portal to the new source), and
movements carry wall times derived from our clock.

This module is the reader's I/O only: where a read enters, its EPC is
normalised once (``normalise_epc``) and its time placed; the portal runs here
because this loop is its clock.  A decided pass becomes a ``Passage``
(``gateway.dock.passage``: the movement, EPC decoded once); with a dock
attached (``passed``, set by ``gateway.dock.Dock.attach``) the passage goes
there, so the door checks get the decoded EPC; on its own the source emits the
movement.

Online means inventorying: the link counts as up, and a ``reader_offline`` gap
closes, only when sllurp reports the reader inventorying, not when TCP
connects.  A reader that takes the connection but refuses the session or the
configuration, goes quiet (three keepalives missed: it is asked for one every
``keepalive_s``) or drops the link is retried with exponential backoff and
full jitter, never in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from coldgate.contract.items import Gap, GapCause, SubjectType
from coldgate.contract.uplink import LinkState
from coldgate.gateway.clock import Clock
from coldgate.gateway.dock import PassageSink, passage, portal_config
from coldgate.gateway.observations import stamp_fields
from coldgate.gateway.readers.config import ReaderConfig
from coldgate.gateway.readers.epc import normalise_epc, report_epc_hex
from coldgate.gateway.readers.reader_clock import ReaderClockMap
from coldgate.gateway.rules.dock_portal import DockPortal, TagRead
from coldgate.gateway.source import Emit, SensorStatus, run_steps

__all__ = ["LlrpReaderSource"]

log = logging.getLogger(__name__)

TICK_S = 0.05
#: A reader that took the TCP connection but is not inventorying after this long is retried.
SETUP_TIMEOUT_S = 15.0
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


class _QuietHangUp(logging.Filter):
    """While we cut a client's socket on purpose, sllurp's reading thread finds it closed and logs
    "Disconnected from server" with a traceback: that record says nothing wrong happened, so it is
    dropped then (and only then: a reader that really goes away is still logged)."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging_up = 0

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.hanging_up and "Disconnected from server" in record.getMessage())


_QUIET = _QuietHangUp()
logging.getLogger("sllurp.llrp").addFilter(_QUIET)


def _hang_up(client: Any) -> None:
    """Cut a sllurp client's socket and wait for its thread: its polite ``disconnect()`` can hang
    on its own race (shared/LIBRARY-NOTES)."""
    _QUIET.hanging_up += 1
    try:
        with contextlib.suppress(Exception):
            client.hard_disconnect()
        with contextlib.suppress(Exception):
            client.join(3)
    finally:
        _QUIET.hanging_up -= 1


class LlrpReaderSource:
    """The ``Source`` for one LLRP reader guarding one dock door."""

    def __init__(self, config: ReaderConfig, clock: Clock) -> None:
        self.id = f"llrp:{config.id}"
        self.config = config
        self.clock = clock
        self.portal = DockPortal(portal_config(config))
        self.reader_clock = ReaderClockMap(step_ms=config.depart_after_ms)
        self.movements = 0
        self.connections = 0
        self._emit: Emit = lambda _item: None
        #: Where passages go when a dock is attached (``gateway.dock.Dock.attach``); else emitted.
        self.passed: PassageSink | None = None
        self._client: Any = None
        self._events: asyncio.Queue[tuple[int, str, Any]] = asyncio.Queue()
        self._generation = 0  # events of an older connection are ignored
        self._connected_at = 0.0
        self._last_heard = 0.0  # monotonic: last keepalive, report or state change
        self._backoff_due = False
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
            self._generation += 1
            await asyncio.to_thread(self._drop_client)

    def _report_bug(self, exc: Exception) -> None:
        log.error("reader %s: %s", self.config.id, exc)
        self._error = f"internal error: {type(exc).__name__}"

    async def _step(self) -> None:
        if self._client is None:
            if self._backoff_due:
                await self._wait_backoff()
            self._backoff_due = True  # until the reader is inventorying again
            await self._connect()
            return
        try:
            generation, kind, payload = await asyncio.wait_for(self._events.get(), TICK_S)
        except TimeoutError:
            generation, kind, payload = self._generation, "tick", None
        if generation == self._generation:
            if kind in ("tags", "alive", "inventorying"):
                self._last_heard = self.clock.monotonic()
            if kind == "tags":
                self._on_tags(payload)
            elif kind == "inventorying":
                self._delay = 0.0
                self._backoff_due = False
                self._set_online()
            elif kind == "down":
                await self._lost(str(payload))
        self._decide()
        if self._client is None:
            return
        now = self.clock.monotonic()
        if not self._online and now - self._connected_at > SETUP_TIMEOUT_S:
            await self._lost(
                f"connected, but the reader did not start inventory within {SETUP_TIMEOUT_S:g} s"
            )
        elif now - self._last_heard > 3 * self.config.keepalive_s:
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
        from sllurp.llrp import LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

        config = self.config
        settings: dict[str, Any] = {
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
        self._generation += 1
        generation = self._generation

        def post(kind: str, payload: Any = None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._events.put_nowait, (generation, kind, payload))

        client = LLRPReaderClient(config.host, config.port, LLRPReaderConfig(settings), timeout=5.0)
        client.add_tag_report_callback(lambda _r, tags: post("tags", list(tags)))
        client.add_message_callback("KEEPALIVE", lambda _r, _m: post("alive"))
        client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, lambda _r, _s: post("inventorying"))
        client.add_disconnected_callback(lambda _r: post("down", "the reader closed the connection"))
        connecting = asyncio.ensure_future(asyncio.to_thread(client.connect))
        try:
            # Shielded: a cancel while the thread connects must still end in a hang-up, or the
            # reader's single LLRP session stays taken by a client nobody reads.
            await asyncio.shield(connecting)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await connecting
            await asyncio.to_thread(_hang_up, client)
            raise
        except Exception as exc:  # sllurp raises socket errors and its own ReaderConfigurationError
            self._offline(f"cannot connect to {config.host}:{config.port}: {exc}")
            await asyncio.to_thread(_hang_up, client)
            return False
        self._client = client
        self.reader_clock.reset()  # a reader that rebooted has a new clock
        self._connected_at = self._last_heard = self.clock.monotonic()
        self.connections += 1
        log.info("reader %s: connected to %s:%d", config.id, config.host, config.port)
        return True

    async def _lost(self, why: str) -> None:
        self._generation += 1  # whatever the old client still posts is ignored
        await asyncio.to_thread(self._drop_client)
        self._offline(f"lost {self.config.host}:{self.config.port}: {why}")

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            _hang_up(client)

    # ------------------------------------------------------------ reads and decisions

    def _on_tags(self, tags: list[dict[str, Any]]) -> None:
        arrival = self.clock.stamp().mono_ms
        for tag in tags:
            epc = report_epc_hex(tag)
            antenna = tag.get("AntennaID")
            if epc is None or not isinstance(antenna, int):
                continue
            seen_us = tag.get("LastSeenTimestampUTC") or tag.get("FirstSeenTimestampUTC")
            reader_ms = int(seen_us) // 1000 if isinstance(seen_us, int) else None
            rssi = tag.get("PeakRSSI")
            count = tag.get("TagSeenCount")
            self.portal.read(
                TagRead(
                    epc=normalise_epc(epc),
                    antenna=antenna,
                    rssi=float(rssi) if isinstance(rssi, int | float) else None,
                    ts_ms=self.reader_clock.place(reader_ms, arrival),
                    count=count if isinstance(count, int) and count > 0 else 1,
                )
            )

    def _decide(self, *, at_ms: int | None = None) -> None:
        stamp = self.clock.stamp()
        for decision in self.portal.tick(stamp.mono_ms if at_ms is None else at_ms):
            self.movements += 1
            made = passage(decision, stamp)
            if self.passed is not None:
                self.passed(made)
            else:
                self._emit(made.movement)

    def adopt(self, previous: LlrpReaderSource) -> None:
        """Carry the passes under way over a configuration reload, if this reader is unchanged."""
        if previous.config == self.config:
            self.portal = previous.portal

    def finish(self, emit: Emit) -> None:
        """At shutdown: decide every pass under way now rather than lose it (a tag still in the
        field makes a new pass after the restart; better that than a movement never recorded)."""
        self._emit = emit
        horizon = self.portal.config.one_side_wait_ms + self.portal.config.stray_max_dwell_ms
        self._decide(at_ms=self.clock.stamp().mono_ms + horizon)

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
            self._emit(self._gap(stamp.wall_ms, "inventorying again"))
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
