"""What state each sensor's tile shows on the site overview: a pure judgement, no I/O.

One state per tile, the most urgent that holds, in this order: the gateway
is offline (nothing it reports can be trusted as current); the sensor is in
a monitoring gap (offline); a critical alert is open (excursion); a warning
is open (pre-alarm); no reading ever; the last reading is older than
``stale_after_ms`` (stale); calibration is overdue; else in range.  Each
state says since when it holds, where the data can tell.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from coldgate.cloud.alerts.calibration_due import RULE as CALIBRATION_RULE
from coldgate.cloud.api.applied_limits import KnownLimits
from coldgate.cloud.api.schemas import AlertEntry, GapEntry, GatewayEntry, SensorEntry
from coldgate.gateway.rules.offline_sources import RULE as OFFLINE_RULE

__all__ = ["STATES", "Tile", "tile"]

#: Most urgent first; the colours live in the stylesheet under the same names.
STATES = (
    "gateway offline",
    "offline",
    "excursion",
    "pre-alarm",
    "no data",
    "stale",
    "calibration overdue",
    "in range",
)


@dataclass(frozen=True, slots=True)
class Tile:
    gateway: str
    site: str
    sensor: str
    zone: str | None
    state: str
    #: Epoch ms the state began, when known.
    since_ms: int | None
    value: float | None
    unit: str | None
    quantity: str | None
    #: Epoch ms of the last reading, if any.
    last_ts: int | None
    #: Why: the alert's message, the gap's cause, the calibration date.
    why: str | None
    #: The gateway's own time of the last reading, when the cloud corrected it (``last_ts`` is corrected).
    reported_ts: int | None = None
    #: The limits: of the class of the sensor's location, else as the gateway applied them in the newest
    #: alert evidence carrying them (None: not known).
    low: float | None = None
    high: float | None = None
    pre_low: float | None = None
    pre_high: float | None = None
    #: The alert whose evidence gave the limits.
    limits_alert: str | None = None
    #: The class that gave the limits: the class of the location the sensor is placed in.
    limits_class: str | None = None


def _epoch_ms(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def tile(
    sensor: SensorEntry,
    gateway: GatewayEntry | None,
    alerts: list[AlertEntry],
    gaps: list[GapEntry],
    *,
    now_ms: int,
    stale_after_ms: int,
    limits: KnownLimits | None = None,
) -> Tile:
    """The tile of ``sensor``, given its gateway and the open alerts and gaps about it (closed ones are
    ignored), and the limits known for it (shown, not judged: the gateway judged them).  "In range" has
    no "since": the overview does not read the alert history for it."""
    last = sensor.last_reading
    state, since, why = "in range", None, None
    # Not every alert is about the temperature: a source gone silent is "offline" (the gateway raises
    # it at the edge, before its gap closes), a calibration due is the calibration state.
    offline = [a for a in alerts if a.open and a.rule == OFFLINE_RULE]
    calibration = [a for a in alerts if a.open and a.rule == CALIBRATION_RULE and a.severity != "info"]
    measured = [a for a in alerts if a.open and a.rule not in (OFFLINE_RULE, CALIBRATION_RULE)]
    critical = [a for a in measured if a.severity == "critical"]
    warning = [a for a in measured if a.severity == "warning"]  # "info" colours nothing
    open_gaps = [g for g in gaps if g.open]
    today = datetime.datetime.fromtimestamp(now_ms / 1000, datetime.UTC).date()
    if gateway is not None and not gateway.online:
        state, since = "gateway offline", _epoch_ms(gateway.state_since)
        why = f"gateway {gateway.id} not heard"
    elif offline:
        first = min(offline, key=lambda a: a.raised_at)
        state, since, why = "offline", first.raised_at, first.message
    elif open_gaps:
        first = min(open_gaps, key=lambda g: g.start)
        state, since, why = "offline", first.start, first.cause
    elif critical:
        first = min(critical, key=lambda a: a.raised_at)
        state, since, why = "excursion", first.raised_at, first.message
    elif warning:
        first = min(warning, key=lambda a: a.raised_at)
        state, since, why = "pre-alarm", first.raised_at, first.message
    elif last is None:
        state = "no data"
    elif now_ms - (last.ts_corrected or last.ts) > stale_after_ms:
        state, since, why = "stale", last.ts_corrected or last.ts, "no reading since"
    elif calibration:
        state, since, why = "calibration overdue", calibration[0].raised_at, calibration[0].message
    elif sensor.calibration_due is not None and sensor.calibration_due < today:
        state, why = "calibration overdue", f"calibration was due {sensor.calibration_due.isoformat()}"
    moved = last is not None and last.ts_corrected is not None and last.ts_corrected != last.ts
    return Tile(
        gateway=sensor.gateway, site=sensor.site, sensor=sensor.id, zone=sensor.zone, state=state,
        since_ms=since, value=last.value if last else None, unit=last.unit if last else None,
        quantity=last.quantity if last else None, last_ts=(last.ts_corrected or last.ts) if last else None,
        why=why,
        reported_ts=last.ts if last is not None and moved else None,
        low=limits.low if limits else None, high=limits.high if limits else None,
        pre_low=limits.pre_low if limits else None, pre_high=limits.pre_high if limits else None,
        limits_alert=limits.alert_id if limits else None,
        limits_class=limits.temperature_class if limits else None,
    )  # fmt: skip
