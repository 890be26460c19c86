"""The custody chain: where each unit was, from when to when, and which event began and ended each stay;
and stock on hand, derived from the same intervals.  Pure (DESIGN.md principles 2 and 9).

Custody is derived, never kept by hand: from the bindings of movements and scans to documents
(``binding.py``) and from put-away scans at a location, :func:`steps_from_bindings` and
:func:`put_away` make :class:`Step` s, and :func:`intervals` folds them, in time order, into
:class:`Interval` s.  Recomputing from the same records gives the same chain, whatever order they
arrived in.

* A receipt (an item bound to a receiving note, passing in) puts the unit into the location on the
  inside of its door; a put-away scan moves it to the scanner's location; a transfer passing in
  moves it inside, passing out hands it to the transfer's destination (its party); a transfer worked
  by a scanner at the door (whose direction nobody knows) is decided by where the unit is: one held
  in our locations at that site leaves (out to the destination), any other arrives (inside the door),
  as a dock operator loading or unloading a transfer would see it, and a unit scanned again on the
  transfer that moved it last stays where that put it (a double scan is not a round trip); a dispatch
  ends
  our custody and opens a last stay with the customer (a location of None and the customer named),
  which is what a recall asks first: who got it, and when.
* A unit is a pallet (SSCC), a serialised case (product and serial) or, for an unserialised label,
  the lot itself with a quantity.  Serialised units are exact.  A lot's quantity is moved from the
  location that has held it longest (first in, first out, by when the goods now there arrived): a
  label says no more than that, and the rule is written here so anyone can check it.
* The same unit seen again where it already is (a second pass of the same pallet) changes nothing:
  the chain records moves, not reads.  Items bound to no document move nothing; they are shown at
  their door as unbound, and become custody when someone assigns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from coldgate.cloud.documents.binding import Binding, ItemKey
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified
from coldgate.cloud.documents.model import Document, DocumentKind

__all__ = [
    "EITHER_WAY", "Interval", "Step", "Unit", "held_here", "intervals", "put_away", "steps_from_bindings",
    "stock",
]  # fmt: skip


class Unit(msgspec.Struct, frozen=True, order=True):
    """What is held: ``key`` is ``sscc:…``, ``serial:product/serial`` or, for a lot counted by
    quantity, ``lot:product/lot``."""

    key: str
    product: str | None
    lot: str | None
    serial: str | None = None
    sscc: str | None = None

    @property
    def counted(self) -> bool:
        """A lot held as a quantity rather than one physical unit."""
        return self.key.startswith("lot:")


class Step(msgspec.Struct, frozen=True):
    """One change of custody: ``quantity`` of ``unit`` goes to ``location`` (None: out of our hands,
    to ``party``) at ``time``, recorded by item ``source`` on ``document`` at ``site`` (None: not
    said).  A step of ``what`` :data:`EITHER_WAY` names both places, since it goes to ``location`` when
    the unit arrives and to ``party`` when it leaves: :func:`intervals` decides which (``resolved``)."""

    time: int
    unit: Unit
    quantity: int
    location: str | None
    party: str | None
    what: str
    source: ItemKey
    document: str | None = None
    site: str | None = None

    @property
    def order(self) -> tuple[int, ItemKey]:
        return (self.time, self.source)

    def resolved(self, leaving: bool) -> Step:
        """An :data:`EITHER_WAY` step as the transfer out (``leaving``) or in it was; any other as is."""
        if self.what != EITHER_WAY:
            return self
        if leaving:
            return msgspec.structs.replace(self, location=None, what="transfer out")
        return msgspec.structs.replace(self, party=None, what="transfer in")


#: A transfer's item of unknown direction (a scan at the door): in or out, by where the unit is.
EITHER_WAY = "transfer"


class Interval(msgspec.Struct, frozen=True):
    """``quantity`` of ``unit`` at ``location`` (or with ``party``) from ``start`` to ``end`` (None:
    still there), begun by ``began_by`` and ended by ``ended_by``."""

    unit: Unit
    quantity: int
    location: str | None
    party: str | None
    start: int
    end: int | None
    began_by: Step
    ended_by: Step | None = None


def unit_of(identified: Identified) -> Unit | None:
    """The unit an identified item is, or None when it names no product and no pallet."""
    if identified.sscc is not None:
        return Unit(f"sscc:{identified.sscc}", identified.product, identified.lot, sscc=identified.sscc)
    if identified.product is None:
        return None
    if identified.serial is not None:
        key = f"serial:{identified.product}/{identified.serial}"
        return Unit(key, identified.product, identified.lot, serial=identified.serial)
    if identified.lot is None:
        return None  # a product without a lot cannot be held by quantity: whose lot would it be?
    return Unit(f"lot:{identified.product}/{identified.lot}", identified.product, identified.lot)


def steps_from_bindings(
    bindings: Iterable[Binding], documents: Mapping[str, Document], index: CatalogIndex
) -> list[Step]:
    """The custody steps that bound items make (unbound items and unknown units make none)."""
    found: list[Step] = []
    for binding in bindings:
        document = documents.get(binding.document) if binding.document is not None else None
        seen = binding.observed
        unit = unit_of(seen.identified)
        if document is None or unit is None:
            continue
        inside = index.door_locations.get(seen.door)
        quantity = seen.identified.quantity if unit.counted else 1
        party = document.party or f"{document.kind.value} {document.reference}"
        where: tuple[str | None, str | None]
        if document.kind is DocumentKind.RECEIVING or (
            document.kind is DocumentKind.TRANSFER and seen.direction == "in"
        ):
            where = (inside, None)
            what = "receipt" if document.kind is DocumentKind.RECEIVING else "transfer in"
        elif document.kind is DocumentKind.DISPATCH or seen.direction == "out":
            where = (None, party)
            what = "dispatch" if document.kind is DocumentKind.DISPATCH else "transfer out"
        elif document.kind is DocumentKind.TRANSFER:
            what, where = EITHER_WAY, (inside, party)
        else:
            continue
        found.append(Step(seen.time, unit, quantity, *where, what, seen.key, document.id, document.site))
    return found


def put_away(
    identified: Identified, location: str, time: int, source: ItemKey, site: str | None = None
) -> Step | None:
    """A scan by a scanner placed at ``location`` (not at a door): the unit is now there."""
    unit = unit_of(identified)
    if unit is None:
        return None
    quantity = identified.quantity if unit.counted else 1
    return Step(time, unit, quantity, location, None, "put-away", source, None, site)


def held_here(location: str | None, held_site: str | None, site: str | None) -> bool:
    """Whether a unit staying at ``location`` of ``held_site`` is in our hands at ``site`` (a site not
    said matches any): what decides a transfer scanned at a door of ``site``."""
    return location is not None and (held_site is None or site is None or held_site == site)


def _same_place(interval: Interval, step: Step) -> bool:
    return (interval.location, interval.party) == (step.location, step.party)


def intervals(steps: Iterable[Step]) -> list[Interval]:
    """Every stay of every unit, by unit then start: the chain the steps make in time order (ties by
    the recording item, so any arrival order gives the same chain)."""
    by_unit: dict[str, list[Step]] = {}
    for step in steps:
        by_unit.setdefault(step.unit.key, []).append(step)
    chain: list[Interval] = []
    for key in sorted(by_unit):
        ordered = sorted(by_unit[key], key=lambda s: s.order)
        chain.extend(_counted(ordered) if ordered[0].unit.counted else _single(ordered))
    return chain


def _single(steps: list[Step]) -> list[Interval]:
    """One physical unit: one place at a time; a step to where it already is records nothing."""
    stays: list[Interval] = []
    for step in steps:
        current = stays[-1] if stays and stays[-1].end is None else None
        if step.what == EITHER_WAY and current is not None and current.began_by.document == step.document:
            continue  # scanned again on the transfer that moved it last: it stays where that put it
        ours = current is not None and held_here(current.location, current.began_by.site, step.site)
        step = step.resolved(ours)
        if current is not None and _same_place(current, step):
            continue
        if current is not None:
            stays[-1] = _closed(current, step)
        stays.append(Interval(step.unit, 1, step.location, step.party, step.time, None, step))
    return stays


def _closed(interval: Interval, step: Step) -> Interval:
    return Interval(interval.unit, interval.quantity, interval.location, interval.party, interval.start,
                    step.time, interval.began_by, step)  # fmt: skip


def _counted(steps: list[Step]) -> list[Interval]:
    """A lot held by quantity in several places: each change of a place's quantity closes its stay and
    opens one with the new quantity; a move takes from the place that has held the lot longest (FIFO,
    by arrival; then by location, so a tie is decided the same way every time)."""
    done: list[Interval] = []
    held: dict[tuple[str | None, str | None], Interval] = {}  # (location, party) -> open stay
    arrived: dict[tuple[str | None, str | None], int] = {}
    for step in steps:
        step = step.resolved(any(p[0] is not None for p in held))
        place = (step.location, step.party)
        # Where the lot comes from: a receipt from outside; anything else from where it is held (a move
        # of more than is held moves what is held and records the rest where it went).
        needed = 0 if step.what in ("receipt", "transfer in") else step.quantity
        ours = [p for p in held if p[0] is not None and p != place]
        sources = sorted(ours, key=lambda p: (arrived[p], p[0] or ""))
        for source_place in sources:
            if needed <= 0:
                break
            source = held.pop(source_place)
            take = min(needed, source.quantity)
            needed -= take
            done.append(_closed(source, step))
            if source.quantity > take:
                rest = source.quantity - take
                held[source_place] = Interval(step.unit, rest, source.location, None, step.time, None, step)
            else:
                del arrived[source_place]
        before = held.pop(place, None)
        if before is not None:
            done.append(_closed(before, step))
        quantity = step.quantity + (before.quantity if before is not None else 0)
        held[place] = Interval(step.unit, quantity, step.location, step.party, step.time, None, step)
        arrived.setdefault(place, step.time)
    done.extend(held.values())
    return sorted(done, key=lambda i: (i.start, i.location or "", i.party or ""))


def stock(chain: Iterable[Interval], at: int) -> dict[tuple[str, str | None, str | None], int]:
    """Stock on hand at ``at`` (epoch ms): (location, product, lot) -> units, from the stays open then
    in our own locations (with a party: no longer ours)."""
    found: dict[tuple[str, str | None, str | None], int] = {}
    for stay in chain:
        if stay.location is None or stay.start > at or (stay.end is not None and stay.end <= at):
            continue
        key = (stay.location, stay.unit.product, stay.unit.lot)
        found[key] = found.get(key, 0) + stay.quantity
    return found
