"""What the dashboard costs as data grows: a sensor's chart over 1 year, 30 days and 24 hours, and the
overview of 500 sensors, server time (the query layer the pages and the API share), p50 and p95.

Per dialect, in one run:

- PostgreSQL: ``--sensors`` sensors (50) with ``--days`` (365) of one-minute readings each
  (26 million rows at the defaults), written by ``INSERT ... SELECT generate_series`` straight into
  the partitioned table (the write path is ``bench.ingest``'s subject; this one is the reading), and
  their hourly summaries by ``reading_hours.rebuild`` (ingest keeps them as it stores readings);
  one sensor has a five-minute spike of +12 °C (to 16.5-18.5 °C) in the middle of its range.  500 sensors are
  registered for the overview (the others with one reading each), through ingest.
- SQLite: one sensor-year (525,600 rows), the same measurements.
- References, same run: counting the range's rows on the same index (the least work any answer
  over those rows can do), and for one year the same buckets computed from the readings instead of
  the hourly summaries (what the chart cost before them).
- The 1-year envelope must still show the spike (its bucket's max >= 15 °C): ``spike_seen``.

Goals (issue 13): 1-year chart <= 300 ms and overview of 500 sensors <= 200 ms, p95 over 20 requests.

``python -m bench.dashboard [--sensors N] [--days N] [--requests N] [--dialects postgresql,sqlite]``
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine, text

from bench.dialects import on_each_dialect
from coldgate.cloud.api import queries, queries_overview
from coldgate.cloud.db import migrate, reading_hours
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.partitions import ensure_partitions
from tests.rig.cloud_db import ingest
from tests.rig.ingest import BOOT, batch_message, enrol, reading, status_message

MINUTE = 60_000
DAY = 86_400_000
END = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp() * 1000)
STREAM = "b" * 32
POINTS = 1200  # what the sensor page asks for


def _insert_year(engine: Engine, sensor: str, days: int, spike_at: int | None) -> None:
    """``days`` of one-minute readings of ``sensor`` ending at END, seq from 1_000_000 up."""
    count = days * 1440
    start = END - count * MINUTE
    spike = (
        "" if spike_at is None else f" + CASE WHEN n BETWEEN {spike_at} AND {spike_at + 4} THEN 12 ELSE 0 END"
    )
    columns = "gateway, stream, seq, ts, boot, mono, synced, sensor, quantity, value, unit, quality"
    values = (
        f"'gw01', '{STREAM}', {1_000_000} + n + {count} * {{k}}, {start} + n * {MINUTE}, '{BOOT}', "
        f"n * {MINUTE}, true, '{sensor}', 'temperature', 4.5 + (n % 1440) / 720.0{spike}, 'CEL', 'ok'"
    )
    with engine.begin() as conn:
        k = int(sensor.rsplit("-", 1)[1])
        if conn.dialect.name == "postgresql":
            series = f"generate_series(0::bigint, {count - 1}) AS n"  # bigint: n * 60000 passes 2^31
            sql = f"INSERT INTO readings ({columns}) SELECT {values.format(k=k)} FROM {series}"
        else:
            sql = (
                f"WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < {count - 1}) "
                f"INSERT INTO readings ({columns}) SELECT {values.format(k=k).replace('true', '1')} FROM g"
            )
        conn.execute(text(sql))


def register(engine: Engine, gateway: str, sensors: list[str], ts: int) -> None:
    """The gateway's status and every sensor registered the normal way: one reading each (at ``ts``,
    ``ts + 1``, ...; seqs 1 up on the rig's stream), through ingest."""
    ingest(engine, *status_message(gateway, ts=ts, last_seq=len(sensors)))
    for first in range(0, len(sensors), 250):
        last = min(len(sensors), first + 250)
        batch = [reading(n + 1, sensor=sensors[n], ts=ts + n) for n in range(first, last)]
        ingest(engine, *batch_message(gateway, batch))


def fill(engine: Engine, dialect: str, sensors: int, days: int, registered: int) -> None:
    enrol(engine, ["gw01"])
    with engine.begin() as conn:
        start_day = datetime.datetime.fromtimestamp((END - days * DAY) / 1000, datetime.UTC).date()
        ensure_partitions(conn, start_day, datetime.datetime.fromtimestamp(END / 1000, datetime.UTC).date())
    register(engine, "gw01", [f"s-{n:03d}" for n in range(registered)], END)
    for k in range(sensors):
        _insert_year(engine, f"s-{k:03d}", days, spike_at=(days * 1440) // 2 if k == 0 else None)
    with engine.begin() as conn:
        # The readings went in around ingest, so their hourly summaries are computed as a bulk load's are.
        reading_hours.rebuild(conn)
        conn.execute(text("ANALYZE"))


def chart(conn: Connection, gateway: str, sensor: str, start: int, end: int) -> dict[str, object]:
    """A sensor's temperature chart over [start, end) as its page asks for it (``bench.growth`` too)."""
    return queries.reading_series(conn, gateway, sensor, start, end, POINTS, "temperature")


def timed(requests: int, call: Callable[[], object]) -> tuple[float, float]:
    """p50 and p95 in ms of ``requests`` calls (after one warm-up)."""
    call()
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[min(len(seconds) - 1, int(len(seconds) * 0.95))] * 1000


def measure(engine: Engine, dialect: str, days: int, requests: int, registered: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with engine.connect() as conn:
        for name, span in (("1y", min(days, 365) * DAY), ("30d", 30 * DAY), ("24h", DAY)):
            start = END - span
            series: dict[str, object] = {}

            def sensor_chart(start: int = start, series: dict[str, object] = series) -> None:
                series.update(chart(conn, "gw01", "s-000", start, END))

            def reference(start: int = start) -> None:
                conn.execute(
                    text("SELECT count(*) FROM readings WHERE gateway = 'gw01' AND sensor = 's-000' "
                         "AND ts >= :a AND ts < :b"), {"a": start, "b": END},
                ).scalar_one()  # fmt: skip

            figures[f"chart_{name}_p50_ms"], figures[f"chart_{name}_p95_ms"] = timed(requests, sensor_chart)
            _, figures[f"count_{name}_p95_ms"] = timed(requests, reference)
            if name == "1y":

                def from_readings(start: int = start) -> None:
                    queries.reading_buckets(conn, "gw01", "s-000", start, END, POINTS, "temperature")

                _, figures["readings_1y_p95_ms"] = timed(requests, from_readings)
                buckets = series.get("buckets") or []
                figures["spike_seen"] = float(any((b.max or 0) >= 15 for b in buckets))  # type: ignore[attr-defined]
        now = END + DAY

        def overview() -> None:
            queries_overview.overview(conn, site=None, now_ms=now)

        figures["overview_p50_ms"], figures["overview_p95_ms"] = timed(requests, overview)
        figures["overview_sensors"] = float(len(queries.sensors(conn, None, None)))
        figures["rows"] = float(conn.execute(text("SELECT count(*) FROM readings")).scalar_one())
    print(
        f"{dialect}: {figures['rows']:,.0f} readings, {figures['overview_sensors']:.0f} sensors; chart p95 "
        f"1y {figures['chart_1y_p95_ms']:.1f} ms (counting its rows {figures['count_1y_p95_ms']:.1f} ms, "
        f"the same buckets from the readings {figures['readings_1y_p95_ms']:.1f} ms), "
        f"30d {figures['chart_30d_p95_ms']:.1f} ms, 24h {figures['chart_24h_p95_ms']:.1f} ms; overview p95 "
        f"{figures['overview_p95_ms']:.1f} ms; 5-minute spike in the 1-year envelope: "
        f"{'yes' if figures['spike_seen'] else 'NO'}"
    )
    return figures


def run(dialect: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    migrate(url)
    engine = make_engine(url, writer=True)
    try:
        sensors = args.sensors if dialect == "postgresql" else 1
        started = time.perf_counter()
        fill(engine, dialect, sensors, args.days, args.registered)
        print(f"{dialect}: filled in {time.perf_counter() - started:.0f} s")
        return measure(engine, dialect, args.days, args.requests, args.registered)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sensors", type=int, default=50, help="sensors with a year of readings (PostgreSQL)"
    )
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--registered", type=int, default=500, help="sensors on the overview")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--dialects", default="postgresql,sqlite")
    args = parser.parse_args()
    results = on_each_dialect(args.dialects, "dashboard", lambda dialect, url: run(dialect, url, args))
    keys = " ".join(
        f"{d[:2]}_{k}={v:.1f}"
        for d, r in results.items()
        for k, v in r.items()
        if k.endswith("p95_ms") or k in ("spike_seen", "rows")
    )
    print(f"RESULT sensors={args.sensors} days={args.days} {keys}")


if __name__ == "__main__":
    main()
