"""The monthly temperature and humidity record of a storage location (GDP/GSP): pure, no I/O.

What an inspector reads first: for each day of the month, per quantity, the lowest, highest and mean
value measured at the location by the sensors placed there that day, the month's chart against the
location's class limits, the excursions and the gaps in monitoring.  The queries are
``periodic_store.py``'s; everything here is arithmetic over what they hand in, so the figures can be
checked against a direct computation from the readings (``tests/test_monthly_record.py``).

Why pieces (:class:`Piece`) and not readings: a month of one-minute readings is 43,200 rows per sensor
and quantity, so whole hours come from the hourly summaries (``reading_hours``: count, ok count, min,
max, sum, which add up exactly) and only the edges of a placement that falls inside an hour come from
the readings themselves.  Days are UTC days, whole hours, so an hour never straddles two days.  A
mean is the mean of every ok reading of the day (all sensors of the location together, each reading
weighing the same), as the summaries' sums give it exactly.

Times are the clock-corrected ones where the cloud has them (``readings.ts_corrected``), as the hourly
summaries are keyed: a Pi that booted without time stamps 1970 until it synchronised.
"""

from __future__ import annotations

import calendar
import csv
import datetime
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "QUANTITIES",
    "DayRow",
    "Figures",
    "Piece",
    "daily_table",
    "hourly_series",
    "merge_spans",
    "month_window",
    "monthly_csv",
    "split_hours",
    "uncovered",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: The quantities a monthly record reports, in its order.
QUANTITIES = ("temperature", "humidity")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Figures:
    """What adds up across readings and hours: how many readings, how many ok with a value, and the
    min, max and sum of those (the hourly summaries' columns)."""

    count: int = 0
    ok_count: int = 0
    min: float | None = None
    max: float | None = None
    sum: float = 0.0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.count + other.count,
            self.ok_count + other.ok_count,
            _pick(min, self.min, other.min),
            _pick(max, self.max, other.max),
            self.sum + other.sum,
        )

    @property
    def mean(self) -> float | None:
        return self.sum / self.ok_count if self.ok_count else None

    @classmethod
    def of_reading(cls, value: float | None, quality: str) -> Figures:
        """One reading: counted always, its value only when ok (as the summaries count it)."""
        if quality != "ok" or value is None or not math.isfinite(value):
            return cls(count=1)
        return cls(1, 1, value, value, value)


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else choose(a, b)


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a location's data: one sensor's hour summary (``at`` the hour's start) or one reading
    at an edge (``at`` its time), of one quantity."""

    quantity: str
    at: int
    figures: Figures
    sensor: str = ""


@dataclass(frozen=True, slots=True)
class DayRow:
    """One day of one quantity: its figures, how many sensors contributed, and whether a value left
    the limits (min below ``low`` or max above ``high``)."""

    day: datetime.date
    quantity: str
    figures: Figures
    sensors: int
    outside: bool
    limits: tuple[float | None, float | None] = field(default=(None, None))

    @property
    def mean(self) -> float | None:
        return self.figures.mean


def month_window(month: str) -> tuple[int, int]:
    """``"2026-11"`` -> (epoch ms of its first instant, of the next month's), UTC; a ValueError that
    says what is wrong otherwise (``"2026-13"``: no month 13)."""
    found = _MONTH.match(month) if isinstance(month, str) else None
    if found is None:
        raise ValueError(f"{month!r} is not a month: write YYYY-MM, e.g. 2026-11")
    year, number = int(found[1]), int(found[2])
    if not 1 <= number <= 12:
        raise ValueError(f"{month!r}: there is no month {number} (01-12)")
    if year < 1970:
        raise ValueError(f"{month!r}: no record is older than 1970")
    first = datetime.datetime(year, number, 1, tzinfo=datetime.UTC)
    days = calendar.monthrange(year, number)[1]
    return _ms(first), _ms(first + datetime.timedelta(days=days))


def _ms(when: datetime.datetime) -> int:
    return int(when.timestamp()) * 1000


def _day(ms: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC).date()


def split_hours(start: int, end: int) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """``[start, end)`` as (the raw edges, the whole hours between): the hours come from the summaries,
    the edges from the readings (at most two, each under an hour; one under two hours when no whole
    hour fits).  ``None``: no whole hour."""
    first_whole = -(-start // HOUR_MS) * HOUR_MS
    last_whole = end // HOUR_MS * HOUR_MS
    if first_whole >= last_whole:
        return ([(start, end)] if start < end else []), None
    edges = [(a, b) for a, b in ((start, first_whole), (last_whole, end)) if a < b]
    return edges, (first_whole, last_whole)


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, sorted; empty ones dropped."""
    merged: list[tuple[int, int]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def uncovered(start: int, end: int, covered: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` no span of ``covered`` covers: e.g. the month's time with no
    sensor placed at the location."""
    out: list[tuple[int, int]] = []
    cursor = start
    for a, b in merge_spans((max(a, start), min(b, end)) for a, b in covered):
        if a > cursor:
            out.append((cursor, a))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return out


def daily_table(
    start: int,
    end: int,
    pieces: Iterable[Piece],
    limits: dict[str, tuple[float | None, float | None]] | None = None,
    quantities: Sequence[str] = QUANTITIES,
) -> list[DayRow]:
    """One row per UTC day of ``[start, end)`` and quantity of ``quantities`` (days without readings
    too: an empty day is a finding, not a gap in the table), from the ``pieces`` that fall in it."""
    limits = limits or {}
    sums: dict[tuple[int, str], Figures] = {}
    sensors: dict[tuple[int, str], set[str]] = {}
    for piece in pieces:
        if not start <= piece.at < end or piece.quantity not in quantities:
            continue
        key = ((piece.at - start) // DAY_MS, piece.quantity)
        sums[key] = sums.get(key, Figures()) + piece.figures
        sensors.setdefault(key, set()).add(piece.sensor)
    rows = []
    for index in range((end - start + DAY_MS - 1) // DAY_MS):
        for quantity in quantities:
            figures = sums.get((index, quantity), Figures())
            low, high = limits.get(quantity, (None, None))
            outside = (low is not None and figures.min is not None and figures.min < low) or (
                high is not None and figures.max is not None and figures.max > high
            )
            rows.append(
                DayRow(_day(start + index * DAY_MS), quantity, figures,
                       len(sensors.get((index, quantity), ())), outside, (low, high))
            )  # fmt: skip
    return rows


def hourly_series(pieces: Iterable[Piece], quantity: str) -> dict[str, list[tuple[int, float | None]]]:
    """The chart's lines for ``quantity``: per hour, the min, mean and max of all the location's sensors
    together (an hour with readings but no ok value gives None, which breaks the lines there)."""
    hours: dict[int, Figures] = {}
    for piece in pieces:
        if piece.quantity == quantity:
            hour = piece.at // HOUR_MS * HOUR_MS
            hours[hour] = hours.get(hour, Figures()) + piece.figures
    ordered = sorted(hours.items())
    return {
        "max": [(h, f.max) for h, f in ordered],
        "mean": [(h, f.mean) for h, f in ordered],
        "min": [(h, f.min) for h, f in ordered],
    }


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def monthly_csv(record: dict[str, Any]) -> str:
    """The record as CSV (RFC 4180): a header block of ``# key,value`` lines (site, location, month,
    class, limits, time basis, hash), then the daily table, one line per day and quantity."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for key in ("site", "location", "location_name", "month", "temperature_class", "time_basis",
                "generated_at", "content_sha256"):  # fmt: skip
        writer.writerow([f"# {key}", record.get(key, "")])
    for p in record.get("purged_months", ()):  # the raw readings behind the figures are gone: say so
        said = (f"readings of {p['month']} purged by retention on {p['purged_at'][:10]} ({p['rule']}); "
                f"{p['readings']} readings, archive SHA-256 {p['sha256']}; not a monitoring gap; "
                "the daily figures come from the hourly summaries, still held")  # fmt: skip
        writer.writerow(["# purged_by_retention", said])
    writer.writerow(["day", "quantity", "unit", "min", "max", "mean", "readings", "ok_readings", "sensors",
                     "low_limit", "high_limit", "outside_limits"])  # fmt: skip
    for row in record["days"]:
        writer.writerow([
            row["day"], row["quantity"], row["unit"], _number(row["min"]), _number(row["max"]),
            _number(row["mean"]), row["count"], row["ok_count"], row["sensors"],
            _number(row["low"]), _number(row["high"]), "yes" if row["outside"] else "no",
        ])  # fmt: skip
    return out.getvalue()
