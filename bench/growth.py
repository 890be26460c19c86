"""How the users' reads grow with years of data (issue 18, item 5), on PostgreSQL.

One database grown step by step (``--sizes 1,10,50``: millions of readings), the same reads timed at each
size, so the large seed is done once:

- the world of ``bench.recall`` (``seed_world``: the site, rooms RA-RD, ``--sensors`` sensors, lots LR and
  LC with their documents, ``--movements`` bindings) and its events (the excursion in RB, the outage in
  RC), the sensors registered as ingest registers them (``registry.note_sensors``);
- readings by ``recall.fill_readings`` (``INSERT ... SELECT generate_series``), at the rates of its 23-day
  window: the rooms' 8 sensors every minute (temperature and humidity), the others about every 6.5
  minutes.  The first size fills that window (the lot's stay is in it); every further size adds older
  readings before it at the same rates, so 50 M readings are about 3.2 years, 39 monthly partitions.
  Their hourly summaries are recomputed for the new window (``reading_hours.recompute``), then
  ``VACUUM ANALYZE``;
- audit entries grown with the data (one per ``--readings-per-entry`` readings, by ``bench.audit``'s
  ``load_chain``): a busy site's trail grows with its years as its readings do.

Timed at each size (p50 and p95 of ``--repeats`` calls after a warm-up):

- **chart 1y** and **chart 24h**: the sensor page's chart of s-002 (RB) over a year and a day ending with
  the data (``bench.dashboard.chart``: the API's query layer); the day reads the same rows at any size,
  the year more hours of summaries while the data is younger than a year;
- **overview**: ``queries_overview.overview`` of every site (the newest reading of every sensor), and
  beside it the same with each sensor's probe unbounded, as it was before issue 18 (every partition);
- **history**: the batch history of lot LR as JSON (``bench.recall.lot_history_json``);
- **recall**: the recall run of lot LC (``bench.recall.lc_recall_run``);
- **audit verify**: ``audit.log.verify`` of the whole chain (it reads every entry, so it grows with them:
  ``verify_per_s`` is the figure to compare).

Every read but the year's chart and the verify needs the same rows at every size, so its time should not
grow; one that does reads more than it needs.  Bytes per stored reading: ``pg_total_relation_size`` of
every partition of ``readings`` plus ``reading_hours``, over the readings.

``python -m bench.growth [--sizes 1,10,50] [--sensors N] [--repeats N] [--keep | --reuse NAME]``;
progress goes to stderr, the table and the last line ``RESULT key=value ...`` to stdout.  ``--keep``
leaves the database (its name is printed); ``--reuse NAME`` grows and measures it again, from the size
it holds (a smaller size is skipped).  ``load1`` is the 1-minute load average around the timings.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, text

from bench.audit import load_chain
from bench.dashboard import chart, register
from bench.recall import (
    DAY,
    HOUR,
    LC_PRODUCT,
    LR_PRODUCT,
    MINUTE,
    R0,
    R1,
    ROOMS,
    _reused_url,
    fill_readings,
    lc_recall_run,
    lot_history_json,
    say,
    seed_events,
    seed_world,
    sensor_gateway,
    sensor_name,
    timed,
)
from coldgate.cloud.api import queries, queries_overview
from coldgate.cloud.audit.log import verify
from coldgate.cloud.catalog.products import product as catalog_product
from coldgate.cloud.db import migrate, reading_hours
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.partitions import ensure_partitions
from tests.rig.postgres import ThrowawayDatabase

MILLION = 1_000_000
#: The rate of every window: a million readings in recall's 23 days (R0 to R1).
PER_MS = MILLION / (R1 - R0)
#: Seqs of window i start at i * SEQ_STEP (``fill_readings``' seq_base): below 10 M with room for 3 years.
SEQ_STEP = 2_000_000
#: The chart's sensor: s-002 in room RB, a reading a minute.
CHART_SENSOR = 2
#: The table's rows: (key, label).
QUERIES = (
    ("chart_1y", "chart 1 year (s-002)"),
    ("chart_24h", "chart 24 h (s-002)"),
    ("overview", "site overview"),
    ("overview_before", "  before: unbounded probes"),
    ("history", "batch history LR (JSON)"),
    ("recall", "recall run LC"),
    ("verify", "audit verify"),
)
_STATE = "bench_growth"


def _date(ms: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).date()


def _size_name(readings: int) -> str:
    return f"{readings / MILLION:g}m"


def window_start(size: int) -> int:
    """Where the readings of a database of ``size`` readings start (they all end at R1)."""
    return R1 - int(size / PER_MS)


# -- growing ------------------------------------------------------------------------------------------------


def _state(conn: Connection) -> list[Any]:
    """The windows filled so far, oldest size first (a table of the bench's own, in the bench's database)."""
    conn.execute(text(f"CREATE TABLE IF NOT EXISTS {_STATE} (size bigint PRIMARY KEY, lo bigint, "
                      "readings bigint, entries bigint, seed_s double precision)"))  # fmt: skip
    return list(conn.execute(text(f"SELECT * FROM {_STATE} ORDER BY size")))


def seed_base(url: str, engine: Engine, args: argparse.Namespace, oldest: int) -> None:
    """The world of ``bench.recall``, its sensors placed from ``oldest`` and registered."""
    seed_world(url, engine, args.sensors, args.movements, random.Random(args.seed), placed_since=oldest - DAY)
    seed_events(engine)
    by_gateway: dict[str, list[str]] = {}
    for k in range(args.sensors):
        by_gateway.setdefault(sensor_gateway(k), []).append(sensor_name(k))
    for gateway, names in by_gateway.items():
        register(engine, gateway, names, R1 - MINUTE)


def grow(url: str, engine: Engine, size: int, done: list[Any], args: argparse.Namespace) -> dict[str, float]:
    """Add readings (and audit entries) older than what is stored until the database holds ``size``."""
    hi = done[-1].lo if done else R1
    lo = window_start(size)
    stored = sum(row.readings for row in done)
    started = time.perf_counter()
    with engine.begin() as conn:
        ensure_partitions(conn, _date(lo), _date(hi))
    say(f"growing to {size:,} readings: [{_date(lo)}, {_date(hi)})")
    written = fill_readings(url, args.sensors, size - (done[-1].size if done else 0), start=lo, end=hi,
                            seq_base=len(done) * SEQ_STEP)  # fmt: skip
    filled = time.perf_counter() - started
    with engine.begin() as conn:
        if not done:
            reading_hours.rebuild(conn)
        else:
            # Only the new window's hours (and the one it shares with the next): every series, every hour.
            hours = range(lo // HOUR * HOUR, hi + HOUR, HOUR)
            for gateway in sorted({sensor_gateway(k) for k in range(args.sensors)}):
                moved = [(sensor_name(k), quantity, hour)
                         for k in range(args.sensors) if sensor_gateway(k) == gateway
                         for quantity in (("temperature", "humidity") if k < 2 * len(ROOMS)
                                          else ("temperature",))
                         for hour in hours]  # fmt: skip
                reading_hours.recompute(conn, gateway, moved)
    summed = time.perf_counter() - started - filled
    entries = max(1, (size - (done[-1].size if done else 0)) // args.readings_per_entry)
    load_chain(engine, entries)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    took = time.perf_counter() - started
    with engine.begin() as conn:
        row = {"size": size, "lo": lo, "readings": written, "entries": entries, "seed_s": took}
        conn.execute(text(f"INSERT INTO {_STATE} VALUES (:size, :lo, :readings, :entries, :seed_s)"), row)
    say(
        f"grown from {stored:,} by {written:,} readings in {took:.0f} s (readings {filled:.0f} s, "
        f"{written / filled:,.0f}/s; hourly summaries {summed:.0f} s; {entries:,} audit entries; "
        "VACUUM ANALYZE)"
    )
    return {"seed_s": took, "insert_per_s": written / filled}


# -- measuring ----------------------------------------------------------------------------------------------


#: Where a stored reading's bytes go: the partitions' heaps and each of their indexes (partitioned index
#: names, as the models and migrations name them).
PARTS = ("readings_pkey", "ix_readings_sensor_ts", "ix_readings_unsynced", "ix_readings_corrected")


def bytes_per_reading(conn: Connection) -> dict[str, float]:
    """Readings stored; bytes of the readings' partitions (indexes and TOAST included), of the hourly
    summaries, and of each part: the heaps and every index."""
    readings = conn.execute(text("SELECT count(*) FROM readings")).scalar_one()

    def leaves(relation: str, size: str) -> int:
        query = f"SELECT coalesce(sum({size}(relid)), 0) FROM pg_partition_tree('{relation}') WHERE isleaf"
        return int(conn.execute(text(query)).scalar_one())

    found = {
        "readings": float(readings),
        "readings_bytes": float(leaves("readings", "pg_total_relation_size")),
    }
    found["hours_bytes"] = float(
        conn.execute(text("SELECT pg_total_relation_size('reading_hours')")).scalar_one()
    )
    found["heap_bytes"] = float(leaves("readings", "pg_relation_size"))
    for index in PARTS:
        found[f"{index}_bytes"] = float(leaves(index, "pg_relation_size"))
    return found


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    seconds = sorted(seconds)
    return statistics.median(seconds) * 1000, seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] * 1000


def alternating(
    repeats: int, first: Callable[[], Any], second: Callable[[], Any]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """p50 and p95 (ms) of two calls timed in turns, ``repeats`` each after a warm-up of each, the order
    swapped every round."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(repeats):
        for which in (0, 1) if k % 2 == 0 else (1, 0):
            started = time.perf_counter()
            (first, second)[which]()
            times[which].append(time.perf_counter() - started)
    return _percentiles(times[0]), _percentiles(times[1])


def _unbounded(overview: Callable[..., Any], conn: Connection, now_ms: int) -> Any:
    """The overview as it was before issue 18: each sensor's newest reading probed in every partition (a
    bound that prunes none, so the plan is the old Merge Append over them all)."""
    bounded = queries.RECENT_MS
    queries.RECENT_MS = 10**15
    try:
        return overview(conn, site=None, now_ms=now_ms)
    finally:
        queries.RECENT_MS = bounded


def measure(engine: Engine, args: argparse.Namespace) -> dict[str, float]:
    """Every read's p50 and p95 (ms), its calls, and the sizes; keys ``<query>_p50_ms`` and so on."""
    figures: dict[str, float] = {}
    gateway, sensor = sensor_gateway(CHART_SENSOR), sensor_name(CHART_SENSOR)
    load = os.getloadavg()[0]
    with engine.connect() as conn:
        gtin = catalog_product(conn, LR_PRODUCT)["gtin"]
        lc_gtin = catalog_product(conn, LC_PRODUCT)["gtin"]
        calls: dict[str, tuple[int, Callable[[], Any]]] = {
            "chart_1y": (args.repeats, lambda: chart(conn, gateway, sensor, R1 - 365 * DAY, R1)),
            "chart_24h": (args.repeats, lambda: chart(conn, gateway, sensor, R1 - DAY, R1)),
            "history": (args.repeats, lambda: lot_history_json(conn, gtin)),
            "recall": (args.repeats, lambda: lc_recall_run(engine, lc_gtin)),
            "verify": (max(1, args.repeats // 3), lambda: verify(conn)),
        }
        # The overview and its form before issue 18 in turns, so that a change in others' load touches both.
        (o50, o95), (b50, b95) = alternating(
            args.repeats,
            lambda: queries_overview.overview(conn, site=None, now_ms=R1),
            lambda: _unbounded(queries_overview.overview, conn, R1),
        )
        figures.update(overview_p50_ms=o50, overview_p95_ms=o95)
        figures.update(overview_before_p50_ms=b50, overview_before_p95_ms=b95)
        say(f"  overview: p50 {o50:,.0f} ms, p95 {o95:,.0f} ms; unbounded (before) {b50:,.0f}, {b95:,.0f} ms")
        for key, (repeats, call) in calls.items():
            p50, p95, result, runs = timed(repeats, call, args.budget_s)
            figures[f"{key}_p50_ms"], figures[f"{key}_p95_ms"] = p50, p95
            if key == "verify":
                checked, broken = result
                if broken is not None:
                    raise SystemExit(f"the audit chain does not verify: {broken}")
                figures["entries"] = checked
                figures["verify_per_s"] = checked / (p50 / 1000)
            say(f"  {key}: p50 {p50:,.0f} ms, p95 {p95:,.0f} ms ({runs} runs)")
        figures.update(bytes_per_reading(conn))
    readings = figures["readings"]
    figures["bytes_per_reading"] = (figures["readings_bytes"] + figures["hours_bytes"]) / readings
    figures["load1"] = max(load, os.getloadavg()[0])
    return figures


# -- the table ----------------------------------------------------------------------------------------------


#: The width of the table's first column.
LABEL = 36


def table(results: dict[str, dict[str, float]]) -> str:
    sizes = list(results)
    head = f"{'query (p50 / p95 ms)':<{LABEL}}" + "".join(f"{s:>20}" for s in sizes)
    lines = [head, "-" * len(head)]
    for key, label in QUERIES:
        cells = "".join(
            f"{results[s][f'{key}_p50_ms']:>9,.0f} /{results[s][f'{key}_p95_ms']:>9,.0f}" for s in sizes
        )
        lines.append(f"{label:<{LABEL}}{cells}")
    rows = (
        ("readings", lambda f: f"{f['readings']:,.0f}"),
        ("audit entries", lambda f: f"{f['entries']:,.0f}"),
        ("verify entries/s", lambda f: f"{f['verify_per_s']:,.0f}"),
        ("bytes per reading", lambda f: f"{f['bytes_per_reading']:,.0f}"),
        ("  readings' partitions GB", lambda f: f"{f['readings_bytes'] / 1e9:,.2f}"),
        ("  hourly summaries MB", lambda f: f"{f['hours_bytes'] / 1e6:,.1f}"),
        ("  B/reading: heap", lambda f: f"{f['heap_bytes'] / f['readings']:,.0f}"),
        *(
            (f"  B/reading: {index}", lambda f, i=index: f"{f[f'{i}_bytes'] / f['readings']:,.0f}")
            for index in PARTS
        ),
        ("  B/reading: hourly summaries", lambda f: f"{f['hours_bytes'] / f['readings']:,.0f}"),
        ("seed s (this step)", lambda f: f"{f['seed_s']:,.0f}" if "seed_s" in f else "-"),
        ("load1", lambda f: f"{f['load1']:.1f}"),
    )
    for label, cell in rows:
        lines.append(f"{label:<{LABEL}}" + "".join(f"{cell(results[s]):>20}" for s in sizes))
    return "\n".join(lines)


def result_line(results: dict[str, dict[str, float]], total_seed_s: float | None) -> str:
    figures: dict[str, str] = {}
    for size, f in results.items():
        for key, _label in QUERIES:
            figures[f"{key}_{size}_p50_ms"] = f"{f[f'{key}_p50_ms']:.0f}"
            figures[f"{key}_{size}_p95_ms"] = f"{f[f'{key}_p95_ms']:.0f}"
    for size, f in results.items():
        figures[f"readings_{size}"] = f"{f['readings']:.0f}"
        figures[f"bytes_per_reading_{size}"] = f"{f['bytes_per_reading']:.0f}"
        figures[f"verify_per_s_{size}"] = f"{f['verify_per_s']:.0f}"
        figures[f"audit_entries_{size}"] = f"{f['entries']:.0f}"
        for part in ("heap", "hours", *PARTS):
            figures[f"bytes_per_reading_{size}_{part}"] = f"{f[f'{part}_bytes'] / f['readings']:.0f}"
        if "seed_s" in f:
            figures[f"seed_{size}_s"] = f"{f['seed_s']:.0f}"
            figures[f"insert_{size}_per_s"] = f"{f['insert_per_s']:.0f}"
        figures[f"load1_{size}"] = f"{f['load1']:.1f}"
    if total_seed_s is not None:
        figures["seed_total_s"] = f"{total_seed_s:.0f}"
    figures["load1"] = f"{os.getloadavg()[0]:.1f}"
    figures["cpus"] = str(os.cpu_count())
    return "RESULT " + " ".join(f"{k}={v}" for k, v in figures.items())


# -- main ---------------------------------------------------------------------------------------------------


def run(url: str, args: argparse.Namespace, fresh: bool) -> str:
    sizes = sorted(int(float(s) * MILLION) for s in args.sizes.split(","))
    results: dict[str, dict[str, float]] = {}
    migrate(url)
    engine = make_engine(url, writer=True)
    seeded = 0.0
    try:
        with engine.begin() as conn:
            done = _state(conn)
        if fresh or not done:
            started = time.perf_counter()
            seed_base(url, engine, args, min(R0, window_start(sizes[-1])))
            seeded += time.perf_counter() - started
        for size in sizes:
            if done and size < done[-1].size:
                say(f"{size:,} readings: skipped, the database holds {done[-1].size:,}")
                continue
            grown: dict[str, float] = {}
            if not done or size > done[-1].size:
                grown = grow(url, engine, size, done, args)
                seeded += grown["seed_s"]
                with engine.begin() as conn:
                    done = _state(conn)
            say(f"measuring at {size:,} readings")
            results[_size_name(size)] = {**measure(engine, args), **grown}
    finally:
        engine.dispose()
    print()
    print(table(results))
    return result_line(results, seeded if fresh else None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,10,50", help="millions of readings, grown in this order")
    parser.add_argument("--sensors", type=int, default=100, help="sensors (8 in the lot's rooms)")
    parser.add_argument("--movements", type=int, default=200_000, help="bindings (and edge items) stored")
    parser.add_argument("--readings-per-entry", type=int, default=100, help="readings per audit entry grown")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per read (after a warm-up)")
    parser.add_argument(
        "--budget-s", type=float, default=20.0, help="a first call slower is the only one timed"
    )
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--reuse", metavar="NAME", help="grow and measure database NAME (from --keep)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.reuse:
        say(f"reusing database {args.reuse}")
        print(run(_reused_url(args.reuse), args, fresh=False))
        return
    database = ThrowawayDatabase.on_server()
    say(f"database {database.name}")
    try:
        print(run(str(database.url), args, fresh=True))
    finally:
        if args.keep:
            say(f"database kept: python -m bench.growth --reuse {database.name} (drop it when done)")
        else:
            database.drop()
            say("database dropped")


if __name__ == "__main__":
    main()
