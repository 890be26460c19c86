"""Properties of the rules, driven by hypothesis (DESIGN.md, principle 2).

The table-driven cases (test_rules_cases.py) pin behaviour on examples a
person can check by hand; these check what must hold for *every* signal:
hysteresis stops flapping, a short spike raises nothing, an alarm comes within
one poll of its delay, alerts have a proper life (raised, updated, cleared),
the rules are deterministic and their state is plain data, and MKT behaves
as the Arrhenius mean it is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.codec import validate
from coldgate.contract.items import Alert, AlertAction, Quality, Reading
from coldgate.gateway.rules import engine
from coldgate.gateway.rules.engine import SensorState
from coldgate.gateway.rules.mkt import (
    RollingMkt,
    arrhenius,
    mkt,
    rolling_add,
    rolling_value,
    time_weighted_mean,
    time_weighted_mkt,
)
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
BOOTS = ("b0070001", "b0070002", "b0070003")

# A row is (seconds since the previous reading, value or None for an error, quality, reboot before it).
Row = tuple[int, float | None, Quality, bool]


def readings(rows: Sequence[Row], quantity: str = "temperature") -> list[Reading]:
    out: list[Reading] = []
    wall = T0_MS
    mono = 1_000
    boot = 0
    for gap, value, quality, reboot in rows:
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
                value=value,
                unit="CEL" if quantity == "temperature" else "P1",
                quality=quality,
                reason=None if quality is Quality.OK else "test",
            )
        )
    return out


def run(
    params: SensorParams, items: Sequence[Reading], state: SensorState | None = None
) -> tuple[SensorState, list[Alert]]:
    state = state or SensorState()
    alerts: list[Alert] = []
    for reading in items:
        state, verdict = engine.step(params, state, reading)
        alerts.extend(verdict.alerts)
    return state, alerts


def ok_rows(gaps: Sequence[int], values: Sequence[float]) -> list[Row]:
    return [(g, v, Quality.OK, False) for g, v in zip(gaps, values, strict=False)]


def limit_alerts(alerts: list[Alert], action: AlertAction | None = None) -> list[Alert]:
    return [a for a in alerts if a.rule.startswith("temperature.") and (action is None or a.action is action)]


HIGH = 8.0
hysteresis = st.floats(0.1, 2.0)
delays = st.sampled_from([0, 60, 300, 600, 900])
gaps = st.integers(1, 120)


@settings(max_examples=200, deadline=None)
@given(h=hysteresis, delay=delays, data=st.data())
def test_once_raised_values_inside_the_hysteresis_band_never_clear(
    h: float, delay: int, data: st.DataObject
) -> None:
    params = SensorParams(limits=LimitParams(high=HIGH, hysteresis=h, delay_s=delay))
    n = delay // 60 + 1
    head = ok_rows([60] * n, [9.0] * n)
    tail_values = data.draw(st.lists(st.floats(HIGH - h + 1e-6, HIGH + 10), min_size=1, max_size=60))
    tail_gaps = data.draw(st.lists(gaps, min_size=len(tail_values), max_size=len(tail_values)))
    _, alerts = run(params, readings(head + ok_rows(tail_gaps, tail_values)))
    assert len(limit_alerts(alerts, AlertAction.RAISED)) == 1
    assert limit_alerts(alerts, AlertAction.CLEARED) == []


@settings(max_examples=200, deadline=None)
@given(h=hysteresis, delay=delays, data=st.data())
def test_a_signal_oscillating_within_half_the_hysteresis_raises_at_most_once(
    h: float, delay: int, data: st.DataObject
) -> None:
    params = SensorParams(limits=LimitParams(high=HIGH, hysteresis=h, delay_s=delay, pre_alarm_margin=0))
    values = data.draw(st.lists(st.floats(HIGH - h / 2, HIGH + h / 2), min_size=1, max_size=120))
    steps = data.draw(st.lists(gaps, min_size=len(values), max_size=len(values)))
    _, alerts = run(params, readings(ok_rows(steps, values)))
    assert len(limit_alerts(alerts, AlertAction.RAISED)) <= 1
    assert limit_alerts(alerts, AlertAction.CLEARED) == []


@settings(max_examples=200, deadline=None)
@given(
    delay=st.integers(120, 3600),
    margin=st.sampled_from([0.0, 0.5]),
    data=st.data(),
)
def test_a_spike_shorter_than_the_delay_raises_nothing(
    delay: int, margin: float, data: st.DataObject
) -> None:
    params = SensorParams(
        limits=LimitParams(low=2.0, high=HIGH, pre_alarm_margin=margin, hysteresis=0.3, delay_s=delay)
    )
    within = data.draw(st.lists(st.integers(1, 60), max_size=80))
    kept: list[int] = []
    for gap in within:  # readings after the first spike reading, all less than the delay after it
        if sum(kept) + gap >= delay:
            break
        kept.append(gap)
    spike = data.draw(st.lists(st.floats(7.0, 40.0), min_size=len(kept) + 1, max_size=len(kept) + 1))
    rows = ok_rows([60] * 5, [5.0] * 5) + ok_rows([60, *kept], spike) + ok_rows([30] * 5, [5.0] * 5)
    _, alerts = run(params, readings(rows))
    assert limit_alerts(alerts) == []


@settings(max_examples=200, deadline=None)
@given(
    delay=st.integers(0, 3600), poll=st.integers(5, 120), jitter=st.lists(st.integers(0, 30), max_size=400)
)
def test_an_excursion_is_raised_at_the_first_poll_after_its_delay(
    delay: int, poll: int, jitter: list[int]
) -> None:
    params = SensorParams(interval_s=poll, limits=LimitParams(high=HIGH, hysteresis=0.3, delay_s=delay))
    n = delay // poll + 3
    step_gaps = [poll + (jitter[i] if i < len(jitter) else 0) for i in range(n)]
    rows = ok_rows([poll], [5.0]) + ok_rows(step_gaps, [9.0] * n)
    items = readings(rows)
    start_ms = items[1].mono
    _, alerts = run(params, items)
    (raised,) = limit_alerts(alerts, AlertAction.RAISED)
    first_due = next(r for r in items[1:] if r.mono - start_ms >= delay * 1000)
    assert raised.mono == first_due.mono
    assert raised.evidence.start == items[1].ts


# Levels that hold long enough to open, raise and clear every kind of alert, noise, faults.
values_or_faults = st.one_of(
    st.sampled_from([1.0, 2.2, 5.0, 7.8, 9.0, 12.0]),
    st.sampled_from([1.0, 2.2, 5.0, 7.8, 9.0, 12.0]),
    st.floats(-5.0, 15.0),
    st.none(),
    st.just(3276.7),
)
rows_strategy = st.lists(
    st.tuples(
        st.integers(1, 400),
        values_or_faults,
        st.sampled_from([Quality.OK, Quality.OK, Quality.OK, Quality.SUSPECT]),
        st.just(False),
    ),
    max_size=150,
)
reboots = st.lists(st.integers(0, 149), max_size=3)

EVERYTHING = SensorParams(
    interval_s=60,
    max_gap_s=300,
    limits=LimitParams(
        low=2.0, high=8.0, pre_alarm_margin=0.5, hysteresis=0.3, delay_s=300, update_every_s=600
    ),
    budget=BudgetParams(budget_s=900, window_s=7200, buckets=120, update_every_s=600),
    rate=RateParams(max_per_min=0.5, window_s=600),
    stuck=StuckParams(min_readings=4, min_s=180),
    range=RangeParams(low=-40.0, high=125.0),
    mkt=MktParams(window_s=3600, buckets=60),
    recording=RecordingParams(record_s=900),
)


def _with_reboots(rows: list[Row], at: list[int]) -> list[Row]:
    return [(g, v, q, i in at) for i, (g, v, q, _) in enumerate(rows)]


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, at=reboots)
def test_every_alert_has_a_proper_life(rows: list[Row], at: list[int]) -> None:
    state = SensorState()
    life: dict[str, list[Alert]] = defaultdict(list)
    open_by_rule: dict[str, str] = {}
    for reading in readings(_with_reboots(rows, at)):
        state, verdict = engine.step(EVERYTHING, state, reading)
        decoded = msgspec.json.decode(msgspec.json.encode(state), type=SensorState)
        assert decoded == state  # plain data, persistable
        assert verdict.reading.seq == 0
        validate(msgspec.structs.replace(verdict.reading, seq=1))
        for alert in verdict.alerts:
            assert alert.seq == 0 and (alert.ts, alert.mono, alert.boot) == (
                reading.ts,
                reading.mono,
                reading.boot,
            )
            validate(msgspec.structs.replace(alert, seq=1))  # every contract constraint, ids included
            history = life[alert.alert_id]
            if not history:
                assert alert.action is AlertAction.RAISED, "an alert starts with raised"
                assert alert.rule not in open_by_rule, "one open alert per rule"
                open_by_rule[alert.rule] = alert.alert_id
            else:
                assert history[-1].action is not AlertAction.CLEARED, "nothing after cleared"
                assert alert.action is not AlertAction.RAISED, "raised only once"
                assert (alert.rule, alert.severity) == (history[0].rule, history[0].severity)
            if alert.action is AlertAction.CLEARED:
                del open_by_rule[alert.rule]
            history.append(alert)


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy, at=reboots, split=st.integers(0, 150))
def test_rules_are_deterministic_and_resume_from_persisted_state(
    rows: list[Row], at: list[int], split: int
) -> None:
    items = readings(_with_reboots(rows, at))
    state_a, alerts_a = run(EVERYTHING, items)
    state_b, alerts_b = run(EVERYTHING, items)
    assert (state_a, alerts_a) == (state_b, alerts_b)
    head_state, head = run(EVERYTHING, items[:split])
    restored = msgspec.json.decode(msgspec.json.encode(head_state), type=SensorState)
    state_c, tail = run(EVERYTHING, items[split:], restored)
    assert head + tail == alerts_a and state_c == state_a


@settings(max_examples=100, deadline=None)
@given(
    raise_values=st.lists(st.floats(8.5, 30.0), min_size=1, max_size=5),
    tail=st.lists(st.tuples(st.integers(1, 300), st.floats(-5.0, 30.0), st.booleans()), max_size=50),
)
def test_error_and_suspect_readings_never_clear(
    raise_values: list[float], tail: list[tuple[int, float, bool]]
) -> None:
    params = SensorParams(limits=LimitParams(high=HIGH, hysteresis=0.3))
    rows = ok_rows([60] * len(raise_values), raise_values)
    rows += [(g, None if err else v, Quality.SUSPECT, False) for g, v, err in tail]
    _, alerts = run(params, readings(rows))
    assert len(limit_alerts(alerts, AlertAction.RAISED)) == 1
    assert limit_alerts(alerts, AlertAction.CLEARED) == []


weighted = st.lists(st.tuples(st.floats(0.001, 86400.0), st.floats(-40.0, 60.0)), min_size=1, max_size=100)


@given(value=st.floats(-40.0, 60.0), samples=st.lists(st.floats(0.001, 1e6), min_size=1, max_size=50))
def test_mkt_of_a_constant_is_the_constant(value: float, samples: list[float]) -> None:
    weighted_result = time_weighted_mkt((w, value) for w in samples)
    plain_result = mkt([value] * len(samples))
    assert weighted_result is not None and plain_result is not None
    assert math.isclose(weighted_result, value, abs_tol=1e-6)
    assert math.isclose(plain_result, value, abs_tol=1e-6)


@given(samples=weighted)
def test_mkt_lies_between_the_mean_and_the_maximum(samples: list[tuple[float, float]]) -> None:
    """exp(-ΔH/RT) is convex in T, so by Jensen's inequality MKT >= the time-weighted mean."""
    result = time_weighted_mkt(samples)
    mean = time_weighted_mean(samples)
    assert result is not None and mean is not None
    assert mean - 1e-6 <= result <= max(v for _, v in samples) + 1e-6


@given(samples=weighted, scale=st.floats(0.01, 100.0))
def test_mkt_weights_are_relative(samples: list[tuple[float, float]], scale: float) -> None:
    plain = time_weighted_mkt(samples)
    scaled = time_weighted_mkt((w * scale, v) for w, v in samples)
    assert plain is not None and scaled is not None
    assert math.isclose(plain, scaled, abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 900), st.one_of(st.none(), st.floats(-30.0, 40.0))), max_size=200
    ),
    window_s=st.integers(600, 86400),
    buckets=st.integers(1, 200),
)
def test_rolling_mkt_equals_batch_mkt_over_the_same_window(
    steps: list[tuple[int, float | None]], window_s: int, buckets: int
) -> None:
    params = SensorParams(interval_s=60, max_gap_s=300, mkt=MktParams(window_s=window_s, buckets=buckets))
    items = readings([(g, v, Quality.OK, False) for g, v in steps])
    state, _ = run(params, items)
    # Independently: each reading weighs the time since the previous one, capped at max_gap_s;
    # the first one interval_s.  The window is the newest valued reading's bucket and the ones before.
    width = round(window_s * 1000 / buckets)
    samples: list[tuple[int, float, float]] = []
    prev: int | None = None
    for reading in items:
        weight = 60_000 if prev is None else min(reading.ts - prev, 300_000)
        prev = reading.ts
        if reading.value is not None:
            samples.append((reading.ts // width, weight, reading.value))
    if not samples:
        assert engine.current_mkt(params, state) is None
        return
    first = samples[-1][0] - buckets + 1
    batch = time_weighted_mkt((w, v) for index, w, v in samples if index >= first)
    rolling = engine.current_mkt(params, state)
    assert batch is not None and rolling is not None
    assert math.isclose(rolling, batch, rel_tol=1e-9, abs_tol=1e-9)


def test_rolling_state_stays_bounded_over_30_days() -> None:
    params = MktParams(window_s=30 * 86400)
    state = RollingMkt()
    for minute in range(31 * 24 * 60):
        state = rolling_add(params, state, T0_MS + minute * 60_000, 60_000, 5.0 + (minute % 7))
    assert len(state.buckets) <= params.buckets
    assert rolling_value(params, state) is not None
    assert arrhenius(25.0) > arrhenius(5.0)
