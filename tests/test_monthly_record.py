"""The monthly record of a location matches a direct computation from the readings (issue 17, done when).

Both dialects.  A month of readings from two sensors goes through ingest's own write path
(``insert_new``, which keeps the hourly summaries), with one sensor moved out mid-month and the other
placed mid-month at times that are not whole hours, some suspect readings, readings before and after
the placements, and a few readings whose clock the cloud corrected (recorded in 1970, corrected into the
month).  The test computes each day's min, max and mean per quantity itself from the readings it sent,
and the report (whole hours from the summaries, edges from the readings) must say the same.  The pure
halves (the month, the split into hours and edges, uncovered spans) get property tests.
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.identity.users import UserInputError
from coldgate.cloud.reports import monthly_record
from coldgate.cloud.reports.excursion_log import excursion_rows
from coldgate.cloud.reports.monthly_record import HOUR_MS, month_window, split_hours, uncovered
from coldgate.cloud.reports.periodic_store import monthly_report
from coldgate.contract.items import Quality
from tests.rig import items

QA = Actor("Marta QA", "u-marta")
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
START, END = month_window("2026-11")
DAY = 24 * HOUR_MS
#: Sensor t1 leaves the room at 14:20:30 on the 16th; t2 arrives at 10:30:15 on the 12th.
T1_OUT = START + 15 * DAY + 14 * HOUR_MS + 20 * 60_000 + 30_000
T2_IN = START + 11 * DAY + 10 * HOUR_MS + 30 * 60_000 + 15_000


def _world(engine: Engine) -> None:
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8, "humidity_high": 60}, reason="SOP-12", by=QA, now=NOW)
        put_location(conn, "site1", "CR1", {"name": "Cold room 1", "kind": "cold_room",
                     "temperature_class": "2-8C"}, reason="layout", by=QA, now=NOW)  # fmt: skip
        put_location(conn, "site1", "CR2", {"name": "Cold room 2", "kind": "cold_room",
                     "temperature_class": "2-8C"}, reason="layout", by=QA, now=NOW)  # fmt: skip
        place(conn, "gw01", "sensor", "t1", "CR1", START - 3 * DAY, reason="install", by=QA, now=NOW)
        place(conn, "gw01", "sensor", "t1", "CR2", T1_OUT, reason="moved", by=QA, now=NOW)
        place(conn, "gw01", "sensor", "t2", "CR1", T2_IN, reason="install", by=QA, now=NOW)


def _sent() -> tuple[list[items.Reading], dict[int, int]]:
    """Readings every 7 minutes (off the hour) from two days before the month to a day after, for t1
    (temperature and humidity) and t2 (temperature); some suspect, one error per day; plus ten
    readings stamped in 1970 by a Pi without time, whose corrected times fall in the month."""
    sent: list[items.Reading] = []
    corrected: dict[int, int] = {}
    seq = 0
    for n, ts in enumerate(range(START - 2 * DAY + 11_000, END + DAY, 7 * 60_000)):
        wave = (n % 97) / 10
        for sensor, quantity, value in (("t1", "temperature", 3.0 + wave), ("t1", "humidity", 40 + wave * 3),
                                        ("t2", "temperature", 2.5 + wave * 0.8)):  # fmt: skip
            seq += 1
            quality = Quality.SUSPECT if n % 53 == 0 else None
            if n % 211 == 0 and sensor == "t2":
                sent.append(items.reading(None, sensor=sensor, ts=ts, seq=seq, quantity=quantity))
                continue
            sent.append(items.reading(round(value, 2), sensor=sensor, ts=ts, seq=seq, quantity=quantity,
                                      quality=quality))  # fmt: skip
    for k in range(10):
        seq += 1
        sent.append(items.reading(12.5 + k, sensor="t1", ts=1_000_000 + k, seq=seq, synced=False))
        corrected[seq] = START + 3 * DAY + k * 2 * HOUR_MS + 123  # day 4, into the hourly summaries
    return sent, corrected


def _expected(sent: list[items.Reading], corrected: dict[int, int]) -> dict[tuple[str, str], tuple]:
    """(day, quantity) -> (count, ok count, min, max, mean), straight from the readings."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in sent:
        t = corrected.get(r.seq, r.ts)
        at_cr1 = (r.sensor == "t1" and START - 3 * DAY <= t < T1_OUT) or (r.sensor == "t2" and t >= T2_IN)
        if not (START <= t < END and at_cr1):
            continue
        day = datetime.datetime.fromtimestamp(t / 1000, datetime.UTC).date().isoformat()
        counts[(day, str(r.quantity))] += 1
        if r.quality == Quality.OK and r.value is not None:
            values[(day, str(r.quantity))].append(r.value)
    return {
        key: (counts[key], len(v), min(v), max(v), sum(v) / len(v))
        if v
        else (counts[key], 0, None, None, None)
        for key, v in ((k, values.get(k, [])) for k in counts)
    }


def test_the_monthly_record_matches_the_readings(engine: Engine) -> None:
    _world(engine)
    sent, corrected = _sent()
    stream = uuid.uuid4().hex
    for first in range(0, len(sent), 3000):
        chunk = sent[first : first + 3000]
        with engine.begin() as conn:
            insert_new(conn, "gw01", stream, chunk, {s: t for s, t in corrected.items()
                                                    if any(r.seq == s for r in chunk)})  # fmt: skip
    expected = _expected(sent, corrected)
    with engine.connect() as conn:
        record, _pieces = monthly_report(conn, "site1", "CR1", "2026-11", now=NOW)
    days = {(d["day"], d["quantity"]): d for d in record["days"]}
    assert len(record["days"]) == 30 * 2
    for key, (count, ok, low, high, mean) in expected.items():
        got = days[key]
        assert (got["count"], got["ok_count"], got["min"], got["max"]) == (count, ok, low, high), key
        assert got["mean"] == pytest.approx(mean, rel=1e-12), key
    # Nothing else: every day of the month has readings here, and no day has more than the readings say.
    assert {k for k, d in days.items() if d["count"]} == set(expected)
    # The corrected readings (12.5 °C and up) were counted on day 4, at their corrected times.
    assert days[("2026-11-04", "temperature")]["max"] == 21.5
    assert days[("2026-11-04", "temperature")]["outside"] is True
    assert record["summary"]["humidity"]["unit"] == "P1" and record["summary"]["temperature"]["unit"] == "CEL"
    assert record["limits"]["humidity"] == [None, 60]
    assert [(s["sensor"], s["from"], s["to"]) for s in record["sensors"]] == [
        ("t1", START, T1_OUT), ("t2", T2_IN, END)]  # fmt: skip
    assert "corrected" in record["time_basis"]


def test_a_month_not_a_month_is_refused(engine: Engine) -> None:
    _world(engine)
    with engine.connect() as conn:
        for bad, says in (("2026-13", "no month 13"), ("2026-1", "YYYY-MM"), ("November", "YYYY-MM")):
            with pytest.raises(UserInputError, match=says):
                monthly_report(conn, "site1", "CR1", bad, now=NOW)
        with pytest.raises(UserInputError, match="no location 'CR9'"):
            monthly_report(conn, "site1", "CR9", "2026-11", now=NOW)
        with pytest.raises(UserInputError, match="no site 'nowhere'"):
            monthly_report(conn, "nowhere", "CR1", "2026-11", now=NOW)


def test_a_room_with_no_sensor_says_so() -> None:
    rows = monthly_record.daily_table(START, END, [], {"temperature": (2.0, 8.0)})
    assert len(rows) == 60 and all(r.figures.count == 0 and not r.outside for r in rows)
    assert uncovered(START, END, []) == [(START, END)]


@given(st.integers(0, 10**13), st.integers(0, 40 * HOUR_MS))
def test_hours_and_edges_cover_a_stay_exactly(start: int, length: int) -> None:
    end = start + length
    edges, whole = split_hours(start, end)
    parts = sorted([*edges, *([whole] if whole else [])])
    covered = sum(b - a for a, b in parts)
    assert covered == length
    # Edges are short: under an hour each beside whole hours, under two when no whole hour fits.
    assert all(b - a < (HOUR_MS if whole else 2 * HOUR_MS) for a, b in edges)
    if whole:
        assert whole[0] % HOUR_MS == 0 and whole[1] % HOUR_MS == 0
    for (_, b), (a, _) in itertools.pairwise(parts):
        assert a == b


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 1000)), max_size=8))
def test_uncovered_is_the_complement(spans: list[tuple[int, int]]) -> None:
    holes = uncovered(100, 900, spans)
    for t in range(100, 900, 7):
        in_span = any(a <= t < b for a, b in spans)
        in_hole = any(a <= t < b for a, b in holes)
        assert in_span != in_hole, t


@given(st.text(max_size=12))
def test_any_text_is_a_month_or_a_value_error(text: str) -> None:
    try:
        start, end = month_window(text)
    except ValueError as exc:
        assert text in str(exc) or repr(text) in str(exc)
    else:
        assert 28 * DAY <= end - start <= 31 * DAY


def test_the_excursion_log_lists_limits_crossed_not_pre_alarms_nor_a_spent_budget() -> None:
    """The GSP log counts the episodes the batch history and the KPIs count (``is_limit_crossing``)."""
    def alert(rule: str, n: int) -> dict[str, object]:
        return {"gateway": "gw01", "alert_id": f"a{n}", "rule": rule, "subject_type": "sensor",
                "subject": "t1", "severity": "warning", "message": rule, "raised_at": 1_000 * n,
                "updated_at": 1_000 * n + 500, "open": False, "evidence": {}}  # fmt: skip

    rules = ["temperature.pre_high", "temperature.high", "humidity.pre_low", "humidity.low",
             "temperature.budget", "temperature.excursion"]  # fmt: skip
    placed = {("gw01", "t1"): [(0, None, "CR1")]}
    alerts = [alert(rule, n) for n, rule in enumerate(rules, 1)]
    rows = excursion_rows(alerts, placed, {}, start=0, end=100_000)
    assert [r.rule for r in rows] == ["temperature.high", "humidity.low", "temperature.excursion"]
