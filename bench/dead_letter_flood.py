"""What a flood of garbage costs the cloud: database growth and an ingest worker's peak memory.

The issue's trial, replayed: 20 random payloads of 5 MB and one of 17 MB
(over the contract's 16 MiB) published QoS 1 on an enrolled gateway's batch
topic to a private Mosquitto, then 300 real readings; one ingest worker in a
process of its own (spawn) on SQLite.  Two runs in the same process tree:

- ``reference``: the limits set as wide as before the bounds existed (every
  message taken whole, no dead-letter budget to speak of): what the trial saw;
- ``shipped``: the defaults of ``[ingest]``.

Printed per run: database file growth, the worker's peak RSS over its RSS
before the flood (``VmHWM``), dead letters kept and dropped.  Goal: the
database grows by at most the budget's bytes and the worker's memory by far
less than the flood.

``python -m bench.dead_letter_flood``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.ingest.dead_letter_budget import Budget
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.contract.topics import batch_topic
from tests.rig.ingest import SITE, enrol, reading_batches
from tests.rig.mosquitto import MosquittoBroker

MB = 1024 * 1024
GATEWAY = "gw01"
REAL_READINGS = 300

LIMITS = {
    "reference": IngestLimits(budget=Budget(rows=10**9, bytes=1 << 40), max_message_bytes=16 * MB),
    "shipped": IngestLimits(),
}


def worker_process(url: str, broker: str, tag: str, run: str, ready: Any, stop: Any, out: Any) -> None:
    """One ingest worker: subscribe, report RSS, ingest until told, report peak RSS and counters."""
    from coldgate.cloud.ingest.worker import IngestWorker

    engine = make_engine(url, writer=True)
    config = CloudMqttConfig(broker=broker, shared_group=f"flood{tag}", client_id=f"flood{tag}")
    worker = IngestWorker(engine, config, 1, limits=LIMITS[run]).start()
    ready.put(_status_kb("VmRSS"))
    stop.wait()
    worker.stop()
    stats = worker.snapshot()
    out.put(
        {
            # VmHWM, not ru_maxrss: a spawned child inherits the parent's ru_maxrss across exec.
            "peak_kb": _status_kb("VmHWM"),
            "end_kb": _status_kb("VmRSS"),
            "messages": stats.messages,
            "dead_letters": stats.dead_letters,
            "dropped": stats.dead_letters_dropped,
            "new_readings": stats.new_readings,
        }
    )
    engine.dispose()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def flood_messages(big: int) -> list[tuple[str, bytes]]:
    topic = batch_topic(SITE, GATEWAY)
    return [(topic, os.urandom(5 * MB)) for _ in range(20)] + [(topic, os.urandom(big))]


def run(label: str, tmp: Path, broker: MosquittoBroker, flood: list[tuple[str, bytes]]) -> dict[str, Any]:
    db = tmp / f"{label}.sqlite3"
    url = f"sqlite:///{db}"
    migrate(url)
    engine = make_engine(url, writer=True)
    enrol(engine, [GATEWAY])
    engine.dispose()
    before = _db_bytes(db)
    ctx = mp.get_context("spawn")
    ready, out, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    tag = f"{label}{time.monotonic_ns() % 10**9}"
    proc = ctx.Process(
        target=worker_process, args=(url, broker.url, tag, label, ready, stop, out), daemon=True
    )
    proc.start()
    rss_before_kb = ready.get(timeout=60)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub{tag}", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    real = list(reading_batches(GATEWAY, REAL_READINGS, 100))
    for topic, payload in [*flood, *real]:
        client.publish(topic, payload, qos=1).wait_for_publish(60)
    client.disconnect()
    client.loop_stop()
    time.sleep(0.5)
    deadline = time.monotonic() + 120
    probe = make_engine(url)
    from sqlalchemy import func, select

    from coldgate.cloud.db.models import Reading

    while time.monotonic() < deadline:
        with probe.connect() as conn:
            if conn.execute(select(func.count()).select_from(Reading)).scalar_one() >= REAL_READINGS:
                break
        time.sleep(0.2)
    probe.dispose()
    stop.set()
    stats = out.get(timeout=60)
    proc.join(30)
    figures = {
        "db_growth_mb": (_db_bytes(db) - before) / MB,
        "rss_growth_mb": (stats["peak_kb"] - rss_before_kb) / 1024,
        "rss_end_mb": (stats["end_kb"] - rss_before_kb) / 1024,
        **stats,
    }
    print(
        f"{label}: database +{figures['db_growth_mb']:.1f} MB, "
        f"worker RSS peak +{figures['rss_growth_mb']:.1f} MB, at the end +{figures['rss_end_mb']:.1f} MB, "
        f"{stats['dead_letters']} refused ({stats['dropped']} only counted), "
        f"{stats['new_readings']} real readings stored"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--big-mb", type=int, default=17, help="size of the last, oversized payload")
    args = parser.parse_args()
    flood = flood_messages(args.big_mb * MB)
    sent_mb = sum(len(p) for _t, p in flood) / MB
    print(f"flood: {len(flood)} payloads, {sent_mb:.0f} MB, then {REAL_READINGS} real readings")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:
            for label in LIMITS:
                results[label] = run(label, Path(tmp), broker, flood)
        finally:
            broker.stop()
    ref, new = results["reference"], results["shipped"]
    print(
        "RESULT "
        f"flood_mb={sent_mb:.0f} "
        f"reference_db_growth_mb={ref['db_growth_mb']:.1f} shipped_db_growth_mb={new['db_growth_mb']:.1f} "
        f"reference_rss_growth_mb={ref['rss_growth_mb']:.1f} "
        f"shipped_rss_growth_mb={new['rss_growth_mb']:.1f} "
        f"shipped_kept={new['dead_letters'] - new['dropped']} shipped_dropped={new['dropped']} "
        f"real_stored={new['new_readings']}"
    )


if __name__ == "__main__":
    main()
