"""How long a month of readings must be kept: the retention rule, pure (no I/O), for the purge
(``cloud/db/purge.py``) and anyone asking why a month is still kept.

GSP/GDP keeps the records of storage conditions at least five years; a medical device's for two years
past the expiry of the lot they concern; an implant's for as long as it may be in a patient, which a
distributor cannot know, so for ever unless the customer sets a term.  Readings are records of every
product kept where they were taken, so a month's readings are kept as long as the longest rule among the
lots kept during it asks, and never less than the standard term of the month itself (a month that kept
nothing is still the site's record of its storage conditions).

Each product carries its category in the catalog (``products.retention``: "standard", "device",
"implant"); the terms are the cloud config's ``[retention]`` (``RetentionConfig``).  Wherever the data
does not say enough, the month is kept for ever: a device or implant lot with no expiry, a product not
in the catalog or with a category this code does not know.  Keeping too long costs disk; purging too
early loses a record for good.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from coldgate.cloud.config import RetentionConfig

__all__ = [
    "CATEGORIES",
    "UNCATEGORISED",
    "KeptLot",
    "Retention",
    "RetentionPolicy",
    "add_years",
    "month_end",
    "purge_from",
    "retention",
]

#: The retention categories a product may have.
CATEGORIES: Final = ("standard", "device", "implant")
#: A product in the catalog whose category nobody has set yet (every product from before the categories
#: existed, one made without it): kept for ever until someone says which it is.
UNCATEGORISED: Final = "uncategorised"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """The terms, in whole years (``RetentionConfig`` holds them in the config file)."""

    standard_years: int = 5
    device_years_after_expiry: int = 2
    #: None: an implant's months are kept for ever.
    implant_years_after_expiry: int | None = None

    @classmethod
    def from_config(cls, config: RetentionConfig) -> RetentionPolicy:
        return cls(config.standard_years, config.device_years_after_expiry, config.implant_years_after_expiry)

    def describe(self) -> str:
        implant = (
            "for ever" if self.implant_years_after_expiry is None
            else f"{self.implant_years_after_expiry} years past expiry"
        )  # fmt: skip
        return (
            f"standard {self.standard_years} years after the month, device "
            f"{self.device_years_after_expiry} years past expiry, implant {implant}"
        )


@dataclass(frozen=True, slots=True)
class KeptLot:
    """A lot whose goods were kept during the month: its product, the product's retention category
    (None: the product is not in the catalog), the lot's expiry (None: unknown), and what holds its
    records whatever their term (an open recall, a quarantine: the investigation may need them), if
    anything."""

    product: str
    lot: str
    category: str | None
    expiry: datetime.date | None
    hold: str | None = None

    def __str__(self) -> str:
        return f"{self.category or 'uncatalogued'} lot {self.lot} of {self.product}"

    def order(self) -> tuple[str, str, str, datetime.date, str]:
        """A total order (None sorts first), so the lot named as holding a month never depends on the
        order the lots were given in."""
        return self.product, self.lot, self.category or "", self.expiry or datetime.date.min, self.hold or ""


@dataclass(frozen=True, slots=True)
class Retention:
    """What the rule says of a month: the first day its readings may be purged (None: never), the rule
    that sets that day in words, the lot whose rule it is (None: the standard term of the month), and how
    many lots the month concerned."""

    month: datetime.date
    purge_from: datetime.date | None
    rule: str
    held_by: KeptLot | None
    lots: int

    def due(self, today: datetime.date) -> bool:
        return self.purge_from is not None and self.purge_from <= today


def add_years(day: datetime.date, years: int) -> datetime.date:
    """``day`` ``years`` later; 29 February becomes 1 March, the later of the two candidate days, since a
    day too late only keeps a record longer."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return datetime.date(day.year + years, 3, 1)


def month_end(month: datetime.date) -> datetime.date:
    """The first day after the month that ``month`` falls in."""
    return datetime.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _lot_rule(
    month: datetime.date, lot: KeptLot, policy: RetentionPolicy
) -> tuple[datetime.date | None, str]:
    """(first day this lot lets the month go, None: never; why) for one lot, before the standard floor."""
    if lot.hold is not None:
        return None, f"{lot}: held while {lot.hold}, whatever its term"
    if lot.category == "standard":
        return add_years(month_end(month), policy.standard_years), f"{lot}: the standard term"
    if lot.category == "device":
        years = policy.device_years_after_expiry
    elif lot.category == "implant":
        if policy.implant_years_after_expiry is None:
            return None, f"{lot}: an implant's readings are kept for ever"
        years = policy.implant_years_after_expiry
    else:
        if lot.category is None:
            why = "its product is not in the catalog"
        elif lot.category == UNCATEGORISED:
            why = "its product has no retention category yet (set it in the catalog)"
        else:
            why = f"{lot.category!r} is unknown"
        return None, f"{lot}: kept for ever, {why}"
    if lot.expiry is None:
        return None, f"{lot}: kept for ever, the lot has no expiry to count {years} years from"
    purge = add_years(lot.expiry, years) + datetime.timedelta(days=1)
    return purge, f"{lot} expires {lot.expiry}: kept {years} years past it"


def retention(month: datetime.date, policy: RetentionPolicy, lots: Iterable[KeptLot]) -> Retention:
    """The retention of ``month``'s readings, given the lots whose goods were kept during it: the latest
    of the month's standard term and each lot's rule; for ever if any lot's rule is."""
    month = month.replace(day=1)
    floor = add_years(month_end(month), policy.standard_years)
    verdict = Retention(
        month, floor, f"the standard term: {policy.standard_years} years after {month:%Y-%m}", None, 0
    )
    count = 0
    for lot in sorted(set(lots), key=KeptLot.order):
        count += 1
        purge, why = _lot_rule(month, lot, policy)
        if verdict.purge_from is None:
            continue
        if purge is None or purge > verdict.purge_from:
            verdict = Retention(month, purge, why, lot, 0)
    return Retention(month, verdict.purge_from, verdict.rule, verdict.held_by, count)


def purge_from(
    month: datetime.date, policy: RetentionPolicy, lots: Iterable[KeptLot]
) -> datetime.date | None:
    """The first day ``month``'s readings may be purged, or None: never (:func:`retention`'s date)."""
    return retention(month, policy, lots).purge_from
