"""Every rule case in tests/testcases/rules/<rule>/<case>/ gives exactly its expected events.

A case is a folder named after what it reproduces, holding two files:

``input.toml``
    ``[params]`` is a ``gateway.rules.params.SensorParams`` (quantity,
    interval_s, max_gap_s) with one sub-table per rule to run
    (``[params.limits]``, ``[params.budget]``, ``[params.rate]``,
    ``[params.stuck]``, ``[params.range]``, ``[params.mkt]``,
    ``[params.recording]``); a rule without its table is off, so a case
    shows only what it is about.  Readings come from ``readings`` (a list of
    ``{t_s, value, quality, unit, wall_s, mono_s, boot}``; ``t_s`` is seconds
    since the case's start and is also the wall and monotonic time unless
    ``wall_s``/``mono_s`` say otherwise; no ``value`` means an error reading)
    and from ``[[segments]]`` (``from_s``, ``to_s`` exclusive, ``every_s`` and
    either ``value`` or a ramp ``start``..``end``).  MKT cases may give
    ``values`` (equally spaced readings, for the plain USP formula; they are
    also fed to the engine one ``interval_s`` apart) and ``intervals``
    (``[seconds, °C]`` pairs for the time-weighted formula).

``expected.toml``
    ``[[events]]``: every alert, in order, with ``t_s`` (of the reading that
    caused it), ``action``, ``rule``, ``severity``; optionally ``id`` (events
    with one label share an alert id, different labels differ), ``message``
    (a substring) and ``[events.evidence]`` (``start_s``, ``end_s``, ``peak``,
    ``min``, ``max``, ``mean``, ``mkt``, ``duration_s``, ``samples``).  Also
    optional: ``recorded_t_s`` and ``suspect_t_s`` (which readings are
    recorded / come out suspect), ``in_excursion`` at the end, and ``mkt``
    (rolling MKT at the end, and of ``values``/``intervals``) within
    ``tolerance`` (default 0.01).

A bug report becomes a new folder, not a new test function.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coldgate.contract.items import Alert, Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.rules import engine
from coldgate.gateway.rules.engine import SensorState
from coldgate.gateway.rules.mkt import mkt, time_weighted_mean, time_weighted_mkt
from coldgate.gateway.rules.params import SensorParams
from tests.rig.cases import case_dirs, each_case, read_expected, read_input
from tests.rig.items import reading

CASES = case_dirs("rules")
T0_MS = 1_700_000_000_000
BOOT = "b0070001"
SENSOR = "cr1-t1"
DEFAULT_UNIT = {Quantity.TEMPERATURE: Unit.CEL, Quantity.HUMIDITY: Unit.P1}
EVIDENCE_TIMES = ("start_s", "end_s")


def _rows(given: dict[str, Any], params: SensorParams) -> list[dict[str, Any]]:
    rows = [dict(r) for r in given.get("readings", [])]
    for seg in given.get("segments", []):
        t, n = seg["from_s"], 0
        steps = max(1, math.ceil((seg["to_s"] - seg["from_s"]) / seg["every_s"]))
        while t < seg["to_s"]:
            if "value" in seg:
                value = seg["value"]
            else:
                value = seg["start"] + (seg["end"] - seg["start"]) * n / steps
            rows.append({"t_s": t, "value": value, **{k: seg[k] for k in ("quality", "unit") if k in seg}})
            t += seg["every_s"]
            n += 1
    for i, value in enumerate(given.get("values", [])):
        rows.append({"t_s": i * params.interval_s, "value": value})
    rows.sort(key=lambda r: r["t_s"])
    return rows


def _reading(row: dict[str, Any], params: SensorParams) -> Reading:
    value = row.get("value")
    quality = Quality(row.get("quality", "ok" if value is not None else "error"))
    return reading(
        None if value is None else float(value),
        sensor=SENSOR,
        seq=0,
        ts=T0_MS + round(row.get("wall_s", row["t_s"]) * 1000),
        boot=row.get("boot", BOOT),
        mono=round(row.get("mono_s", row["t_s"]) * 1000),
        quantity=params.quantity,
        unit=Unit(row.get("unit", DEFAULT_UNIT[params.quantity])),
        quality=quality,
        reason=None if quality is Quality.OK else "given by the case",
    )


def run(case: Path) -> tuple[list[tuple[dict[str, Any], Alert]], dict[str, Any], SensorState, SensorParams]:
    given = read_input(case)
    params = msgspec.convert(given.get("params", {}), SensorParams)
    state = SensorState()
    alerts: list[tuple[dict[str, Any], Alert]] = []
    out: dict[str, Any] = {"recorded_t_s": [], "suspect_t_s": []}
    for row in _rows(given, params):
        item = _reading(row, params)
        state, verdict = engine.step(params, state, item)
        state = msgspec.json.decode(msgspec.json.encode(state), type=SensorState)  # state is plain data
        alerts.extend((row, a) for a in verdict.alerts)
        if verdict.record:
            out["recorded_t_s"].append(row["t_s"])
        if verdict.reading.quality is Quality.SUSPECT and item.quality is Quality.OK:
            out["suspect_t_s"].append(row["t_s"])
    return alerts, out, state, params


def _evidence_value(alert: Alert, key: str) -> float | None:
    value = getattr(alert.evidence, key.removesuffix("_s") if key in EVIDENCE_TIMES else key)
    if key in EVIDENCE_TIMES and value is not None:
        return (value - T0_MS) / 1000
    return value


@each_case("rules")
def test_case(case: Path) -> None:
    given, expected = read_input(case), read_expected(case)
    tol = expected.get("tolerance", 0.01)
    alerts, out, state, params = run(case)

    got = [(row["t_s"], a.action.value, a.rule, a.severity.value) for row, a in alerts]
    want = [(e["t_s"], e["action"], e["rule"], e["severity"]) for e in expected.get("events", [])]
    assert got == want, "\n".join(f"{row['t_s']}: {a.action} {a.rule} {a.message}" for row, a in alerts)

    ids: dict[str, str] = {}
    for event, (_, alert) in zip(expected.get("events", []), alerts, strict=True):
        assert alert.seq == 0 and alert.subject == SENSOR
        if "id" in event:
            assert ids.setdefault(event["id"], alert.alert_id) == alert.alert_id, event
        if "message" in event:
            assert event["message"] in alert.message
        for key, want_value in event.get("evidence", {}).items():
            got_value = _evidence_value(alert, key)
            assert got_value is not None, f"t_s={event['t_s']} evidence.{key} missing"
            assert got_value == pytest.approx(want_value, abs=tol), f"t_s={event['t_s']} evidence.{key}"
    assert len(set(ids.values())) == len(ids), "different labels, one alert id"

    for key in ("recorded_t_s", "suspect_t_s"):
        if key in expected:
            assert out[key] == expected[key], key
    if "in_excursion" in expected:
        assert engine.in_excursion(params, state) is expected["in_excursion"]
    if "mkt" in expected:
        want_mkt = expected["mkt"]
        if given.get("values"):
            assert mkt(given["values"]) == pytest.approx(want_mkt, abs=tol)
        if given.get("intervals"):
            pairs = [(w, v) for w, v in given["intervals"]]
            assert time_weighted_mkt(pairs) == pytest.approx(want_mkt, abs=tol)
            if "mean" in expected:
                assert time_weighted_mean(pairs) == pytest.approx(expected["mean"], abs=tol)
        if given.get("values") or given.get("readings") or given.get("segments"):
            assert engine.current_mkt(params, state) == pytest.approx(want_mkt, abs=tol)
    if "equal_weight_mkt" in expected:
        values = [_reading(r, params).value for r in _rows(given, params)]
        assert mkt(v for v in values if v is not None) == pytest.approx(expected["equal_weight_mkt"], abs=tol)


def test_every_rule_has_cases() -> None:
    rules = {c.parent.name for c in CASES}
    assert {"limits", "budget", "rate", "stuck", "range", "recording", "mkt"} <= rules
    for case in CASES:
        assert (case / "input.toml").is_file() and (case / "expected.toml").is_file(), case
