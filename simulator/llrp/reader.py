"""A simulated LLRP 1.0.1 RFID reader on TCP, serving one client at a time.

The gateway's dock-portal code talks to readers through sllurp; tests and the demo need a
reader that speaks the same bytes a real Impinj reader does, on loopback, with tag reads
we choose and faults we trigger.  The reader:

* greets each client with a READER_EVENT_NOTIFICATION (ConnectionAttemptEvent Success) and
  turns a second concurrent client away with "a Client initiated connection already exists";
* answers GET_READER_CAPABILITIES with a captured Impinj response (sllurp needs its antenna
  count, power table and RF-mode table) and every other request with its ``*_RESPONSE``;
* sends RO_ACCESS_REPORTs from a pluggable :class:`ReportSource` while a ROSpec runs (an
  immediate start trigger starts it on ENABLE_ROSPEC, as sllurp expects), and KEEPALIVEs if
  SET_READER_CONFIG asked for them;
* keeps the source's position across connections, so a client that reconnects after a
  dropped connection gets the rest of the pass, nothing twice and nothing skipped;
* answers what it cannot parse with ERROR_MESSAGE naming the problem and keeps the
  connection; only a header whose length cannot be trusted closes it.

:class:`LlrpReader` is the asyncio server; :class:`LlrpReaderThread` runs one in a
background thread for synchronous callers (sllurp's client is thread-based).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from coldgate.simulator.llrp.messages import (
    HEADER_LEN,
    ConnectionStatus,
    LlrpDecodeError,
    MessageType,
    ParamType,
    RoAccessReport,
    StatusCode,
    TagRead,
    connection_event,
    find_parameter,
    iter_parameters,
    pack_message,
    pack_ro_access_report,
    pack_status,
    pack_tlv,
    rewrite_message_id,
    split_messages,
    unpack_header,
    unpack_ro_access_report,
)
from coldgate.simulator.loop_thread import LoopThread

log = logging.getLogger(__name__)

CAPABILITIES_FILE = "impinj-capabilities-response.bin"
REPORTS_FILE = "impinj-ro-access-reports.bin"
# Where the captured messages live: beside this module if packaged, else the shared fixtures.
FIXTURE_DIRS = (
    Path(__file__).with_name("fixtures"),
    Path(os.environ.get("COLDGATE_LLRP_FIXTURES", "/work/shared/fixtures/llrp")),
)
IMMEDIATE_START = 1  # ROSpecStartTrigger type: start as soon as the ROSpec is enabled
PERIODIC_KEEPALIVE = 1  # KeepaliveSpec trigger type
MAX_ANTENNA = 2  # what the captured capabilities announce


def fixture_path(name: str) -> Path:
    """The first existing copy of a captured message file; a clear error if there is none."""
    for directory in FIXTURE_DIRS:
        if (directory / name).is_file():
            return directory / name
    searched = ", ".join(str(directory) for directory in FIXTURE_DIRS)
    raise FileNotFoundError(f"LLRP fixture {name} not found in {searched} (set COLDGATE_LLRP_FIXTURES)")


# ------------------------------------------------------------------------------------------ sources


class ReportSource(Protocol):
    """Where tag reports come from: an iterable of ``(seconds to wait first, RO_ACCESS_REPORT bytes)``.

    The reader iterates it once over its whole life, across connections, so a pass resumes
    where a dropped connection left it.
    """

    def __iter__(self) -> Iterator[tuple[float, bytes]]: ...


class FixtureReplay:
    """The captured Impinj RO_ACCESS_REPORTs, sent byte for byte as captured.

    ``speed`` None sends them back to back; otherwise they are paced by their
    FirstSeenTimestampUTC (2.0 = twice as fast as the real reader sent them).
    """

    def __init__(self, path: Path | None = None, *, speed: float | None = None) -> None:
        self.messages = split_messages((path or fixture_path(REPORTS_FILE)).read_bytes())
        self.speed = speed

    def reports(self) -> list[RoAccessReport]:
        """The captured reports, decoded (what a client should receive)."""
        return [unpack_ro_access_report(message) for message in self.messages]

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        previous_us: int | None = None
        for message in self.messages:
            seen = [tag.first_seen_us for tag in unpack_ro_access_report(message).tags if tag.first_seen_us]
            yield _delay(previous_us, seen[0] if seen else None, self.speed), message
            previous_us = seen[0] if seen else previous_us


Read = tuple[int, int, str, float, int]
"""``(ts_ms, antenna, epc_hex, rssi_dbm, count)``: one tag read as ``simulator.rfid_scenarios`` gives it."""


class TupleReads:
    """Tag reads given as ``(ts_ms, antenna, epc_hex, rssi, count)``, one RO_ACCESS_REPORT each.

    ``ts_ms`` is UTC milliseconds since the epoch (LLRP's UTC timestamps are epoch
    microseconds); ``offset_ms`` is added to each, e.g. to replay a pass written from 0
    as happening now.  FirstSeen and LastSeen are both the read's time; the RSSI is rounded
    to whole dBm, since LLRP's PeakRSSI is a signed byte.  ``speed`` None
    sends as fast as the client takes them; otherwise reads are paced by their timestamps.
    The iterable is consumed lazily, so a generator of a long scenario costs no memory.
    """

    def __init__(
        self,
        reads: Iterable[Read],
        *,
        speed: float | None = None,
        offset_ms: int = 0,
        rospec_id: int | None = None,
    ) -> None:
        self.reads = reads
        self.speed = speed
        self.offset_ms = offset_ms
        self.rospec_id = rospec_id

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        previous_us: int | None = None
        for message_id, (ts_ms, antenna, epc_hex, rssi, count) in enumerate(self.reads, start=1):
            seen_us = (ts_ms + self.offset_ms) * 1000
            tag = TagRead(
                epc=bytes.fromhex(epc_hex),
                antenna=antenna,
                peak_rssi=max(-128, min(127, round(rssi))),
                first_seen_us=seen_us,
                last_seen_us=seen_us,
                seen_count=count,
                rospec_id=self.rospec_id,
            )
            yield (
                _delay(previous_us, seen_us, self.speed),
                pack_ro_access_report(RoAccessReport(message_id, (tag,))),
            )
            previous_us = seen_us


def _delay(previous_us: int | None, current_us: int | None, speed: float | None) -> float:
    if speed is None or previous_us is None or current_us is None:
        return 0.0
    return max(0.0, (current_us - previous_us) / 1e6 / speed)


# ------------------------------------------------------------------------------------------ server


@dataclass
class ReaderStats:
    """What the reader saw, for tests and the demo's status line."""

    connections: int = 0
    refused: int = 0
    reports_sent: int = 0
    keepalives_sent: int = 0
    keepalive_acks: int = 0
    errors_sent: int = 0
    dropped: int = 0


# Requests answered by a plain success response, and the response's type.
SIMPLE_RESPONSES: dict[int, int] = {
    MessageType.SET_READER_CONFIG: MessageType.SET_READER_CONFIG_RESPONSE,
    MessageType.CLOSE_CONNECTION: MessageType.CLOSE_CONNECTION_RESPONSE,
    MessageType.ADD_ROSPEC: MessageType.ADD_ROSPEC_RESPONSE,
    MessageType.DELETE_ROSPEC: MessageType.DELETE_ROSPEC_RESPONSE,
    MessageType.START_ROSPEC: MessageType.START_ROSPEC_RESPONSE,
    MessageType.STOP_ROSPEC: MessageType.STOP_ROSPEC_RESPONSE,
    MessageType.ENABLE_ROSPEC: MessageType.ENABLE_ROSPEC_RESPONSE,
    MessageType.DISABLE_ROSPEC: MessageType.DISABLE_ROSPEC_RESPONSE,
    MessageType.ADD_ACCESSSPEC: MessageType.ADD_ACCESSSPEC_RESPONSE,
    MessageType.DELETE_ACCESSSPEC: MessageType.DELETE_ACCESSSPEC_RESPONSE,
    MessageType.ENABLE_ACCESSSPEC: MessageType.ENABLE_ACCESSSPEC_RESPONSE,
    MessageType.DISABLE_ACCESSSPEC: MessageType.DISABLE_ACCESSSPEC_RESPONSE,
    MessageType.GET_READER_CONFIG: MessageType.GET_READER_CONFIG_RESPONSE,
}
# Bytes of fixed fields before a request's parameters (LLRP 1.0.1 §16.1).
FIXED_FIELDS: dict[int, int] = {
    MessageType.GET_READER_CAPABILITIES: 1,
    MessageType.GET_READER_CONFIG: 7,
    MessageType.SET_READER_CONFIG: 1,
    MessageType.DELETE_ROSPEC: 4,
    MessageType.START_ROSPEC: 4,
    MessageType.STOP_ROSPEC: 4,
    MessageType.ENABLE_ROSPEC: 4,
    MessageType.DISABLE_ROSPEC: 4,
    MessageType.DELETE_ACCESSSPEC: 4,
    MessageType.ENABLE_ACCESSSPEC: 4,
    MessageType.DISABLE_ACCESSSPEC: 4,
}
# Requests the spec answers with nothing (or, for KEEPALIVE sent by a client, with an ACK).
NO_RESPONSE = {MessageType.ENABLE_EVENTS_AND_REPORTS, MessageType.KEEPALIVE_ACK, MessageType.GET_REPORT}


class LlrpReader:
    """The simulated reader: ``await start()``, serve, ``await stop()`` (or ``async with``).

    ``port`` 0 picks a free port; :attr:`port` holds the bound one after start.  ``source``
    None serves no tags (the reader still answers every request).
    """

    def __init__(
        self,
        source: ReportSource | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 5084,
        capabilities: bytes | None = None,
        reader_id: bytes = bytes.fromhex("00162512fe1c0000"),
    ) -> None:
        self.host = host
        self.port = port
        self.capabilities = capabilities or fixture_path(CAPABILITIES_FILE).read_bytes()
        self.reader_id = reader_id
        self.stats = ReaderStats()
        self._reports: Iterator[tuple[float, bytes]] = iter(source or ())
        self._pending: tuple[float, bytes] | None = None
        self._exhausted = False
        self._drop_after: int | None = None
        self._server: asyncio.Server | None = None
        self._session: _Session | None = None
        self._sessions: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # ---- lifecycle
    async def start(self) -> LlrpReader:
        """Listen; returns once connections are accepted."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("LLRP reader listening on %s:%d", self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop any client; on return the port is closed."""
        if self._server is not None:
            self._server.close()
        # Closing the transports ends each session's read loop; cancelling the tasks instead
        # would make asyncio's stream callback log the CancelledError as an error.
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LlrpReader:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- fault hooks
    def drop_after(self, n_reports: int) -> None:
        """Once ``n_reports`` more reports are sent, cut the connection mid-pass (once).

        The cut is what a client sees when a reader reboots or a cable is pulled: no
        CLOSE_CONNECTION, no ConnectionCloseEvent, just end of stream.  Every report
        sent before it is flushed first, so the next client continues with the next
        report: nothing lost, nothing repeated.
        """
        if n_reports < 1:
            raise ValueError(f"drop_after needs at least 1 report, got {n_reports}")
        self._drop_after = n_reports

    @property
    def exhausted(self) -> bool:
        """True once every report of the source has been sent."""
        return self._exhausted

    # ---- internals
    def _next_report(self) -> tuple[float, bytes] | None:
        if self._pending is None and not self._exhausted:
            try:
                self._pending = next(self._reports)
            except StopIteration:
                self._exhausted = True
                log.info("report source exhausted after %d reports", self.stats.reports_sent)
        return self._pending

    def _report_sent(self) -> bool:
        """Count a sent report; True if the drop fault fires now."""
        self._pending = None
        self.stats.reports_sent += 1
        if self._drop_after is None:
            return False
        self._drop_after -= 1
        if self._drop_after > 0:
            return False
        self._drop_after = None
        return True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        self._writers.add(writer)
        try:
            if self._session is not None:
                self.stats.refused += 1
                log.warning("refusing %s: a client is already connected", writer.get_extra_info("peername"))
                writer.write(connection_event(ConnectionStatus.FAILED_CLIENT_CONNECTION_EXISTS, _now_us()))
                with contextlib.suppress(OSError):
                    await writer.drain()
                return
            session = _Session(self, reader, writer)
            self._session = session
            self.stats.connections += 1
            try:
                await session.run()
            finally:
                if self._session is session:
                    self._session = None
        except Exception:  # a bug in one session must never take the server down
            log.exception("LLRP session failed")
        finally:
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
            self._sessions.discard(task)
            self._writers.discard(writer)


def _now_us() -> int:
    return time.time_ns() // 1000


class _Session:
    """One client connection: request/response handling, the report pump and keepalives."""

    def __init__(self, owner: LlrpReader, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.owner = owner
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.next_id = 1
        self.rospecs: dict[int, int] = {}  # ROSpecID -> start trigger type
        self.enabled: set[int] = set()
        self.pump: asyncio.Task[None] | None = None
        self.keepalive: asyncio.Task[None] | None = None
        self.closing = False

    def _reader_message_id(self) -> int:
        message_id, self.next_id = self.next_id, self.next_id + 1
        return message_id

    def send(self, message: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(message)

    async def run(self) -> None:
        log.info("LLRP client %s connected", self.peer)
        self.send(connection_event(ConnectionStatus.SUCCESS, _now_us(), self._reader_message_id()))
        try:
            while not self.closing:
                try:
                    header_bytes = await self.reader.readexactly(HEADER_LEN)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                try:
                    header = unpack_header(header_bytes)
                except LlrpDecodeError as exc:
                    log.warning("closing %s: bad LLRP header %s: %s", self.peer, header_bytes.hex(), exc)
                    break
                try:
                    body = await self.reader.readexactly(header.length - HEADER_LEN)
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                try:
                    self.handle(header.version, header.type, header.message_id, body)
                except Exception as exc:  # answer, log, keep serving
                    log.exception("failed to handle LLRP message type %d", header.type)
                    self.error(header.message_id, StatusCode.PARAMETER_ERROR, f"reader failed: {exc}")
                with contextlib.suppress(ConnectionError):
                    await self.writer.drain()
        finally:
            for task in (self.pump, self.keepalive):
                if task is not None:
                    task.cancel()
            log.info("LLRP client %s gone", self.peer)

    # ---- request handling
    def error(self, message_id: int, code: int, description: str) -> None:
        log.warning("LLRP client %s: %s", self.peer, description)
        self.owner.stats.errors_sent += 1
        self.send(pack_message(MessageType.ERROR_MESSAGE, message_id, pack_status(code, description)))

    def respond(self, msg_type: int, message_id: int, body: bytes = b"") -> None:
        self.send(pack_message(msg_type, message_id, pack_status() + body))

    def handle(self, version: int, msg_type: int, message_id: int, body: bytes) -> None:
        if version != 1:
            self.error(
                message_id, StatusCode.UNSUPPORTED_VERSION, f"LLRP version {version} not supported (1)"
            )
            return
        try:
            name = MessageType(msg_type).name
        except ValueError:
            name = None
        known = (
            msg_type in SIMPLE_RESPONSES
            or msg_type in NO_RESPONSE
            or msg_type
            in (
                MessageType.GET_READER_CAPABILITIES,
                MessageType.KEEPALIVE,
            )
        )
        if name is None or not known:
            self.error(message_id, StatusCode.UNSUPPORTED_MESSAGE, f"message type {msg_type} not supported")
            return
        fixed = FIXED_FIELDS.get(msg_type, 0)
        if len(body) < fixed:
            self.error(
                message_id,
                StatusCode.FIELD_ERROR,
                f"{name} id {message_id}: body has {len(body)} bytes, its fields need {fixed}",
            )
            return
        try:
            list(iter_parameters(body[fixed:], HEADER_LEN + fixed))
            self.dispatch(msg_type, message_id, body, fixed)
        except LlrpDecodeError as exc:
            self.error(message_id, StatusCode.PARAMETER_ERROR, f"{name} id {message_id}: {exc}")

    def dispatch(self, msg_type: int, message_id: int, body: bytes, fixed: int) -> None:
        params = body[fixed:]
        spec_id = struct.unpack_from("!I", body)[0] if fixed == 4 else 0
        if msg_type == MessageType.GET_READER_CAPABILITIES:
            self.send(rewrite_message_id(self.owner.capabilities, message_id))
        elif msg_type == MessageType.KEEPALIVE:
            self.send(pack_message(MessageType.KEEPALIVE_ACK, message_id))
        elif msg_type == MessageType.KEEPALIVE_ACK:
            self.owner.stats.keepalive_acks += 1
        elif msg_type in NO_RESPONSE:
            pass
        elif msg_type == MessageType.GET_READER_CONFIG:
            identification = pack_tlv(
                ParamType.IDENTIFICATION,
                struct.pack("!BH", 0, len(self.owner.reader_id)) + self.owner.reader_id,
            )
            self.respond(MessageType.GET_READER_CONFIG_RESPONSE, message_id, identification)
        elif msg_type == MessageType.SET_READER_CONFIG:
            self.configure_keepalive(params)
            self.respond(MessageType.SET_READER_CONFIG_RESPONSE, message_id)
        elif msg_type == MessageType.ADD_ROSPEC:
            self.add_rospec(message_id, params)
        elif msg_type in (MessageType.ENABLE_ROSPEC, MessageType.START_ROSPEC):
            self.enable_or_start(msg_type, message_id, spec_id)
        elif msg_type in (MessageType.STOP_ROSPEC, MessageType.DISABLE_ROSPEC, MessageType.DELETE_ROSPEC):
            self.stop_rospec(msg_type, message_id, spec_id)
        elif msg_type == MessageType.CLOSE_CONNECTION:
            self.respond(MessageType.CLOSE_CONNECTION_RESPONSE, message_id)
            self.closing = True
        else:  # AccessSpecs: accepted, never executed (the simulated tags have no memory to read)
            self.respond(SIMPLE_RESPONSES[msg_type], message_id)

    def configure_keepalive(self, params: bytes) -> None:
        spec = find_parameter(params, ParamType.KEEPALIVE_SPEC)
        if spec is None:
            return
        if len(spec.payload) < 5:
            raise LlrpDecodeError(
                f"KeepaliveSpec at byte {spec.offset} has {len(spec.payload)} bytes, needs 5"
            )
        trigger, interval_ms = struct.unpack_from("!BI", spec.payload)
        if self.keepalive is not None:
            self.keepalive.cancel()
            self.keepalive = None
        if trigger == PERIODIC_KEEPALIVE and interval_ms > 0:
            self.keepalive = asyncio.get_running_loop().create_task(self.send_keepalives(interval_ms / 1000))

    async def send_keepalives(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.owner.stats.keepalives_sent += 1
            self.send(pack_message(MessageType.KEEPALIVE, self._reader_message_id()))

    def add_rospec(self, message_id: int, params: bytes) -> None:
        rospec = find_parameter(params, ParamType.ROSPEC)
        if rospec is None or len(rospec.payload) < 6:
            self.respond_error(
                MessageType.ADD_ROSPEC_RESPONSE, message_id, 103, "ADD_ROSPEC without a ROSpec"
            )
            return
        rospec_id = struct.unpack_from("!I", rospec.payload)[0]
        trigger = 0
        boundary = find_parameter(rospec.payload[6:], ParamType.RO_BOUNDARY_SPEC)
        if boundary is not None:
            start = find_parameter(boundary.payload, ParamType.ROSPEC_START_TRIGGER)
            if start is not None and start.payload:
                trigger = start.payload[0]
        self.rospecs[rospec_id] = trigger
        self.respond(MessageType.ADD_ROSPEC_RESPONSE, message_id)

    def respond_error(self, msg_type: int, message_id: int, code: int, description: str) -> None:
        log.warning("LLRP client %s: %s", self.peer, description)
        self.send(pack_message(msg_type, message_id, pack_status(code, description)))

    def enable_or_start(self, msg_type: int, message_id: int, rospec_id: int) -> None:
        response = SIMPLE_RESPONSES[msg_type]
        if rospec_id not in self.rospecs:
            self.respond_error(response, message_id, StatusCode.A_INVALID, f"no ROSpec {rospec_id}")
            return
        if msg_type == MessageType.START_ROSPEC and rospec_id not in self.enabled:
            self.respond_error(
                response, message_id, StatusCode.A_INVALID, f"ROSpec {rospec_id} is not enabled"
            )
            return
        self.enabled.add(rospec_id)
        self.respond(response, message_id)
        if msg_type == MessageType.START_ROSPEC or self.rospecs[rospec_id] == IMMEDIATE_START:
            self.start_pump()

    def stop_rospec(self, msg_type: int, message_id: int, rospec_id: int) -> None:
        response = SIMPLE_RESPONSES[msg_type]
        if rospec_id != 0 and rospec_id not in self.rospecs:
            self.respond_error(response, message_id, StatusCode.A_INVALID, f"no ROSpec {rospec_id}")
            return
        ids = set(self.rospecs) if rospec_id == 0 else {rospec_id}
        if msg_type != MessageType.STOP_ROSPEC:
            self.enabled -= ids
        if msg_type == MessageType.DELETE_ROSPEC:
            for spec in ids:
                self.rospecs.pop(spec, None)
        if self.pump is not None:
            self.pump.cancel()
            self.pump = None
        self.respond(response, message_id)

    # ---- reports
    def start_pump(self) -> None:
        if self.pump is None or self.pump.done():
            self.pump = asyncio.get_running_loop().create_task(self.pump_reports())

    async def pump_reports(self) -> None:
        while (item := self.owner._next_report()) is not None:
            delay, message = item
            if delay:
                await asyncio.sleep(delay)
            if self.writer.is_closing():
                return
            self.writer.write(message)
            drop = self.owner._report_sent()
            await self.writer.drain()
            if drop:
                await self.drop()
                return

    async def drop(self) -> None:
        """End the stream mid-pass after flushing what was sent (see :meth:`LlrpReader.drop_after`)."""
        log.warning(
            "fault: dropping LLRP client %s after %d reports", self.peer, self.owner.stats.reports_sent
        )
        self.owner.stats.dropped += 1
        if self.owner._session is self:
            self.owner._session = None  # a reconnecting client must not be refused
        if self.keepalive is not None:
            self.keepalive.cancel()
        with contextlib.suppress(OSError):
            self.writer.write_eof()
        self.closing = True
        self.writer.transport.close()


# ------------------------------------------------------------------------------------------ thread


class LlrpReaderThread(LoopThread):
    """An :class:`LlrpReader` on its own event loop in a daemon thread, for synchronous code.

    ::

        with LlrpReaderThread(LlrpReader(FixtureReplay(), port=0)) as running:
            client = LLRPReaderClient("127.0.0.1", running.port, config)
    """

    what = "LLRP reader"

    def __init__(self, reader: LlrpReader, start_timeout: float = 10.0) -> None:
        self.reader = reader
        super().__init__("llrp-reader", start_timeout)

    @property
    def port(self) -> int:
        """The port the reader listens on."""
        return self.reader.port

    async def _serve(self) -> None:
        await self.reader.start()

    async def _close(self) -> None:
        await self.reader.stop()

    def drop_after(self, n_reports: int) -> None:
        """Thread-safe :meth:`LlrpReader.drop_after`."""
        if n_reports < 1:
            raise ValueError(f"drop_after needs at least 1 report, got {n_reports}")
        self.call(self.reader.drop_after, n_reports)
