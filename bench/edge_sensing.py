"""What polling costs the gateway: 50 Modbus TCP loggers every 100 ms, with the rules on.

The simulator runs in its own process (``python -m coldgate sim modbus``), as a
site's loggers would; this process runs only the gateway side: the line
pollers from ``gateway.sensors`` and, if ``gateway.rules.site.SiteRules`` can
be imported, every reading judged by the rules.  Items end in a counter, not
an outbox: the outbox has its own benchmark.

Each logger is its own line (``--units-per-line 1``): Modbus TCP loggers each
have their own IP address, so each is its own connection with its own turn-
taking.  ``--units-per-line 50`` models one Modbus TCP gateway with 50 RS-485
units behind it instead (one connection, strictly one request at a time).

Prints CPU % of one core for this process (process time over wall time, after
a warm-up), peak RSS, and the fraction of scheduled polls that were served
(started within half an interval of their slot), then a ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

from coldgate.contract.items import Item, Quality, Reading
from coldgate.gateway.app import build_sources
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config import GatewayConfig, GatewaySection, TemperatureClass, Zone
from coldgate.gateway.sensors.config import ModbusSensor, TcpLine
from coldgate.gateway.sensors.stats import served_fraction

REFERENCES = (
    ("ThingsBoard IoT Gateway 3.8.5", "51 %", "64 MB", "0.91"),
    ("bare pymodbus async client (the floor)", "14 %", "23 MB", "-"),
    ("goal", "<= 18 %", "<= 50 MB", "1.00"),
)
WARM_UP_S = 3.0


def site_config(units: int, interval_s: float, port: int, per_line: int) -> GatewayConfig:
    """The simulated site as a gateway config (built directly: 0.1 s is below the file's 1 s floor)."""
    lines = tuple(
        TcpLine(id=f"logger-{first:02d}", host="127.0.0.1", port=port, timeout_s=0.09)
        for first in range(1, units + 1, per_line)
    )
    sensors = tuple(
        ModbusSensor(
            id=f"cr-t{unit:02d}",
            zone="cold-room",
            line=lines[(unit - 1) // per_line].id,
            unit=unit,
            profile="xy-md02" if unit % 2 else "rs485-th-holding",  # the simulator's "mixed" map
            interval_s=interval_s,
            retries=0,
            offline_after=3,
        )
        for unit in range(1, units + 1)
    )
    return GatewayConfig(
        gateway=GatewaySection(id="bench-gw", site="bench"),
        modbus_lines=lines,
        sensors=sensors,
        zones=(Zone(id="cold-room", temperature_class="2-8C", recording_interval_s=1800.0),),
        temperature_classes=(TemperatureClass(name="2-8C", low=2.0, high=8.0),),
    )


def make_sink(config: GatewayConfig, counts: Counter[str]) -> tuple[Callable[[Item], None], str]:
    """Judge readings with the site rules when they exist; count everything."""
    try:
        from coldgate.gateway.rules.site import SiteRules
    except ImportError as exc:

        def count(item: Item) -> None:
            counts[type(item).__name__] += 1
            if isinstance(item, Reading) and item.quality is not Quality.OK:
                counts["not ok"] += 1

        return count, f"rules OFF (gateway.rules.site not importable: {exc})"
    rules = SiteRules.from_config(config)

    def judge(item: Item) -> None:
        counts[type(item).__name__] += 1
        if isinstance(item, Reading):
            verdict = rules.judge(item)
            counts["alert"] += len(verdict.alerts)
            if verdict.reading.quality is not Quality.OK:
                counts["not ok"] += 1

    return judge, "rules ON (gateway.rules.site.SiteRules judges every reading)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sim_cpu_s(pid: int) -> float | None:
    """CPU seconds the simulator process has used (Linux /proc), for information only."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def poll(
    config: GatewayConfig, seconds: float, emit: Callable[[Item], None]
) -> tuple[list, float, float]:
    pollers = build_sources(config, SystemClock())  # what the gateway app does
    tasks = [asyncio.create_task(p.run(emit), name=p.id) for p in pollers]
    await asyncio.sleep(WARM_UP_S)
    wall0, cpu0 = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    statuses = [s for p in pollers for s in p.status()]
    alive = sum(not t.done() for t in tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert alive == len(tasks), "a poller stopped by itself"
    return statuses, wall, cpu


async def bare_pymodbus(config: GatewayConfig, seconds: float) -> tuple[int, float, float]:
    """The floor: one plain pymodbus client per line, the same reads, nothing else (``--floor``)."""
    from pymodbus.client import AsyncModbusTcpClient

    reads = 0

    async def loop_of(line: TcpLine, sensors: list[ModbusSensor]) -> None:
        nonlocal reads
        client = AsyncModbusTcpClient(line.host, port=line.port, timeout=line.timeout_s, retries=0)
        await client.connect()
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            for sensor in sensors:
                if sensor.profile == "xy-md02":
                    await client.read_input_registers(1, count=2, device_id=sensor.unit)
                else:
                    await client.read_holding_registers(0, count=2, device_id=sensor.unit)
                reads += 1
            due += sensors[0].interval_s
            await asyncio.sleep(max(0.0, due - loop.time()))

    by_line: dict[str, list[ModbusSensor]] = {}
    for sensor in config.sensors:
        assert isinstance(sensor, ModbusSensor)
        by_line.setdefault(sensor.line, []).append(sensor)
    tasks = [
        asyncio.create_task(loop_of(line, by_line[line.id]))
        for line in config.modbus_lines
        if isinstance(line, TcpLine)
    ]
    await asyncio.sleep(WARM_UP_S)
    reads0, wall0, cpu0 = reads, time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    result = reads - reads0, time.monotonic() - wall0, time.process_time() - cpu0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between polls of a unit")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time, after a warm-up")
    parser.add_argument("--units-per-line", type=int, default=1)
    parser.add_argument(
        "--floor", action="store_true", help="measure bare pymodbus clients doing the same reads instead"
    )
    args = parser.parse_args()

    port = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coldgate",
            "sim",
            "modbus",
            "--tcp",
            f"127.0.0.1:{port}",
            "--loggers",
            str(args.units),
            "--scenario",
            "steady",
            "--map",
            "mixed",
            "--duration",
            str(args.seconds + WARM_UP_S + 30),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=30)
        config = site_config(args.units, args.interval, port, args.units_per_line)
        if args.floor:
            reads, wall, cpu = asyncio.run(bare_pymodbus(config, args.seconds))
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"bare pymodbus: {reads / wall:.0f} reads/s, {100 * cpu / wall:.1f} % of one core, "
                f"peak RSS {rss_mb:.1f} MB"
            )
            print(f"RESULT floor_cpu_pct={100 * cpu / wall:.1f} rss_mb={rss_mb:.1f} reads={reads}")
            return
        counts: Counter[str] = Counter()
        emit, rules_note = make_sink(config, counts)
        sim0 = sim_cpu_s(sim.pid)
        statuses, wall, cpu = asyncio.run(poll(config, args.seconds, emit))
        sim1 = sim_cpu_s(sim.pid)
    finally:
        sim.terminate()
        sim.wait(10)

    cpu_pct = 100.0 * cpu / wall
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    served = served_fraction(statuses)
    polls = sum(s.served + s.late for s in statuses)
    scheduled = sum(s.scheduled for s in statuses)
    lines = len(config.modbus_lines)
    worst_p95 = max((s.lag_p95_ms or 0.0) for s in statuses)
    print(
        f"{args.units} Modbus TCP units on {lines} line(s), every {args.interval:g} s, "
        f"{args.seconds:g} s measured after {WARM_UP_S:g} s warm-up; simulator in pid {sim.pid}"
    )
    print(rules_note)
    print(
        f"polls: {polls} started of {scheduled} scheduled, {served:.4f} served on time; "
        f"{sum(s.missed for s in statuses)} missed, {sum(s.late for s in statuses)} late; "
        f"worst p95 lag {worst_p95:.1f} ms"
    )
    print(f"items: {dict(counts)}")
    print(f"gateway process: {cpu_pct:.1f} % of one core, peak RSS {rss_mb:.1f} MB")
    if sim0 is not None and sim1 is not None:
        print(f"(simulator process: {100.0 * (sim1 - sim0) / wall:.1f} % of one core, not counted)")
    print("reference points quoted in the issue (run with --floor to measure the floor here):")
    for name, cpu_ref, rss_ref, served_ref in REFERENCES:
        print(f"  {name:<40} cpu {cpu_ref:>8}  rss {rss_ref:>9}  served {served_ref}")
    print(f"RESULT cpu_pct={cpu_pct:.1f} rss_mb={rss_mb:.1f} served={served:.4f} polls={polls}")


if __name__ == "__main__":
    main()
