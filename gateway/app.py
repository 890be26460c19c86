"""The gateway process: sources → rules → outbox, with the local alarm beside them.

Everything here runs on one asyncio loop and never waits for the network:
sources poll, every reading is judged the moment it arrives, alerts switch the
local alarm directly, and items go to the sink (the durable outbox).  The
uplink, when there is one, drains the outbox on its own schedule.

People reach the running gateway through the control socket (``coldgate
gateway alarm silence``) or a down-link command; both end in the same
``silence``/``acknowledge`` here, and both leave an audit event with who, when
and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from coldgate.contract.downlink import Command, CommandAction, MasterData, RecallList
from coldgate.contract.items import Alert, Event, EventType, Gap, Item, Movement, Reading, Scan, SubjectType
from coldgate.contract.uplink import AlarmState as AlarmStatus
from coldgate.contract.uplink import Status
from coldgate.gateway.alarm import (
    AlarmState,
    NothingToSilence,
    OperatorAction,
    acknowledge,
    on_alert,
    silence,
)
from coldgate.gateway.alarm_outputs import (
    AlarmDriver,
    AlarmOutput,
    CoilOutput,
    CoilWriter,
    CommandOutput,
    ModbusCoilWriter,
)
from coldgate.gateway.clock import Clock, Stamp, SystemClock
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.control import ControlReply, ControlRequest, ControlServer, socket_path
from coldgate.gateway.dock import Dock, Passage
from coldgate.gateway.loop_watch import Beat, CountedCoroutine, Fault
from coldgate.gateway.observations import Sink, stamp_fields
from coldgate.gateway.readers.llrp_source import LlrpReaderSource
from coldgate.gateway.rules.offline_sources import OfflineSources, offline_params_from_config, source_key
from coldgate.gateway.rules.site import SiteRules
from coldgate.gateway.sensors.config import ModbusSensor, Profile, RtuLine, SerialAsciiSensor
from coldgate.gateway.sensors.modbus_poller import ModbusLinePoller
from coldgate.gateway.sensors.serial_ascii import SerialAsciiSource
from coldgate.gateway.source import Source, raise_if_cancelled
from coldgate.gateway.status import AppStatus, OutboxFigures, build_status

if TYPE_CHECKING:
    from coldgate.gateway.readers.scanner import ScannerSource

log = logging.getLogger(__name__)

#: Imported only by a gateway with scanners: the barcode parsers load biip, whose GS1 tables
#: alone cost a polling-only Pi 17 MB of its RSS (issue 18).
SCANNER_MODULE = "coldgate.gateway.readers.scanner"

ALARM_TICK_S = 5.0
CONTROL_DRIVE_S = 3.0  # below the CLI's 5 s reply timeout (gateway.control.ask)


def build_sources(config: GatewayConfig, clock: Clock) -> list[Source]:
    """One source per Modbus line that has sensors, then one per serial ASCII logger, LLRP reader
    and barcode scanner.

    The wiring is the one place that knows every kind of source; each kind only
    knows ``gateway.source``.  The config is assumed valid (``load_gateway_config`` checked lines, profiles
    and units); nothing is opened until the sources run.
    """
    profiles = config.all_profiles()
    on_line: dict[str, list[tuple[ModbusSensor, Profile]]] = {}
    serial: list[Source] = []
    for sensor in config.sensors:
        if isinstance(sensor, ModbusSensor):
            on_line.setdefault(sensor.line, []).append((sensor, profiles[sensor.profile]))
        elif isinstance(sensor, SerialAsciiSensor):
            serial.append(SerialAsciiSource(sensor, clock))
        else:  # pragma: no cover - future kinds belong to other packages
            log.debug("sensor %s (%s) is not a sensing source; skipped", sensor.id, type(sensor).__name__)
    sources: list[Source] = [
        ModbusLinePoller(line, on_line[line.id], clock) for line in config.modbus_lines if line.id in on_line
    ]
    readers: list[Source] = [LlrpReaderSource(reader, clock) for reader in config.readers]
    scanners: list[Source] = []
    if config.scanners:
        from coldgate.gateway.readers.scanner import ScannerSource

        scanners = [ScannerSource(scanner, clock) for scanner in config.scanners]
    return sources + serial + readers + scanners


def _next_turn(source: Source) -> Callable[[], float | None]:
    """When the source's loop will come round next at the latest (monotonic), for its watchdog beat.

    A Modbus line sleeps until its next unit is due (an offline unit backs off for
    several intervals): that is waiting, not hanging.  A source that says nothing of
    its plans (a reader or scanner waiting for a tag or a scan for hours) is judged
    only by its task being alive; were it to block the event loop, the petting stops
    anyway.  A source may offer ``next_turn_at()`` itself.
    """
    own = getattr(source, "next_turn_at", None)
    if callable(own):
        return own
    if isinstance(source, ModbusLinePoller):
        units = source.units
        return lambda: min(unit.ready_at() for unit in units)
    return lambda: math.inf


def _readers(sources: Sequence[Source]) -> list[LlrpReaderSource]:
    """The dock-door readers among the sources."""
    return [source for source in sources if isinstance(source, LlrpReaderSource)]


def _scanners(sources: Sequence[Source]) -> list[ScannerSource]:
    """The barcode scanners among the sources: none unless their module was ever imported, which
    keeps it (and biip) out of a gateway without scanners."""
    module = sys.modules.get(SCANNER_MODULE)
    if module is None:
        return []
    return [source for source in sources if isinstance(source, module.ScannerSource)]


#: Ids named per group in the start summary; past this the group says how many more, so that a Pi with
#: fifty loggers still logs one readable line.
SUMMARY_IDS = 4


def _ids_every(sensors: Sequence[ModbusSensor | SerialAsciiSensor]) -> str:
    """Sensors grouped by poll interval: an operator checks the rate each was meant to have."""
    groups: dict[float, list[str]] = {}
    for sensor in sensors:
        groups.setdefault(sensor.interval_s, []).append(sensor.id)
    parts = []
    for every, ids in groups.items():
        more = f" +{len(ids) - SUMMARY_IDS} more" if len(ids) > SUMMARY_IDS else ""
        named = ", ".join(ids[:SUMMARY_IDS]) + more
        parts.append(f"{len(ids)} sensor(s) every {every:g} s ({named})")
    return "; ".join(parts)


def start_summary(config: GatewayConfig) -> str:
    """What this gateway polls and reads, where it keeps it and where it sends it, in one line.

    Logged at every start of the sources, so the journal answers "is it polling what I configured,
    as often as I meant?" without opening the config (which a pushed one may have replaced).
    """
    parts: list[str] = []
    modbus = [s for s in config.sensors if isinstance(s, ModbusSensor)]
    for line in config.modbus_lines:
        on_line = [s for s in modbus if s.line == line.id]
        if on_line:
            where = line.port if isinstance(line, RtuLine) else f"{line.host}:{line.port}"
            transport = type(line).__struct_config__.tag  # the config's own word: rtu, tcp, rtu_over_tcp
            parts.append(f"modbus line {line.id} ({transport} {where}): {_ids_every(on_line)}")
    serial = [s for s in config.sensors if isinstance(s, SerialAsciiSensor)]
    if serial:
        parts.append(f"serial loggers: {_ids_every(serial)}")
    if config.readers:
        parts.append(
            "readers: " + ", ".join(f"{r.id} (door {r.door}, {r.host}:{r.port})" for r in config.readers)
        )
    if config.scanners:
        where = [f"{s.id} ({f'door {s.door}, ' if s.door else ''}{s.port})" for s in config.scanners]
        parts.append("scanners: " + ", ".join(where))
    polls = "; ".join(parts) if parts else "polls nothing (no sensors, readers or scanners configured)"
    return (
        f"gateway {config.gateway.id} at site {config.gateway.site}: {polls}; "
        f"outbox {config.outbox.path}; broker {config.uplink.broker}"
    )


class GatewayApp:
    """One gateway: build with a config and a sink, then ``await run(stop)``."""

    def __init__(
        self,
        config: GatewayConfig,
        sink: Sink,
        *,
        clock: Clock | None = None,
        sources: Sequence[Source] | None = None,
        alarm_outputs: Sequence[AlarmOutput] | None = None,
        control_path: Path | None = None,
        previous: GatewayApp | None = None,
        master: MasterData | None = None,
        recalls: RecallList | None = None,
        status_provider: Callable[[], Status] | None = None,
        fault: Fault | None = None,
    ) -> None:
        """``previous``: the app this one replaces after a pushed config; its rule state and
        alarm carry over, so a reload neither silences a sounding siren nor restarts delays.
        ``status_provider``: the whole gateway's status (the service's), for the control socket.
        ``fault``: a test-only fault (``gateway.loop_watch``), None on a real gateway."""
        self.config = config
        self._fault = fault
        #: The signs of life of the source loops and the alarm loop, for the systemd watchdog; filled
        #: by ``run`` (``started`` then True).
        self.beats: list[Beat] = []
        self.started = False
        self._alarm_beat = Beat("alarm")
        self.sink = sink
        self.clock = clock or SystemClock()
        self._status_provider = status_provider
        self._started = previous._started if previous is not None else self.clock.monotonic()
        self.sources = list(sources) if sources is not None else build_sources(config, self.clock)
        self.rules = SiteRules.from_config(config, snapshot=previous.rules.snapshot() if previous else None)
        # Sources offline for longer than their delay (``[offline_alerts]``).  Outages carry over a
        # reload; the rebuilt sources have no gap to close for them, so ``_offline_tick`` asks them.
        carried = previous.offline.snapshot() if previous is not None else None
        self.offline = OfflineSources(offline_params_from_config(config), carried)
        self._carried_outages = set(carried.outages) if carried is not None else set()
        self.alarm = (
            replace(previous.alarm, min_severity=config.alarm.min_severity)
            if previous is not None
            else AlarmState(min_severity=config.alarm.min_severity)
        )
        self._own_writers: list[ModbusCoilWriter] = []
        outputs = list(alarm_outputs) if alarm_outputs is not None else self._outputs_from_config()
        self.alarm_driver = AlarmDriver(outputs)
        self.control = ControlServer(control_path or socket_path(config.gateway.data_dir), self._on_control)
        self._alarm_changed = asyncio.Event()
        # A reloaded app keeps the items on the dock, their clocks, open door alerts and the passes
        # under way at each door (same reader, same door), under the policy of the new configuration.
        self.dock = Dock.from_config(
            config, self.clock, previous=previous.dock if previous else None, master=master, recalls=recalls
        )
        self.dock.attach(_readers(self.sources), _readers(previous.sources) if previous else [], self._passed)

    def _outputs_from_config(self) -> list[AlarmOutput]:
        alarm = self.config.alarm
        outputs: list[AlarmOutput] = []
        if alarm.relay is not None:
            relay = alarm.relay
            poller = next((s for s in self.sources if s.id == f"modbus:{relay.line}"), None)
            writer: CoilWriter
            if poller is not None and hasattr(poller, "write_coil"):
                writer = poller.write_coil  # a bus shared with loggers: one request at a time
            else:
                own = ModbusCoilWriter(self.config.get_line(relay.line))
                self._own_writers.append(own)
                writer = own
            outputs.append(CoilOutput(writer, relay.unit, relay.coil, fail_safe=relay.fail_safe))
        if alarm.command is not None:
            outputs.append(CommandOutput(alarm.command, alarm.command_timeout_s))
        return outputs

    # ------------------------------------------------------------ the data path
    def emit(self, item: Item) -> None:
        """Called by sources on the loop for every observation; never raises into them."""
        self._take(item, None)

    def _passed(self, passage: Passage) -> None:
        """A reader's decided pass: recorded like any item, judged at the door with its decoded EPC."""
        self._take(passage.movement, passage)

    def _take(self, item: Item, passage: Passage | None) -> None:
        try:
            if isinstance(item, Reading):
                verdict = self.rules.judge(item)
                if verdict.record:
                    self.sink.put(verdict.reading)
                for alert in verdict.alerts:
                    self._alert(alert)
            else:
                self.sink.put(item)
                if isinstance(item, Gap):
                    for alert in self.offline.observe(item):
                        self._alert(alert)
                    self._alarm_changed.set()  # the alarm loop sleeps until the next offline alert is due
        except Exception:  # a bug here must not stop a source's polling; the log has it
            log.exception("could not handle %s from a source", type(item).__name__)
        if isinstance(item, Movement | Scan):
            # Whatever became of the record, the dock must still be warned of a recalled case.
            try:
                for alert in self.dock.observe(item, passage.epc if passage else None):
                    self._alert(alert)
            except Exception:
                log.exception("door check of a %s failed", type(item).__name__)

    # ------------------------------------------------------------ doors
    def finish_passes(self) -> None:
        """At shutdown, after the sources stopped: decide the dock passes under way (see
        ``LlrpReaderSource.finish``) while the outbox is still open."""
        for source in _readers(self.sources):
            source.finish(self.emit)

    def update_documents(self, master: MasterData | None, recalls: RecallList | None) -> None:
        """New master data or recall list from the cloud: items still on the dock are judged again."""
        self.dock.update_documents(master, recalls)

    def _alert(self, alert: Alert) -> None:
        self.sink.put(alert)
        before = self.alarm
        self.alarm = on_alert(self.alarm, alert)
        if self.alarm != before:
            log.warning("alarm %s: %s", "sounding" if self.alarm.sounding else "quiet", alert.message)
            self._alarm_changed.set()

    # ------------------------------------------------------------ people
    def _operator_event(self, event: EventType, action: OperatorAction, detail: str) -> None:
        self.sink.put(
            Event(
                **stamp_fields(self.clock.stamp()),  # type: ignore[arg-type]
                event=event,
                detail=detail,
                data={"by": action.by, "reason": action.reason, "via": action.via},
            )
        )

    def silence(self, action: OperatorAction) -> None:
        """Mute the alarm until a new alert; raises NothingToSilence when idle."""
        self.alarm = silence(self.alarm, action)
        self._operator_event(EventType.ALARM_SILENCED, action, f"alarm silenced by {action.by}")
        self._alarm_changed.set()

    def acknowledge(self, action: OperatorAction) -> None:
        self.alarm = acknowledge(self.alarm, action)
        self._operator_event(EventType.ALARM_ACKNOWLEDGED, action, f"alarm acknowledged by {action.by}")
        self._alarm_changed.set()

    def handle_command(self, command: Command) -> None:
        """A down-link command for the alarm; the outcome is recorded as an event."""
        stamp = self.clock.stamp()
        outcome, detail = EventType.COMMAND_DONE, "done"
        if command.expires is not None and stamp.synced and stamp.wall_ms > command.expires:
            outcome, detail = EventType.COMMAND_FAILED, "expired before it arrived"
        else:
            action = OperatorAction(
                by=command.by, at_ms=stamp.wall_ms, reason=str(command.args.get("reason", "")), via="cloud"
            )
            try:
                if command.action is CommandAction.SILENCE_ALARM:
                    self.silence(action)
                elif command.action is CommandAction.ACKNOWLEDGE_ALARM:
                    self.acknowledge(action)
                else:
                    outcome = EventType.COMMAND_FAILED
                    detail = f"{command.action} is not handled by the alarm"
            except NothingToSilence as exc:
                outcome, detail = EventType.COMMAND_FAILED, str(exc)
        self.sink.put(
            Event(
                **stamp_fields(stamp),  # type: ignore[arg-type]
                event=outcome,
                detail=detail,
                data={"command_id": command.command_id, "action": str(command.action), "by": command.by},
            )
        )

    async def _on_control(self, request: ControlRequest) -> ControlReply:
        if request.action == "status":
            return ControlReply(ok=True, data=self._control_status())
        if not request.by.strip():
            return ControlReply(ok=False, error=f"{request.action}: say who you are (--by NAME)")
        action = OperatorAction(by=request.by, at_ms=self.clock.stamp().wall_ms, reason=request.reason)
        try:
            (self.silence if request.action == "silence" else self.acknowledge)(action)
        except NothingToSilence as exc:
            return ControlReply(ok=False, error=str(exc), data=self._control_status())
        # Switch the outputs now, but answer within the CLI's patience: a slow output (a command,
        # a relay behind a busy bus) finishes in the background and the alarm loop re-drives it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._drive_alarm()), CONTROL_DRIVE_S)
        return ControlReply(ok=True, data=self._control_status())

    # ------------------------------------------------------------ status
    def status_parts(self) -> AppStatus:
        """The alarm, sensors, readers and scanners, in the contract's terms, for every status."""
        alarm = self.alarm
        return AppStatus(
            alarm=AlarmStatus(
                active=alarm.active,
                sounding=alarm.sounding,
                silenced=alarm.silenced is not None,
                acknowledged=alarm.acknowledged is not None,
                alerts=sorted(alarm.alerts),
            ),
            sensors=[s.to_state() for source in self.sources for s in source.status()],
            readers=[s.link_state() for s in self.sources if isinstance(s, LlrpReaderSource)],
            scanners=[s.link_state() for s in _scanners(self.sources)],
        )

    def local_detail(self) -> dict[str, Any]:
        """What a person at the Pi also wants and the wire contract does not carry.

        Who muted or acknowledged the alarm, why an alarm output fails, and each
        sensor's excursion state and MKT: shown beside the status by the control
        socket and ``coldgate gateway status``, never sent up (the cloud has the
        operator events and the alerts themselves).
        """
        alarm = self.alarm
        return {
            "alarm": {
                "silenced_by": alarm.silenced.by if alarm.silenced else None,
                "acknowledged_by": alarm.acknowledged.by if alarm.acknowledged else None,
                "output_errors": dict(self.alarm_driver.errors),
            },
            "offline": [
                {
                    "source": f"{o.subject_type} {o.subject}",
                    "since": o.gap_start,
                    "cause": o.cause,
                    "alert": o.alert_id,
                }
                for o in self.offline.outages()
            ],
            "sensors": {
                s.sensor: {
                    "in_excursion": self.rules.in_excursion(s.sensor),
                    "mkt": self.rules.mkt(s.sensor),
                    "last_poll_attempt": s.last_poll_ms,
                }
                for source in self.sources
                for s in source.status()
            },
        }

    def status(self) -> Status:
        """The gateway's status now: the service's (outbox, uplink, documents) when there is one."""
        if self._status_provider is not None:
            return self._status_provider()
        return build_status(
            site=self.config.gateway.site,
            gateway=self.config.gateway.id,
            clock=self.clock,
            outbox=self.sink if isinstance(self.sink, OutboxFigures) else None,
            started_mono=self._started,
            app=self.status_parts(),
        )

    def _control_status(self) -> dict[str, Any]:
        """The control socket's answer: the status everyone sees, and the local detail beside it."""
        return {"status": msgspec.to_builtins(self.status()), "detail": self.local_detail()}

    # ------------------------------------------------------------ running
    async def _drive_alarm(self) -> None:
        await self.alarm_driver.apply(self.alarm, self.clock.monotonic())

    async def _alarm_loop(self) -> None:
        # Drive the outputs at once: a relay left on by a crash is reset, a fail-safe coil energised.
        while True:
            raise_if_cancelled()  # a cancel swallowed by wait_for on 3.11 (see there) must still stop us
            self._alarm_changed.clear()
            # Time out of refrigeration, holds.
            for alert in self.dock.tick():
                self._alert(alert)
            # Sources offline for longer than their delay.
            wait_s = self._offline_tick()
            self._alarm_changed.clear()
            # Back once the outputs had their time (a siren command may take its whole timeout),
            # then once the wait is over; later than that, it hangs (``gateway.loop_watch``).
            self._alarm_beat.turn(self.clock.monotonic() + self._drive_budget_s())
            await self._drive_alarm()
            self._alarm_beat.turn(self.clock.monotonic() + wait_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._alarm_changed.wait(), wait_s)

    def _drive_budget_s(self) -> float:
        """How long switching the outputs may take: each output's own timeout, and a margin."""
        alarm, budget = self.config.alarm, 5.0
        if alarm.command is not None:
            budget += alarm.command_timeout_s
        if alarm.relay is not None:  # a write may wait for the line's turn behind a poll, then retry
            budget += 3 * self.config.get_line(alarm.relay.line).timeout_s
        return budget

    def _offline_tick(self) -> float:
        """Raise the offline alerts now due; seconds until the next one is (at most ``ALARM_TICK_S``)."""
        try:
            stamp = self.clock.stamp()
            for alert in self._carried_back(stamp):
                self._alert(alert)
            for alert in self.offline.tick(stamp):
                self._alert(alert)
            due_ms = self.offline.due_in_ms(stamp)
        except Exception:  # a bug here must not stop the alarm loop; the log has it
            log.exception("offline sources check failed")
            return ALARM_TICK_S
        return ALARM_TICK_S if due_ms is None else min(ALARM_TICK_S, max(0.05, due_ms / 1000 + 0.01))

    def _carried_back(self, stamp: Stamp) -> list[Alert]:
        """End the outages carried over a reload whose source answers again or is no longer configured.

        Only those: every other outage ends with its source's closed gap."""
        open_now = {source_key(o.subject_type, o.subject): o for o in self.offline.outages()}
        self._carried_outages &= set(open_now)
        if not self._carried_outages:
            return []
        sensors = {s.sensor: s for source in self.sources for s in source.status()}
        links = {
            source_key(SubjectType.READER, s.config.id): s.link_state()
            for s in self.sources
            if isinstance(s, LlrpReaderSource)
        } | {source_key(SubjectType.SCANNER, s.config.id): s.link_state() for s in _scanners(self.sources)}
        out: list[Alert] = []
        for key in sorted(self._carried_outages):
            outage = open_now[key]
            why = None
            if outage.subject_type is SubjectType.SENSOR:
                sensor = sensors.get(outage.subject)
                if sensor is None:
                    why = "no longer monitored by this configuration"
                elif sensor.online and sensor.last_ok_ms is not None:
                    why = "answered again after a configuration change"
            else:
                link = links.get(key)
                if link is None:
                    why = "no longer monitored by this configuration"
                elif link.online:
                    why = "online again after a configuration change"
            if why is not None:
                self._carried_outages.discard(key)
                out += self.offline.back(outage.subject_type, outage.subject, stamp, why)
        return out

    def _start_source(self, source: Source) -> asyncio.Task[None]:
        """The source's task, its steps counted by a beat (see ``gateway.loop_watch``)."""
        fault = self._fault
        emit = fault.block_emit(self.emit) if fault is not None else self.emit
        beat = Beat(f"source {source.id}", due=_next_turn(source))
        hang_at = fault.hang_at("hang-poller") if fault is not None else None
        task = asyncio.create_task(CountedCoroutine(source.run(emit), beat, hang_at), name=source.id)
        beat.alive = lambda: not task.done()
        self.beats.append(beat)
        return task

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; sources, alarm and control socket stop cleanly."""
        try:
            await self.control.start()
        except OSError as exc:  # e.g. a data_dir on vfat, or a path too long for a Unix socket
            log.error(
                "no control socket at %s (%s): the local CLI cannot reach this gateway",
                self.control.path,
                exc,
            )
        self.sink.put(
            Event(
                **stamp_fields(self.clock.stamp()),  # type: ignore[arg-type]
                event=EventType.STARTED,
                detail=f"{len(self.sources)} source(s)",
            )
        )
        tasks = [self._start_source(source) for source in self.sources]
        tasks.append(alarm := asyncio.create_task(self._alarm_loop(), name="alarm"))
        self._alarm_beat.alive = lambda: not alarm.done()
        self.beats.append(self._alarm_beat)
        self.started = True
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.control.close()
            for writer in self._own_writers:
                writer.close()
            self.sink.put(
                Event(**stamp_fields(self.clock.stamp()), event=EventType.STOPPING)  # type: ignore[arg-type]
            )
