"""Offline/online gaps, the slot grid with coalescing and back-off, and poll statistics: pure parts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.contract.codec import encode
from coldgate.contract.items import Gap, GapCause, SubjectType
from coldgate.gateway.clock import Stamp
from coldgate.gateway.sensors.health import Failure, SensorHealth
from coldgate.gateway.sensors.schedule import Slots, backoff_periods
from coldgate.gateway.sensors.stats import PollStats, served_fraction
from coldgate.gateway.source import SensorStatus

pytestmark = pytest.mark.timeout(30)

BOOT = "0123456789abcdef0123456789abcdef"


def at(seconds: float) -> Stamp:
    return Stamp(
        wall_ms=1_764_000_000_000 + int(seconds * 1000), mono_ms=int(seconds * 1000), boot=BOOT, synced=True
    )


def test_offline_after_n_failures_then_online_at_the_first_answer():
    health = SensorHealth("cr1-back", offline_after=3, where='unit 2 on line "bus-a"')
    assert health.answered(at(0)) is None
    assert health.failed(at(60), Failure.TIMEOUT, "timeout after 1 s x3") is None
    assert health.failed(at(120), Failure.TIMEOUT, "timeout after 1 s x3") is None
    opened = health.failed(at(180), Failure.TIMEOUT, "timeout after 1 s x3")
    assert isinstance(opened, Gap) and not health.online
    assert (opened.subject_type, opened.subject) == (SubjectType.SENSOR, "cr1-back")
    assert opened.start == at(60).wall_ms, "monitoring was lost at the first failed poll"
    assert opened.end is None and opened.ts == at(180).wall_ms
    assert opened.cause is GapCause.SENSOR_OFFLINE
    assert "unit 2" in opened.detail and "timeout after 1 s x3" in opened.detail
    assert health.failed(at(300), Failure.TIMEOUT, "timeout after 1 s") is None, "one gap per outage"
    closed = health.answered(at(420))
    assert isinstance(closed, Gap) and health.online and health.consecutive_failures == 0
    assert (closed.subject, closed.start, closed.end) == ("cr1-back", opened.start, at(420).wall_ms)
    assert closed.cause is GapCause.SENSOR_OFFLINE
    assert health.answered(at(480)) is None
    encode(closed)  # a valid contract item


def test_a_run_broken_by_an_answer_starts_counting_again():
    health = SensorHealth("t1", offline_after=2, where="x")
    health.failed(at(1), Failure.TIMEOUT, "t")
    health.answered(at(2))
    assert health.failed(at(3), Failure.TIMEOUT, "t") is None
    gap = health.failed(at(4), Failure.TIMEOUT, "t")
    assert gap is not None and gap.start == at(3).wall_ms


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (Failure.TIMEOUT, GapCause.SENSOR_OFFLINE),
        (Failure.CONNECTION, GapCause.SENSOR_OFFLINE),
        (Failure.EXCEPTION, GapCause.SENSOR_ERROR),
        (Failure.GARBAGE, GapCause.SENSOR_ERROR),
        (Failure.BAD_LINE, GapCause.SENSOR_ERROR),
        (Failure.INTERNAL, GapCause.SENSOR_ERROR),
    ],
)
def test_gap_cause_says_silent_or_answering_wrongly(failure, cause):
    health = SensorHealth("t1", offline_after=1, where="x")
    gap = health.failed(at(1), failure, "why")
    assert gap is not None and gap.cause is cause


# ---------------------------------------------------------------- slots


def test_slots_stay_on_their_grid_however_late_a_poll_starts():
    slots = Slots(60.0, first=1000.0)
    assert slots.claim(1000.4) == pytest.approx((0.4, 0))
    slots.advance()
    assert slots.due == 1060.0, "anchored: not 60 s after the poll started"
    lag, skipped = slots.claim(1185.0)  # the line was busy: slots 1060 and 1120 passed
    assert (lag, skipped) == (pytest.approx(5.0), 2)
    assert slots.due == 1180.0
    slots.advance(4)
    assert slots.due == 1420.0


@given(
    interval=st.floats(0.1, 3600),
    late=st.floats(0, 1e5),
)
def test_claim_never_leaves_a_lag_of_a_whole_interval(interval, late):
    slots = Slots(interval, first=0.0)
    lag, skipped = slots.claim(late)
    assert 0 <= lag < interval * (1 + 1e-9)
    assert slots.due == pytest.approx(skipped * interval)


def test_backoff_doubles_up_to_a_cap():
    assert [backoff_periods(n, 60.0) for n in range(1, 6)] == [2, 4, 5, 5, 5], "every 5 min at most"
    assert [backoff_periods(n, 1.0) for n in range(1, 6)] == [2, 4, 8, 8, 8]
    assert [backoff_periods(n, 600.0) for n in range(1, 3)] == [1, 1], "never rarer than the interval"
    assert [backoff_periods(n, 1.0, cap=2) for n in range(1, 4)] == [2, 2, 2]


# ---------------------------------------------------------------- stats


def test_poll_stats_count_served_late_and_missed():
    stats = PollStats(interval_s=1.0)
    for lag in (0.001, 0.002, 0.003, 0.004):
        stats.started(lag)
    stats.started(0.7)  # later than half an interval: late
    stats.started(0.1, skipped=2)  # two slots coalesced away
    assert (stats.scheduled, stats.served, stats.late, stats.missed) == (8, 5, 1, 2)
    p50, p95, worst = stats.lag_ms()
    assert 3.0 <= p50 <= 4.0 and worst == pytest.approx(700.0)
    assert p95 == pytest.approx(700.0)


def _status(scheduled: int, served: int) -> SensorStatus:
    return SensorStatus(
        sensor="t",
        source="s",
        online=True,
        consecutive_failures=0,
        interval_s=1.0,
        scheduled=scheduled,
        served=served,
        late=0,
        missed=scheduled - served,
        lag_p50_ms=1.2,
        lag_p95_ms=3.6,
        lag_max_ms=9.0,
        last_poll_ms=1,
        last_ok_ms=1,
        last_error=None,
    )


def test_served_fraction_and_status_entry():
    assert served_fraction([]) == 1.0
    assert served_fraction([_status(10, 10), _status(10, 8)]) == pytest.approx(0.9)
    state = _status(10, 10).to_state()
    assert (state.id, state.online, state.lag_p50_ms, state.lag_p95_ms) == ("t", True, 1, 4)
