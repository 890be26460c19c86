"""The gateway process end to end at the edge: simulator → sources → rules → sink, and the alarm.

No uplink runs here at all: the local alarm must sound with the network gone.
The loggers are the simulator over real Modbus TCP, the siren is a simulated
relay board over real Modbus TCP, and the operator uses the real control socket.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coldgate.contract.items import Alert, AlertAction, Event, EventType, Reading, Severity, SubjectType
from coldgate.contract.uplink import Status
from coldgate.gateway.alarm import OperatorAction
from coldgate.gateway.app import GatewayApp
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.control import ControlRequest, ask
from coldgate.gateway.observations import stamp_fields
from coldgate.simulator.background import FarmThread
from coldgate.simulator.relay import RelayBoard
from tests.rig.modbus import failed_compressor_farm
from tests.rig.sinks import ListSink, wait_until
from tests.rig.sites import cold_room_site

pytestmark = pytest.mark.timeout(60)


def site_config(data_dir: Path, logger_port: int, relay_port: int) -> dict[str, Any]:
    """The rig's cold room, alarming on critical alerts only, with a 0.3 K hysteresis."""
    return cold_room_site(data_dir, logger_port, relay_port, hysteresis=0.3, min_severity="critical")


def critical_alert(stamp: Stamp, alert_id: str = "a1") -> Alert:
    """A raised excursion alert stamped at ``stamp``, as the rules would hand it over."""
    return Alert(
        **stamp_fields(stamp),  # type: ignore[arg-type]
        alert_id=alert_id,
        action=AlertAction.RAISED,
        rule="temperature.high",
        subject_type=SubjectType.SENSOR,
        subject="t1",
        severity=Severity.CRITICAL,
        message="t1 above 8 °C",
    )


def test_excursion_sounds_the_local_relay_without_any_uplink_and_the_cli_silences_it(
    tmp_path: Path,
) -> None:
    farm = failed_compressor_farm()
    with FarmThread(farm, tcp=[("127.0.0.1", 0)]) as running:

        async def scenario() -> None:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            config = gateway_config_from_document(
                site_config(tmp_path, running.tcp[0].port, relay_port), "test.toml"
            )
            sink = ListSink()
            app = GatewayApp(config, sink)
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop))
            try:
                await wait_until(lambda: board.coil(0), timeout=20)
                raised = [a for a in sink.of(Alert) if a.action is AlertAction.RAISED]
                assert [a.rule for a in raised if a.severity == "critical"] == ["temperature.high"]
                excursion = raised[-1]
                assert excursion.evidence.start is not None and excursion.evidence.peak is not None
                assert excursion.evidence.peak > 8.0
                # Raised within one poll after the delay: at the first reading past start + delay,
                # counted on the monotonic clock as the rules do (wall time may step).
                over = [r for r in sink.of(Reading) if r.quantity == "temperature" and (r.value or 0) > 8.0]
                first_over = next(r for r in over if r.ts == excursion.evidence.start)
                first_due = next(r for r in over if r.mono - first_over.mono >= 2_000)
                assert (excursion.ts, excursion.mono) == (first_due.ts, first_due.mono)

                path = tmp_path / "control.sock"
                reply = await asyncio.to_thread(
                    ask, path, ControlRequest(action="silence", by="qa.lee", reason="on my way")
                )
                assert reply.ok, reply.error
                # One status model: the contract's Status, with who muted it in the local detail.
                alarm = msgspec.convert(reply.data["status"], Status).alarm
                assert alarm is not None and alarm.silenced and not alarm.sounding
                assert reply.data["detail"]["alarm"]["silenced_by"] == "qa.lee"
                assert board.coil(0) is False
                silenced = [e for e in sink.of(Event) if e.event is EventType.ALARM_SILENCED]
                assert silenced and silenced[0].data["by"] == "qa.lee"

                anonymous = await asyncio.to_thread(ask, path, ControlRequest(action="acknowledge"))
                assert not anonymous.ok and "--by" in (anonymous.error or "")

                # The operator's own command line, as on the Pi.
                cli = [sys.executable, "-m", "coldgate", "gateway", "alarm"]
                where = ["--data-dir", str(tmp_path)]
                ack = await asyncio.to_thread(
                    subprocess.run,
                    [*cli, "acknowledge", *where, "--by", "qa.kim", "--reason", "compressor service called"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert ack.returncode == 0, ack.stderr
                assert "acknowledged by qa.kim; open alerts: cr1-t1." in ack.stdout
                status = await asyncio.to_thread(
                    subprocess.run, [*cli, "status", *where], capture_output=True, text=True, timeout=30
                )
                shown = json.loads(status.stdout)["alarm"]
                assert (shown["acknowledged_by"], shown["acknowledged"]) == ("qa.kim", True)
                assert [a.split(".")[0] for a in shown["alerts"]] == ["cr1-t1"]
            finally:
                stop.set()
                await task
                await board.stop()
            assert not (tmp_path / "control.sock").exists()
            started = sink.of(Event)[0]
            assert started.event is EventType.STARTED and sink.items[-1].event is EventType.STOPPING

        asyncio.run(scenario())


def test_silence_with_nothing_to_silence_is_refused_and_recorded_nowhere(tmp_path: Path) -> None:
    config = gateway_config_from_document(
        {"gateway": {"id": "gw-idle", "site": "s", "data_dir": str(tmp_path)}}, "idle.toml"
    )
    sink = ListSink()
    app = GatewayApp(config, sink)
    with pytest.raises(ValueError, match="nothing to silence"):
        app.silence(OperatorAction(by="qa.lee", at_ms=0))
    assert not sink.of(Event)


def test_a_siren_relay_on_the_loggers_rs485_bus_is_switched_by_that_bus_poller(tmp_path: Path) -> None:
    """One request at a time on a bus: the relay write waits for the line's turn, no second client."""
    farm = failed_compressor_farm()
    board = RelayBoard(unit=9)
    with FarmThread(farm, rtu=1, relays=[board]) as running:
        document = site_config(tmp_path, 1, 1)
        document["modbus_lines"] = [
            {"id": "cold-bus", "transport": "rtu", "port": running.rtu[0].device, "timeout_s": 0.5}
        ]
        document["sensors"][0]["line"] = "cold-bus"
        document["alarm"]["relay"] = {"line": "cold-bus", "unit": 9, "coil": 2}
        config = gateway_config_from_document(document, "test.toml")

        async def scenario() -> None:
            sink = ListSink()
            app = GatewayApp(config, sink)
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop))
            try:
                await wait_until(lambda: board.coil(2), timeout=20)
                assert app.alarm_driver.errors == {}
                # The loggers kept being polled around the writes.
                temps = [r for r in sink.of(Reading) if r.quantity == "temperature"]
                assert temps[-1].quality == "ok"
            finally:
                stop.set()
                await task

        asyncio.run(scenario())
        assert [w.value for w in board.writes() if w.coil == 2][:2] == [False, True]


def test_down_link_commands_silence_the_alarm_and_leave_an_outcome_event(tmp_path: Path) -> None:
    from coldgate.contract.downlink import Command, CommandAction

    config = gateway_config_from_document(
        {"gateway": {"id": "gw-cmd", "site": "s", "data_dir": str(tmp_path)}}, "cmd.toml"
    )
    sink = ListSink()
    app = GatewayApp(config, sink)
    stamp = app.clock.stamp()

    def command(action: CommandAction, command_id: str, **extra: Any) -> Command:
        return Command(
            v=1, gateway="gw-cmd", command_id=command_id, issued=stamp.wall_ms, action=action, by="qa.lee",
            args={"reason": "seen on the dashboard"}, **extra,
        )  # fmt: skip

    app.handle_command(command(CommandAction.SILENCE_ALARM, "c1"))
    outcome = sink.of(Event)[-1]
    assert outcome.event is EventType.COMMAND_FAILED and outcome.data["command_id"] == "c1"
    assert "nothing to silence" in outcome.detail

    app._alert(critical_alert(stamp))
    assert app.alarm.sounding
    app.handle_command(command(CommandAction.SILENCE_ALARM, "c2"))
    assert not app.alarm.sounding and app.alarm.silenced is not None
    assert app.alarm.silenced.via == "cloud" and app.alarm.silenced.reason == "seen on the dashboard"
    silenced, done = sink.of(Event)[-2:]
    assert silenced.event is EventType.ALARM_SILENCED and silenced.data["by"] == "qa.lee"
    assert done.event is EventType.COMMAND_DONE and done.data["command_id"] == "c2"


def test_a_reloaded_app_keeps_the_sounding_alarm_and_the_rule_state(tmp_path: Path) -> None:
    """A config pushed from the cloud must not silence a siren or restart an alarm delay."""

    config = gateway_config_from_document(
        {"gateway": {"id": "gw-reload", "site": "s", "data_dir": str(tmp_path)}}, "reload.toml"
    )
    sink = ListSink()
    old = GatewayApp(config, sink)
    stamp = old.clock.stamp()
    old._alert(critical_alert(stamp))
    old.silence(OperatorAction(by="qa.lee", at_ms=stamp.wall_ms))
    old.emit(
        Reading(
            seq=0, ts=stamp.wall_ms, boot=stamp.boot, mono=stamp.mono_ms, synced=stamp.synced,
            sensor="t1", quantity="temperature", value=9.5, unit="CEL",
        )
    )  # fmt: skip
    assert old.rules.snapshot(), "the reading left rule state behind (faults are judged without a zone)"
    new = GatewayApp(config, sink, previous=old)
    assert new.alarm.alerts == {"a1"} and new.alarm.silenced is not None
    assert new.rules.snapshot() == old.rules.snapshot()
