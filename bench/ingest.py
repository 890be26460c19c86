"""Cloud ingest throughput: Mosquitto → N ingest workers → PostgreSQL / SQLite, until the last ack.

Readings are pre-encoded as the gateways' uplinks send them (batches of 500
from four gateways) and published QoS 1 to a private Mosquitto while the
workers run; the clock runs from the first publish to the end-to-end ack of
the last seq of every gateway.  Scenarios: PostgreSQL with one and with two
workers, SQLite with one.  Each worker runs in a process of its own (spawn),
as it would in production, so two workers do not share a GIL; a worker
process builds its own engine and ``IngestWorker`` and sends its statistics
back over a queue.

``--profile`` skips MQTT and runs ``ingest_message`` the way a worker does (64
messages per transaction) under cProfile against PostgreSQL, and splits the
time per reading into decode, row building, the two INSERTs, coverage and
the rest: where the issue's 50,000 readings/s per worker must come from.

Run from the repository root (it uses ``tests/rig``): ``python -m bench.ingest``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import multiprocessing as mp
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.contract.codec import decode
from coldgate.contract.downlink import Ack
from tests.rig.ingest import announce_message, enrol, reading_batches
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.postgres import ThrowawayDatabase

GATEWAYS = ("gw01", "gw02", "gw03", "gw04")


def _enrol(url: str) -> None:
    """The bench's gateways are enrolled, as a deployment's are: ingest refuses any other."""
    engine = make_engine(url, writer=True)
    enrol(engine, GATEWAYS)
    engine.dispose()


def worker_process(url: str, broker: str, tag: str, n: int, ready: Any, stop: Any, out: Any) -> None:
    """One ingest worker in its own process: subscribe, say so, ingest until told, report."""
    from coldgate.cloud.ingest.worker import IngestWorker

    engine = make_engine(url, writer=True)
    config = CloudMqttConfig(broker=broker, shared_group=f"bench{tag}", client_id=f"bench{tag}")
    worker = IngestWorker(engine, config, n).start()
    ready.put(n)
    stop.wait()
    worker.stop()
    stats = worker.snapshot()
    out.put(
        {
            "n": n,
            "new_readings": stats.new_readings,
            "batches": stats.batches,
            "commits": stats.commits,
            "duplicates": stats.duplicates,
            "db_retries": stats.db_retries,
            "last_db_error": stats.last_db_error,
            "ahead": stats.ahead,
            "dead_letters": stats.dead_letters,
        }
    )
    engine.dispose()


class Acks:
    """The gateways' side: the highest end-to-end ack per gateway, and when the last one came."""

    def __init__(self, broker: MosquittoBroker, client_id: str, targets: dict[str, int]) -> None:
        self.targets = targets
        self.highest: dict[str, int] = {}
        self.done = threading.Event()
        self.done_at = 0.0
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe("coldgate/v1/+/+/down/ack", qos=1)
        if not self._subscribed.wait(10):
            raise RuntimeError("ack subscriber not subscribed")

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        ack = decode(msg.payload, Ack, msg.topic)
        self.highest[ack.gateway] = max(self.highest.get(ack.gateway, 0), ack.seq)
        if not self.done.is_set() and all(self.highest.get(g, 0) >= t for g, t in self.targets.items()):
            self.done_at = time.perf_counter()
            self.done.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(broker: MosquittoBroker, client_id: str, messages: list[tuple[str, bytes]]) -> float:
    """Publish QoS 1 from one client with a wide window; returns the time of the first publish."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(64)
    client.connect(broker.host, broker.port)
    client.loop_start()
    started = time.perf_counter()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(600)
    client.disconnect()
    client.loop_stop()
    return started


def run(
    label: str,
    url: str,
    workers: int,
    broker: MosquittoBroker,
    messages: list[tuple[str, bytes]],
    per_gw: int,
) -> dict[str, Any]:
    """One scenario on a freshly migrated database; figures from first publish to last ack."""
    migrate(url)
    _enrol(url)
    tag = f"{label}{time.monotonic_ns() % 10**9}"
    ctx = mp.get_context("spawn")
    ready, out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=worker_process, args=(url, broker.url, tag, n, ready, stop, out), daemon=True)
        for n in range(1, workers + 1)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    acks = Acks(broker, f"acks{tag}", {g: per_gw for g in GATEWAYS})
    try:
        started = publish_all(broker, f"pub{tag}", messages)
        if not acks.done.wait(3600):
            raise RuntimeError(f"{label}: not every gateway acknowledged: {acks.highest}")
        seconds = acks.done_at - started
    finally:
        acks.close()
        stop.set()
    stats = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    total = sum(s["new_readings"] for s in stats)
    figures = {
        "label": label,
        "workers": workers,
        "readings": total,
        "seconds": seconds,
        "readings_per_s": total / seconds,
        "per_worker": [s["new_readings"] / seconds for s in sorted(stats, key=lambda s: s["n"])],
        "commits": sum(s["commits"] for s in stats),
        "db_retries": sum(s["db_retries"] for s in stats),
        "refused": sum(s["ahead"] + s["dead_letters"] for s in stats),
        "last_db_error": next((s["last_db_error"] for s in stats if s["last_db_error"]), None),
    }
    per_worker = ", ".join(f"{r:,.0f}" for r in figures["per_worker"])
    print(
        f"{label}: {total:,} readings in {seconds:.2f} s = {figures['readings_per_s']:,.0f} readings/s "
        f"({per_worker} per worker), {figures['commits']} commits, {figures['db_retries']} db retries"
        + (f" (last: {figures['last_db_error']})" if figures["last_db_error"] else "")
    )
    return figures


# -- where the time goes ----------------------------------------------------------------------------

#: (what, module file, function) whose cumulative time is reported per reading.
PROFILE_PARTS = [
    ("decode (contract.codec)", "contract/codec.py", "decode"),
    ("item_row building", "cloud/db/writes.py", "item_row"),
    ("INSERT item_keys", "cloud/db/writes.py", "_claim_keys"),
    ("insert_new total (both INSERTs + rows)", "cloud/db/writes.py", "insert_new"),
    ("psycopg query conversion", "psycopg/_queries.py", "convert"),
    (
        "SQLAlchemy insertmanyvalues batching",
        "sqlalchemy/engine/default.py",
        "_deliver_insertmanyvalues_batches",
    ),
    ("advance_coverage", "cloud/ingest/coverage.py", "advance_coverage"),
    ("touch_gateway", "cloud/ingest/registry.py", "touch_gateway"),
    ("note_sensors", "cloud/ingest/registry.py", "note_sensors"),
    ("correct_batch", "cloud/ingest/clock_correction.py", "correct_batch"),
    ("sequence window", "cloud/ingest/message.py", "_ahead_of_window"),
    ("enrolment", "cloud/identity/enrolment.py", "admission"),
    ("commit", "sqlalchemy/engine/base.py", "commit"),
    ("ingest_message total", "cloud/ingest/message.py", "ingest_message"),
]


def profile(url: str, messages: list[tuple[str, bytes]], group: int) -> dict[str, float]:
    """``ingest_message`` as a worker calls it, under cProfile; microseconds per reading by part."""
    from coldgate.cloud.ingest.message import ingest_message

    migrate(url)
    _enrol(url)
    engine = make_engine(url, writer=True)
    readings = sum(payload.count(b'"kind":"reading"') for _t, payload in messages)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for i in range(0, len(messages), group):
        with engine.begin() as conn:
            now = datetime.datetime.now(datetime.UTC)
            for topic, payload in messages[i : i + group]:
                ingest_message(conn, topic, payload, now)
    profiler.disable()
    seconds = time.perf_counter() - started
    engine.dispose()
    stats = pstats.Stats(profiler)
    cumulative: dict[str, float] = {}
    for (filename, _line, function), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for what, suffix, name in PROFILE_PARTS:
            if function == name and filename.endswith(suffix):
                cumulative[what] = cumulative.get(what, 0.0) + ct
    print(f"\nprofile: {readings:,} readings in {seconds:.2f} s under cProfile ({readings / seconds:,.0f}/s)")
    parts = {}
    for what, _suffix, _name in PROFILE_PARTS:
        us = cumulative.get(what, 0.0) / readings * 1e6
        parts[what] = us
        print(f"  {what:<45} {us:7.1f} µs/reading")
    print("\ntop 25 by internal time:")
    stats.sort_stats("tottime").print_stats(25)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=200_000, help="per scenario, over 4 gateways")
    parser.add_argument("--batch", type=int, default=500, help="readings per batch (the uplink's default)")
    parser.add_argument("--scenarios", default="pg1,pg2,sqlite1", help="any of pg1, pg2, sqlite1")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile ingest_message on PostgreSQL instead"
    )
    args = parser.parse_args()

    per_gw = args.readings // len(GATEWAYS)
    encode_started = time.perf_counter()
    per_gateway = [list(reading_batches(gateway, per_gw, args.batch)) for gateway in GATEWAYS]
    # Four gateways send at once: their batches interleave on the broker, each gateway's in order.
    # Each gateway first announces its backlog (its birth status), as it does at connect.
    announcements = [announce_message(gateway, per_gw) for gateway in GATEWAYS]
    messages = announcements + [m for group in zip(*per_gateway, strict=True) for m in group]
    size = sum(len(p) for _t, p in messages)
    print(
        f"{len(messages)} batches of {args.batch} readings ({size / len(messages) / 1024:.0f} KiB each) "
        f"encoded in {time.perf_counter() - encode_started:.1f} s"
    )

    if args.profile:
        database = ThrowawayDatabase.on_server()
        try:
            parts = profile(database.url, messages, group=64)
        finally:
            database.drop()
        keys = " ".join(
            f"{what.split(' (')[0].replace(' ', '_').lower()}_us={us:.1f}" for what, us in parts.items()
        )
        print(f"RESULT {keys}")
        return

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            for scenario in args.scenarios.split(","):
                if scenario.startswith("pg"):
                    database = ThrowawayDatabase.on_server()
                    try:
                        results[scenario] = run(
                            scenario, database.url, int(scenario[2:]), broker, messages, per_gw
                        )
                    finally:
                        database.drop()
                elif scenario == "sqlite1":
                    url = f"sqlite:///{Path(tmp) / 'cloud.sqlite3'}"
                    results[scenario] = run(scenario, url, 1, broker, messages, per_gw)
                else:
                    raise SystemExit(f"unknown scenario {scenario!r}")
        finally:
            broker.stop()
    keys = []
    for scenario, figures in results.items():
        name = {"pg1": "pg_1w", "pg2": "pg_2w", "sqlite1": "sqlite_1w"}[scenario]
        keys.append(f"{name}_readings_per_s={figures['readings_per_s']:.0f}")
        keys.append(f"{name}_per_worker_min={min(figures['per_worker']):.0f}")
        keys.append(f"{name}_db_retries={figures['db_retries']}")
        keys.append(f"{name}_refused={figures['refused']}")
    if "pg1" in results and "pg2" in results:
        keys.append(
            f"pg_2w_scaling={results['pg2']['readings_per_s'] / results['pg1']['readings_per_s']:.2f}"
        )
    print(f"RESULT readings={args.readings} " + " ".join(keys))


if __name__ == "__main__":
    main()
