"""Which limits the pages draw (``cloud/api/applied_limits.py``), pure: the class of the room a sensor
was placed in for each stretch of a chart, else the newest a gateway applied, at or before the moment,
from any alert of the sensor."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.api.applied_limits import (
    KnownLimits,
    LimitsSegment,
    LimitsStep,
    Stay,
    class_limits,
    limit_segments,
    limits_in_force,
)

T0 = 1_795_000_000_000
CLASS_2_8 = {"low": 2.0, "high": 8.0, "pre_low": 3.0, "pre_high": 7.0, "delay_s": 600}


def step(alert_id: str, ts: int, limits: Any = CLASS_2_8, *, raised: int | None = None, unit: Any = "CEL"
         ) -> LimitsStep:  # fmt: skip
    evidence: dict[str, Any] = {"unit": unit} if unit is not None else {}
    if limits is not None:
        evidence["limits"] = limits
    first = raised if raised is not None else ts
    return LimitsStep(gateway="gw01", alert_id=alert_id, raised_at=first, ts=ts, evidence=evidence)


def test_none_known_when_no_alert_carried_limits() -> None:
    assert limits_in_force([], T0) is None
    assert limits_in_force([step("a1", T0, None)], T0) is None
    assert limits_in_force([step("a1", T0, {"delay_s": 60})], T0) is None  # no bound among them


def test_the_newest_at_or_before_the_moment_applies() -> None:
    steps = [step("a1", T0), step("a2", T0 + 1000, {"low": 15.0, "high": 25.0}, raised=T0 + 500)]
    found = limits_in_force(steps, T0 + 1000)
    assert found is not None
    assert (found.low, found.high, found.alert_id, found.raised_at) == (15, 25, "a2", T0 + 500)
    older = limits_in_force(steps, T0 + 999)  # the later configuration is not yet in force
    assert older is not None and (older.low, older.high, older.pre_low, older.pre_high) == (2, 8, 3, 7)
    assert older.delay_s == 600 and older.unit == "CEL" and older.gateway == "gw01"
    assert limits_in_force(steps, T0 - 1) is None


def test_malformed_or_other_units_are_passed_over() -> None:
    steps = [
        step("a1", T0),
        step("a2", T0 + 1, {"low": 9.0, "high": 1.0}),  # low above high
        step("a3", T0 + 2, {"low": "cold", "high": True}),  # no number among them
        step("a4", T0 + 3, {"low": 30.0, "high": 60.0}, unit="P1"),  # humidity limits
        step("a5", T0 + 4, ["not", "a", "dict"]),
    ]
    found = limits_in_force(steps, T0 + 10, unit="CEL")
    assert found is not None and found.alert_id == "a1"
    assert limits_in_force(steps, T0 + 10, unit="P1").alert_id == "a4"  # type: ignore[union-attr]


def test_a_tie_goes_to_the_later_raised_alert() -> None:
    steps = [step("a1", T0, raised=T0 - 5000), step("a2", T0, {"low": 0.0, "high": 4.0}, raised=T0 - 10)]
    assert limits_in_force(steps, T0).alert_id == "a2"  # type: ignore[union-attr]


numbers = st.one_of(st.none(), st.floats(allow_nan=True), st.integers(-1000, 1000), st.text(max_size=3))


@given(st.lists(st.tuples(st.integers(0, 100), st.dictionaries(
    st.sampled_from(["low", "high", "pre_low", "pre_high", "delay_s"]), numbers)), max_size=8),
    st.integers(0, 100))  # fmt: skip
def test_whatever_the_evidence_the_answer_is_finite_and_ordered(raw: list[Any], at: int) -> None:
    found = limits_in_force([step(f"a{i}", ts, limits) for i, (ts, limits) in enumerate(raw)], at)
    if found is not None:
        assert found.ts <= at
        given_bounds = [v for v in (found.low, found.high, found.pre_low, found.pre_high) if v is not None]
        assert given_bounds and all(math.isfinite(v) for v in given_bounds)
        assert found.low is None or found.high is None or found.low <= found.high


def test_the_steps_read_from_the_database_on_both_dialects(engine: Any) -> None:
    """``queries_limits.limit_steps``: every step with limits of one sensor (to fall back past a bad
    one), each sensor's newest for the overview, none after ``until``, and when each alert was raised."""
    import msgspec

    from coldgate.cloud.api.queries_limits import limit_steps
    from coldgate.contract.evidence import Limits
    from tests.rig import items
    from tests.rig.cloud_db import ingest
    from tests.rig.ingest import batch_message

    def alert(seq: int, n: int, ts: int, sensor: str, high: float, action: str = "raised") -> Any:
        raised = items.alert(n, ts=ts, subject=sensor, action=action)
        evidence = msgspec.structs.replace(raised.evidence, limits=Limits(low=2.0, high=high))
        return msgspec.structs.replace(raised, seq=seq, evidence=evidence)

    batch = [alert(1, 1, T0, "cr1-t01", 8.0), alert(2, 1, T0 + 5000, "cr1-t01", 8.5, "cleared"),
             alert(3, 2, T0 + 9000, "cr1-t01", 9.0), alert(4, 3, T0 + 1000, "cr1-t02", 6.0)]  # fmt: skip
    assert ingest(engine, *batch_message("gw01", batch)).kind == "batch"
    with engine.connect() as conn:
        newest = limit_steps(conn, until=T0 + 10_000)
        one = limit_steps(conn, gateway="gw01", sensor="cr1-t01", until=T0 + 8000)
    assert {key: [(s.alert_id, s.ts, s.raised_at) for s in steps] for key, steps in newest.items()} == {
        ("gw01", "cr1-t01"): [("gw01-a-000002", T0 + 9000, T0 + 9000)],
        ("gw01", "cr1-t02"): [("gw01-a-000003", T0 + 1000, T0 + 1000)],
    }
    assert [(s.alert_id, s.ts, s.raised_at) for s in one[("gw01", "cr1-t01")]] == [
        ("gw01-a-000001", T0 + 5000, T0), ("gw01-a-000001", T0, T0),
    ]  # fmt: skip
    found = limits_in_force(one[("gw01", "cr1-t01")], T0 + 8000, unit="CEL")
    assert found is not None and (found.high, found.raised_at) == (8.5, T0)


def _class(name: str, low: float, high: float, **spec: object) -> KnownLimits:
    found = class_limits(name, {"low": low, "high": high, "pre_alarm_margin": 0.5, **spec}, location=name)
    assert found is not None
    return found


def test_a_class_gives_pre_alarm_bands_inside_its_limits_on_the_sides_it_alarms_on():
    both = _class("2-8C", 2.0, 8.0, alarm_delay_s=900.0)
    assert (both.low, both.high, both.pre_low, both.pre_high, both.delay_s) == (2.0, 8.0, 2.5, 7.5, 900)
    cold = _class("do-not-freeze", 0.0, 25.0, alarm_on="low")
    assert (cold.low, cold.high, cold.pre_low, cold.pre_high) == (0.0, None, 0.5, None)
    assert class_limits("x", {"high": 8.0}) is None  # no low: not a class the gateway would accept
    assert class_limits("x", {"low": 9.0, "high": 8.0}) is None


def test_segments_fall_back_to_what_the_gateway_applied_where_no_class_covers():
    applied = limits_in_force([step("a1", T0, {"low": 1.0, "high": 9.0})], T0)
    fridge, ambient = _class("2-8C", 2.0, 8.0), _class("15-25C", 15.0, 25.0)
    stays = [
        Stay(T0 + 100, T0 + 200, fridge),
        Stay(T0 + 200, T0 + 300, None),  # out of service, or a location without a class
        Stay(T0 + 300, T0 + 400, ambient),
        Stay(T0 + 400, None, ambient),  # placed again in the same room: one stretch
    ]
    segments = limit_segments(stays, applied, T0, T0 + 1000)
    assert [(s.start - T0, s.end - T0, s.limits) for s in segments] == [
        (0, 100, applied), (100, 200, fridge), (200, 300, applied), (300, 1000, ambient),
    ]  # fmt: skip
    assert limit_segments([], None, T0, T0 + 10) == [LimitsSegment(T0, T0 + 10, None)]
    # Stays wholly before or after the range do not show; one that began before it is cut at its start.
    assert limit_segments(
        [Stay(T0 - 50, T0 + 5, fridge), Stay(T0 + 20, None, ambient)], None, T0, T0 + 10
    ) == [LimitsSegment(T0, T0 + 5, fridge), LimitsSegment(T0 + 5, T0 + 10, None)]
