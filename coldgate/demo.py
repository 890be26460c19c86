"""``coldgate demo``: a simulated site and a real gateway on one machine, on embedded defaults.

The site is the simulator: ten temperature/humidity loggers, half on Modbus TCP
and half on an RS-485 line (RTU over a pseudo-terminal), one of them in a
compressor failure, one with door openings, one that drops out; and a relay
board driving the cold room's siren.  The gateway is the real one: its line
pollers, the cold-chain rules, the local alarm and the durable outbox, exactly
as ``coldgate gateway run`` wires them.  The MQTT uplink and the cloud ingest
join this command with issue 5 (an embedded broker and the cloud service).

Scenario time runs ``--speed`` times faster than real time; the rules judge
real time, so the demo shortens the alarm delay by the same factor (a 30-minute
delay at x60 is 30 s) and a compressor failure alarms within a minute or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from contract.items import Alert, Gap, Item, Reading
from gateway.app import GatewayApp
from gateway.buffer.outbox import Outbox
from gateway.clock import SystemClock
from gateway.config import GatewayConfig, gateway_config_from_document
from simulator.background import FarmThread
from simulator.config import FarmConfig, default_farm
from simulator.relay import RelayBoard

ALARM_DELAY_SCENARIO_S = 1800.0  # 30 min, a common cold-room alarm delay


def demo_config(
    data_dir: Path, farm: FarmConfig, tcp_port: int, rtu_device: str, relay_port: int, speed: float
) -> GatewayConfig:
    """The gateway.toml a site engineer would write for this simulated site."""
    split = len(farm.loggers) // 2
    sensors = [
        {
            "source": "modbus",
            "id": f"cr-{spec.unit:02d}",
            "line": "dock-tcp" if index < split else "cold-bus",
            "unit": spec.unit,
            "profile": spec.register_map,  # the simulator's maps ship as built-in profiles
            "interval_s": 1,
            "timeout_s": 0.3,
            "retries": 1,
            "zone": "cold-room-1",
        }
        for index, spec in enumerate(farm.loggers)
    ]
    document: dict[str, Any] = {
        "gateway": {"id": "demo-gw-01", "site": "demo-site", "data_dir": str(data_dir)},
        "modbus_lines": [
            {"id": "dock-tcp", "transport": "tcp", "host": "127.0.0.1", "port": tcp_port, "timeout_s": 0.3},
            {"id": "cold-bus", "transport": "rtu", "port": rtu_device, "baudrate": 19200, "timeout_s": 0.3},
            {"id": "siren", "transport": "tcp", "host": "127.0.0.1", "port": relay_port, "timeout_s": 0.5},
        ],
        "temperature_classes": [
            {
                "name": "2-8C",
                "low": 2.0,
                "high": 8.0,
                "alarm_delay_s": max(1.0, ALARM_DELAY_SCENARIO_S / speed),
                "hysteresis": 0.3,
            }
        ],
        "zones": [{"id": "cold-room-1", "temperature_class": "2-8C", "recording_interval_s": 60}],
        "sensors": sensors,
        "alarm": {"min_severity": "critical", "relay": {"line": "siren", "unit": 1, "coil": 0}},
    }
    return gateway_config_from_document(document, "demo")


class ShowingSink:
    """The outbox, plus a line on screen for every alert and gap as it is stored."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.readings = 0

    def put(self, item: Item) -> None:
        self.outbox.put(item)
        if isinstance(item, Reading):
            self.readings += 1
        elif isinstance(item, Alert):
            click.echo(f"  ALERT {item.action.value:8s} {item.severity.value:8s} {item.rule}: {item.message}")
        elif isinstance(item, Gap):
            state = "monitoring interrupted" if item.end is None else "monitoring resumed"
            click.echo(f"  GAP   {state}: {item.subject} ({item.cause.value}) {item.detail}")


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}"


async def run_demo(count: int, speed: float, interval: float, duration: float | None, data_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    farm_config = default_farm(count, speed=speed)
    board = RelayBoard(unit=1)
    relay_port = await board.serve_tcp()
    with FarmThread(farm_config, tcp=[("127.0.0.1", 0)], rtu=1) as farm:
        config = demo_config(data_dir, farm_config, farm.tcp[0].port, farm.rtu[0].device, relay_port, speed)
        clock = SystemClock()
        with Outbox(config.outbox, gateway=config.gateway.id, clock=clock) as outbox:
            sink = ShowingSink(outbox)
            app = GatewayApp(config, sink, clock=clock)
            click.echo(f"Loggers: Modbus TCP 127.0.0.1:{farm.tcp[0].port}, RTU on {farm.rtu[0].device}")
            for spec in farm_config.loggers:
                click.echo(f"  cr-{spec.unit:02d}: {spec.describe()}")
            click.echo(f"Outbox: {config.outbox.path}")
            command = f"{sys.executable} -m coldgate"  # works whether or not .venv/bin is on PATH
            click.echo(
                f"Silence the siren: {command} gateway alarm silence --data-dir {data_dir} --by YOUR-NAME\n"
                "The cloud is not part of the demo yet (issue 5): everything stays in the outbox here;\n"
                "`coldgate gateway run` publishes it over MQTT with end-to-end acknowledgement.\n"
            )
            task = asyncio.create_task(app.run(stop))
            started = time.monotonic()
            try:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)
                    elapsed = time.monotonic() - started
                    status = app.status()
                    offline = [s["id"] for s in status["sensors"] if not s["online"]]
                    click.echo(
                        f"scenario {_clock(farm.farm.clock.now())} | readings {sink.readings}"
                        f" | outbox depth {outbox.depth()} | alerts open {len(status['alarm']['alerts'])}"
                        f" | siren {'ON' if board.coil(0) else 'off'}"
                        f" | offline {', '.join(offline) or 'none'}"
                    )
                    if duration is not None and elapsed >= duration:
                        stop.set()
            finally:
                stop.set()
                await task
                await board.stop()
    click.echo("stopped")


@click.group(invoke_without_command=True)
@click.option("--loggers", "count", type=click.IntRange(2, 100), default=10, show_default=True)
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Scenario time per real second (60: an hour of cold-room life per minute).",
)
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the gateway keeps its outbox and control socket (default: a new temporary directory).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    count: int,
    speed: float,
    interval: float,
    duration: float | None,
    data_dir: Path | None,
) -> None:
    """Run a simulated site and a real gateway, and watch them live (Ctrl-C stops it)."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    directory = (data_dir or Path(tempfile.mkdtemp(prefix="coldgate-demo-"))).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    asyncio.run(run_demo(count, speed, interval, duration, directory))
