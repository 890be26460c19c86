"""What an alert is based on, so QA can judge it without digging up the raw data.

Temperature alerts fill the numbers (peak, mean, MKT, time outside limits) and
the limits that applied when the rule judged; portal and batch alerts put
their facts (EPC, GTIN, lot, recall reference) in `details`.  Everything is
optional because each rule knows different things.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from coldgate.contract.errors import FieldError
from coldgate.contract.ids import Count, Details, EpochMs, check_details, check_finite, doc
from coldgate.contract.units import Unit


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The limits a rule applied, in the evidence's `unit`.

    Rule: `low` <= `high` when both are given.
    """

    low: Annotated[float | None, doc("Alarm below this value.")] = None
    high: Annotated[float | None, doc("Alarm above this value.")] = None
    pre_low: Annotated[float | None, doc("Pre-alarm (warning) below this value.")] = None
    pre_high: Annotated[float | None, doc("Pre-alarm (warning) above this value.")] = None
    delay_s: Annotated[Count | None, doc("Seconds a value must stay outside before alarming.")] = None

    def __post_init__(self) -> None:
        for name in ("low", "high", "pre_low", "pre_high"):
            check_finite(getattr(self, name), name)
        if self.low is not None and self.high is not None and self.low > self.high:
            raise FieldError("high", f"high {self.high} is below low {self.low}")


class Evidence(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Facts behind an alert.  Rule: `end` >= `start` when both are given."""

    start: Annotated[EpochMs | None, doc("Start of the excursion or event.")] = None
    end: Annotated[EpochMs | None, doc("End of it; null while ongoing.")] = None
    peak: Annotated[float | None, doc("Worst value seen.")] = None
    min: Annotated[float | None, doc("Lowest value in the interval.")] = None
    max: Annotated[float | None, doc("Highest value in the interval.")] = None
    mean: Annotated[float | None, doc("Time-weighted mean over the interval.")] = None
    mkt: Annotated[float | None, doc("Mean kinetic temperature over the interval.")] = None
    duration_s: Annotated[Count | None, doc("Seconds outside the limits so far.")] = None
    samples: Annotated[Count | None, doc("Readings the numbers are based on.")] = None
    unit: Unit | None = None
    limits: Limits | None = None
    details: Details = {}

    def __post_init__(self) -> None:
        for name in ("peak", "min", "max", "mean", "mkt"):
            check_finite(getattr(self, name), name)
        check_details(self.details, "details")
        if self.start is not None and self.end is not None and self.end < self.start:
            raise FieldError("end", f"end {self.end} is before start {self.start}")
