"""The dock's master-data index: what the pushed documents say about a product, looked up per item.

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

A product is known by its *key* (``Product.key``: the GTIN, else the
catalog id) in every per-product map, because batches and recall entries name
it that way.  A scan finds the key by whichever identifier its label carries
(``product_key``): a GTIN is its own key (so a GTIN the master data does not
list still meets its recall entries, as before); an HIBC code and an MA id
have no meaning of their own and resolve only through a product that lists
them.  An HIBC product with ``hibc_uom`` null matches every unit of measure,
one with a digit only that one, and the exact match wins, so a box and its
single unit can be different products with different rules.

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
    """An index over the master data and recall list in force, built once per pushed document.

    Every map is by product key (GTIN, else id); ``gtins`` lists the products that have a GTIN, so a
    catalog id that happens to look like a GTIN never answers for a scanned GTIN.
    """

    has_master: bool = False
    has_recalls: bool = False
    products: frozenset[str] = frozenset()  # product keys
    classes: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # key -> (low, high) °C
    class_names: Mapping[str, str] = field(default_factory=dict)  # key -> class name
    expiries: Mapping[tuple[str, str], DateLike] = field(default_factory=dict)  # (key, lot) -> expiry
    recalls: Mapping[str, tuple[RecallEntry, ...]] = field(default_factory=dict)  # key -> entries
    gtins: frozenset[str] = frozenset()
    expiry_hours: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (key, lot) -> hour
    hibc: Mapping[tuple[str, int | None], str] = field(default_factory=dict)  # (hibc, uom|None) -> key
    ma: Mapping[str, str] = field(default_factory=dict)  # MA device id -> key
    tor_budgets: Mapping[str, int] = field(default_factory=dict)  # key -> s, where the product sets one

    def product_key(
        self, gtin: str | None, hibc: str | None = None, hibc_uom: int | None = None, ma: str | None = None
    ) -> str | None:
        """The key batches and recall entries use for what a label names; None when nothing resolves.

        Identifiers are tried in the order GTIN, HIBC, MA; a GTIN is its own key even when the master
        data does not list it (its recall entries still apply), so it is tried first and ends the search.
        """
        if gtin is not None:
            return gtin
        if hibc is not None:
            key = self.hibc.get((hibc, hibc_uom)) if hibc_uom is not None else None
            key = key or self.hibc.get((hibc, None))
            if key is not None:
                return key
        if ma is not None:
            return self.ma.get(ma)
        return None

    def known(self, key: str, gtin: str | None) -> bool:
        """Whether master data lists the product a label named (a GTIN only as a product's GTIN)."""
        return key in self.gtins if gtin is not None else key in self.products

    @classmethod
    def from_documents(cls, master: MasterData | None, recalls: RecallList | None) -> Knowledge:
        """Index the documents; either may be None (not received yet)."""
        ranges: dict[str, tuple[float, float]] = {}
        classes: dict[str, tuple[float, float]] = {}
        names: dict[str, str] = {}
        products: set[str] = set()
        gtins: set[str] = set()
        expiries: dict[tuple[str, str], DateLike] = {}
        hours: dict[tuple[str, str], int] = {}
        by_hibc: dict[tuple[str, int | None], str] = {}
        by_ma: dict[str, str] = {}
        budgets: dict[str, int] = {}
        if master is not None:
            for klass in master.temperature_classes:
                low, high = to_celsius(klass.low, klass.unit), to_celsius(klass.high, klass.unit)
                if low is not None and high is not None:
                    ranges[klass.name] = (low, high)
            for product in master.products:
                key = product.key
                products.add(key)
                if product.gtin is not None:
                    gtins.add(product.gtin)
                names[key] = product.temperature_class
                if product.temperature_class in ranges:
                    classes[key] = ranges[product.temperature_class]
                if product.hibc is not None:
                    by_hibc.setdefault((product.hibc, product.hibc_uom), key)
                if product.ma is not None:
                    by_ma.setdefault(product.ma, key)
                if product.tor_budget_s is not None:
                    budgets[key] = product.tor_budget_s
            for batch in master.batches:
                expiries[(batch.key, batch.lot)] = batch.expiry
                if batch.expiry_hour is not None:
                    hours[(batch.key, batch.lot)] = batch.expiry_hour
        by_key: dict[str, list[RecallEntry]] = {}
        for entry in recalls.entries if recalls is not None else ():
            by_key.setdefault(entry.key, []).append(entry)
        return cls(
            has_master=master is not None,
            has_recalls=recalls is not None,
            products=frozenset(products),
            classes=classes,
            class_names=names,
            expiries=expiries,
            recalls={k: tuple(e) for k, e in by_key.items()},
            gtins=frozenset(gtins),
            expiry_hours=hours,
            hibc=by_hibc,
            ma=by_ma,
            tor_budgets=budgets,
        )

    @property
    def missing(self) -> tuple[str, ...]:
        """Documents not received yet, for the app's status (checks that need them are skipped)."""
        return tuple(
            name
            for name, have in (("master_data", self.has_master), ("recall_list", self.has_recalls))
            if not have
        )
