"""The custody chain (``cloud/documents/custody.py``), pure: a lot received, put away in two rooms and
dispatched to two customers, exact to the millisecond; a lot counted by quantity; any arrival order
gives the same chain."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.documents.binding import Binding, ItemKey, Observed
from coldgate.cloud.documents.custody import Interval, Step, intervals, put_away, steps_from_bindings, stock
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified
from coldgate.cloud.documents.model import Document, DocumentKind, DocumentState, Line

T0 = 1_795_000_000_000
MIN = 60_000
INDEX = CatalogIndex(door_locations={"dock1": "recv"}, location_classes={"recv": "2-8C"})
RECEIPT = Document("RN-1", DocumentKind.RECEIVING, "site1", DocumentState.IN_PROGRESS, "ASN-77",
                   (Line(1, "VX10", 4, lot="L1"),), door="dock1", opened_at=T0,
                   party="Supplier AG")  # fmt: skip
TO_A = Document("DO-A", DocumentKind.DISPATCH, "site1", DocumentState.IN_PROGRESS, "SO-1",
                (Line(1, "VX10", 2),), door="dock1", opened_at=T0, party="Pharmacy A")  # fmt: skip
TO_B = Document("DO-B", DocumentKind.DISPATCH, "site1", DocumentState.IN_PROGRESS, "SO-2",
                (Line(1, "VX10", 2),), door="dock1", opened_at=T0, party="Hospital B")  # fmt: skip
DOCUMENTS = {d.id: d for d in (RECEIPT, TO_A, TO_B)}


def key(seq: int) -> ItemKey:
    return ItemKey("gw1", "s" * 32, seq)


def case(serial: str) -> Identified:
    return Identified(label=f"sgtin {serial}", product="VX10", lot="L1", serial=serial)


def bound(seq: int, what: Identified, document: str, direction: str, at: int) -> Binding:
    seen = Observed(key(seq), "movement", "dock1", direction, at, what)  # type: ignore[arg-type]
    return Binding(seen, document, 1, "serial", "on the line")


def _story() -> list[Step]:
    """4 cases of VX10/L1 received at 10:00 (one pass), 1001-1002 put away in cr1 at 10:30, 1003-1004
    in cr2 at 10:40; 1001 and 1003 to Pharmacy A at 14:00, 1002 and 1004 to Hospital B at 15:00; the
    pallet passes the portal twice on receipt (nothing doubles)."""
    serials = ["1001", "1002", "1003", "1004"]
    bindings = [bound(n, case(s), "RN-1", "in", T0 + n) for n, s in enumerate(serials)]
    bindings += [bound(10 + n, case(s), "RN-1", "in", T0 + 2 * MIN + n) for n, s in enumerate(serials)]
    bindings += [bound(20, case("1001"), "DO-A", "out", T0 + 240 * MIN),
                 bound(21, case("1003"), "DO-A", "out", T0 + 240 * MIN + 1),
                 bound(22, case("1002"), "DO-B", "out", T0 + 300 * MIN),
                 bound(23, case("1004"), "DO-B", "out", T0 + 300 * MIN + 1)]  # fmt: skip
    steps = steps_from_bindings(bindings, DOCUMENTS, INDEX)
    for n, (serial, room, at) in enumerate(
        [("1001", "cr1", 30), ("1002", "cr1", 30), ("1003", "cr2", 40), ("1004", "cr2", 40)]
    ):
        step = put_away(case(serial), room, T0 + at * MIN + n, key(30 + n))
        assert step is not None
        steps.append(step)
    # An unbound item and a label naming nothing make no custody.
    stray = Observed(key(99), "movement", "dock1", "in", T0, Identified(label="junk"))
    steps += steps_from_bindings([Binding(stray, None, None, "unbound", "no document")], DOCUMENTS, INDEX)
    return steps


View = tuple[str, str | None, str | None, int, int | None, str, str | None]


def _view(chain: list[Interval]) -> list[View]:
    return [(i.unit.key, i.location, i.party, i.start - T0, None if i.end is None else i.end - T0,
             i.began_by.what, i.ended_by.what if i.ended_by else None) for i in chain]  # fmt: skip


def test_a_lot_received_put_away_in_two_rooms_and_dispatched_to_two_customers_is_exact() -> None:
    chain = intervals(_story())
    assert _view([i for i in chain if i.unit.serial == "1001"]) == [
        ("serial:VX10/1001", "recv", None, 0, 30 * MIN, "receipt", "put-away"),
        ("serial:VX10/1001", "cr1", None, 30 * MIN, 240 * MIN, "put-away", "dispatch"),
        ("serial:VX10/1001", None, "Pharmacy A", 240 * MIN, None, "dispatch", None),
    ]
    assert _view([i for i in chain if i.unit.serial == "1004"]) == [
        ("serial:VX10/1004", "recv", None, 3, 40 * MIN + 3, "receipt", "put-away"),
        ("serial:VX10/1004", "cr2", None, 40 * MIN + 3, 300 * MIN + 1, "put-away", "dispatch"),
        ("serial:VX10/1004", None, "Hospital B", 300 * MIN + 1, None, "dispatch", None),
    ]
    assert len(chain) == 12  # 4 cases x 3 stays: the second pass of the pallet changed nothing
    assert {i.began_by.document for i in chain if i.began_by.what == "receipt"} == {"RN-1"}
    # Who got the lot, and when: what a recall asks first.
    customers = sorted((i.party, i.unit.serial, i.start - T0) for i in chain if i.party is not None)
    assert customers == [
        ("Hospital B", "1002", 300 * MIN), ("Hospital B", "1004", 300 * MIN + 1),
        ("Pharmacy A", "1001", 240 * MIN), ("Pharmacy A", "1003", 240 * MIN + 1),
    ]  # fmt: skip
    assert stock(chain, T0 + 35 * MIN) == {("cr1", "VX10", "L1"): 2, ("recv", "VX10", "L1"): 2}
    assert stock(chain, T0 + 250 * MIN) == {("cr1", "VX10", "L1"): 1, ("cr2", "VX10", "L1"): 1}
    assert stock(chain, T0 + 301 * MIN) == {}


@given(st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_same_chain(rng: random.Random) -> None:
    steps = _story()
    shuffled = list(steps)
    rng.shuffle(shuffled)
    assert intervals(shuffled) == intervals(steps)


def test_a_lot_counted_by_quantity_moves_from_where_it_was_received_last() -> None:
    """Unserialised labels: 10 of lot B7 received, then 6 more; 4 put away in cr2; 12 dispatched; then
    6 more dispatched, of which 2 were held nowhere (reconciliation's discrepancy; recorded as sent)."""
    def scan(quantity: int) -> Identified:
        return Identified(label="MA.156.M0.100003.IN20.LB7", product="IN20", lot="B7", quantity=quantity)

    steps = steps_from_bindings(
        [bound(1, scan(10), "RN-1", "in", T0), bound(2, scan(6), "RN-1", "in", T0 + MIN),
         bound(4, scan(12), "DO-A", "out", T0 + 3 * MIN)], DOCUMENTS, INDEX,
    )  # fmt: skip
    moved = put_away(scan(4), "cr2", T0 + 2 * MIN, key(3))
    assert moved is not None
    chain = intervals([*steps, moved])
    assert stock(chain, T0 + MIN) == {("recv", "IN20", "B7"): 16}
    assert stock(chain, T0 + 2 * MIN) == {("recv", "IN20", "B7"): 12, ("cr2", "IN20", "B7"): 4}
    # 12 leave, first in first out: all 12 from the door's room, which has held the lot longest.
    assert stock(chain, T0 + 3 * MIN) == {("cr2", "IN20", "B7"): 4}
    assert [(i.party, i.quantity) for i in chain if i.party is not None] == [("Pharmacy A", 12)]
    more = steps_from_bindings([bound(5, scan(6), "DO-B", "out", T0 + 4 * MIN)], DOCUMENTS, INDEX)
    chain = intervals([*steps, moved, *more])
    assert stock(chain, T0 + 4 * MIN) == {}
    assert sorted((i.party, i.quantity) for i in chain if i.party is not None and i.end is None) == [
        ("Hospital B", 6), ("Pharmacy A", 12)
    ]


MOVE = Document("TR-1", DocumentKind.TRANSFER, "site1", DocumentState.IN_PROGRESS, "TR-9",
                (Line(1, "VX10", 2),), door="dock1", opened_at=T0, party="site2 store")  # fmt: skip
ARRIVE = Document("TR-2", DocumentKind.TRANSFER, "site2", DocumentState.IN_PROGRESS, "TR-9",
                  (Line(1, "VX10", 2),), door="dock1", opened_at=T0, party="site1")  # fmt: skip


def scanned(seq: int, what: Identified, document: str, at: int) -> Binding:
    """A scan at the door of a transfer: nobody knows its direction."""
    seen = Observed(key(seq), "scan", "dock1", "unknown", at, what)
    return Binding(seen, document, 1, "serial", "direction unknown, the only open document at the door")


def test_a_transfer_worked_by_scanning_goes_out_when_held_here_and_in_otherwise() -> None:
    """1001 was received and is in cr1 at site1: scanned at site1's door on a transfer it leaves, to the
    transfer's destination.  1009 was never ours: scanned on the same transfer it arrives, inside the
    door.  Each scanned again on the same transfer stays where it went (a double scan is not a round
    trip).  At site2 the case 1001 that left site1 arrives (it is held nowhere at site2).  A lot counted
    by quantity leaves when some of it is held, else arrives."""
    steps = _story()
    steps += steps_from_bindings(
        [scanned(40, case("1001"), "TR-1", T0 + 100 * MIN), scanned(41, case("1009"), "TR-1", T0 + 100 * MIN),
         scanned(43, case("1001"), "TR-1", T0 + 101 * MIN), scanned(44, case("1009"), "TR-1", T0 + 101 * MIN),
         scanned(42, case("1001"), "TR-2", T0 + 160 * MIN)],
        {"TR-1": MOVE, "TR-2": ARRIVE}, INDEX,
    )  # fmt: skip
    assert {s.what for s in steps if s.document in ("TR-1", "TR-2")} == {"transfer"}
    chain = intervals(steps)
    assert _view([i for i in chain if i.unit.serial in ("1001", "1009")])[1:] == [
        ("serial:VX10/1001", "cr1", None, 30 * MIN, 100 * MIN, "put-away", "transfer out"),
        ("serial:VX10/1001", None, "site2 store", 100 * MIN, 160 * MIN, "transfer out", "transfer in"),
        ("serial:VX10/1001", "recv", None, 160 * MIN, 240 * MIN, "transfer in", "dispatch"),
        ("serial:VX10/1001", None, "Pharmacy A", 240 * MIN, None, "dispatch", None),
        ("serial:VX10/1009", "recv", None, 100 * MIN, None, "transfer in", None),
    ]

    def lot(quantity: int) -> Identified:
        return Identified(label="MA.156.M0.100003.IN20.LB7", product="IN20", lot="B7", quantity=quantity)

    counted = steps_from_bindings(
        [scanned(50, lot(5), "TR-1", T0), bound(51, lot(10), "RN-1", "in", T0 + MIN),
         scanned(52, lot(4), "TR-1", T0 + 2 * MIN)], {**DOCUMENTS, "TR-1": MOVE}, INDEX,
    )  # fmt: skip
    chain = intervals(counted)
    assert sorted((i.location or i.party, i.quantity, i.began_by.what) for i in chain if i.end is None) == [
        ("recv", 11, "transfer out"), ("site2 store", 4, "transfer out")
    ]  # fmt: skip
    assert [(i.location, i.quantity, i.began_by.what) for i in chain if i.start == T0] == [
        ("recv", 5, "transfer in")
    ]
