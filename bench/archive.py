"""What archiving a month of readings saves and costs (``cloud/db/archive.py``), on PostgreSQL.

A month of readings is seeded into its own partition (``--sensors`` sensors, temperature and humidity,
one reading a minute each, as a site's loggers record them; values drift like a cold room's), then:

* bytes a stored reading takes live (the partition's heap, TOAST and indexes) and packed (the packs'
  share of ``reading_packs`` with its index), the issue's "bytes per reading before and after";
* the time the archive takes per million readings (hashing the month twice, packing, dropping);
* the same reads before and after, each as the reports make them (``readings_in``): one sensor's day, one
  sensor's week, and one sensor's whole month (what a monthly record's raw edges and a batch history
  read), p50 over ``--repeats`` runs.

Run from the repository root: ``python -m bench.archive``; the last line is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Engine, select, text

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.db import migrate
from coldgate.cloud.db.archive import archive_month
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.partitions import ensure_partitions, partition_name
from coldgate.cloud.db.selections import readings_in
from tests.rig.postgres import SERVER_DSN, ThrowawayDatabase

MONTH = datetime.date(2025, 1, 1)
START_MS = int(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC).timestamp() * 1000)
DAY_MS = 86_400_000
LATER = datetime.datetime(2026, 12, 7, tzinfo=datetime.UTC)


def seed(engine: Engine, sensors: int, days: int) -> int:
    """One reading a minute per sensor and quantity for ``days`` days of January 2025."""
    with engine.begin() as conn:
        ensure_partitions(conn, MONTH, MONTH)
        conn.execute(
            text(
                "INSERT INTO readings (gateway, stream, seq, ts, boot, mono, synced, sensor, quantity, "
                "value, unit, quality, reason, ts_corrected) "
                "SELECT 'gw' || lpad((s % 10)::text, 2, '0'), '5e2507a5', "
                "       s * 200000 + m * 2 + q, :start + m * 60000, 'b00t', m * 60000, true, "
                "       'cr-t' || lpad(s::text, 3, '0'), "
                "       CASE q WHEN 0 THEN 'temperature' ELSE 'humidity' END, "
                "       CASE q WHEN 0 THEN round((5 + 2 * sin(m / 180.0) + random() * 0.2)::numeric, 1) "
                "              ELSE round((45 + 5 * sin(m / 600.0))::numeric, 1) END, "
                "       CASE q WHEN 0 THEN 'C' ELSE '%RH' END, 'ok', NULL, NULL "
                "FROM generate_series(0, :sensors - 1) AS s, generate_series(0, :minutes - 1) AS m, "
                "     generate_series(0, 1) AS q"
            ),
            {"start": START_MS, "sensors": sensors, "minutes": days * 1440},
        )
        return int(conn.execute(text(f"SELECT count(*) FROM {partition_name(MONTH)}")).scalar_one())


def timed(call: Callable[[], object], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def reads(engine: Engine, repeats: int) -> dict[str, float]:
    """p50 ms of a sensor's day, week and month, as the reports select them."""
    ranges = {"day": (START_MS + 3 * DAY_MS, DAY_MS), "week": (START_MS, 7 * DAY_MS),
              "month": (START_MS, 31 * DAY_MS)}  # fmt: skip
    figures = {}
    with engine.connect() as conn:
        for name, (start, length) in ranges.items():
            query = select(readings_in("gw01", "cr-t001", start, start + length, "temperature"))
            figures[f"{name}_ms"] = timed(lambda q=query: conn.execute(q).all(), repeats)
            figures[f"{name}_rows"] = len(conn.execute(query).all())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--days", type=int, default=4, help="days of January 2025 seeded (at most 31)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    db = ThrowawayDatabase(SERVER_DSN, "postgresql+psycopg://postgres@127.0.0.1:5432")
    try:
        migrate(db.url)
        engine = make_engine(db.url, writer=True)
        started = time.perf_counter()
        readings = seed(engine, args.sensors, min(31, args.days))
        seed_s = time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text("ANALYZE readings"))
        before = reads(engine, args.repeats)
        started = time.perf_counter()
        with engine.begin() as conn:
            done = archive_month(conn, MONTH, now=LATER, actor=Actor("bench"))
        archive_s = time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text("ANALYZE reading_packs"))
        after = reads(engine, args.repeats)
        engine.dispose()
    finally:
        db.drop()
    assert all(before[f"{r}_rows"] == after[f"{r}_rows"] for r in ("day", "week", "month")), (before, after)
    print(
        f"{readings:,} readings seeded in {seed_s:.1f} s; archived in {archive_s:.1f} s "
        f"({archive_s / readings * 1e6:.1f} s per million) into {done.packs:,} packs; bytes a reading "
        f"{done.bytes_per_reading_before:.0f} live, {done.bytes_per_reading_after:.1f} packed "
        f"({done.bytes_before / max(1, done.bytes_after):.1f}x smaller)"
    )
    for name in ("day", "week", "month"):
        print(
            f"one sensor's {name} ({before[f'{name}_rows']:,} readings): p50 "
            f"{before[f'{name}_ms']:.1f} ms live, {after[f'{name}_ms']:.1f} ms packed"
        )
    figures = {
        "readings": readings, "packs": done.packs,
        "bytes_per_reading_live": round(done.bytes_per_reading_before),
        "bytes_per_reading_packed": round(done.bytes_per_reading_after, 1),
        "archive_s_per_million": round(archive_s / readings * 1e6, 1),
        **{f"{k}_live": round(v, 1) for k, v in before.items() if k.endswith("_ms")},
        **{f"{k}_packed": round(v, 1) for k, v in after.items() if k.endswith("_ms")},
        "load1": round(os.getloadavg()[0], 1),
    }  # fmt: skip
    print("RESULT " + " ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
