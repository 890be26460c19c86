"""The whole path under load: N gateways → Mosquitto → the cloud's ingest → PostgreSQL, with people reading.

Each of the N gateways is the real gateway service (``GatewayService``, as ``coldgate gateway run``) in a
process of its own, as on its own Pi: it polls ``--sensors`` Modbus TCP loggers every ``--interval``
seconds from the simulator (one ``coldgate sim modbus`` process serves every site's loggers) and guards a
dock door with the simulator's LLRP reader, through which a pallet of 24 cases passes every
``--pass-every`` seconds (the readers run in this process).  The cloud is the real service
(``CloudService``, as ``coldgate cloud run``) in a process of its own on a throwaway PostgreSQL database,
with its ingest workers, binding job and scheduler; a QA person's token reads, once a second during the
window, the site overview (``GET /overview``) and the batch history of a lot received and put away the day
before (``tests/rig/history_world.py``: three rooms, 7 h of readings, an excursion and a gap), both over
HTTP.

Figures, after a warm-up, over ``--window`` seconds:

* readings/s stored end to end (rows whose poll time falls in the window) against the rate offered;
* poll → row committed, p50 and p99: a reading's time is the gateway's poll time, its commit the moment the
  cloud's acknowledgement covering its sequence number reaches a listener on the broker (the cloud acks only
  after its transaction commits, so this is the commit plus one broker hop);
* p95 of the overview and of the batch history, in ms;
* the load average, since the gateways, broker, cloud and database share this machine's cores.

``python -m bench.site`` runs N = 1, 10 and 50 (``--gateways 1,10``  for fewer).  Run from the repository
root (it uses ``tests/rig``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import text

from bench.ingest import CpuMeter, _broker_pid
from bench.outbox import percentile
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.contract.codec import decode
from coldgate.contract.downlink import Ack
from coldgate.contract.topics import ACK, PREFIX
from coldgate.simulator.llrp import LlrpReader
from coldgate.simulator.llrp.reader import LlrpReaderThread
from coldgate.simulator.rfid_scenarios import pallet_pass
from tests.rig.custody_world import GTIN
from tests.rig.history_world import history_world
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import person
from tests.rig.ports import free_port
from tests.rig.postgres import SERVER_DSN, ThrowawayDatabase
from tests.rig.site_world import DoorPasses

SITE = "bench-site"
MAX_UNITS = 247
#: Readings per poll of a logger: temperature and humidity (both of the simulator's register maps).
QUANTITIES = 2
#: The lot of ``history_world``: received into CR1, put away in CR2 and CR3, partly dispatched.
LOT = "L1"
#: Goals of the issue are relative to this machine's load; these are the page budgets of the dashboard.
OVERVIEW_GOAL_MS = 200
HISTORY_GOAL_MS = 1000


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gateway_document(index: int, args: argparse.Namespace, modbus_port: int, reader_port: int,
                     broker: str, data_dir: str) -> dict[str, Any]:  # fmt: skip
    """The gateway.toml of site ``index``: its loggers on one Modbus TCP gateway, its dock reader."""
    first = index * args.sensors
    return {
        "gateway": {"id": gateway_id(index), "site": SITE, "data_dir": data_dir},
        "modbus_lines": [
            {"id": "tcp", "transport": "tcp", "host": "127.0.0.1", "port": modbus_port, "timeout_s": 1.0}
        ],
        "temperature_classes": [{"name": "2-8C", "low": 2.0, "high": 8.0, "alarm_delay_s": 60.0}],
        "zones": [{"id": "cr1", "temperature_class": "2-8C", "description": "cold room"}],
        "sensors": [
            {
                "source": "modbus",
                "id": f"t{n:02d}",
                "line": "tcp",
                "unit": unit_of(first + n),
                "profile": "xy-md02" if unit_of(first + n) % 2 else "rs485-th-holding",
                "interval_s": args.interval,
                "timeout_s": 0.3,
                "retries": 1,
                "zone": "cr1",
            }
            for n in range(args.sensors)
        ],
        "readers": [
            {
                "id": "portal",
                "host": "127.0.0.1",
                "port": reader_port,
                "door": "dock-1",
                "outside_antennas": [1],
                "inside_antennas": [2],
                "keepalive_s": 5,
            }
        ],
        "uplink": {"broker": broker, "heartbeat_s": 10, "ack_timeout_s": 10},
    }


def gateway_id(index: int) -> str:
    """Not the rig's ``gwNN``: those are enrolled for the batch history's site."""
    return f"pi{index:02d}"


def unit_of(k: int) -> int:
    """The simulator's logger for a site's ``k``-th sensor: the simulator serves at most 247 (Modbus unit
    ids), so beyond that sites share loggers, as polling costs the same."""
    return k % MAX_UNITS + 1


def gateway_process(document: dict[str, Any], stop: Any) -> None:
    """One site's Pi: the real gateway service until told to stop."""
    from coldgate.gateway.config_load import gateway_config_from_document
    from coldgate.gateway.service import GatewayService

    config = gateway_config_from_document(document, document["gateway"]["id"])

    async def run() -> None:
        stopping = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.2)
            stopping.set()

        watcher = asyncio.create_task(watch())
        await GatewayService(config).run(stopping)
        await watcher

    asyncio.run(run())


def cloud_process(url: str, broker: str, api_port: int, workers: int, ready: Any, stop: Any) -> None:
    """The cloud as ``coldgate cloud run`` runs it."""
    from coldgate.cloud.config import cloud_config_from_document
    from coldgate.cloud.service import CloudService

    config = cloud_config_from_document({
        "database": {"url": url},
        "mqtt": {"broker": broker, "workers": workers, "client_id": "bench-cloud"},
        "api": {"host": "127.0.0.1", "port": api_port},
        "gateways": {"heartbeat_timeout_s": 60},
    }, "bench")  # fmt: skip
    service = CloudService(config).start()
    ready.set()
    try:
        stop.wait()
    finally:
        service.stop()


class AckListener:
    """Every acknowledgement the cloud sends, with the moment it arrived."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.acks: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-acks",
                                   protocol=MQTTProtocolVersion.MQTTv5)  # fmt: skip
        self._client.on_message = self._heard
        self._client.connect(broker.host, broker.port)
        self._client.subscribe(f"{PREFIX}/{SITE}/+/{ACK.direction}/{ACK.name}", qos=1)
        self._client.loop_start()

    def _heard(self, client: Any, userdata: Any, message: Any) -> None:
        ack = decode(message.payload, Ack)
        self.acks[ack.gateway, ack.stream].append((ack.seq, time.time()))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()

    def committed_at(self, gateway: str, stream: str, seq: int) -> float | None:
        """When the first ack covering ``seq`` arrived (acks are cumulative and arrive in order)."""
        for acked, at in self.acks.get((gateway, stream), ()):
            if acked >= seq:
                return at
        return None


class Readers:
    """People at their screens: the overview and a batch history, once a second each, timed."""

    def __init__(self, api: str, token: str) -> None:
        self._api, self._token = api, token
        self.overview_ms: list[float] = []
        self.history_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _get(self, path: str) -> float:
        request = urllib.request.Request(self._api + path, headers={"Authorization": f"Bearer {self._token}"})
        start = time.perf_counter()
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        json.loads(body)  # a whole answer, not an error page
        return elapsed

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.overview_ms.append(self._get(f"/overview?site={SITE}"))
            self.history_ms.append(self._get(f"/lots/{GTIN}/{LOT}/history"))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def drive_passes(doors: list[DoorPasses], every_s: float, stop: threading.Event) -> None:
    """A pallet of 24 cases through every door in turn, one door every ``every_s / len(doors)`` s."""
    n = 0
    while not stop.is_set():
        door = doors[n % len(doors)]
        door.drive(pallet_pass("in", cases=24, speed_m_s=2.0, seed=n, first_serial=1000 + 24 * n), 120)
        n += 1
        stop.wait(every_s / len(doors))


def _stored(engine: Any, start_ms: int, end_ms: int) -> int:
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM readings WHERE ts >= :a AND ts < :b")
        return int(conn.execute(query, {"a": start_ms, "b": end_ms}).scalar_one())


def settle(engine: Any, start_ms: int, end_ms: int, quiet_s: float) -> float:
    """Wait until the window's readings stop arriving (none new for ``quiet_s``, at most 300 s); return how
    long after the window's end the last of them was stored: how far behind the cloud ran."""
    last_count, last_change = _stored(engine, start_ms, end_ms), time.time()
    while time.time() - last_change < quiet_s and time.time() * 1000 - end_ms < 300_000:
        time.sleep(1.0)
        count = _stored(engine, start_ms, end_ms)
        if count != last_count:
            last_count, last_change = count, time.time()
    return max(0.0, last_change - end_ms / 1000)


def measure(n: int, args: argparse.Namespace, broker: MosquittoBroker, modbus_port: int,
            tmp: Path) -> dict[str, float]:  # fmt: skip
    """One run with ``n`` gateways on a fresh database."""
    ctx = mp.get_context("spawn")
    db = ThrowawayDatabase(SERVER_DSN, "postgresql+psycopg://postgres@127.0.0.1:5432")
    try:
        migrate(db.url)
        engine = make_engine(db.url, writer=True)
        enrol(engine)  # the rig's gateways, of the batch history's site
        enrol(engine, [gateway_id(i) for i in range(n)], site=SITE)
        history_world(engine)  # gw01's rooms, documents and readings of 1 December 2026 (site1)
        _, token = person(engine, "quinn", ("qa",))
        api_port = free_port()
        ready, stop = ctx.Event(), ctx.Event()
        cloud = ctx.Process(
            target=cloud_process, args=(db.url, broker.url, api_port, args.workers, ready, stop)
        )
        cloud.start()
        if not ready.wait(120):
            raise RuntimeError("the cloud did not start")
        doors = [DoorPasses() for _ in range(n)]
        readers = [LlrpReaderThread(LlrpReader(door, port=0)).__enter__() for door in doors]
        gateways = [
            ctx.Process(target=gateway_process, args=(gateway_document(
                i, args, modbus_port, readers[i].port, broker.url, str(tmp / f"n{n}" / gateway_id(i))), stop))
            for i in range(n)
        ]  # fmt: skip
        listener = AckListener(broker)
        for process in gateways:
            process.start()
        say(f"N={n}: {n} gateways starting")
        started = time.monotonic()
        while len(listener.acks) < n and time.monotonic() - started < 60 + 5 * n:
            time.sleep(0.5)  # every gateway heard from (a Pi starting takes a second or two of CPU each)
        say(f"N={n}: {len(listener.acks)} gateways acknowledged after {time.monotonic() - started:.0f} s; "
            f"warming up {args.warmup:g} s more")  # fmt: skip
        time.sleep(args.warmup)
        dead = [gateway_id(i) for i, process in enumerate(gateways) if not process.is_alive()]
        if dead or not cloud.is_alive():
            stop.set()
            raise RuntimeError(f"did not survive the warm-up: {', '.join(dead) or 'the cloud'} (see above)")
        people = Readers(f"http://127.0.0.1:{api_port}", token)
        passing = threading.Event()
        driver = threading.Thread(target=drive_passes, args=(doors, args.pass_every, passing), daemon=True)
        driver.start()
        people.start()
        meter = CpuMeter(db.dsn, [], _broker_pid(broker), parts={
            "gateways": [p.pid for p in gateways if p.pid], "cloud": [cloud.pid] if cloud.pid else [],
        })  # fmt: skip
        meter.start()
        load_before = os.getloadavg()[0]
        start_ms = int(time.time() * 1000)
        time.sleep(args.window)
        end_ms = int(time.time() * 1000)
        cores = meter.stop()
        meter.close()
        load = max(load_before, os.getloadavg()[0])
        people.stop()
        passing.set()
        behind_s = settle(engine, start_ms, end_ms, args.settle)
        stop.set()
        for process in gateways:
            process.join(60)
        listener.close()
        cloud.join(120)
        driver.join(120)
        for reader in readers:
            reader.__exit__(None, None, None)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT gateway, stream, seq, ts FROM readings WHERE ts >= :a AND ts < :b"),
                {"a": start_ms, "b": end_ms},
            ).all()
            movements = conn.execute(
                text("SELECT count(*) FROM edge_items WHERE kind = 'movement' AND ts >= :a AND ts < :b"),
                {"a": start_ms, "b": end_ms},
            ).scalar_one()
        engine.dispose()
    finally:
        db.drop()
    latencies = []
    for gateway, stream, seq, ts in rows:
        at = listener.committed_at(gateway, stream, seq)
        if at is not None:
            latencies.append(at * 1000 - ts)
    offered = n * args.sensors * QUANTITIES / args.interval
    window = (end_ms - start_ms) / 1000
    return {
        "offered_per_s": offered,
        "behind_s": behind_s,
        "stored_per_s": len(rows) / window,
        "acked_fraction": len(latencies) / max(1, len(rows)),
        "poll_to_commit_p50_ms": percentile(latencies, 50),
        "poll_to_commit_p99_ms": percentile(latencies, 99),
        "overview_p95_ms": percentile(people.overview_ms, 95),
        "history_p95_ms": percentile(people.history_ms, 95),
        "queries": len(people.overview_ms),
        "movements": movements,
        # Cores used over the window: the gateways' processes, the cloud's (its workers, API and jobs;
        # not the binding job's child process), its PostgreSQL backends, the broker, this bench (the
        # readers and the people), and everything on the machine.
        **{
            f"cores_{part}": cores.get(part, 0.0)
            for part in ("gateways", "cloud", "pg_backends", "broker", "bench", "machine")
        },
        "load1": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", default="1,10,50", help="the values of N, comma-separated")
    parser.add_argument("--sensors", type=int, default=10, help="loggers per gateway")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a logger's polls")
    parser.add_argument("--workers", type=int, default=2, help="the cloud's ingest workers")
    parser.add_argument("--pass-every", type=float, default=20.0, help="seconds between pallets at a door")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after every gateway was acked")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="after the window, how long nothing new means all is stored"
    )
    args = parser.parse_args()
    sizes = [int(v) for v in args.gateways.split(",")]
    loggers = min(MAX_UNITS, max(sizes) * args.sensors)
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        modbus_port = free_port()
        sim = subprocess.Popen(
            [sys.executable, "-m", "coldgate", "sim", "modbus", "--tcp", f"127.0.0.1:{modbus_port}",
             "--loggers", str(loggers),
             "--scenario", "steady"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            time.sleep(2)
            for n in sizes:
                results[n] = measure(n, args, broker, modbus_port, Path(tmp))
                f = results[n]
                say(
                    f"N={n}: {f['stored_per_s']:.0f} readings/s stored of {f['offered_per_s']:.0f} offered, "
                    f"{f['acked_fraction']:.4f} acknowledged; poll→commit p50 "
                    f"{f['poll_to_commit_p50_ms']:.0f} ms, p99 {f['poll_to_commit_p99_ms']:.0f} ms; "
                    f"overview p95 {f['overview_p95_ms']:.0f} ms "
                    f"(goal {OVERVIEW_GOAL_MS}), batch history p95 {f['history_p95_ms']:.0f} ms "
                    f"(goal {HISTORY_GOAL_MS}) over {f['queries']:.0f} requests each; "
                    f"{f['movements']:.0f} movements; last stored {f['behind_s']:.1f} s after the window, "
                    f"load {f['load1']:.1f}; cores: gateways {f['cores_gateways']:.2f}, cloud "
                    f"{f['cores_cloud']:.2f}, its database backends {f['cores_pg_backends']:.2f}, broker "
                    f"{f['cores_broker']:.2f}, readers and people {f['cores_bench']:.2f}, machine "
                    f"{f['cores_machine']:.2f}"
                )
        finally:
            sim.terminate()
            sim.wait(10)
            broker.stop()
    keys = " ".join(
        f"n{n}_{key}={value:.4f}" if key == "acked_fraction" else f"n{n}_{key}={value:.0f}"
        if key != "load1" and not key.startswith("cores_") else f"n{n}_{key}={value:.2f}"
        for n, figures in results.items() for key, value in figures.items()
    )  # fmt: skip
    print(f"RESULT sensors_per_gateway={args.sensors} interval_s={args.interval:g} workers={args.workers} "
          f"window_s={args.window:g} overview_goal_ms={OVERVIEW_GOAL_MS} history_goal_ms={HISTORY_GOAL_MS} "
          f"cpus={os.cpu_count()} {keys}")  # fmt: skip


if __name__ == "__main__":
    main()
