"""Which lane an item travels in, and the few facts about it the outbox indexes.

Two lanes, because after an outage two kinds of item want opposite things:

- lane 0, ``PRIORITY``: alerts, gaps, events, RFID movements and barcode scans.
  Each is a record of something that happened once (an excursion, a pallet
  leaving dock 2, a config applied); it cannot be re-derived from anything
  else, QA or a recall query depends on it, and it is rare (at most a few per
  second even at a busy dock).  So it goes ahead of any backlog and is never
  shed.  Movements and scans belong here too: a dispatch seen at the outbound
  door is what binds a batch to an order, and a minutes-old one is worth more
  to the cloud than hours-old routine readings.
- lane 1, ``ROUTINE``: sensor readings.  They are many, periodic and
  redundant over time, so a backlog of them drains at a limited rate, and
  they are the only items the overflow policy may thin (``thinning.py``).

The row metadata is what thinning and diagnostics need without decoding the
stored JSON: a reading's subject is ``sensor/quantity`` (``/`` cannot occur in
an id, so the key is unambiguous) and its value is kept for min/max thinning.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from coldgate.contract.items import Alert, Event, Gap, Item, Movement, Reading, Scan

PRIORITY: Final = 0
ROUTINE: Final = 1
LANES: Final = (PRIORITY, ROUTINE)


class RowFacts(NamedTuple):
    """What the outbox stores beside an item's JSON: lane, kind, subject and value."""

    lane: int
    kind: str
    subject: str
    value: float | None


def lane_of(item: Item) -> int:
    return ROUTINE if isinstance(item, Reading) else PRIORITY


def facts(item: Item) -> RowFacts:
    """Lane and index columns of ``item``; ``subject`` groups a sensor's readings for thinning."""
    match item:
        case Reading():
            return RowFacts(ROUTINE, "reading", f"{item.sensor}/{item.quantity}", item.value)
        case Alert() | Gap():
            return RowFacts(PRIORITY, type(item).__name__.lower(), item.subject, None)
        case Movement():
            return RowFacts(PRIORITY, "movement", item.door, None)
        case Scan():
            return RowFacts(PRIORITY, "scan", item.scanner, None)
        case Event():
            return RowFacts(PRIORITY, "event", str(item.event), None)
    raise TypeError(f"{type(item).__name__} is not a contract item")
