"""Hourly summaries of each sensor's readings, kept by ingest in the transaction that stores them.

A one-year chart over raw readings has to touch half a million rows per
sensor (measured: 450-720 ms on PostgreSQL, over the 300 ms the dashboard
allows); the same chart from these summaries touches 8,760.  Each row holds
what the chart and the QA figures need and what adds up exactly across
hours: counts, min, max, the sum of the ok values, and the sum of their
Arrhenius terms, so the mean and the MKT of any run of whole hours are exact
(USP <1079.2>, equal weights, as the raw path weighs them).

Rows are added to only for readings that ingest newly stored (the seqs
``insert_new`` returns), so a batch sent twice counts once.  Hours are keyed
by the reading's time as the series selects it: the clock-corrected time
where the cloud has one (a Pi that booted without NTP stamps 1970), else the
gateway's ``ts``.  A correction that arrives after its readings moves them
to other hours, and min and max cannot be subtracted, so the hours on both
sides are recomputed from the readings (:func:`recompute`).  A summary is
derived data: it is updated in place (readings never are), and
:func:`rebuild` recomputes every row from the readings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table, func, text
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db import models
from coldgate.contract.items import Reading
from coldgate.gateway.rules.mkt import DH_R_K, KELVIN

__all__ = ["HOUR_MS", "MIN_KELVIN", "TO_CELSIUS", "add", "add_from", "deltas", "rebuild", "recompute"]

HOUR_MS = 3_600_000

#: A temperature in these units as °C, for the Arrhenius term; other units get no term.
TO_CELSIUS = {
    "CEL": lambda v: v,
    "FAH": lambda v: (v - 32.0) * 5.0 / 9.0,
    "KEL": lambda v: v - KELVIN,
}


#: Below this no cold chain has a temperature (liquid nitrogen is 77 K), and the term would underflow
#: (PostgreSQL's exp() raises then): such a reading leaves its hour's MKT unknown rather than wrong.
MIN_KELVIN = 50.0


def _arrhenius(reading: Reading) -> float | None:
    to_celsius = TO_CELSIUS.get(str(reading.unit))
    if reading.quantity != "temperature" or to_celsius is None or reading.value is None:
        return None
    kelvin = to_celsius(reading.value) + KELVIN
    return math.exp(-DH_R_K / kelvin) if kelvin >= MIN_KELVIN else None


def deltas(
    gateway: str, readings: Iterable[Reading], corrected: Mapping[int, int] | None = None
) -> list[dict[str, Any]]:
    """What ``readings`` add to each (sensor, quantity, hour), sorted by key so that two transactions
    updating the same hours lock them in one order; ``corrected`` maps a seq to its corrected time."""
    corrected = corrected or {}
    sums: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in readings:
        key = (r.sensor, str(r.quantity), corrected.get(r.seq, r.ts) // HOUR_MS * HOUR_MS)
        row = sums.get(key)
        if row is None:
            row = sums[key] = {
                "gateway": gateway, "sensor": key[0], "quantity": key[1], "hour": key[2], "count": 0,
                "ok_count": 0, "min": None, "max": None, "sum": 0.0, "arrhenius": None, "_terms": [],
            }  # fmt: skip
        row["count"] += 1
        if r.quality != "ok" or r.value is None:
            continue
        row["ok_count"] += 1
        row["min"] = r.value if row["min"] is None else min(row["min"], r.value)
        row["max"] = r.value if row["max"] is None else max(row["max"], r.value)
        row["sum"] += r.value
        row["_terms"].append(_arrhenius(r))
    for row in sums.values():
        terms = row.pop("_terms")
        # An hour's MKT term is exact only if every ok reading in it had one.
        row["arrhenius"] = math.fsum(terms) if terms and None not in terms else None
    return [sums[key] for key in sorted(sums)]


def add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` (from :func:`deltas`) to the summaries: one statement for a whole batch."""
    if not rows:
        return
    table: Table = models.ReadingHour.__table__  # type: ignore[assignment]
    postgres = conn.dialect.name == "postgresql"
    insert = (postgresql.insert if postgres else sqlite.insert)(table)
    old, new = table.c, insert.excluded
    lesser = func.least if postgres else func.min  # SQLite's two-argument min() is the scalar one
    greater = func.greatest if postgres else func.max

    def either(a: Any, b: Any, pick: Any) -> Any:
        # Both dialects: a null (an hour with no ok reading yet) gives way to the other side.
        return pick(func.coalesce(a, b), func.coalesce(b, a))

    # An MKT term known on one side only is not a sum of the hour: it becomes unknown (null), unless
    # the other side had no ok reading to need one.
    arrhenius = text(
        "CASE WHEN reading_hours.ok_count = 0 THEN excluded.arrhenius "
        "WHEN excluded.ok_count = 0 THEN reading_hours.arrhenius "
        "ELSE reading_hours.arrhenius + excluded.arrhenius END"
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[old.gateway, old.sensor, old.quantity, old.hour],
        set_={
            "count": old.count + new.count,
            "ok_count": old.ok_count + new.ok_count,
            "min": either(old.min, new.min, lesser),
            "max": either(old.max, new.max, greater),
            "sum": old.sum + new.sum,
            "arrhenius": arrhenius,
        },
    )
    conn.execute(stmt, rows)


#: Each reading's share of its hour, from a relation with the columns of ``readings``: ``k`` is the
#: temperature in kelvin where the unit gives one, ``term`` its Arrhenius term where it has one.
_TERMS = f"""
    SELECT gateway, sensor, quantity, (t / {HOUR_MS}) * {HOUR_MS} AS hour,
           CASE WHEN quality = 'ok' AND value IS NOT NULL THEN 1 ELSE 0 END AS ok,
           CASE WHEN quality = 'ok' THEN value END AS ok_value,
           CASE WHEN quality = 'ok' AND quantity = 'temperature' AND k >= {MIN_KELVIN}
                THEN exp(-{DH_R_K} / k) END AS term
    FROM (
        SELECT gateway, sensor, quantity, coalesce(ts_corrected, ts) AS t, quality, value,
               CASE unit WHEN 'CEL' THEN value + {KELVIN}
                         WHEN 'FAH' THEN (value - 32.0) * 5.0 / 9.0 + {KELVIN}
                         WHEN 'KEL' THEN value END AS k
        FROM {{source}}
    ) AS r
"""

#: The summaries of the readings in ``{source}`` (migration 0012 runs the same sums).
_SUMS = f"""
INSERT INTO reading_hours (gateway, sensor, quantity, hour, count, ok_count, min, max, sum, arrhenius)
SELECT gateway, sensor, quantity, hour, count(*), sum(ok), min(ok_value), max(ok_value),
       coalesce(sum(ok_value), 0),
       CASE WHEN sum(ok) = 0 OR sum(ok) > count(term) THEN NULL ELSE sum(term) END
FROM ({_TERMS}) AS s
GROUP BY gateway, sensor, quantity, hour
"""

#: The summaries recomputed from the readings.
_REBUILD = _SUMS.replace("{source}", "readings {where}")

#: What :func:`add` does to an hour that has a row already, in PostgreSQL's words.
_MERGE = """
ON CONFLICT (gateway, sensor, quantity, hour) DO UPDATE SET
    count = h.count + excluded.count,
    ok_count = h.ok_count + excluded.ok_count,
    min = least(coalesce(h.min, excluded.min), coalesce(excluded.min, h.min)),
    max = greatest(coalesce(h.max, excluded.max), coalesce(excluded.max, h.max)),
    sum = h.sum + excluded.sum,
    arrhenius = CASE WHEN h.ok_count = 0 THEN excluded.arrhenius WHEN excluded.ok_count = 0 THEN h.arrhenius
                     ELSE h.arrhenius + excluded.arrhenius END
"""


def add_from(source: str) -> str:
    """PostgreSQL: the statement adding the readings of ``source`` to the summaries, for use as a
    data-modifying CTE beside the insert that stores them, whose ``RETURNING`` is ``source``.

    The sums are those :func:`rebuild` computes, so the running sums and a rebuild agree by
    construction; the hours are locked in key order, as :func:`deltas` sorts them, so two
    transactions adding to the same hours cannot deadlock.  Measured (bench.ingest): the deltas in
    Python and their upsert cost an ingest worker about 5 µs of its CPU per reading, this about 1 µs of
    the database's.  ``source`` needs the columns gateway, sensor, quantity, ts, ts_corrected, value,
    unit and quality.
    """
    sums = _SUMS.replace("{source}", source).replace("INTO reading_hours", "INTO reading_hours AS h", 1)
    return sums + "ORDER BY gateway, sensor, quantity, hour" + _MERGE


def rebuild(conn: Connection, gateway: str | None = None) -> int:
    """Recompute the summaries (of one gateway, or all) from the readings; returns the rows written.

    For data written around ingest (bulk loads, benchmarks) and as the check that the running sums are
    right: a test compares both.  Refused once a month is archived: ``readings`` no longer holds that
    month, so a rebuild would erase its summaries, and after a purge they are all that is left to show
    the month was monitored (``cloud/db/archive.py``, ``purge.py``).
    """
    archived = conn.execute(text("SELECT count(*) FROM reading_archives")).scalar_one()
    if archived:
        raise ValueError(
            f"rebuilding the hourly summaries refused: {archived} month(s) are archived, and their "
            "summaries cannot be recomputed from readings that are packed or purged"
        )
    where = "" if gateway is None else "WHERE gateway = :gateway"
    conn.execute(
        text("DELETE FROM reading_hours" + ("" if gateway is None else " WHERE gateway = :gateway")),
        {"gateway": gateway},
    )
    result = conn.execute(text(_REBUILD.format(where=where)), {"gateway": gateway})
    return result.rowcount


#: One run of whole hours of one sensor's quantity, by the time the series selects readings by.
_RUN = (
    "WHERE gateway = :gateway AND sensor = :sensor AND quantity = :quantity AND ("
    "(ts_corrected IS NULL AND ts >= :lo AND ts < :hi) OR (ts_corrected >= :lo AND ts_corrected < :hi))"
)


def _runs(hours: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted hours as [lo, hi) runs of consecutive hours: an unsynchronised stretch is one or two."""
    runs: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR_MS)
        else:
            runs.append((hour, hour + HOUR_MS))
    return runs


def recompute(conn: Connection, gateway: str, moved: Iterable[tuple[str, str, int]]) -> int:
    """Recompute the hours of ``moved`` (sensor, quantity, epoch ms) from the readings; returns rows
    written.  For readings whose corrected time arrived after them: both the hour they were summed
    in and the hour they belong to are named, and each run of hours is rebuilt in two statements."""
    by_series: dict[tuple[str, str], set[int]] = {}
    for sensor, quantity, ms in moved:
        by_series.setdefault((sensor, quantity), set()).add(ms // HOUR_MS * HOUR_MS)
    written = 0
    for (sensor, quantity), hours in sorted(by_series.items()):
        for lo, hi in _runs(hours):
            params = {"gateway": gateway, "sensor": sensor, "quantity": quantity, "lo": lo, "hi": hi}
            conn.execute(
                text(
                    "DELETE FROM reading_hours WHERE gateway = :gateway AND sensor = :sensor "
                    "AND quantity = :quantity AND hour >= :lo AND hour < :hi"
                ),
                params,
            )
            written += conn.execute(text(_REBUILD.format(where=_RUN)), params).rowcount
    return written
