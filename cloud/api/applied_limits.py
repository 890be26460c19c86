"""Which limits apply to a sensor at a moment, as far as the cloud knows: a pure decision, no I/O.

The cloud does not own temperature classes yet (a later issue adds them), so
the only limits it knows are those the gateway applied: every temperature
alert's evidence carries them (``contract/evidence.py``: ``limits`` {low,
high, pre_low, pre_high, delay_s}, in the evidence's ``unit``).  The limits in
force at a moment are those of the newest alert step at or before it whose
evidence has them; the page says where they came from, so nobody mistakes
them for master data.  A later alert with other limits means the gateway's
configuration changed, and from then on those apply.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["KnownLimits", "LimitsStep", "limits_in_force"]

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
    """Limits as a gateway applied them, and which alert says so."""

    low: float | None
    high: float | None
    pre_low: float | None
    pre_high: float | None
    delay_s: int | None
    unit: str | None
    gateway: str
    alert_id: str
    raised_at: int
    ts: int


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
