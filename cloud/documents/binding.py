"""Binding: which open document (and which of its lines) each movement and scan at a dock door belongs to.

Pure (DESIGN.md principle 2) and derived (principle 9): a binding is a function of the item (as
identified, ``identifiers.py``) and the documents as they stand, nothing else, so the database side
can re-run it over every stored item after a document is corrected or after an upgrade and get the
same bindings, whatever order the items come in and however often one is repeated.  No state is
carried between calls; the catalog is not needed here because identification has already turned
labels into catalog keys.

The rules, in the order they are applied:

1. **Candidates**: documents in an open state (``OPEN_STATES``) at the item's door whose window
   ``[opened_at, closed_at)`` holds the item's time (no ``closed_at``: still open; no ``opened_at``:
   never released to the door, so it binds nothing).
2. **Direction**: a known direction keeps the documents whose kind's goods pass that way
   (``DIRECTION_OF``).  An *unknown* direction (the portal's antennas could not tell) binds only when
   that is unambiguous: exactly one candidate names the item on one of its lines, or failing that
   there is exactly one candidate at all; otherwise it is left unbound with the candidates named,
   because guessing would put a case on the wrong side of the company's books.
3. **Line**, by the strongest identifier: the item's SSCC on a line's ``ssccs``; its serial on a
   line's ``serials`` (for that line's product); its product and lot on a line with that lot; its
   product on a line with no lot; its product on a line of another lot ("other_lot", which
   reconciliation reports as a wrong lot).  Several lines at one strength: the lowest line number.
   No line: the document but no line ("unexpected", a foreign case).
4. **Tie-break** between several candidate documents: the strongest line match, then the document
   opened last at the door (the one the dock released most recently is the one being worked), then
   the smallest document id.  Every step is a total order, so the result never depends on input order.
5. **Nothing is dropped**: an item with no candidate is an unbound :class:`Binding` at its door with
   the reason, visible to the dock and assignable later.
6. **A person's assignment wins** (:func:`assigned`): an item someone assigned to a document by hand
   binds there on every run, to the line they named or, if none, the line the rules above would pick
   in that document; ``how`` says ``assigned`` and the reason names who and why.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import msgspec

from coldgate.cloud.documents.identifiers import CatalogIndex, Identified, identify_movement, identify_scan
from coldgate.cloud.documents.model import DIRECTION_OF, OPEN_STATES, Document, Line
from coldgate.contract.items import Movement, Scan

__all__ = [
    "ASSIGNED", "HOW", "Binding", "DoorIndex", "ItemKey", "Observed", "assigned", "bind", "bind_all",
    "bind_indexed", "observed_movement", "observed_scan",
]  # fmt: skip

Kind = Literal["movement", "scan"]
Direction = Literal["in", "out", "unknown"]

#: How an item bound, strongest first; the rank of a line match is its position here.
HOW: Final = ("sscc", "serial", "product_lot", "product", "other_lot", "unexpected", "unbound")
_RANK: Final = {how: rank for rank, how in enumerate(HOW)}
#: How an item assigned by hand is bound (rule 6).
ASSIGNED: Final = "assigned"


class ItemKey(msgspec.Struct, frozen=True, order=True):
    """An item's identity as ingest stores it: unique per (gateway, stream, seq)."""

    gateway: str
    stream: str
    seq: int

    def __str__(self) -> str:
        return f"{self.gateway}/{self.stream}/{self.seq}"


class Observed(msgspec.Struct, frozen=True):
    """One movement or scan at a door, as binding needs it.  ``time`` is epoch ms: for a movement its
    ``first_seen``, for a scan its ``ts``, corrected by the caller when the gateway's clock was not
    synchronised (principle 4).  A scan's direction is the caller's (the scanner's placement); a
    handheld with no side is ``unknown``."""

    key: ItemKey
    kind: Kind
    door: str
    direction: Direction
    time: int
    identified: Identified


class Binding(msgspec.Struct, frozen=True):
    """Where one item landed.  ``document`` None: unbound at ``observed.door`` (``how == "unbound"``);
    ``line`` None with a document: unexpected on it.  ``reason`` says why, for the dock."""

    observed: Observed
    document: str | None
    line: int | None
    how: str
    reason: str

    @property
    def item(self) -> ItemKey:
        return self.observed.key


def observed_movement(
    key: ItemKey, movement: Movement, index: CatalogIndex, *, time: int | None = None
) -> Observed:
    """The database side's way from a stored movement to an :class:`Observed`."""
    return Observed(
        key, "movement", movement.door, movement.direction.value,  # type: ignore[arg-type]
        movement.first_seen if time is None else time, identify_movement(movement, index),
    )  # fmt: skip


def observed_scan(
    key: ItemKey, scan: Scan, index: CatalogIndex, *, door: str, direction: Direction = "unknown",
    time: int | None = None,
) -> Observed:  # fmt: skip
    """A stored scan; its door and direction come from where the scanner is placed."""
    return Observed(
        key, "scan", door, direction, scan.ts if time is None else time, identify_scan(scan, index)
    )


class _Lines:
    """One document's lines as lookups, built once per batch."""

    __slots__ = ("by_product", "by_serial", "by_sscc", "document")

    def __init__(self, document: Document) -> None:
        self.document = document
        self.by_sscc: dict[str, int] = {}
        self.by_serial: dict[tuple[str, str], int] = {}
        self.by_product: dict[str, list[Line]] = defaultdict(list)
        for line in sorted(document.lines, key=lambda ln: ln.number):
            for sscc in line.ssccs:
                self.by_sscc.setdefault(sscc, line.number)
            for serial in line.serials:
                self.by_serial.setdefault((line.product, serial), line.number)
            self.by_product[line.product].append(line)

    def match(self, found: Identified) -> tuple[str, int | None]:
        if found.sscc is not None and found.sscc in self.by_sscc:
            return "sscc", self.by_sscc[found.sscc]
        if found.product is None:
            return "unexpected", None
        if found.serial is not None:
            number = self.by_serial.get((found.product, found.serial))
            if number is not None:
                return "serial", number
        lines = self.by_product.get(found.product, ())
        if found.lot is not None:
            for line in lines:
                if line.lot == found.lot:
                    return "product_lot", line.number
        for line in lines:
            if line.lot is None:
                return "product", line.number
        if lines:
            return "other_lot", lines[0].number
        return "unexpected", None


class DoorIndex:
    """The documents that can take items, grouped by door: built once per batch so binding 20,000
    movements costs a dictionary lookup and a few comparisons each."""

    __slots__ = ("_by_door",)

    def __init__(self, documents: Iterable[Document]) -> None:
        by_door: dict[str, list[_Lines]] = defaultdict(list)
        for document in documents:
            if document.state in OPEN_STATES and document.door is not None:
                by_door[document.door].append(_Lines(document))
        for entries in by_door.values():
            entries.sort(key=lambda e: e.document.id)
        self._by_door = dict(by_door)

    def bind(self, item: Observed) -> Binding:
        at_door = self._by_door.get(item.door, ())
        in_time = [
            e for e in at_door
            if e.document.opened_at is not None and e.document.opened_at <= item.time
            and (e.document.closed_at is None or item.time < e.document.closed_at)
        ]  # fmt: skip
        if not in_time:
            at = datetime.datetime.fromtimestamp(item.time / 1000, datetime.UTC).isoformat(timespec="seconds")
            why = f"no open document at door {item.door} at {at.replace('+00:00', 'Z')}"
            return Binding(item, None, None, "unbound", why)
        if item.direction == "unknown":
            return self._bind_unknown(item, in_time)
        fitting = [e for e in in_time if item.direction in DIRECTION_OF[e.document.kind]]
        if not fitting:
            kinds = ", ".join(sorted({f"{e.document.id} ({e.document.kind})" for e in in_time}))
            why = f"direction {item.direction} fits none of the open documents at door {item.door}: {kinds}"
            return Binding(item, None, None, "unbound", why)
        return self._best(item, fitting, "")

    def _best(self, item: Observed, entries: Sequence[_Lines], note: str) -> Binding:
        best: tuple[tuple[int, int, str], str, int | None, Document] | None = None
        for entry in entries:
            how, line = entry.match(item.identified)
            doc = entry.document
            order = (_RANK[how], -(doc.opened_at or 0), doc.id)
            if best is None or order < best[0]:
                best = (order, how, line, doc)
        assert best is not None
        _, how, line, doc = best
        where = f"line {line}" if line is not None else "no line (unexpected)"
        others = f"; chosen over {len(entries) - 1} other open document(s)" if len(entries) > 1 else ""
        return Binding(item, doc.id, line, how, f"{doc.kind} {doc.reference}: {where} by {how}{others}{note}")

    def _bind_unknown(self, item: Observed, entries: Sequence[_Lines]) -> Binding:
        named = [e for e in entries if e.match(item.identified)[1] is not None]
        if len(named) == 1:
            return self._best(item, named, "; direction unknown, the only open document naming it")
        if len(entries) == 1:
            return self._best(item, entries, "; direction unknown, the only open document at the door")
        ids = ", ".join(e.document.id for e in (named or entries))
        why = f"direction unknown and several open documents at door {item.door} could take it: {ids}"
        return Binding(item, None, None, "unbound", why)


def bind(item: Observed, documents: Iterable[Document]) -> Binding:
    """One item against the documents as they stand (for a batch, :func:`bind_all` indexes once)."""
    return DoorIndex(documents).bind(item)


def bind_all(items: Iterable[Observed], documents: Iterable[Document]) -> tuple[Binding, ...]:
    """Every item once, by item key: an item delivered twice (the same key) is one item and one
    binding.  Sorted by item key so the same items in any order give the same tuple."""
    return bind_indexed(items, DoorIndex(documents))


def bind_indexed(items: Iterable[Observed], index: DoorIndex) -> tuple[Binding, ...]:
    """:func:`bind_all` against documents indexed beforehand: the database side keeps a site's index
    from run to run while its documents stand, instead of rebuilding it for every batch."""
    unique: dict[ItemKey, Observed] = {}
    for item in items:
        unique.setdefault(item.key, item)
    return tuple(index.bind(unique[key]) for key in sorted(unique))


def assigned(item: Observed, document: Document, line: int | None, by: str, reason: str) -> Binding:
    """Rule 6: the item bound where a person put it; with no line named, the line rule 3 picks in that
    document (none: the document without a line, which reconciliation reports as unexpected)."""
    if line is None:
        line = _Lines(document).match(item.identified)[1]
    where = f"line {line}" if line is not None else "no line (unexpected)"
    why = f"{document.kind} {document.reference}: {where}, assigned by {by}: {reason}"
    return Binding(item, document.id, line, ASSIGNED, why)
