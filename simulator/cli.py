"""``coldgate sim ...``: run pieces of a simulated site from the command line.

``coldgate sim modbus`` serves a farm of temperature/humidity loggers until
Ctrl-C, SIGTERM or ``--duration`` elapses, e.g.::

    coldgate sim modbus --loggers 4 --rtu --tcp 127.0.0.1:5020 --speed 60
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import click

from coldgate.simulator.config import MAP_CHOICES, FarmConfig, default_farm, load_farm_file
from coldgate.simulator.curves import SCENARIOS
from coldgate.simulator.farm import ModbusFarm

DEFAULT_TCP = "127.0.0.1:5020"


@click.group()
def sim() -> None:
    """Simulate a site: Modbus loggers, LLRP reader, scanner."""


def _parse_tcp(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.BadParameter(f"expected HOST:PORT (port 0 = any free port), got {value!r}")
    return host.strip("[]"), int(port)


@sim.command()
@click.option(
    "--tcp",
    "tcp",
    multiple=True,
    metavar="HOST:PORT",
    help=f"Serve Modbus TCP here (repeatable; port 0 picks a free one). "
    f"Default {DEFAULT_TCP} unless --rtu is given.",
)
@click.option("--rtu", is_flag=True, help="Serve Modbus RTU on a new pseudo-terminal; prints its path.")
@click.option(
    "--loggers",
    "count",
    type=click.IntRange(1, 247),
    default=8,
    show_default=True,
    help="Number of loggers (unit ids 1..N).",
)
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=None,
    help="Give every logger this scenario (default: mostly steady, one of each fault).",
)
@click.option(
    "--map",
    "register_map",
    type=click.Choice(MAP_CHOICES),
    default="mixed",
    show_default=True,
    help="Register map; mixed = odd units xy-md02, even rs485-th-holding.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Scenario seconds per real second (60 replays an hour in a minute). Default 1.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the curves' noise.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML farm file (replaces --loggers/--scenario/--map/--seed).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop by itself after this many real seconds.",
)
def modbus(
    tcp: tuple[str, ...],
    rtu: bool,
    count: int,
    scenario: str | None,
    register_map: str,
    speed: float | None,
    seed: int,
    config_file: Path | None,
    duration: float | None,
) -> None:
    """Serve simulated temperature/humidity loggers over Modbus TCP and/or RTU."""
    addresses = [_parse_tcp(value) for value in tcp] or ([] if rtu else [_parse_tcp(DEFAULT_TCP)])
    try:
        if config_file is not None:
            config = load_farm_file(config_file)
        else:
            config = default_farm(count, register_map=register_map, scenario=scenario, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if speed is not None:
        config = FarmConfig(config.loggers, speed=speed, start_at_s=config.start_at_s)
    try:
        asyncio.run(_serve(config, addresses, rtu, duration))
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc


async def _serve(
    config: FarmConfig, addresses: list[tuple[str, int]], rtu: bool, duration: float | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with ModbusFarm(config) as farm:
        for host, port in addresses:
            await farm.serve_tcp(host, port)
        if rtu:
            await farm.serve_rtu()
        _print_farm(farm)
        until = f"for {duration:g} s or " if duration else ""
        click.echo(f"running {until}until Ctrl-C", err=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    click.echo("stopped; all ports and pseudo-terminals closed", err=True)


def _print_farm(farm: ModbusFarm) -> None:
    click.echo(f"speed {farm.clock.speed:g}x (scenario starts at {farm.clock.start_at_s:g} s)")
    for endpoint in farm.endpoints:
        click.echo(f"serving {endpoint}")
        for spec in farm.loggers:
            register_map = spec.map
            click.echo(
                f"  {spec.describe()}  FC{register_map.function_code:02d} "
                f"@0x{register_map.first_address:04X} x{register_map.count}"
            )


# Dock-door tag-read streams ``coldgate sim llrp --scenario`` can send (see _scenario_reads).
RFID_SCENARIOS = ("pallet-in", "pallet-out", "strays", "pallet-in-with-strays")


@sim.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5084,
    show_default=True,
    help="LLRP TCP port (0 picks a free one).",
)
@click.option(
    "--replay-fixture",
    is_flag=True,
    help="Send the 45 RO_ACCESS_REPORTs captured from a real Impinj reader, as captured.",
)
@click.option(
    "--scenario",
    type=click.Choice(RFID_SCENARIOS),
    default=None,
    help="Send the tag reads of this dock-door scenario (simulator.rfid_scenarios), starting now.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Pace reports by their timestamps at this speed (default: as fast as the client takes them).",
)
@click.option(
    "--drop-after",
    type=click.IntRange(min=1),
    default=None,
    help="Fault: cut the first connection after this many reports (the next client gets the rest).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop by itself after this many real seconds.",
)
def llrp(
    host: str,
    port: int,
    replay_fixture: bool,
    scenario: str | None,
    speed: float | None,
    drop_after: int | None,
    duration: float | None,
) -> None:
    """Serve a simulated LLRP 1.0.1 RFID reader (one client at a time), e.g. for sllurp."""
    from coldgate.simulator.llrp.reader import FixtureReplay, LlrpReader, ReportSource, TupleReads

    if replay_fixture == (scenario is not None):
        raise click.UsageError("give exactly one of --replay-fixture or --scenario NAME")
    try:
        source: ReportSource
        if replay_fixture:
            source = FixtureReplay(speed=speed)
        else:
            assert scenario is not None
            source = TupleReads(_scenario_reads(scenario), speed=speed)
        reader = LlrpReader(source, host=host, port=port)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if drop_after is not None:
        reader.drop_after(drop_after)
    try:
        asyncio.run(_serve_llrp(reader, duration))
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc


def _scenario_reads(name: str) -> list[tuple[int, int, str, float, int]]:
    """The scenario's reads, shifted so that the pass happens now if it was written from t=0."""
    import time

    # Imported here: the scenarios need epcpy, which only the gateway extra installs.
    from coldgate.simulator import rfid_scenarios as rfid

    if name == "pallet-in":
        reads = rfid.pallet_pass("in")
    elif name == "pallet-out":
        reads = rfid.pallet_pass("out")
    elif name == "strays":
        reads = rfid.strays(20, antenna=1, duration_ms=60_000)
    else:  # pallet-in-with-strays
        reads = rfid.merge(rfid.pallet_pass("in"), rfid.strays(20, antenna=1, duration_ms=10_000))
    if reads and reads[0][0] < 10**11:  # relative milliseconds, not epoch: start the pass now
        now_ms = time.time_ns() // 1_000_000
        reads = [(ts + now_ms, *rest) for ts, *rest in reads]
    return reads


async def _serve_llrp(reader: object, duration: float | None) -> None:
    from coldgate.simulator.llrp.reader import LlrpReader

    assert isinstance(reader, LlrpReader)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with reader:
        click.echo(f"serving llrp://{reader.host}:{reader.port}")
        until = f"for {duration:g} s or " if duration else ""
        click.echo(f"running {until}until Ctrl-C", err=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=duration)
    click.echo(f"stopped after {reader.stats.reports_sent} reports; port closed", err=True)


@sim.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.0),
    default=2.0,
    show_default=True,
    help="Seconds between codes.",
)
@click.option("--terminator", type=click.Choice(["CR", "LF", "CRLF"]), default="CR", show_default=True)
@click.option("--repeat", is_flag=True, help="Go round the codes until stopped (Ctrl-C).")
def scanner(interval: float, terminator: str, repeat: bool) -> None:
    """Play a serial barcode scanner on a new pseudo-terminal (GS1, HIBC, MA, EAN, bad codes)."""
    from coldgate.gateway.readers.config import TERMINATORS
    from coldgate.simulator.scanner import CODES, ScannerEmulator

    with ScannerEmulator(TERMINATORS[terminator]) as emulator:
        click.echo(f"scanner on {emulator.device} (terminator {terminator}); point [[scanners]] port at it")
        click.echo("waiting 2 s for the gateway to open the port...")
        time.sleep(2.0)
        names = dict((code, name) for name, code in CODES)
        try:
            for code in emulator.codes(repeat=repeat):
                emulator.send(code)
                click.echo(f"sent {names[code]}: {code!r}")
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
    click.echo(f"stopped after {emulator.sent} codes")
