"""Scenario curves and the scenario clock: pure, deterministic, shaped like the real thing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.simulator.clock import ScenarioClock
from coldgate.simulator.curves import (
    AMBIENT,
    COLD_ROOM,
    FREEZER,
    SCENARIOS,
    Behaviour,
    CompressorFailure,
    DoorOpen,
    Drift,
    Dropout,
    Garbage,
    ProbeFailure,
    Steady,
    Stuck,
    make_curve,
    noise,
)

seeds = st.integers(min_value=0, max_value=2**32)
times = st.floats(min_value=0.0, max_value=30 * 24 * 3600.0, allow_nan=False)
rooms = st.sampled_from([COLD_ROOM, FREEZER, AMBIENT])


@given(seed=seeds, t=times, room=rooms)
def test_steady_stays_within_the_noise_band(seed, t, room):
    sample = Steady(room, seed).sample(t)
    assert abs(sample.temperature_c - room.setpoint_c) <= room.noise_c + 1e-9
    assert abs(sample.humidity_rh - room.humidity_rh) <= room.noise_rh + 1e-9
    assert sample.behaviour is Behaviour.NORMAL


@given(seed=seeds, t=times)
def test_curves_are_deterministic_for_a_seed(seed, t):
    for name in SCENARIOS:
        assert make_curve(name, seed=seed).sample(t) == make_curve(name, seed=seed).sample(t)


def test_different_seeds_give_different_noise():
    a, b = Steady(seed=1), Steady(seed=2)
    assert any(a.sample(t).temperature_c != b.sample(t).temperature_c for t in range(0, 600, 30))


@given(seed=seeds, t=times, dt=st.floats(min_value=0.0, max_value=5.0))
def test_noise_is_continuous(seed, t, dt):
    # Linear interpolation between knots at most 2 apart: slope <= 2 per period.
    assert abs(noise(seed, "t", t + dt, 60.0) - noise(seed, "t", t, 60.0)) <= 2 * dt / 60.0 + 1e-9


@given(seed=seeds, t=times)
def test_drift_adds_its_rate_on_top_of_the_room(seed, t):
    drift = Drift(seed=seed, rate_c_per_h=0.5, start_s=0.0)
    expected = Steady(seed=seed).sample(t).temperature_c + 0.5 * t / 3600.0
    assert drift.sample(t).temperature_c == pytest.approx(expected)


def _runs_above(curve, threshold, start, end, step=5.0):
    """Lengths (s) of the stretches the curve spends above threshold."""
    runs, current, t = [], 0.0, start
    while t <= end:
        if curve.sample(t).temperature_c > threshold:
            current += step
        elif current:
            runs.append(current)
            current = 0.0
        t += step
    return runs + ([current] if current else [])


def test_door_open_spikes_are_short_and_recover():
    door = DoorOpen(seed=3)  # opens at 10 min, every 30 min, for 3 min
    assert door.sample(door.first_s - 1).temperature_c < 5.2
    peak = max(door.sample(door.first_s + s).temperature_c for s in range(0, 600, 5))
    assert 7.5 < peak < 9.5
    runs = _runs_above(door, 8.0, 0.0, 4 * 3600.0)
    assert len(runs) >= 7, "one brief excursion per opening"
    assert max(runs) < 5 * 60, "shorter than any sensible alarm delay"
    before_next = door.sample(door.first_s + door.every_s - 1).temperature_c
    assert abs(before_next - 5.0) < 0.2, "room has recovered before the next opening"
    assert door.sample(door.first_s + 120).humidity_rh > 50.0


def test_door_open_rejects_a_door_open_longer_than_its_period():
    with pytest.raises(ValueError, match="open_s"):
        DoorOpen(open_s=2000.0, every_s=1800.0)


@given(seed=seeds, a=times, b=times)
def test_compressor_failure_warms_monotonically_after_the_failure(seed, a, b):
    curve = CompressorFailure(seed=seed)
    t1, t2 = sorted((a + curve.failure_s, b + curve.failure_s))
    assert curve.sample(t1).temperature_c <= curve.sample(t2).temperature_c


def test_compressor_failure_crosses_8c_when_newton_says():
    curve = CompressorFailure(seed=11)  # fails at 15 min, ambient 20 °C, tau 2 h
    at_failure = curve.sample(curve.failure_s).temperature_c
    expected = curve.failure_s + 7200.0 * math.log((20.0 - at_failure) / (20.0 - 8.0))
    crossing = curve.crossing_time(8.0)
    assert crossing == pytest.approx(expected)
    assert 2300 < crossing < 2700, "about 27 min after a 15-min start"
    assert curve.sample(crossing - 1).temperature_c < 8.0 < curve.sample(crossing + 1).temperature_c
    assert curve.sample(crossing).temperature_c == pytest.approx(8.0)
    assert curve.sample(48 * 3600.0).temperature_c == pytest.approx(20.0, abs=0.01)
    assert curve.crossing_time(25.0) is None
    assert abs(curve.sample(curve.failure_s - 1).temperature_c - 5.0) <= 0.1


def test_freezer_failure_is_an_excursion_too():
    curve = CompressorFailure(room=FREEZER, seed=1, failure_s=0.0)
    assert curve.sample(0).temperature_c == pytest.approx(-20, abs=0.3)
    assert curve.crossing_time(-15.0) is not None


def test_dropout_answers_then_goes_silent_then_answers_again():
    curve = Dropout(seed=1, start_s=600.0, duration_s=300.0)
    assert [curve.sample(t).behaviour for t in (599.0, 600.0, 899.0, 900.0)] == [
        Behaviour.NORMAL,
        Behaviour.DROPOUT,
        Behaviour.DROPOUT,
        Behaviour.NORMAL,
    ]


def test_garbage_has_a_window():
    curve = Garbage(seed=1, start_s=60.0, duration_s=60.0)
    assert curve.sample(59).behaviour is Behaviour.NORMAL
    assert curve.sample(60).behaviour is Behaviour.GARBAGE
    assert curve.sample(120).behaviour is Behaviour.NORMAL


def test_probe_failure_has_a_window_and_keeps_the_room_underneath():
    curve = ProbeFailure(seed=1, start_s=60.0, duration_s=60.0)
    assert [curve.sample(t).behaviour for t in (59, 60, 119, 120)] == [
        Behaviour.NORMAL,
        Behaviour.FAULT,
        Behaviour.FAULT,
        Behaviour.NORMAL,
    ]
    assert curve.sample(90).temperature_c == Steady(seed=1).sample(90).temperature_c


@given(seed=seeds, t=times)
def test_stuck_returns_a_constant(seed, t):
    curve = Stuck(seed=seed, at_s=600.0)
    frozen = curve.sample(600.0)
    later = curve.sample(600.0 + t)
    assert (later.temperature_c, later.humidity_rh) == (frozen.temperature_c, frozen.humidity_rh)
    assert later.behaviour is Behaviour.STUCK


def test_a_stuck_sensor_hides_a_compressor_failure():
    curve = make_curve(
        "stuck", seed=2, at_s=600.0, inner={"scenario": "compressor_failure", "failure_s": 300.0}
    )
    room = CompressorFailure(seed=2, failure_s=300.0)
    assert curve.sample(7200).temperature_c == room.sample(600).temperature_c
    assert room.sample(7200).temperature_c > 8.0


def test_make_curve_names_unknown_parameters():
    with pytest.raises(ValueError, match=r"no parameter failure_minutes; known: .*failure_s"):
        make_curve("compressor_failure", failure_minutes=3)
    with pytest.raises(ValueError, match="unknown scenario 'meltdown'"):
        make_curve("meltdown")


def test_clock_compresses_time_by_its_speed():
    now = [100.0]
    clock = ScenarioClock(60.0, monotonic=lambda: now[0])
    assert clock.now() == 0.0
    now[0] += 60.0
    assert clock.now() == 3600.0
    assert clock.at(101.0) == 60.0
    assert clock.real_seconds_until(7200.0) == pytest.approx(60.0)
    clock.restart()
    assert clock.now() == 0.0
    assert ScenarioClock(10.0, start_at_s=900.0, monotonic=lambda: 0.0).now() == 900.0
    with pytest.raises(ValueError):
        ScenarioClock(0.0)
