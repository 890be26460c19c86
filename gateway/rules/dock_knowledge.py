"""The dock's master-data index: what the pushed documents say about a GTIN, looked up per item.

Split from the door checks because the two change for different reasons and at
different rates: the index is rebuilt once per pushed document (master data,
recall/quarantine list), while the checks judge every movement and scan against
whichever index is in force.  Keeping the index a plain frozen value also lets
``DoorChecks.update`` compare what the old and the new documents find about the
goods still on the dock, and lets the cloud build the same index for a
re-evaluation without any of the checks' alert bookkeeping.

Temperature classes are indexed in °C (``to_celsius``), so every comparison a
check makes is in one unit; an unknown unit leaves the class out (the product
then starts no TOR clock) rather than guessing.

The purity check (tests/test_rules_purity.py) forbids ``datetime`` here, so
dates are typed structurally by ``DateLike``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coldgate.contract.downlink import MasterData, RecallEntry, RecallList
from coldgate.contract.units import Unit

__all__ = ("DateLike", "Knowledge", "to_celsius")


class DateLike(Protocol):
    """A ``datetime.date`` as far as the rules need one (``datetime`` may not be imported here)."""

    def toordinal(self) -> int: ...

    def isoformat(self) -> str: ...


def to_celsius(value: float, unit: Unit | str) -> float | None:
    """°C of a temperature in CEL, FAH or KEL; None for any other unit.

    Rounded to 1e-6 °C so that 35.6 °F is exactly 2 °C: a class edge that is off by a
    floating-point ulp would make a fitting zone "not fit" and start a false TOR clock.
    """
    if unit == Unit.CEL:
        return value
    if unit == Unit.FAH:
        return round((value - 32.0) * 5.0 / 9.0, 6)
    if unit == Unit.KEL:
        return round(value - 273.15, 6)
    return None


@dataclass(frozen=True)
class Knowledge:
    """An index over the master data and recall list in force, built once per pushed document."""

    has_master: bool = False
    has_recalls: bool = False
    products: frozenset[str] = frozenset()
    classes: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # gtin -> (low, high) °C
    class_names: Mapping[str, str] = field(default_factory=dict)  # gtin -> class name
    expiries: Mapping[tuple[str, str], DateLike] = field(default_factory=dict)  # (gtin, lot) -> expiry
    recalls: Mapping[str, tuple[RecallEntry, ...]] = field(default_factory=dict)  # gtin -> entries

    @classmethod
    def from_documents(cls, master: MasterData | None, recalls: RecallList | None) -> Knowledge:
        """Index the documents; either may be None (not received yet)."""
        ranges: dict[str, tuple[float, float]] = {}
        classes: dict[str, tuple[float, float]] = {}
        names: dict[str, str] = {}
        products: set[str] = set()
        expiries: dict[tuple[str, str], DateLike] = {}
        if master is not None:
            for klass in master.temperature_classes:
                low, high = to_celsius(klass.low, klass.unit), to_celsius(klass.high, klass.unit)
                if low is not None and high is not None:
                    ranges[klass.name] = (low, high)
            for product in master.products:
                products.add(product.gtin)
                names[product.gtin] = product.temperature_class
                if product.temperature_class in ranges:
                    classes[product.gtin] = ranges[product.temperature_class]
            expiries = {(b.gtin, b.lot): b.expiry for b in master.batches}
        by_gtin: dict[str, list[RecallEntry]] = {}
        for entry in recalls.entries if recalls is not None else ():
            by_gtin.setdefault(entry.gtin, []).append(entry)
        return cls(
            has_master=master is not None,
            has_recalls=recalls is not None,
            products=frozenset(products),
            classes=classes,
            class_names=names,
            expiries=expiries,
            recalls={g: tuple(e) for g, e in by_gtin.items()},
        )

    @property
    def missing(self) -> tuple[str, ...]:
        """Documents not received yet, for the app's status (checks that need them are skipped)."""
        return tuple(
            name
            for name, have in (("master_data", self.has_master), ("recall_list", self.has_recalls))
            if not have
        )
