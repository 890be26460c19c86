"""The overflow policy: properties of the pure plan, then the outbox applying it with its records."""

from __future__ import annotations

import sqlite3
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldgate.contract.items import Alert, Gap, GapCause, Reading, Severity, SubjectType
from coldgate.gateway.buffer import overflow, thinning
from coldgate.gateway.buffer.thinning import RowMeta, Shed, extremes, from_rows, plan
from tests.rig.clocks import FakeClock
from tests.rig.items import T0, alert, priority_items, reading
from tests.rig.outbox import DAY, MINUTE, open_outbox, stored

INTERVAL = 10 * MINUTE
SUBJECTS = ["cr1-t01/temperature", "cr1-t01/humidity", "cr2-t01/temperature"]


_STEPS = [0, MINUTE, MINUTE, 2 * MINUTE, 7 * MINUTE, -30 * MINUTE]  # the odd clock step back
_ROW = st.tuples(
    st.integers(1, 3),  # seq step: holes are priority items or rows thinned before
    st.sampled_from(_STEPS),
    st.sampled_from(SUBJECTS),
    st.sampled_from([True, True, True, False]),
    st.integers(150, 300),
    st.none() | st.integers(-300, 300).map(lambda v: v / 10),
)


@st.composite
def routine_rows(draw: st.DrawFn) -> list[RowMeta]:
    """Readings as stored: increasing seq with holes, mostly increasing time."""
    rows: list[RowMeta] = []
    seq, ts = 0, T0
    for step, dt, subject, synced, size, value in draw(st.lists(_ROW, max_size=120)):
        seq, ts = seq + step, max(0, ts + dt)
        rows.append(RowMeta(seq, subject, ts, synced, size, value))
    return rows


def groups(rows: list[RowMeta]) -> dict[tuple[str, int], list[RowMeta]]:
    by: dict[tuple[str, int], list[RowMeta]] = defaultdict(list)
    for row in rows:
        by[(row.subject, row.ts // INTERVAL)].append(row)
    return by


def run(rows: list[RowMeta], need: int, *, age_limit: int | None = None, chunk: int = 10_000) -> Shed:
    return plan(from_rows(rows), need_bytes=need, age_limit_ts=age_limit, interval_ms=INTERVAL, chunk=chunk)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(routine_rows(), st.integers(0, 40_000), st.integers(1, 60))
def test_the_shed_accounts_exactly_for_what_it_drops(rows: list[RowMeta], need: int, chunk: int) -> None:
    shed = run(rows, need, chunk=chunk)
    dropped = [row for row in rows if row.seq in set(shed.seqs)]
    assert len(set(shed.seqs)) == len(shed.seqs) == len(dropped)
    assert shed.freed == sum(row.size for row in dropped)
    assert sum(shed.by_subject.values()) == shed.thinned + shed.whole + shed.aged == len(dropped)
    if dropped:  # the gap record will span exactly the dropped readings
        assert (shed.start, shed.end) == (min(r.ts for r in dropped), max(r.ts for r in dropped))
    else:
        assert (shed.start, shed.end) == (None, None)


@PROPERTY
@given(routine_rows(), st.integers(0, 40_000), st.integers(1, 60))
def test_enough_readings_always_meet_the_need(rows: list[RowMeta], need: int, chunk: int) -> None:
    shed = run(rows, need, chunk=chunk)
    total = sum(row.size for row in rows)
    assert shed.freed >= need if total >= need else len(shed) == len(rows)


@PROPERTY
@given(routine_rows(), st.integers(0, 40_000), st.integers(1, 60))
def test_min_and_max_of_every_interval_survive_thinning(rows: list[RowMeta], need: int, chunk: int) -> None:
    shed = run(rows, need, chunk=chunk)
    if shed.lossy:
        return  # whole intervals had to go: covered by the next test
    for group in groups(rows).values():
        kept = [row for row in group if not shed.has(row.seq)]
        values = [row.value for row in group if row.value is not None]
        if values:
            kept_values = {row.value for row in kept}
            assert min(values) in kept_values and max(values) in kept_values
        else:
            assert kept


@PROPERTY
@given(routine_rows(), st.integers(0, 40_000))
def test_whole_intervals_go_only_once_every_interval_is_thinned(rows: list[RowMeta], need: int) -> None:
    shed = run(rows, need)
    if shed.whole:
        assert shed.thinned == sum(len(g) - len(extremes(g)) for g in groups(rows).values())


@PROPERTY
@given(routine_rows(), st.integers(0, 40_000))
def test_thinning_takes_the_oldest_intervals_first(rows: list[RowMeta], need: int) -> None:
    shed = run(rows, need)
    if shed.lossy:
        return
    touched, untouched = [], []
    for group in groups(rows).values():
        droppable = len(group) > len(extremes(group))
        hit = any(shed.has(row.seq) for row in group)
        (touched if hit else untouched if droppable else []).append(group[0].seq)
    if touched and untouched:
        assert max(touched) < min(untouched)


@PROPERTY
@given(routine_rows(), st.integers(T0 - 60 * MINUTE, T0 + 600 * MINUTE))
def test_the_age_cap_drops_everything_that_entered_before_an_old_synchronised_reading(
    rows: list[RowMeta], limit: int
) -> None:
    shed = run(rows, 0, age_limit=limit)
    cutoff = max((row.seq for row in rows if row.synced and row.ts < limit), default=0)
    assert sorted(shed.seqs) == [row.seq for row in rows if row.seq <= cutoff]
    assert shed.aged == len(shed)


def test_an_unsynchronised_clock_cannot_age_anything_out() -> None:
    rows = [RowMeta(seq, SUBJECTS[0], 0, False, 200, 4.0) for seq in range(1, 50)]  # stamped 1970
    assert len(run(rows, 0, age_limit=T0)) == 0


# -- the outbox applying the policy -----------------------------------------------------------------


def temperatures(count: int, start: int = T0, every: int = MINUTE) -> list[Reading]:
    """Two sensors' readings with a saw-tooth value, so each interval has a clear min and max."""
    out = []
    for i in range(count):
        out.append(reading(2.0 + (i * 7) % 11 / 2, sensor=f"cr{1 + i % 2}-t01", ts=start + (i // 2) * every))
    return out


def readings_and_records(path: Path) -> tuple[list[Reading], list[Gap], list[Alert], list[object]]:
    readings, gaps, alerts, others = [], [], [], []
    for _, _, _, item in stored(path):
        if isinstance(item, Reading):
            readings.append(item)
        elif isinstance(item, Gap) and item.subject_type is SubjectType.OUTBOX:
            gaps.append(item)
        elif isinstance(item, Alert) and item.rule.startswith("outbox."):
            alerts.append(item)
        else:
            others.append(item)
    return readings, gaps, alerts, others


def check_counters(path: Path) -> None:
    conn = sqlite3.connect(path / "outbox.sqlite3")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    counted = conn.execute("SELECT count(*), total(size) FROM items").fetchone()
    conn.close()
    assert (meta["item_count"], meta["item_bytes"]) == (counted[0], int(counted[1]))


def one_pass(path: Path, items: list[object], clock: FakeClock | None = None, **caps: object) -> None:
    """Put everything in one group, so exactly one shedding pass follows."""
    with open_outbox(path, clock, commit_interval_ms=10_000, commit_max_items=100_000, **caps) as outbox:
        for item in items:
            outbox.put(item)  # type: ignore[arg-type]
        outbox.flush()
        outbox.enforce_caps(10)
        assert outbox.bytes_used() <= int(caps.get("max_bytes", 1 << 40))  # type: ignore[call-overload]


def test_thinning_keeps_min_and_max_and_says_so_in_a_gap_and_a_warning(tmp_path: Path) -> None:
    put = temperatures(400)
    one_pass(tmp_path, [*put[:200], *priority_items(), *put[200:]], max_bytes=60_000)
    readings, gaps, alerts, others = readings_and_records(tmp_path)
    assert len(others) == 5  # every priority item survived
    kept = {(r.sensor, r.ts, r.value) for r in readings}
    dropped = [r for r in put if (r.sensor, r.ts, r.value) not in kept]
    assert dropped and len(gaps) == 1 and len(alerts) == 1
    gap, warning = gaps[0], alerts[0]
    assert (gap.cause, gap.subject, gap.start, gap.end) == (
        GapCause.OUTBOX_THINNED,
        "gw01",
        min(r.ts for r in dropped),
        max(r.ts for r in dropped),
    )
    assert "cr1-t01/temperature" in gap.detail and "cr2-t01/temperature" in gap.detail
    assert (warning.rule, warning.severity, warning.evidence.samples) == (
        "outbox.thinned",
        Severity.WARNING,
        len(dropped),
    )
    assert warning.evidence.details["gap_seq"] == next(
        seq for seq, _, _, item in stored(tmp_path) if item == gap
    )
    for sensor in ("cr1-t01", "cr2-t01"):
        for bucket in {r.ts // INTERVAL for r in put}:
            values = [r.value for r in put if r.sensor == sensor and r.ts // INTERVAL == bucket]
            survivors = {r.value for r in readings if r.sensor == sensor and r.ts // INTERVAL == bucket}
            assert min(values) in survivors and max(values) in survivors
    check_counters(tmp_path)


def test_dropping_whole_intervals_is_critical(tmp_path: Path) -> None:
    put = temperatures(400)
    one_pass(tmp_path, [*priority_items(), *put], max_bytes=20_000)
    readings, gaps, alerts, others = readings_and_records(tmp_path)
    assert len(others) == 5 and len(gaps) == 1
    assert alerts[0].severity is Severity.CRITICAL and "whole intervals are missing" in alerts[0].message
    assert min(r.ts for r in readings) > T0  # the oldest went first
    check_counters(tmp_path)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(["reading", "reading", "reading", "priority"]), min_size=1, max_size=300),
    st.integers(4_000, 40_000),
)
def test_the_outbox_never_sheds_priority_items_and_reports_exactly_what_it_shed(
    kinds: list[str], cap: int
) -> None:
    items: list[object] = []
    for i, kind in enumerate(kinds):
        ts = T0 + i * 20_000
        items.append(reading(float(i % 13), ts=ts) if kind == "reading" else alert(i, ts=ts))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        with open_outbox(path, commit_interval_ms=10_000, commit_max_items=100_000, max_bytes=cap) as outbox:
            for item in items:
                outbox.put(item)  # type: ignore[arg-type]
            outbox.flush()
            outbox.enforce_caps(10)
            used = outbox.bytes_used()
        readings, gaps, records, others = readings_and_records(path)
        assert len(others) == kinds.count("priority")
        kept = {key(r) for r in readings}
        missing = [r for r in items if isinstance(r, Reading) and key(r) not in kept]
        if missing:
            assert len(gaps) == 1
            assert (gaps[0].start, gaps[0].end) == (min(r.ts for r in missing), max(r.ts for r in missing))
        else:
            assert not gaps
        if used > cap:  # only items that are never shed are left, and the outbox says so
            assert not readings and any(a.rule == "outbox.over_capacity" for a in records)
        check_counters(path)


def key(item: Reading) -> tuple[object, ...]:
    return (item.sensor, item.ts, item.value)


def test_the_age_cap_drops_old_readings_but_never_old_alerts(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 3 * 3_600_000)
    put = [reading(float(i), ts=T0 + i * 10 * MINUTE) for i in range(18)]  # three hours of readings
    one_pass(tmp_path, [alert(ts=T0), *put], clock, max_age_s=3600)
    readings, gaps, alerts, others = readings_and_records(tmp_path)
    assert len(others) == 1  # the three-hour-old alert stays
    assert [r.ts for r in readings] == [r.ts for r in put if r.ts >= clock.wall_ms - 3_600_000]
    assert gaps[0].end == clock.wall_ms - 3_600_000 - 10 * MINUTE
    assert alerts[0].severity is Severity.CRITICAL and "age cap" in alerts[0].message


def test_the_age_cap_waits_for_a_synchronised_clock(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 30 * DAY, synced=False)
    one_pass(tmp_path, [reading(ts=T0)], clock, max_age_s=3600)
    readings, gaps, _, _ = readings_and_records(tmp_path)
    assert len(readings) == 1 and not gaps


def test_readings_stamped_by_a_wrong_clock_after_a_young_one_are_not_aged_out(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    young = reading(1.0, ts=T0 - 10 * MINUTE)
    wrong = [reading(2.0, ts=T0 - 5 * DAY, synced=False) for _ in range(3)]  # a Pi booted without its RTC
    one_pass(tmp_path, [young, *wrong], clock, max_age_s=3600)
    readings, gaps, _, _ = readings_and_records(tmp_path)
    assert len(readings) == 4 and not gaps


def test_over_capacity_with_only_priority_items_is_reported_once(tmp_path: Path) -> None:
    with open_outbox(tmp_path, max_bytes=4_000) as outbox:
        for n in range(10):
            outbox.put(alert(n))
        outbox.flush()
        outbox.enforce_caps(10)
        outbox.put(alert(99))
        outbox.flush()
        outbox.enforce_caps(10)
    _, gaps, records, others = readings_and_records(tmp_path)
    assert len(others) == 11 and not gaps
    assert [(a.rule, a.severity) for a in records] == [("outbox.over_capacity", Severity.CRITICAL)]


def test_a_failing_shedding_pass_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError("I/O error on the SD card")

    monkeypatch.setattr(overflow, "shed_records", broken)
    with open_outbox(
        tmp_path, commit_interval_ms=10_000, commit_max_items=100_000, max_bytes=20_000
    ) as outbox:
        for item in temperatures(200):
            outbox.put(item)
        outbox.flush()
        with pytest.raises(TimeoutError):
            outbox.enforce_caps(0.5)
        assert len(stored(tmp_path)) == 200 and "I/O error" in str(outbox.status().last_error)
        check_counters(tmp_path)
        monkeypatch.undo()
        outbox.enforce_caps(10)
        assert outbox.bytes_used() <= 20_000
    _, gaps, _, _ = readings_and_records(tmp_path)
    assert len(gaps) == 1
    check_counters(tmp_path)


def test_plan_refuses_a_zero_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        thinning.plan(from_rows([]), need_bytes=1, interval_ms=0)
