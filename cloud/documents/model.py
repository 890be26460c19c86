"""The inventory documents as the pure parts of the cloud see them: kinds, states, lines; no I/O.

A receiving note (inbound, from an advance ship notice or purchase order), a
dispatch order (outbound, to a customer and ship-to) or a transfer (between
locations or sites) lists what is expected to pass a dock door.  Binding
(``binding.py``) ties each movement and scan to the open document at its
door, direction and time, and reconciliation (``reconciliation.py``) says per
line and per document what was expected and what was seen, in the GS1 CBV 2.0
words where the vocabulary has one.  The store (``documents.py``) keeps each
document as versions, audited like every other record; these types are what
it hands to the pure parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "DIRECTION_OF", "OPEN_STATES", "TRANSITIONS", "Document", "DocumentKind", "DocumentState", "Line",
]  # fmt: skip


class DocumentKind(StrEnum):
    RECEIVING = "receiving"
    DISPATCH = "dispatch"
    TRANSFER = "transfer"


class DocumentState(StrEnum):
    DRAFT = "draft"
    RELEASED = "released"  # to the dock: a door may work it
    IN_PROGRESS = "in_progress"  # the first item was bound to it
    COMPLETED = "completed"  # every discrepancy resolved or accepted with a reason
    CLOSED = "closed"  # nothing more binds to it; corrections are new documents


#: The moves a document's state may make; anything else is refused naming both states.
TRANSITIONS: Final[dict[DocumentState, frozenset[DocumentState]]] = {
    DocumentState.DRAFT: frozenset({DocumentState.RELEASED}),
    DocumentState.RELEASED: frozenset({DocumentState.DRAFT, DocumentState.IN_PROGRESS}),
    DocumentState.IN_PROGRESS: frozenset({DocumentState.COMPLETED}),
    DocumentState.COMPLETED: frozenset({DocumentState.CLOSED}),
    DocumentState.CLOSED: frozenset(),
}

#: States in which movements and scans at the document's door bind to it.
OPEN_STATES: Final = frozenset({DocumentState.RELEASED, DocumentState.IN_PROGRESS})

#: The portal direction a document's goods pass in (contract Movement.direction); a transfer's
#: goods pass a door either way.
DIRECTION_OF: Final[dict[DocumentKind, frozenset[str]]] = {
    DocumentKind.RECEIVING: frozenset({"in"}),
    DocumentKind.DISPATCH: frozenset({"out"}),
    DocumentKind.TRANSFER: frozenset({"in", "out"}),
}


@dataclass(frozen=True, slots=True)
class Line:
    """One expected line: a product (the catalog's id), optionally one lot (a dispatch line may leave
    it open until picked), a quantity in ``unit`` and, where the sender knows them, the pallets'
    SSCCs and the units' serials."""

    number: int
    product: str
    quantity: int
    unit: str = "case"
    lot: str | None = None
    ssccs: tuple[str, ...] = ()
    serials: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    """A document as it stands (its newest version).  ``door`` is the dock door it is being worked at
    (set when released); ``opened_at``/``closed_at`` (epoch ms) bound the time in which items bind."""

    id: str
    kind: DocumentKind
    site: str
    state: DocumentState
    reference: str
    lines: tuple[Line, ...]
    door: str | None = None
    opened_at: int | None = None
    closed_at: int | None = None
    party: str | None = None  # supplier (receiving) or customer and ship-to (dispatch)
    extra: dict[str, str] = field(default_factory=dict)
