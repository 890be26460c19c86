"""The rules' quiet path (issue 18) changes nothing: same verdicts, same state as every sub-step.

``engine.step`` skips the sub-steps that cannot change anything while a
sensor has nothing open; ``quiet_path=False`` runs them all.  Random readings
(values near and across the limits and the sensor's range, repeated values
for the stuck rule, time jumps, reboots, missing and doubtful readings, °F
and K) go through both, and every verdict and every state must be equal.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.items import Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.rules import engine
from coldgate.gateway.rules.engine import SensorState, Verdict
from coldgate.gateway.rules.params import (
    BudgetParams,
    LimitParams,
    MktParams,
    RangeParams,
    RateParams,
    RecordingParams,
    SensorParams,
    StuckParams,
)

T0_MS = 1_700_000_000_000
BOOTS = ("b0070001", "b0070002")

STORE = SensorParams(
    interval_s=60,
    max_gap_s=300,
    limits=LimitParams(low=2.0, high=8.0, pre_alarm_margin=0.5, hysteresis=0.3, delay_s=120),
    stuck=StuckParams(tolerance=0.05, min_readings=4, min_s=180),
    range=RangeParams(low=-40.0, high=125.0),
    mkt=MktParams(window_s=3600, buckets=60),
    recording=RecordingParams(refresh_s=90, record_s=300, tolerance_s=10),
)
PARAMS = {
    "store": STORE,
    "everything": SensorParams(
        interval_s=60,
        max_gap_s=300,
        limits=LimitParams(
            low=2.0, high=8.0, pre_alarm_margin=0.5, hysteresis=0.3, delay_s=300, update_every_s=600
        ),
        budget=BudgetParams(budget_s=300, window_s=7200, buckets=120, update_every_s=600),
        rate=RateParams(max_per_min=0.5, window_s=600),
        stuck=StuckParams(min_readings=4, min_s=180),
        range=RangeParams(low=-40.0, high=125.0),
        mkt=MktParams(window_s=3600, buckets=60),
        recording=RecordingParams(record_s=900),
    ),
    "minimum": SensorParams(
        interval_s=30,
        limits=LimitParams(high=8.0, hysteresis=0.5),
        stuck=StuckParams(min_readings=3, min_s=60),
        recording=RecordingParams(refresh_s=None, record_s=120, excursion_record_s=60, mode="minimum"),
    ),
    "faults only": SensorParams(
        interval_s=60, stuck=StuckParams(min_readings=3, min_s=100), range=RangeParams(low=-40.0, high=125.0)
    ),
    "nothing": SensorParams(interval_s=60),
    "no refresh check": SensorParams(
        interval_s=60,
        limits=LimitParams(low=2.0, high=8.0),
        recording=RecordingParams(refresh_s=None, record_s=300, excursion_record_s=120),
    ),
    "humidity": SensorParams(
        quantity=Quantity.HUMIDITY,
        interval_s=60,
        limits=LimitParams(low=30.0, high=70.0, hysteresis=2.0, peak_step=5.0),
        stuck=StuckParams(min_readings=4, min_s=180),
        range=RangeParams(low=0.0, high=100.0),
        recording=RecordingParams(record_s=300),
    ),
}

#: Mostly calm values (the quiet path's case: without them episodes would stay open throughout), then
#: values on each limit, pre-alarm and hysteresis edge of STORE, repeats for the stuck rule
#: (5.05 is 5.0 + its tolerance), values outside the sensor's range, and anything.
CALM_T = st.one_of(
    st.floats(2.6, 7.4).map(lambda v: round(v, 1)), st.sampled_from([5.0, 5.0, 5.0, 5.02, 5.05, 5.1])
)
TEMPERATURES = st.one_of(
    CALM_T,
    CALM_T,
    CALM_T,
    CALM_T,
    st.sampled_from([1.5, 1.7, 2.0, 2.3, 2.5, 2.6, 7.4, 7.5, 7.7, 8.0, 8.1, 9.0, 130.0, -45.0]),
    st.floats(-50.0, 140.0, allow_nan=False).map(lambda v: round(v, 1)),
)
CALM_H = st.floats(32.0, 68.0).map(lambda v: round(v, 1))
HUMIDITIES = st.one_of(
    CALM_H,
    CALM_H,
    CALM_H,
    st.sampled_from([50.0, 50.0, 29.0, 31.0, 32.0, 69.0, 70.5, 68.0, 101.0, -1.0]),
    st.floats(-5.0, 105.0, allow_nan=False).map(lambda v: round(v, 1)),
)
#: Seconds since the previous reading: on time, early, on and just past each required interval plus its
#: tolerance (refresh 60/90 s, record 120/300/900 s, excursion record 60/120 s, all + 10 s), far beyond.
EDGES = [70, 71, 100, 101, 130, 131, 310, 311, 910, 911, 180, 181, 301, 600, 7200]
GAPS = st.one_of(*[st.just(60)] * 4, st.sampled_from([30, 0, 1, *EDGES]), st.integers(0, 20_000))

# (seconds since the previous reading, value or None, quality, reboot before it, unit)
Row = tuple[int, float | None, Quality, bool, Unit]


def rows_for(quantity: Quantity) -> st.SearchStrategy[list[Row]]:
    """Calm runs (the quiet path's case) between short disturbances of anything.

    Rows drawn one by one would rarely be calm long enough for the quiet path to
    answer: the comparison must also cover the readings that enter, leave and
    stay on it.
    """
    temperature = quantity is Quantity.TEMPERATURE
    values = TEMPERATURES if temperature else HUMIDITIES
    units = [Unit.CEL, Unit.CEL, Unit.CEL, Unit.FAH, Unit.KEL] if temperature else [Unit.P1]
    anything = st.tuples(
        GAPS,
        st.one_of(values, st.none()),
        st.sampled_from([Quality.OK, Quality.OK, Quality.SUSPECT]),
        st.sampled_from([False, False, False, True]),
        st.sampled_from(units),
    )
    calm = st.tuples(
        st.sampled_from([60] * 15 + [55, 65, 1, *EDGES]),
        CALM_T if temperature else CALM_H,
        st.just(Quality.OK),
        st.just(False),
        st.sampled_from(units),
    )
    runs = st.one_of(st.lists(calm, min_size=1, max_size=15), st.lists(anything, min_size=1, max_size=3))
    return st.lists(runs, min_size=1, max_size=15).map(lambda parts: [row for part in parts for row in part])


def to_unit(celsius: float, unit: Unit) -> float:
    if unit is Unit.FAH:
        return celsius * 9.0 / 5.0 + 32.0
    if unit is Unit.KEL:
        return celsius + 273.15
    return celsius


def readings(rows: Sequence[Row], quantity: Quantity) -> list[Reading]:
    out: list[Reading] = []
    wall, mono, boot = T0_MS, 1_000, 0
    for gap, value, quality, reboot, unit in rows:
        wall += gap * 1000
        mono += gap * 1000
        if reboot:
            boot = (boot + 1) % len(BOOTS)
            mono = 5_000
        if value is None:
            quality = Quality.ERROR
        out.append(
            Reading(
                seq=0,
                ts=wall,
                boot=BOOTS[boot],
                mono=mono,
                synced=True,
                sensor="cr1-t1",
                quantity=quantity,
                value=None if value is None else to_unit(value, unit),
                unit=unit,
                quality=quality,
                reason=None if quality is Quality.OK else "test",
            )
        )
    return out


def run(sp: SensorParams, items: Sequence[Reading], *, quiet_path: bool) -> list[tuple[SensorState, Verdict]]:
    state = SensorState()
    out: list[tuple[SensorState, Verdict]] = []
    for reading in items:
        state, verdict = engine.step(sp, state, reading, quiet_path=quiet_path)
        out.append((state, verdict))
    return out


def check_same(sp: SensorParams, items: Sequence[Reading]) -> None:
    quiet = run(sp, items, quiet_path=True)
    full = run(sp, items, quiet_path=False)
    for i, (q, f) in enumerate(zip(quiet, full, strict=True)):
        assert q[1] == f[1], f"verdict of reading {i}"
        assert q[0] == f[0], f"state after reading {i}"


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(k for k in PARAMS if k != "humidity")), rows=rows_for(Quantity.TEMPERATURE)
)
def test_temperature_verdicts_and_state_are_those_of_the_full_step(name: str, rows: list[Row]) -> None:
    check_same(PARAMS[name], readings(rows, Quantity.TEMPERATURE))


@settings(max_examples=100, deadline=None)
@given(rows=rows_for(Quantity.HUMIDITY))
def test_humidity_verdicts_and_state_are_those_of_the_full_step(rows: list[Row]) -> None:
    check_same(PARAMS["humidity"], readings(rows, Quantity.HUMIDITY))


@settings(max_examples=100, deadline=None)
@given(
    start=st.lists(st.tuples(GAPS, TEMPERATURES), min_size=1, max_size=40),
    calm=st.lists(st.sampled_from([4.9, 5.0, 5.1, 5.3]), min_size=1, max_size=60),
)
def test_a_calm_spell_after_anything_is_judged_alike(
    start: list[tuple[int, float]], calm: list[float]
) -> None:
    """Episodes opened by the start must close (or stay open) the same way while readings go quiet."""
    rows = [(gap, v, Quality.OK, False, Unit.CEL) for gap, v in start]
    rows += [(60, v, Quality.OK, False, Unit.CEL) for v in calm]
    for name in ("store", "everything", "minimum"):
        check_same(PARAMS[name], readings(rows, Quantity.TEMPERATURE))


def test_the_quiet_path_serves_a_calm_sensor() -> None:
    """Not a vacuous comparison: on calm readings the quiet path, not the full step, answers."""
    rows = [(60, v, Quality.OK, False, Unit.CEL) for v in [5.0, 5.1, 5.3, 5.2] * 10]
    state = SensorState()
    served = 0
    for reading in readings(rows, Quantity.TEMPERATURE):
        quiet = engine._quiet_step(STORE, state, reading)
        served += quiet is not None
        state, _ = engine.step(STORE, state, reading, quiet_path=False)
    assert served >= len(rows) - 2  # the first reading (no limit state yet) takes the full step


TEMPERATURE_PARAMS = sorted(k for k in PARAMS if k != "humidity")


def run_switched(
    first: SensorParams, then: SensorParams, items: Sequence[Reading], cut: int, *, quiet_path: bool
) -> list[tuple[SensorState, Verdict]]:
    state = SensorState()
    out: list[tuple[SensorState, Verdict]] = []
    for i, reading in enumerate(items):
        state, verdict = engine.step(first if i < cut else then, state, reading, quiet_path=quiet_path)
        out.append((state, verdict))
    return out


@settings(max_examples=200, deadline=None)
@given(
    first=st.sampled_from(TEMPERATURE_PARAMS),
    then=st.sampled_from(TEMPERATURE_PARAMS),
    before=rows_for(Quantity.TEMPERATURE),
    after=rows_for(Quantity.TEMPERATURE),
)
def test_state_carried_over_a_change_of_params_is_judged_alike(
    first: str, then: str, before: list[Row], after: list[Row]
) -> None:
    """A pushed class or a reloaded config keeps each sensor's state under the new params (a stuck rule,
    limits, a range or recording added or taken away with an episode open): both paths judge alike."""
    items = readings(before + after, Quantity.TEMPERATURE)
    quiet = run_switched(PARAMS[first], PARAMS[then], items, len(before), quiet_path=True)
    full = run_switched(PARAMS[first], PARAMS[then], items, len(before), quiet_path=False)
    for i, (q, f) in enumerate(zip(quiet, full, strict=True)):
        assert q[1] == f[1], f"verdict of reading {i}"
        assert q[0] == f[0], f"state after reading {i}"


def test_a_stuck_fault_left_raised_when_the_rule_is_taken_away_is_judged_alike() -> None:
    """Found in review: a stuck fault raised under one config, the stuck rule then taken away (a pushed
    config without it) while the value stays put: the full step still marks the reading suspect, so the
    quiet path must leave it to the full step."""
    rows = [(60, 5.0, Quality.OK, False, Unit.CEL)] * 8
    items = readings(rows, Quantity.TEMPERATURE)
    without = PARAMS["nothing"]
    quiet = run_switched(STORE, without, items, 6, quiet_path=True)
    full = run_switched(STORE, without, items, 6, quiet_path=False)
    assert full[5][0].stuck.raised, "the stuck fault is raised before the switch"
    assert [v.reading.quality for _, v in full[6:]] == [Quality.SUSPECT] * 2
    assert quiet == full
