"""Which limits apply to a sensor at a moment, as far as the cloud knows: a pure decision, no I/O.

Two sources, in this order:

* The temperature class of the location the sensor was placed in (the
  cloud's master data, pushed to the gateways, which judge the zone by it):
  :func:`class_limits`.  A sensor that moved is judged by each location's
  class for the time it was there (:func:`limit_segments`), so a chart
  across the move shows both.
* Where no placement with a class covers a time: the limits the gateway
  applied, as every temperature alert's evidence carries them
  (``contract/evidence.py``: ``limits`` {low, high, pre_low, pre_high,
  delay_s}, in the evidence's ``unit``), those of the newest alert step at or
  before the moment (:func:`limits_in_force`).

Either way the page says where they came from, so nobody mistakes one for
the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "KnownLimits", "LimitsSegment", "LimitsStep", "Stay", "class_limits", "limit_segments", "limits_in_force",
]  # fmt: skip

_BOUNDS = ("low", "high", "pre_low", "pre_high")


@dataclass(frozen=True, slots=True)
class LimitsStep:
    """One stored alert step about a sensor, with the evidence it carried."""

    gateway: str
    alert_id: str
    #: When the alert was raised (its first step), epoch ms.
    raised_at: int
    #: This step's time, epoch ms.
    ts: int
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KnownLimits:
    """Limits, and where they come from: an alert's evidence (``alert_id``...) or a class
    (``temperature_class`` of ``location``)."""

    low: float | None
    high: float | None
    pre_low: float | None
    pre_high: float | None
    delay_s: int | None
    unit: str | None
    gateway: str | None = None
    alert_id: str | None = None
    raised_at: int | None = None
    ts: int | None = None
    temperature_class: str | None = None
    location: str | None = None
    location_name: str | None = None


@dataclass(frozen=True, slots=True)
class Stay:
    """A sensor's stay in one location: [start, end) in epoch ms (``end`` None: still there), and the
    limits of that location's class (None: a location without a class, or out of service)."""

    start: int
    end: int | None
    limits: KnownLimits | None


@dataclass(frozen=True, slots=True)
class LimitsSegment:
    """[start, end) of a chart and the limits in force over it (None: none known)."""

    start: int
    end: int
    limits: KnownLimits | None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _limits_of(step: LimitsStep, unit: str | None) -> KnownLimits | None:
    """The step's limits, or None when it has none usable (none given, no number among them, another
    unit than the series', or low above high)."""
    limits = step.evidence.get("limits") if isinstance(step.evidence, dict) else None
    if not isinstance(limits, dict):
        return None
    bounds = {name: _number(limits.get(name)) for name in _BOUNDS}
    if all(v is None for v in bounds.values()):
        return None
    low, high = bounds["low"], bounds["high"]
    if low is not None and high is not None and low > high:
        return None
    given_unit = step.evidence.get("unit")
    given_unit = given_unit if isinstance(given_unit, str) else None
    if unit is not None and given_unit is not None and given_unit != unit:
        return None
    delay = limits.get("delay_s")
    return KnownLimits(
        **bounds, delay_s=delay if isinstance(delay, int) and not isinstance(delay, bool) else None,
        unit=given_unit, gateway=step.gateway, alert_id=step.alert_id, raised_at=step.raised_at, ts=step.ts,
    )  # fmt: skip


def limits_in_force(
    steps: Iterable[LimitsStep], at_ms: int, *, unit: str | None = None
) -> KnownLimits | None:
    """The limits of the newest step at or before ``at_ms`` that carries usable limits (in ``unit``,
    when both say); ties on time go to the later-raised alert, then the larger alert id; None when
    no alert ever carried them."""
    usable = (
        (found, step) for step in steps if step.ts <= at_ms and (found := _limits_of(step, unit)) is not None
    )
    newest = max(usable, key=lambda pair: (pair[1].ts, pair[1].raised_at, pair[1].alert_id), default=None)
    return None if newest is None else newest[0]


def class_limits(
    name: str, spec: Mapping[str, Any], *, location: str | None = None, location_name: str | None = None
) -> KnownLimits | None:
    """The limits a gateway judges a zone of class ``name`` by, from the class's stored ``spec`` (the
    gateway's ``[[temperature_classes]]`` fields, in °C): pre-alarm limits ``pre_alarm_margin`` inside
    each limit, as the gateway's rules place them; a class that alarms on one side only
    (``alarm_on``) shows that side only.  None when the spec has no usable low and high."""
    low, high = _number(spec.get("low")), _number(spec.get("high"))
    if low is None or high is None or low > high:
        return None
    margin = _number(spec.get("pre_alarm_margin"))
    margin = 0.0 if margin is None else margin
    side = spec.get("alarm_on", "both")
    delay = _number(spec.get("alarm_delay_s"))
    return KnownLimits(
        low=low if side != "high" else None, high=high if side != "low" else None,
        pre_low=low + margin if side != "high" and margin else None,
        pre_high=high - margin if side != "low" and margin else None,
        delay_s=None if delay is None else int(delay), unit="CEL",
        temperature_class=name, location=location, location_name=location_name,
    )  # fmt: skip


def limit_segments(
    stays: Sequence[Stay], fallback: KnownLimits | None, start: int, end: int
) -> list[LimitsSegment]:
    """[start, end) cut where the sensor moved: each stay's class limits where it has them, else
    ``fallback`` (the limits the gateway applied); neighbours with the same limits are one segment."""
    segments: list[LimitsSegment] = []

    def add(lo: int, hi: int, limits: KnownLimits | None) -> None:
        if hi <= lo:
            return
        if segments and segments[-1].limits == limits and segments[-1].end == lo:
            segments[-1] = LimitsSegment(segments[-1].start, hi, limits)
        else:
            segments.append(LimitsSegment(lo, hi, limits))

    cursor = start
    for stay in sorted(stays, key=lambda s: s.start):
        stay_end = end if stay.end is None else min(stay.end, end)
        if stay_end <= cursor:
            continue
        add(cursor, min(stay.start, end), fallback)
        lo = max(stay.start, cursor)
        add(lo, stay_end, stay.limits if stay.limits is not None else fallback)
        cursor = max(cursor, stay_end)
        if cursor >= end:
            break
    add(cursor, end, fallback)
    return segments
