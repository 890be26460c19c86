"""The local alarm: its state machine, and its outputs against a real Modbus relay board."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType
from coldgate.gateway.alarm import (
    AlarmState,
    NothingToSilence,
    OperatorAction,
    acknowledge,
    on_alert,
    silence,
)
from coldgate.gateway.alarm_outputs import AlarmDriver, CoilOutput, CommandOutput, ModbusCoilWriter
from coldgate.gateway.sensors.config import TcpLine
from coldgate.simulator.relay import RelayBoard
from tests.rig.ports import free_port

BOOT = "0" * 32
OPERATOR = OperatorAction(by="qa.lee", at_ms=1_000, reason="on my way")


def alert(alert_id: str, action: AlertAction, severity: Severity = Severity.CRITICAL) -> Alert:
    return Alert(
        seq=0,
        ts=1_000,
        boot=BOOT,
        mono=1,
        synced=True,
        alert_id=alert_id,
        action=action,
        rule="temperature.high",
        subject_type=SubjectType.SENSOR,
        subject="t1",
        severity=severity,
        message="t1 above 8.0 °C",
    )


def test_critical_alert_sounds_and_clearing_stops() -> None:
    state = on_alert(AlarmState(), alert("a1", AlertAction.RAISED))
    assert state.active and state.sounding
    state = on_alert(state, alert("a1", AlertAction.UPDATED))
    assert state.alerts == {"a1"}
    state = on_alert(state, alert("a1", AlertAction.CLEARED))
    assert not state.active and not state.sounding


def test_below_threshold_does_not_hold_the_alarm_until_escalated() -> None:
    state = on_alert(AlarmState(), alert("a1", AlertAction.RAISED, Severity.WARNING))
    assert not state.active
    state = on_alert(state, alert("a1", AlertAction.UPDATED, Severity.CRITICAL))
    assert state.sounding
    state = on_alert(state, alert("a1", AlertAction.UPDATED, Severity.WARNING))
    assert not state.active


def test_silence_mutes_until_a_new_alert_rearms() -> None:
    state = on_alert(AlarmState(), alert("a1", AlertAction.RAISED))
    state = silence(state, OPERATOR)
    assert state.active and not state.sounding and state.silenced == OPERATOR
    state = on_alert(state, alert("a1", AlertAction.UPDATED))
    assert not state.sounding, "an update of the same alert must not re-arm"
    state = on_alert(state, alert("a2", AlertAction.RAISED))
    assert state.sounding and state.silenced is None


def test_acknowledge_mutes_and_is_forgotten_when_all_clear() -> None:
    state = on_alert(AlarmState(), alert("a1", AlertAction.RAISED))
    state = acknowledge(state, OPERATOR)
    assert not state.sounding and state.acknowledged == OPERATOR
    state = on_alert(state, alert("a1", AlertAction.CLEARED))
    assert state.acknowledged is None and not state.active
    state = on_alert(state, alert("a3", AlertAction.RAISED))
    assert state.sounding


def test_nothing_to_silence_when_idle() -> None:
    with pytest.raises(NothingToSilence):
        silence(AlarmState(), OPERATOR)
    with pytest.raises(NothingToSilence):
        acknowledge(AlarmState(), OPERATOR)


def test_min_severity_warning_takes_pre_alarms() -> None:
    state = on_alert(
        AlarmState(min_severity=Severity.WARNING), alert("p1", AlertAction.RAISED, Severity.WARNING)
    )
    assert state.sounding


@pytest.mark.timeout(30)
def test_relay_coil_follows_the_alarm_and_fail_safe_inverts(tmp_path: Path) -> None:
    async def scenario() -> None:
        board = RelayBoard(unit=3)
        port = await board.serve_tcp()
        writer = ModbusCoilWriter(TcpLine(id="relays", host="127.0.0.1", port=port, timeout_s=1.0))
        marker = tmp_path / "alarm.txt"
        script = f"import os; open({str(marker)!r}, 'a').write(os.environ['COLDGATE_ALARM'] + '\\n')"
        driver = AlarmDriver(
            [
                CoilOutput(writer, 3, 0),
                CoilOutput(writer, 3, 5, fail_safe=True),
                CommandOutput([sys.executable, "-c", script]),
            ],
            refresh_s=3600,
        )
        try:
            idle = AlarmState()
            await driver.apply(idle, now=0.0)
            assert board.state[0] is False and board.state[5] is True
            sounding = on_alert(idle, alert("a1", AlertAction.RAISED))
            await driver.apply(sounding, now=1.0)
            assert board.state[0] is True and board.state[5] is False
            writes = len(board.writes())
            await driver.apply(sounding, now=2.0)
            assert len(board.writes()) == writes, "no rewrite without a change before refresh_s"
            await driver.apply(silence(sounding, OPERATOR), now=3.0)
            assert board.state[0] is False and board.state[5] is True
            assert marker.read_text().split() == ["off", "on", "off"]
            assert driver.errors == {}
        finally:
            writer.close()
            await board.stop()

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_a_failing_output_is_reported_and_the_others_still_switch(tmp_path: Path) -> None:
    async def scenario() -> None:
        dead = ModbusCoilWriter(TcpLine(id="gone", host="127.0.0.1", port=free_port(), timeout_s=0.5))
        marker = tmp_path / "alarm.txt"
        script = f"open({str(marker)!r}, 'w').write('on')"
        driver = AlarmDriver(
            [
                CoilOutput(dead, 1, 0),
                CommandOutput([sys.executable, "-c", "import sys; sys.exit('relay script broke')"]),
                CommandOutput([sys.executable, "-c", script]),
            ]
        )
        state = on_alert(AlarmState(), alert("a1", AlertAction.RAISED))
        await driver.apply(state, now=0.0)
        dead.close()
        assert marker.read_text() == "on"
        assert set(driver.errors) == {"relay unit 1 coil 0", f"command {sys.executable}"}
        assert "cannot connect" in driver.errors["relay unit 1 coil 0"]
        assert "exited 1: relay script broke" in driver.errors[f"command {sys.executable}"]
        assert driver.outputs[2].name == f"command {sys.executable} #2"

    asyncio.run(scenario())
