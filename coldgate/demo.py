"""``coldgate demo``: a simulated site on one machine, on embedded defaults.

Today the demo runs the simulator's Modbus loggers (half on Modbus TCP, half on
an RTU line over a pseudo-terminal) and reads every one back over the real
protocol with a plain pymodbus client, printing what a person at the site would
see.  The gateway, outbox, broker and cloud join this command as they land
(issues 3-5); the read-back loop here is the stand-in for the gateway until then
and deliberately judges nothing: rules belong to ``gateway/rules``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

import click
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from simulator.background import FarmThread
from simulator.config import LoggerSpec, default_farm
from simulator.registermaps import register_map

Client = ModbusTcpClient | ModbusSerialClient


@dataclass
class Row:
    """The latest read of one logger, as shown on screen."""

    spec: LoggerSpec
    transport: str
    text: str = "…"


def read_logger(client: Client, spec: LoggerSpec) -> str:
    """One read of a logger's map: its values, or why there are none."""
    regmap = register_map(spec.register_map)
    read = client.read_input_registers if regmap.function_code == 4 else client.read_holding_registers
    try:
        response = read(regmap.first_address, count=regmap.count, device_id=spec.unit)
    except ModbusException as exc:
        return f"no answer ({type(exc).__name__})"
    if response.isError():
        return f"Modbus exception {getattr(response, 'exception_code', '?')}"
    temperature, humidity = regmap.decode(response.registers)
    return f"{temperature:6.1f} °C {humidity:5.1f} %RH"


def _scenario_clock(scenario_s: float) -> str:
    hours, rest = divmod(int(scenario_s), 3600)
    return f"{hours:02d}:{rest // 60:02d}"


@click.group(invoke_without_command=True)
@click.option("--loggers", "count", type=click.IntRange(2, 247), default=10, show_default=True)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Scenario time per real second (60: an hour of cold-room life per minute).",
)
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option("--duration", type=click.FloatRange(min=0), default=None, help="Stop after SECONDS.")
@click.pass_context
def demo(ctx: click.Context, count: int, speed: float, interval: float, duration: float | None) -> None:
    """Run a simulated site and watch it live (Ctrl-C stops it)."""
    if ctx.invoked_subcommand is not None:
        return
    # pymodbus logs a hex dump for every unanswered request; the table says it better.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_args: stop.set())
    config = default_farm(count, speed=speed)
    split = count // 2
    with FarmThread(config, tcp=[("127.0.0.1", 0)], rtu=1) as running:
        tcp, rtu = running.tcp[0], running.rtu[0]
        click.echo(f"Modbus TCP loggers on {tcp.host}:{tcp.port}, RTU loggers on {rtu.device}")
        click.echo("Gateway, outbox and cloud arrive with issues 3-5; this reads the loggers directly.\n")
        tcp_client = ModbusTcpClient(tcp.host, port=tcp.port, timeout=0.3, retries=0)
        rtu_client = ModbusSerialClient(
            rtu.device, framer=FramerType.RTU, baudrate=19200, timeout=0.3, retries=0
        )
        tcp_client.connect()
        rtu_client.connect()
        rows = [
            Row(spec, "tcp" if index < split else "rtu") for index, spec in enumerate(config.loggers)
        ]
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                for row in rows:
                    row.text = read_logger(tcp_client if row.transport == "tcp" else rtu_client, row.spec)
                click.echo(f"scenario time {_scenario_clock(running.farm.clock.now())}  (x{speed:g})")
                for row in rows:
                    click.echo(
                        f"  unit {row.spec.unit:3d} {row.transport}  {row.spec.register_map:17s}"
                        f" {row.spec.scenario:19s} {row.text}"
                    )
                stop.wait(interval)
        finally:
            tcp_client.close()
            rtu_client.close()
    click.echo("stopped")
