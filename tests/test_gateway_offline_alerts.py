"""A cold room's logger goes silent: gap, then after the delay an alert and the siren, with no broker.

The real app, the simulator's logger over real Modbus TCP (scenario ``dropout``:
no answer at all for a while) and the simulated relay board; no uplink runs and
no broker exists, so what sounds here sounds with the internet down.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from coldgate.contract.items import Alert, AlertAction, Gap, GapCause, Quality, Reading, Severity, SubjectType
from coldgate.gateway.app import GatewayApp
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.observations import stamp_fields
from coldgate.gateway.source import SensorStatus
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.relay import RelayBoard
from tests.rig.clocks import FakeClock
from tests.rig.sinks import ListSink, wait_until
from tests.rig.sites import cold_room_site

pytestmark = pytest.mark.timeout(90)

DELAY_S = 3.0


def silent_logger_farm(room: str = "cold_room") -> FarmConfig:
    """The room's logger answers for 3 s, is silent for the next 9 s, then answers again."""
    silence = {"start_s": 3, "duration_s": 9}
    return FarmConfig(
        (LoggerSpec(unit=1, register_map="xy-md02", scenario="dropout", room=room, params=silence),),
        speed=1,
    )


def test_a_silent_cold_room_logger_raises_an_offline_alert_and_sounds_the_relay_without_a_broker(
    tmp_path: Path,
) -> None:
    with FarmThread(silent_logger_farm(), tcp=[("127.0.0.1", 0)]) as running:

        async def scenario() -> None:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            document = cold_room_site(
                tmp_path,
                running.tcp[0].port,
                relay_port,
                min_severity="critical",
                offline_alerts={"cold_after_s": DELAY_S, "cold_severity": "critical", "after_s": 600},
            )
            config = gateway_config_from_document(document, "gateway.toml")
            sink = ListSink()
            app = GatewayApp(config, sink)
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop))
            try:
                # The logger goes silent: the gap opens, then after the delay the alert and the siren.
                await wait_until(lambda: sink.of(Gap), timeout=15)
                [opened] = sink.of(Gap)
                assert (opened.subject_type, opened.subject, opened.end) == (
                    SubjectType.SENSOR,
                    "cr1-t1",
                    None,
                )
                await wait_until(lambda: board.coil(0), timeout=15)
                [raised] = [a for a in sink.of(Alert) if a.rule == "source.offline"]
                assert (raised.action, raised.severity, raised.subject) == (
                    AlertAction.RAISED,
                    Severity.CRITICAL,
                    "cr1-t1",
                )
                assert app.alarm.alerts == {raised.alert_id} and app.alarm.sounding
                assert raised.evidence.start == opened.start
                # Raised once the delay has passed since the first failed poll (the gap's start),
                # on the monotonic clock, and promptly (the alarm loop wakes when it is due).
                first_failed = next(
                    r for r in sink.of(Reading) if r.quality is Quality.ERROR and r.ts == opened.start
                )
                waited_ms = raised.mono - first_failed.mono
                assert DELAY_S * 1000 <= waited_ms <= DELAY_S * 1000 + 1500
                assert sink.items.index(opened) < sink.items.index(raised)
                # Shown on the Pi as well.
                [offline] = app.local_detail()["offline"]
                assert offline["source"] == "sensor cr1-t1" and offline["alert"] == raised.alert_id

                # The logger answers again: the gap closes, the alert clears, the siren stops.
                await wait_until(lambda: not board.coil(0), timeout=30)
                closed = [g for g in sink.of(Gap) if g.end is not None]
                assert [(g.subject, g.start) for g in closed] == [("cr1-t1", opened.start)]
                steps = [a for a in sink.of(Alert) if a.rule == "source.offline"]
                assert [a.action for a in steps] == [AlertAction.RAISED, AlertAction.CLEARED]
                assert steps[1].alert_id == raised.alert_id
                assert steps[1].evidence.end == closed[0].end
                assert sink.items.index(closed[0]) < sink.items.index(steps[1])
                assert not app.alarm.active and app.local_detail()["offline"] == []
            finally:
                stop.set()
                await task
                await board.stop()

        asyncio.run(scenario())


def test_an_ambient_zone_logger_offline_only_warns_and_the_relay_stays_off(tmp_path: Path) -> None:
    with FarmThread(silent_logger_farm("ambient"), tcp=[("127.0.0.1", 0)]) as running:

        async def scenario() -> None:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            document = cold_room_site(
                tmp_path,
                running.tcp[0].port,
                relay_port,
                min_severity="critical",
                offline_alerts={"after_s": 1, "severity": "warning", "cold_after_s": 600},
            )
            # An ambient store (15-25 °C): not a cold location.
            document["temperature_classes"] = [{"name": "2-8C", "low": 15.0, "high": 25.0}]
            config = gateway_config_from_document(document, "gateway.toml")
            sink = ListSink()
            app = GatewayApp(config, sink)
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop))
            try:
                await wait_until(lambda: any(a.rule == "source.offline" for a in sink.of(Alert)), timeout=20)
                [raised] = [a for a in sink.of(Alert) if a.rule == "source.offline"]
                assert raised.severity is Severity.WARNING
                assert not app.alarm.active
                await asyncio.sleep(0.5)
                assert board.coil(0) is False
                assert [a.rule for a in sink.of(Alert)] == ["source.offline"]
            finally:
                stop.set()
                await task
                await board.stop()

        asyncio.run(scenario())


class QuietSource:
    """A source that polls nothing and reports one sensor's state as the test sets it."""

    id = "fake"

    def __init__(self, sensor: str = "cr1-t1") -> None:
        self.sensor = sensor
        self.online = True
        self.last_ok_ms: int | None = None

    async def run(self, emit: Any) -> None:
        await asyncio.Event().wait()

    def status(self) -> list[SensorStatus]:
        return [
            SensorStatus(
                sensor=self.sensor, source=self.id, online=self.online, consecutive_failures=0,
                interval_s=1.0, scheduled=0, served=0, late=0, missed=0, lag_p50_ms=None,
                lag_p95_ms=None, lag_max_ms=None, last_poll_ms=None, last_ok_ms=self.last_ok_ms,
                last_error=None,
            )
        ]  # fmt: skip


def test_a_pushed_configuration_keeps_the_offline_alert_until_the_rebuilt_source_answers(
    tmp_path: Path,
) -> None:
    """The rebuilt source has no gap to close: the app asks it whether the sensor answers again."""
    document = cold_room_site(tmp_path, 1502, 1503, offline_alerts={"cold_after_s": 10})
    config = gateway_config_from_document(document, "gateway.toml")
    clock = FakeClock()
    sink = ListSink()
    old = GatewayApp(config, sink, clock=clock, sources=[QuietSource()], alarm_outputs=[])
    at = clock.stamp()
    old.emit(
        Gap(
            **stamp_fields(at), subject_type=SubjectType.SENSOR, subject="cr1-t1",  # type: ignore[arg-type]
            start=at.wall_ms - 2_000, cause=GapCause.SENSOR_OFFLINE, detail="3 polls failed",
        )
    )  # fmt: skip
    clock.advance(7_000)
    assert old._offline_tick() == pytest.approx(1.01)  # the loop sleeps until the alert is due
    clock.advance(1_000)
    old._offline_tick()
    [raised] = sink.of(Alert)
    assert raised.action is AlertAction.RAISED and old.alarm.sounding

    rebuilt = QuietSource()  # online, but it has not answered yet
    new = GatewayApp(config, sink, clock=clock, sources=[rebuilt], alarm_outputs=[], previous=old)
    clock.advance(5_000)
    new._offline_tick()
    assert len(sink.of(Alert)) == 1 and new.alarm.alerts == {raised.alert_id}
    rebuilt.last_ok_ms = clock.stamp().wall_ms
    new._offline_tick()
    cleared = sink.of(Alert)[-1]
    assert (cleared.action, cleared.alert_id) == (AlertAction.CLEARED, raised.alert_id)
    assert "configuration change" in cleared.message and not new.alarm.active

    # A sensor the new configuration no longer has: its alert does not outlive it.
    clock.advance(1_000)
    at = clock.stamp()
    new.emit(
        Gap(
            **stamp_fields(at), subject_type=SubjectType.SENSOR, subject="cr1-t1",  # type: ignore[arg-type]
            start=at.wall_ms, cause=GapCause.SENSOR_OFFLINE, detail="3 polls failed",
        )
    )  # fmt: skip
    clock.advance(10_000)
    new._offline_tick()
    assert sink.of(Alert)[-1].action is AlertAction.RAISED
    gone = GatewayApp(
        config, sink, clock=clock, sources=[QuietSource("other")], alarm_outputs=[], previous=new
    )
    gone._offline_tick()
    assert sink.of(Alert)[-1].action is AlertAction.CLEARED
    assert "no longer monitored" in sink.of(Alert)[-1].message and not gone.alarm.active
