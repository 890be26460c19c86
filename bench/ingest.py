"""Cloud ingest throughput: Mosquitto → N ingest workers → PostgreSQL / SQLite, until the last ack,
against the database's own ceiling measured in the same run.

Readings are pre-encoded as the gateways' uplinks send them (batches of 500
from four gateways) and published QoS 1 to a private Mosquitto while the
workers run; the clock runs from the first publish to the end-to-end ack of
the last seq of every gateway.  Scenarios: PostgreSQL with one and with two
workers, SQLite with one.  Each worker runs in a process of its own (spawn),
as it would in production, so two workers do not share a GIL; a worker
process builds its own engine and ``IngestWorker`` and sends its statistics
back over a queue.

The ceiling is what PostgreSQL itself takes on this machine, now: the same
readings, already decoded, in the same batches, into a freshly migrated
database (the real schema: partitioned ``readings`` with its indexes and
triggers), one connection, COPY into a temporary table and ``INSERT ...
SELECT ... ON CONFLICT DO NOTHING``, a commit every 64 batches (a worker's
largest group).  The ceiling that ``pg_1w_vs_ceiling`` divides by is the bare
readings insert, because that is the work no ingest can avoid; the machine
is shared and its load moves, so only a ceiling measured minutes apart means
anything.  Two more ceilings say what the rest of ingest's database work
costs: ``keys`` also claims each key in ``item_keys`` (how one seq is stored
once on a partitioned table), ``hours`` also adds the readings to the hourly
summaries in the same statement (``cloud/db/reading_hours.py``).  ``2c`` is the
bare ceiling over two connections at once (two gateways each): how far the
database alone scales on these cores, the bound of two workers.

For each scenario the bench also counts CPU seconds (psutil) of the worker
processes, the PostgreSQL backends of the bench's database, the broker, this
process (publisher and acks), the rest of PostgreSQL (background writers and
other databases) and the whole machine, and samples ``pg_stat_activity``
every 50 ms: whether a worker's backend is executing (db), waiting for the
worker (client: the worker's Python between statements, or COPY data),
waiting for the other worker's locks (lock), for the WAL or the disk (io),
or idle between transactions.  That says what bounds one worker and two.

What bounds it, as measured on the project's 2-core machine (shared with other sessions' work, so
figures move from run to run; the ratios and the CPU per reading move least): one worker's backend
spends about 17 µs of CPU per reading against the bare ceiling's 12 (the ``item_keys`` claim and the
hourly summaries, which exactly-once and the charts need), and the worker itself about 9 µs (COPY
rows, per-batch bookkeeping, MQTT), so a worker runs at about 0.6 of the bare ceiling.  Two workers
and their two backends, the broker and whatever else runs fill both cores (1.8-2.0 of 2 busy): two
workers made 1.55-1.81 times one, the database alone over two connections (``bare_2c``) 1.58-1.64
times one connection; lock waits between the workers stay at 0-4 % of the backends' time.

``--profile`` skips MQTT and runs ``ingest_message`` the way a worker does
(64 messages per transaction, one ``Group``) under cProfile against
PostgreSQL, and splits the time per reading by part.

Run from the repository root (it uses ``tests/rig``): ``python -m bench.ingest``.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import multiprocessing as mp
import os
import pstats
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.contract.codec import decode
from coldgate.contract.downlink import Ack
from coldgate.contract.uplink import Batch
from tests.rig.ingest import announce_message, enrol, reading_batches
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.postgres import ThrowawayDatabase

GATEWAYS = ("gw01", "gw02", "gw03", "gw04")
#: A worker's largest group (``IngestWorker.max_group_messages``): the ceiling commits as often.
GROUP = 64
#: The goals of issue 18.
GOAL_1W_VS_CEILING = 0.6
GOAL_2W_VS_1W = 1.6


def _load1() -> float:
    return os.getloadavg()[0]


def _enrol(url: str) -> None:
    """The bench's gateways are enrolled, as a deployment's are: ingest refuses any other."""
    engine = make_engine(url, writer=True)
    enrol(engine, GATEWAYS)
    engine.dispose()


def worker_process(url: str, broker: str, tag: str, n: int, ready: Any, stop: Any, out: Any) -> None:
    """One ingest worker in its own process: subscribe, say so, ingest until told, report."""
    from coldgate.cloud.ingest.worker import IngestWorker

    engine = make_engine(url, writer=True)
    with engine.connect():  # the backend exists before the clock starts, so its CPU can be counted
        pass
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
            "lock_retries": stats.lock_retries,
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


# -- where the CPU goes ----------------------------------------------------------------------------


#: The bench's own connections to the database it measures, told apart from the workers' by name.
MONITOR = "bench-monitor"
_WORKER_BACKENDS = (
    "SELECT {what} FROM pg_stat_activity WHERE datname = current_database() "
    f"AND backend_type = 'client backend' AND application_name <> '{MONITOR}'"
)


def _cpu_s(pid: int) -> float | None:
    try:
        times = psutil.Process(pid).cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return times.user + times.system


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


class CpuMeter:
    """CPU seconds by part between ``start`` and ``stop``: workers, the database's backends for this
    database, the broker, this process, the rest of PostgreSQL, and the machine as a whole."""

    def __init__(
        self,
        dsn: str | None,
        workers: list[int],
        broker: int | None,
        parts: dict[str, list[int]] | None = None,
    ) -> None:
        """``parts``: more processes to count, by part (``bench.site``: the gateways, the cloud)."""
        self.dsn = dsn
        self.fixed = {"workers": list(workers), "broker": [broker] if broker else [], "bench": [os.getpid()]}
        self.fixed.update(parts or {})
        self._monitor: psycopg.Connection[Any] | None = None
        if dsn is not None:
            self._monitor = psycopg.connect(dsn, autocommit=True, application_name=MONITOR)

    def _backends(self) -> list[int]:
        if self._monitor is None:
            return []
        return [row[0] for row in self._monitor.execute(_WORKER_BACKENDS.format(what="pid")).fetchall()]

    def _sample(self) -> dict[str, dict[int, float]]:
        sample: dict[str, dict[int, float]] = {}
        for part, pids in self.fixed.items():
            sample[part] = {pid: cpu for pid in pids if (cpu := _cpu_s(pid)) is not None}
        backends = set(self._backends())
        sample["pg_backends"] = {pid: cpu for pid in backends if (cpu := _cpu_s(pid)) is not None}
        others: dict[int, float] = {}
        if self._monitor is not None:
            for proc in psutil.process_iter(["name"]):
                if proc.info["name"] == "postgres" and proc.pid not in backends:
                    cpu = _cpu_s(proc.pid)
                    if cpu is not None:
                        others[proc.pid] = cpu
        sample["pg_other"] = others
        sample["machine"] = {0: _machine_busy_s()}
        return sample

    def start(self) -> None:
        self._before = self._sample()
        self._started = time.perf_counter()

    def stop(self) -> dict[str, float]:
        """Cores used by each part over the interval (CPU seconds / wall seconds), and ``others``:
        what the rest of the machine used (other processes, other helpers' work)."""
        after = self._sample()
        seconds = time.perf_counter() - self._started
        cores: dict[str, float] = {}
        for part, pids in after.items():
            before = self._before.get(part, {})
            # A process born during the interval counts whole; one that ended is lost (none should).
            cores[part] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items()) / seconds
        ours = sum(value for part, value in cores.items() if part != "machine")
        cores["others"] = max(0.0, cores["machine"] - ours)
        return cores

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close()


class Activity:
    """What the bench database's backends are doing, sampled from ``pg_stat_activity`` every 50 ms."""

    def __init__(self, dsn: str, interval_s: float = 0.05) -> None:
        self.counts: Counter[str] = Counter()
        self._dsn = dsn
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="activity", daemon=True)

    @staticmethod
    def classify(state: str | None, wait_type: str | None) -> str:
        if state == "idle":
            return "idle"  # between transactions: the worker waits for messages, or acknowledges
        if state == "idle in transaction" or wait_type == "Client":
            return "client"  # the worker's Python between statements, or COPY data on its way
        if wait_type == "Lock":
            return "lock"  # a row or transaction lock the other worker holds
        if wait_type in ("IO", "LWLock", "IPC"):
            return "io"  # WAL flush at commit, buffers, disk
        return "db"

    def _run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True, application_name=MONITOR) as conn:
            while not self._stop.wait(self._interval_s):
                rows = conn.execute(_WORKER_BACKENDS.format(what="state, wait_event_type")).fetchall()
                for state, wait_type in rows:
                    self.counts[self.classify(state, wait_type)] += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, float]:
        """Share of the backends' sampled time in each state."""
        self._stop.set()
        self._thread.join(10)
        total = sum(self.counts.values()) or 1
        return {state: self.counts[state] / total for state in ("db", "client", "lock", "io", "idle")}


def _dsn(database: ThrowawayDatabase | None) -> str | None:
    return None if database is None else database.dsn


def _broker_pid(broker: MosquittoBroker) -> int | None:
    proc = getattr(broker, "_proc", None)
    return None if proc is None else proc.pid


def run(
    label: str,
    url: str,
    workers: int,
    broker: MosquittoBroker,
    messages: list[tuple[str, bytes]],
    per_gw: int,
    database: ThrowawayDatabase | None = None,
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
    meter = CpuMeter(_dsn(database), [proc.pid for proc in procs if proc.pid], _broker_pid(broker))
    activity = Activity(database.dsn) if database is not None else None
    load1 = _load1()
    try:
        meter.start()
        if activity is not None:
            activity.start()
        started = publish_all(broker, f"pub{tag}", messages)
        if not acks.done.wait(3600):
            raise RuntimeError(f"{label}: not every gateway acknowledged: {acks.highest}")
        seconds = acks.done_at - started
        cores = meter.stop()
        shares = activity.stop() if activity is not None else {}
    finally:
        acks.close()
        meter.close()
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
        "lock_retries": sum(s["lock_retries"] for s in stats),
        "refused": sum(s["ahead"] + s["dead_letters"] for s in stats),
        "last_db_error": next((s["last_db_error"] for s in stats if s["last_db_error"]), None),
        "cores": cores,
        "shares": shares,
        "load1": load1,
    }
    per_worker = ", ".join(f"{r:,.0f}" for r in figures["per_worker"])
    print(
        f"{label}: {total:,} readings in {seconds:.2f} s = {figures['readings_per_s']:,.0f} readings/s "
        f"({per_worker} per worker), {figures['commits']} commits, {figures['db_retries']} db retries, "
        f"{figures['lock_retries']} lock retries, load1 {load1:.2f}"
        + (f" (last: {figures['last_db_error']})" if figures["last_db_error"] else "")
    )
    rate = figures["readings_per_s"]
    parts = ", ".join(
        f"{part} {value:.2f} ({value / rate * 1e6:.1f} µs/reading)" for part, value in cores.items()
    )
    print(f"  cores: {parts}")
    if shares:
        print("  backends' time: " + ", ".join(f"{state} {share:.0%}" for state, share in shares.items()))
    return figures


# -- the database's own ceiling ---------------------------------------------------------------------

_COLUMNS = "seq, ts, boot, mono, synced, sensor, quantity, value, unit, quality, reason, ts_corrected"
_STAGE = "ceiling_stage"
_STAGE_DDL = (
    f"CREATE TEMP TABLE {_STAGE} (seq bigint, ts bigint, boot varchar(64), mono bigint, synced boolean, "
    "sensor varchar(64), quantity varchar(32), value double precision, unit varchar(8), quality varchar(16), "
    "reason text, ts_corrected bigint) ON COMMIT DELETE ROWS"
)
_BARE = (
    f"INSERT INTO readings (gateway, stream, {_COLUMNS}) SELECT %(gateway)s, %(stream)s, {_COLUMNS} "
    f"FROM {_STAGE} ON CONFLICT DO NOTHING"
)
_CLAIM = (
    f"claimed AS (INSERT INTO item_keys (gateway, stream, seq, ts) SELECT %(gateway)s, %(stream)s, seq, ts "
    f"FROM {_STAGE} ON CONFLICT DO NOTHING RETURNING seq)"
)
_INSERT_CLAIMED = (
    f"INSERT INTO readings (gateway, stream, {_COLUMNS}) "
    f"SELECT %(gateway)s, %(stream)s, {_COLUMNS.replace('seq,', 's.seq,', 1)} "
    f"FROM {_STAGE} s JOIN claimed c ON c.seq = s.seq"
)
_KEYS = f"WITH {_CLAIM} {_INSERT_CLAIMED}"
#: The summaries as ``reading_hours.rebuild`` sums them, added to in the statement that stores the readings.
_HOURS = f"""
WITH {_CLAIM},
inserted AS ({_INSERT_CLAIMED} RETURNING sensor, quantity, ts, ts_corrected, value, unit, quality)
INSERT INTO reading_hours AS h (gateway, sensor, quantity, hour, count, ok_count, min, max, sum, arrhenius)
SELECT %(gateway)s, sensor, quantity, hour, count(*), sum(ok), min(ok_value), max(ok_value),
       coalesce(sum(ok_value), 0), CASE WHEN sum(ok) = 0 OR sum(ok) > count(term) THEN NULL ELSE sum(term) END
FROM (
    SELECT sensor, quantity, coalesce(ts_corrected, ts) / 3600000 * 3600000 AS hour,
           CASE WHEN quality = 'ok' AND value IS NOT NULL THEN 1 ELSE 0 END AS ok,
           CASE WHEN quality = 'ok' THEN value END AS ok_value,
           CASE WHEN quality = 'ok' AND quantity = 'temperature' AND unit = 'CEL'
                THEN exp(-10000.0 / (value + 273.15)) END AS term
    FROM inserted
) AS r
GROUP BY sensor, quantity, hour ORDER BY sensor, quantity, hour
ON CONFLICT (gateway, sensor, quantity, hour) DO UPDATE SET
    count = h.count + excluded.count, ok_count = h.ok_count + excluded.ok_count,
    min = least(h.min, excluded.min), max = greatest(h.max, excluded.max), sum = h.sum + excluded.sum,
    arrhenius = h.arrhenius + excluded.arrhenius
"""
CEILINGS = {"bare": _BARE, "keys": _KEYS, "hours": _HOURS}

_CPU_LOCK = threading.Lock()

#: One batch as the ceiling stores it: gateway, stream, and the COPY rows.
CeilingBatch = tuple[str, str, list[tuple[Any, ...]]]


def ceiling_batches(messages: Iterable[tuple[str, bytes]]) -> list[CeilingBatch]:
    """The bench's batches decoded once, before any clock runs: the ceiling has no decoding to do."""
    batches = []
    for topic, payload in messages:
        if "/batch" not in topic:
            continue
        batch = decode(payload, Batch, topic)
        rows = [
            (r.seq, r.ts, r.boot, r.mono, r.synced, r.sensor, r.quantity, r.value, r.unit, r.quality,
             r.reason, None)
            for r in batch.items
        ]  # fmt: skip
        batches.append((batch.gateway, batch.stream, rows))
    return batches


def _store(dsn: str, sql: str, batches: list[CeilingBatch], cpu: dict[str, float]) -> None:
    with psycopg.connect(dsn) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        conn.execute(_STAGE_DDL)
        conn.commit()
        backend_before, client_before = _cpu_s(pid) or 0.0, time.thread_time()
        with conn.cursor() as cursor:
            for start in range(0, len(batches), GROUP):
                for gateway, stream, rows in batches[start : start + GROUP]:
                    cursor.execute(f"TRUNCATE {_STAGE}")
                    with cursor.copy(f"COPY {_STAGE} ({_COLUMNS}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                    cursor.execute(sql, {"gateway": gateway, "stream": stream})
                conn.commit()
        with _CPU_LOCK:
            cpu["server"] = cpu.get("server", 0.0) + (_cpu_s(pid) or 0.0) - backend_before
            cpu["client"] = cpu.get("client", 0.0) + time.thread_time() - client_before


def ceiling(kind: str, batches: list[CeilingBatch], connections: int = 1) -> dict[str, Any]:
    """Store ``batches`` the database's fastest way, on a freshly migrated database; readings/s.

    Over two connections each takes whole gateways, so they never wait for each other's rows.
    """
    database = ThrowawayDatabase.on_server()
    try:
        migrate(database.url)
        gateways = sorted({gateway for gateway, _stream, _rows in batches})
        shares = [[b for b in batches if gateways.index(b[0]) % connections == n] for n in range(connections)]
        cpu: dict[str, float] = {}
        load1 = _load1()
        started = time.perf_counter()
        threads = [
            threading.Thread(target=_store, args=(database.dsn, CEILINGS[kind], share, cpu))
            for share in shares
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        with psycopg.connect(database.dsn) as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]  # type: ignore[index]
    finally:
        database.drop()
    name = kind + (f"_{connections}c" if connections > 1 else "")
    figures = {
        "name": name,
        "readings_per_s": stored / seconds,
        "client_us": cpu["client"] / stored * 1e6,
        "server_us": cpu["server"] / stored * 1e6,
        "load1": load1,
    }
    print(
        f"ceiling {name}: {stored:,} readings in {seconds:.2f} s = "
        f"{figures['readings_per_s']:,.0f} readings/s, "
        f"client {figures['client_us']:.1f} µs/reading, backend {figures['server_us']:.1f} µs/reading, "
        f"load1 {load1:.2f}"
    )
    return figures


# -- where the time goes ----------------------------------------------------------------------------

#: (what, module file, function) whose cumulative time is reported per reading.
PROFILE_PARTS = [
    ("decode (contract.codec)", "contract/codec.py", "decode"),
    ("insert_new total (keys, readings, summaries)", "cloud/db/writes.py", "insert_new"),
    ("COPY and claim-and-insert", "cloud/db/writes.py", "_copy_with"),
    ("hourly summaries (Python deltas)", "cloud/db/reading_hours.py", "deltas"),
    ("hourly summaries (upsert)", "cloud/db/reading_hours.py", "add"),
    ("advance_coverage", "cloud/ingest/coverage.py", "advance_coverage"),
    ("touch_gateway", "cloud/ingest/registry.py", "touch_gateway"),
    ("note_sensors", "cloud/ingest/registry.py", "note_sensors"),
    ("correct_batch", "cloud/ingest/clock_correction.py", "correct_batch"),
    ("sequence window", "cloud/ingest/message.py", "_ahead_of_window"),
    ("enrolment", "cloud/identity/enrolment.py", "admission"),
    ("group finish (coverage, acks)", "cloud/ingest/group.py", "finish"),
    ("commit", "sqlalchemy/engine/base.py", "commit"),
    ("ingest_message total", "cloud/ingest/message.py", "ingest_message"),
]


def profile(url: str, messages: list[tuple[str, bytes]], group: int) -> dict[str, float]:
    """``ingest_message`` as a worker calls it (one ``Group`` per transaction), under cProfile."""
    from coldgate.cloud.ingest.group import Group, gateway_of
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
            state = Group()
            for topic, payload in sorted(messages[i : i + group], key=lambda m: gateway_of(m[0])):
                ingest_message(conn, topic, payload, now, group=state)
            state.finish(conn, now)
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


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=200_000, help="per scenario, over 4 gateways")
    parser.add_argument("--batch", type=int, default=500, help="readings per batch (the uplink's default)")
    parser.add_argument("--scenarios", default="pg1,pg2,sqlite1", help="any of pg1, pg2, sqlite1")
    parser.add_argument(
        "--ceilings",
        default="keys,hours,bare_2c,bare",
        help="any of bare, keys, hours, bare_2c (or none), in this order: bare runs just before pg1",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="ceilings and scenarios again, interleaved; medians reported"
    )
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
            parts = profile(database.url, messages, group=GROUP)
        finally:
            database.drop()
        keys = " ".join(
            f"{what.split(' (')[0].replace(' ', '_').replace(',', '').lower()}_us={us:.1f}"
            for what, us in parts.items()
        )
        print(f"RESULT load1={_load1():.2f} {keys}")
        return

    batches = ceiling_batches(messages)
    ceilings: dict[str, list[dict[str, Any]]] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            for _round in range(args.rounds):
                for kind in [k for k in args.ceilings.split(",") if k and k != "none"]:
                    name, _, conns = kind.partition("_")
                    figures = ceiling(name, batches, int(conns[:-1]) if conns else 1)
                    ceilings.setdefault(kind, []).append(figures)
                for scenario in args.scenarios.split(","):
                    if scenario.startswith("pg"):
                        database = ThrowawayDatabase.on_server()
                        try:
                            figures = run(
                                scenario, database.url, int(scenario[2:]), broker, messages, per_gw, database
                            )
                        finally:
                            database.drop()
                    elif scenario == "sqlite1":
                        url = f"sqlite:///{Path(tmp) / f'cloud{_round}.sqlite3'}"
                        figures = run(scenario, url, 1, broker, messages, per_gw)
                    else:
                        raise SystemExit(f"unknown scenario {scenario!r}")
                    results.setdefault(scenario, []).append(figures)
        finally:
            broker.stop()

    keys = [f"readings={args.readings}", f"rounds={args.rounds}", f"load1={_load1():.2f}"]
    for kind, runs in ceilings.items():
        keys.append(f"ceiling_{kind}_readings_per_s={_median([f['readings_per_s'] for f in runs]):.0f}")
        keys.append(f"ceiling_{kind}_backend_us={_median([f['server_us'] for f in runs]):.1f}")
    for scenario, runs in results.items():
        name = {"pg1": "pg_1w", "pg2": "pg_2w", "sqlite1": "sqlite_1w"}[scenario]
        keys.append(f"{name}_readings_per_s={_median([f['readings_per_s'] for f in runs]):.0f}")
        keys.append(f"{name}_per_worker_min={_median([min(f['per_worker']) for f in runs]):.0f}")
        keys.append(f"{name}_db_retries={sum(f['db_retries'] for f in runs)}")
        keys.append(f"{name}_lock_retries={sum(f['lock_retries'] for f in runs)}")
        keys.append(f"{name}_refused={sum(f['refused'] for f in runs)}")
        keys.append(f"{name}_load1={_median([f['load1'] for f in runs]):.2f}")
        for part in ("workers", "pg_backends", "broker", "bench", "pg_other", "others", "machine"):
            keys.append(f"{name}_cores_{part}={_median([f['cores'].get(part, 0.0) for f in runs]):.2f}")
        for part in ("workers", "pg_backends"):
            per_reading = [f["cores"].get(part, 0.0) / f["readings_per_s"] * 1e6 for f in runs]
            keys.append(f"{name}_{part}_us_per_reading={_median(per_reading):.1f}")
        for state in ("db", "client", "lock", "io", "idle"):
            shares = [f["shares"][state] for f in runs if f["shares"]]
            if shares:
                keys.append(f"{name}_backend_{state}_share={_median(shares):.2f}")
    if "pg1" in results and "bare" in ceilings:
        # Each round's worker against the ceiling measured minutes before it, then the median.
        ratios = [
            w["readings_per_s"] / c["readings_per_s"]
            for w, c in zip(results["pg1"], ceilings["bare"], strict=False)
        ]
        ratio = _median(ratios)
        keys.append(f"pg_1w_vs_ceiling={ratio:.2f}")
        keys.append(f"pg_1w_vs_ceiling_goal={GOAL_1W_VS_CEILING}")
        keys.append(f"pg_1w_vs_ceiling_met={'yes' if ratio >= GOAL_1W_VS_CEILING else 'no'}")
        for kind in ("keys", "hours"):
            if kind in ceilings:
                ratios = [
                    w["readings_per_s"] / c["readings_per_s"]
                    for w, c in zip(results["pg1"], ceilings[kind], strict=False)
                ]
                keys.append(f"pg_1w_vs_ceiling_{kind}={_median(ratios):.2f}")
    if "pg1" in results and "pg2" in results:
        ratios = [
            two["readings_per_s"] / one["readings_per_s"]
            for one, two in zip(results["pg1"], results["pg2"], strict=True)
        ]
        ratio = _median(ratios)
        keys.append(f"pg_2w_vs_1w={ratio:.2f}")
        keys.append(f"pg_2w_vs_1w_goal={GOAL_2W_VS_1W}")
        keys.append(f"pg_2w_vs_1w_met={'yes' if ratio >= GOAL_2W_VS_1W else 'no'}")
    if "bare" in ceilings and "bare_2c" in ceilings:
        ratios = [
            two["readings_per_s"] / one["readings_per_s"]
            for one, two in zip(ceilings["bare"], ceilings["bare_2c"], strict=True)
        ]
        keys.append(f"ceiling_2c_vs_1c={_median(ratios):.2f}")
    print("RESULT " + " ".join(keys))


if __name__ == "__main__":
    main()
