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
import time
from pathlib import Path
from typing import Any

import pytest

from contract.items import Alert, AlertAction, Event, EventType, Item, Reading
from gateway.alarm import OperatorAction
from gateway.app import GatewayApp
from gateway.config import gateway_config_from_document
from gateway.control import ControlRequest, ask
from simulator.background import FarmThread
from simulator.config import FarmConfig, LoggerSpec
from simulator.relay import RelayBoard

pytestmark = pytest.mark.timeout(60)


class ListSink:
    def __init__(self) -> None:
        self.items: list[Item] = []

    def put(self, item: Item) -> None:
        self.items.append(item)

    def of(self, kind: type) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]


def site_config(data_dir: Path, logger_port: int, relay_port: int) -> dict[str, Any]:
    return {
        "gateway": {"id": "gw-test", "site": "site-test", "data_dir": str(data_dir)},
        "modbus_lines": [
            {"id": "loggers", "transport": "tcp", "host": "127.0.0.1", "port": logger_port, "timeout_s": 0.5},
            {"id": "relays", "transport": "tcp", "host": "127.0.0.1", "port": relay_port, "timeout_s": 0.5},
        ],
        "temperature_classes": [
            {"name": "2-8C", "low": 2.0, "high": 8.0, "alarm_delay_s": 2.0, "hysteresis": 0.3}
        ],
        "zones": [{"id": "cold-room-1", "temperature_class": "2-8C", "recording_interval_s": 60}],
        "sensors": [
            {
                "source": "modbus",
                "id": "cr1-t1",
                "line": "loggers",
                "unit": 1,
                "profile": "xy-md02",
                "interval_s": 1,
                "retries": 0,
                "zone": "cold-room-1",
            }
        ],
        "alarm": {"min_severity": "critical", "relay": {"line": "relays", "unit": 1, "coil": 0}},
    }


async def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def test_excursion_sounds_the_local_relay_without_any_uplink_and_the_cli_silences_it(
    tmp_path: Path,
) -> None:
    # The compressor failed before the scenario clock starts: the room crosses 8 °C
    # about 1.5 s of real time into the test (speed 60).
    farm = FarmConfig(
        (LoggerSpec(unit=1, register_map="xy-md02", scenario="compressor_failure"),),
        speed=60,
        start_at_s=2400,
    )
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
                # Raised within one poll after the delay: the first reading past start + delay.
                over = [r for r in sink.of(Reading) if r.quantity == "temperature" and (r.value or 0) > 8.0]
                due = excursion.evidence.start + 2_000
                first_due = next(r for r in over if r.ts >= due)
                assert excursion.ts == first_due.ts

                path = tmp_path / "control.sock"
                reply = await asyncio.to_thread(
                    ask, path, ControlRequest(action="silence", by="qa.lee", reason="on my way")
                )
                assert reply.ok, reply.error
                assert reply.data["alarm"]["silenced_by"] == "qa.lee"
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
                assert json.loads(status.stdout)["alarm"]["acknowledged_by"] == "qa.kim"
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
