"""Rule parameters: frozen, plain data, built from the configuration by one pure function.

The rules never see TOML or the config tree: ``params_from_config`` turns a
zone's temperature class and the sensor's poll interval into these structs,
and the cloud builds the very same structs to re-evaluate history.  A rule
whose parameters are ``None`` is off.  Temperatures are °C and humidities
%RH; readings in °F or K are converted before judging.

Defaults and where they come from:

* Recording (``RecordingParams``): China GSP (2016), appendix "automatic
  temperature and humidity monitoring" (冷藏、冷冻药品的储存与运输管理 /
  温湿度自动监测): a value refreshed at least every minute, a record at
  least every 30 min in storage and every 5 min in transport, and every
  2 min while temperature or humidity is outside its limits.  WHO TRS 961
  Annex 9 (Supplement 8, temperature and humidity monitoring systems) asks
  for the same things without fixing numbers.
* MKT (``MktParams``): USP <1079.2>, ΔH = 83.144 kJ/mol, i.e. ΔH/R = 10 000 K.
* Sensor range (``RangeParams``): what common SHT2x/SHT3x-based RS-485
  loggers can measure, -40..125 °C and 0..100 %RH; a value outside is a
  fault code or a broken probe, never a room temperature.
"""

from __future__ import annotations

import math
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from coldgate.contract.units import Quantity

if TYPE_CHECKING:
    from coldgate.gateway.config import TemperatureClass, Zone

#: Quantities the rules judge; readings of others pass through untouched.
JUDGED = (Quantity.TEMPERATURE, Quantity.HUMIDITY)
UNIT_LABEL = MappingProxyType({Quantity.TEMPERATURE: "°C", Quantity.HUMIDITY: "%RH"})
PHYSICAL_RANGE = MappingProxyType({Quantity.TEMPERATURE: (-40.0, 125.0), Quantity.HUMIDITY: (0.0, 100.0)})


class _Params(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, dict=True):
    """``dict=True`` only so that ``cached_property`` can keep derived milliseconds.

    The rules run for every reading (issue 18: 1,000 a second at a busy site) and
    would otherwise round the same seconds to milliseconds on each of them.  The
    cache is not a field: equality, hashing and encoding see the fields only.
    """


class LimitParams(_Params):
    """Alarm limits with a pre-alarm band, an alarm delay and hysteresis on clearing.

    A side is off when its limit is ``None`` (a freezer "≤ -20 °C" has only
    ``high``).  ``pre_alarm_margin`` > 0 adds a warning limit that far inside
    each alarm limit.  ``update_every_s`` re-sends an open alert's evidence;
    ``peak_step`` re-sends it as soon as the peak has worsened that much.
    """

    low: float | None = None
    high: float | None = None
    pre_alarm_margin: float = 0.0
    hysteresis: float = 0.0
    delay_s: float = 0.0
    update_every_s: float | None = 900.0
    peak_step: float = 1.0

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"limits: high {self.high} must be above low {self.low}")
        if min(self.pre_alarm_margin, self.hysteresis, self.delay_s, self.peak_step) < 0:
            raise ValueError("limits: margins, hysteresis, delay and peak_step must be >= 0")

    @cached_property
    def level_count(self) -> int:
        """How many limits are judged: each side that is set, and its pre-alarm when there is a margin."""
        per_side = 2 if self.pre_alarm_margin > 0 else 1
        return per_side * ((self.high is not None) + (self.low is not None))

    @cached_property
    def quiet_band(self) -> tuple[float, float]:
        """Values from the first to the second, both included, are beyond no limit or pre-alarm."""
        margin = max(0.0, self.pre_alarm_margin)
        return (
            -math.inf if self.low is None else self.low + margin,
            math.inf if self.high is None else self.high - margin,
        )


class BudgetParams(_Params):
    """Cumulative time allowed outside the alarm limits in a sliding window.

    Counts every excursion, also those shorter than the alarm delay: this is
    what catches a door left ajar a minute at a time.
    """

    budget_s: float
    window_s: float = 86_400.0
    buckets: int = 1440
    update_every_s: float | None = 900.0

    def __post_init__(self) -> None:
        if not 0 <= self.budget_s < self.window_s or self.buckets < 1:
            raise ValueError("budget: need 0 <= budget_s < window_s and buckets >= 1")


class RateParams(_Params):
    """Rate of change (least-squares slope over ``window_s``), in units per minute."""

    max_per_min: float
    clear_per_min: float | None = None  # default: half of max_per_min
    window_s: float = 600.0
    min_samples: int = 3

    def __post_init__(self) -> None:
        if self.max_per_min <= 0 or self.window_s <= 0 or self.min_samples < 2:
            raise ValueError("rate: need max_per_min > 0, window_s > 0, min_samples >= 2")

    @property
    def clear_at(self) -> float:
        return self.max_per_min / 2 if self.clear_per_min is None else self.clear_per_min


class StuckParams(_Params):
    """A value unchanged within ``tolerance`` for ``min_readings`` readings AND ``min_s`` seconds.

    Both: a fast-polled sensor must not be called stuck after a quiet ten
    minutes, a slow one not after three readings.  The default tolerance 0
    means "the very same raw value", which a live sensor on a cooling cycle
    does not repeat for two hours.
    """

    tolerance: float = 0.0
    min_readings: int = 30
    min_s: float = 7200.0

    @cached_property
    def min_ms(self) -> int:
        return round(self.min_s * 1000)


class RangeParams(_Params):
    """What the sensor can physically measure; ``clear_after`` good readings end the fault."""

    low: float
    high: float
    clear_after: int = 3


class MktParams(_Params):
    """Rolling mean kinetic temperature (USP <1079.2>) over ``window_s``, in ``buckets`` slices."""

    window_s: float = 86_400.0
    dh_r_k: float = 10_000.0
    buckets: int = 720

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.buckets < 1 or self.dh_r_k <= 0:
            raise ValueError("mkt: need window_s > 0, buckets >= 1, dh_r_k > 0")

    @cached_property
    def bucket_ms(self) -> int:
        return max(1, round(self.window_s * 1000 / self.buckets))


class RecordingParams(_Params):
    """The minimum recording the zone must have (defaults: China GSP, see the module docstring).

    ``mode = "all"`` keeps every reading and only reports violations;
    ``"minimum"`` thins to the policy (see ``gateway.rules.recording``).
    ``tolerance_s`` absorbs poll jitter and retries before a late value
    counts as a violation.  ``refresh_s = None`` turns the refresh check off.
    """

    refresh_s: float | None = 60.0
    record_s: float = 1800.0
    excursion_record_s: float = 120.0
    tolerance_s: float = 10.0
    mode: Literal["all", "minimum"] = "all"
    deadband: float = 0.5

    @cached_property
    def tolerance_ms(self) -> int:
        return round(self.tolerance_s * 1000)

    @cached_property
    def refresh_ms(self) -> int | None:
        return None if self.refresh_s is None else round(self.refresh_s * 1000)

    @cached_property
    def record_ms(self) -> int:
        return round(self.record_s * 1000)

    @cached_property
    def excursion_record_ms(self) -> int:
        return round(self.excursion_record_s * 1000)


class SensorParams(_Params):
    """Everything judged on one sensor's readings of one quantity.

    ``interval_s`` is the sensor's poll interval: the weight of a first
    reading.  ``max_gap_s`` (default twice the interval) is the longest time
    one value may stand for; beyond it the time is unknown, and the sensor's
    gap is reported by the poller, not guessed here.
    """

    quantity: Quantity = Quantity.TEMPERATURE
    interval_s: float = 60.0
    max_gap_s: float | None = None
    limits: LimitParams | None = None
    budget: BudgetParams | None = None
    rate: RateParams | None = None
    stuck: StuckParams | None = None
    range: RangeParams | None = None
    mkt: MktParams | None = None
    recording: RecordingParams | None = None

    def __post_init__(self) -> None:
        if self.quantity not in JUDGED:
            raise ValueError(f"quantity: only {', '.join(JUDGED)} are judged, not {self.quantity}")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        no_limits = self.limits is None or (self.limits.low is None and self.limits.high is None)
        if self.budget is not None and no_limits:
            raise ValueError("budget: needs limits to count time outside them")

    @cached_property
    def nominal_ms(self) -> int:
        return round(self.interval_s * 1000)

    @cached_property
    def max_gap_ms(self) -> int:
        return round((self.max_gap_s if self.max_gap_s is not None else 2 * self.interval_s) * 1000)

    @property
    def label(self) -> str:
        return UNIT_LABEL[self.quantity]


def params_from_config(
    tclass: TemperatureClass | None,
    zone: Zone | None,
    quantity: Quantity | str,
    interval_s: float,
) -> SensorParams | None:
    """The rules for one sensor's readings of ``quantity``; ``None`` when nothing is judged.

    Without a zone (or class) only the sensor-fault rules run: the reading is
    recorded but there is nothing to hold it against.
    """
    quantity = Quantity(quantity)
    if quantity not in JUDGED:
        return None
    low, high = PHYSICAL_RANGE[quantity]
    faults = {"stuck": StuckParams(), "range": RangeParams(low=low, high=high)}
    if tclass is None or zone is None:
        return SensorParams(quantity=quantity, interval_s=interval_s, **faults)
    recording = RecordingParams(
        record_s=zone.recording_interval_s or (300.0 if zone.transport else 1800.0),
    )
    if quantity is Quantity.HUMIDITY:
        limits = None
        if tclass.humidity_low is not None or tclass.humidity_high is not None:
            limits = LimitParams(
                low=tclass.humidity_low,
                high=tclass.humidity_high,
                hysteresis=tclass.humidity_hysteresis,
                delay_s=tclass.alarm_delay_s,
                peak_step=5.0,
            )
        return SensorParams(
            quantity=quantity, interval_s=interval_s, limits=limits, recording=recording, **faults
        )
    limits = LimitParams(
        low=tclass.low if tclass.alarm_on in ("both", "low") else None,
        high=tclass.high if tclass.alarm_on in ("both", "high") else None,
        pre_alarm_margin=tclass.pre_alarm_margin,
        hysteresis=tclass.hysteresis,
        delay_s=tclass.alarm_delay_s,
    )
    budget = None
    if tclass.excursion_budget_s is not None:
        budget = BudgetParams(budget_s=tclass.excursion_budget_s, window_s=tclass.excursion_budget_window_s)
    rate = None
    if tclass.rate_max_c_per_min is not None:
        rate = RateParams(max_per_min=tclass.rate_max_c_per_min, window_s=tclass.rate_window_s)
    return SensorParams(
        quantity=quantity,
        interval_s=interval_s,
        limits=limits,
        budget=budget,
        rate=rate,
        mkt=MktParams(window_s=tclass.effective_mkt_window_s),
        recording=recording,
        **faults,
    )
