"""The custody store on both dialects (``cloud/documents/custody_store.py``), on issue 15's story
(``tests/rig/custody_world.py``): a lot received on a pallet at door D1, put away in two rooms and
dispatched to two customers, exact to the millisecond; a lot counted by quantity; a unit's chain by
each of its id forms; the rows the store folds give what the pure rules give row by row; unknown
and malformed ids refused with what is wrong."""

from __future__ import annotations

import datetime
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.catalog.locations import door_insides, put_location
from coldgate.cloud.db.models import BindingRow
from coldgate.cloud.documents import custody_store
from coldgate.cloud.documents.binding import ItemKey
from coldgate.cloud.documents.custody import EITHER_WAY, Step, Unit, intervals, put_away, steps_from_bindings
from coldgate.cloud.documents.custody_store import _inside_at
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified
from coldgate.cloud.documents.reconciliation_store import _binding
from coldgate.cloud.identity.users import NotFound, UserInputError
from tests.rig.custody_world import (
    GTIN,
    PALLET,
    CustodyWorld,
    at,
    custody_world,
    receive_case,
    scan,
    transfer_by_scanning,
)  # fmt: skip
from tests.rig.documents import QA, SITE

View = tuple[Any, ...]


@pytest.fixture
def world(engine: Engine) -> CustodyWorld:
    return custody_world(engine)


def _view(stays: tuple[custody_store.Stay, ...]) -> list[View]:
    """(unit, quantity, where, from, to, began by, its reference, ended by, its reference)."""
    return [
        (s.unit.key, s.quantity, s.location or s.party, s.start, s.end, s.began_by.what, s.began_by.reference,
         s.ended_by.what if s.ended_by else None, s.ended_by.reference if s.ended_by else None)
        for s in stays
    ]  # fmt: skip


def test_a_lot_received_put_away_in_two_rooms_and_dispatched_to_two_customers_is_exact(
    engine: Engine, world: CustodyWorld
) -> None:
    with engine.connect() as conn:
        found = custody_store.lot_custody(conn, GTIN, "L1")
        by_id = custody_store.lot_custody(conn, "4006381333931", "L1")  # a GTIN-13 is the same product
    assert (found.product, found.gtin, found.lot, found.status, found.expiry) == (
        "VX10",
        GTIN,
        "L1",
        "released",
        "2027-12-31",
    )
    assert by_id == found
    # The pallet's tag names no product: the receiving note's line naming the lot lists it.
    assert found.pallets == (PALLET,)
    assert _view(found.stays) == [
        ("serial:VX10/1001", 1, "CR1", at(8, 1, 1), at(8, 30), "receipt", "ASN-9", "put-away", None),
        ("serial:VX10/1001", 1, "CR2", at(8, 30), at(12, 1), "put-away", None, "dispatch", "SO-1"),
        ("serial:VX10/1001", 1, "Pharmacy A", at(12, 1), None, "dispatch", "SO-1", None, None),
        ("serial:VX10/1002", 1, "CR1", at(8, 1, 2), at(8, 31), "receipt", "ASN-9", "put-away", None),
        ("serial:VX10/1002", 1, "CR2", at(8, 31), at(13, 1), "put-away", None, "dispatch", "SO-2"),
        ("serial:VX10/1002", 1, "Hospital B", at(13, 1), None, "dispatch", "SO-2", None, None),
        ("serial:VX10/1003", 1, "CR1", at(8, 1, 3), at(8, 40), "receipt", "ASN-9", "put-away", None),
        ("serial:VX10/1003", 1, "CR3", at(8, 40), at(12, 1, 1), "put-away", None, "dispatch", "SO-1"),
        ("serial:VX10/1003", 1, "Pharmacy A", at(12, 1, 1), None, "dispatch", "SO-1", None, None),
        ("serial:VX10/1004", 1, "CR1", at(8, 1, 4), at(8, 41), "receipt", "ASN-9", "put-away", None),
        ("serial:VX10/1004", 1, "CR3", at(8, 41), at(13, 1, 1), "put-away", None, "dispatch", "SO-2"),
        ("serial:VX10/1004", 1, "Hospital B", at(13, 1, 1), None, "dispatch", "SO-2", None, None),
        (f"sscc:{PALLET}", 1, "CR1", at(8, 1), at(8, 42), "receipt", "ASN-9", "put-away", None),
        (f"sscc:{PALLET}", 1, "CR3", at(8, 42), None, "put-away", None, None, None),
    ]
    first = found.stays[0]
    assert first.site == "site1" and first.began_by.document == world.receipt
    assert (first.began_by.item_kind, first.began_by.door, first.began_by.document_kind) == (
        "movement",
        "D1",
        "receiving",
    )
    assert (first.ended_by.item_kind, first.ended_by.door) == ("scan", None)  # type: ignore[union-attr]
    assert {s.began_by.document for s in found.stays if s.party == "Hospital B"} == {world.to_hospital}
    # Stock on hand, from the same stays: now only the (empty) pallet, put away in CR3 ...
    assert found.stock == (custody_store.StockLine("site1", "CR3", pallets=1),)
    assert found.units == 5
    # ... and at any moment of the day.
    assert custody_store.stock_at(found.stays, at(8, 35)) == (
        custody_store.StockLine("site1", "CR1", pallets=1, cases=2),
        custody_store.StockLine("site1", "CR2", cases=2),
    )
    assert custody_store.stock_at(found.stays, at(12, 30)) == (
        custody_store.StockLine("site1", "CR2", cases=1),
        custody_store.StockLine("site1", "CR3", pallets=1, cases=1),
    )
    _counted_by_quantity(engine)


def _counted_by_quantity(engine: Engine) -> None:
    """10 of PLAIN G1 received, 4 put away in CR2, 8 dispatched: 6 from CR1 (held longest), 2 from CR2."""
    with engine.connect() as conn:
        found = custody_store.lot_custody(conn, "PLAIN", "G1")
    assert found.gtin is None and found.status == "released" and found.pallets == ()
    assert _view(found.stays) == [
        ("lot:PLAIN/G1", 10, "CR1", at(8, 2), at(8, 45), "receipt", "ASN-9", "put-away", None),
        ("lot:PLAIN/G1", 6, "CR1", at(8, 45), at(13, 2), "put-away", None, "dispatch", "SO-2"),
        ("lot:PLAIN/G1", 4, "CR2", at(8, 45), at(13, 2), "put-away", None, "dispatch", "SO-2"),
        ("lot:PLAIN/G1", 8, "Hospital B", at(13, 2), None, "dispatch", "SO-2", None, None),
        ("lot:PLAIN/G1", 2, "CR2", at(13, 2), None, "dispatch", "SO-2", None, None),
    ]
    assert found.stock == (custody_store.StockLine("site1", "CR2", quantity=2),)


def _folds_what_the_pure_rules_make_of_each_row(engine: Engine) -> None:
    """The store asks the pure rules once per document, door and direction and stamps each row: the
    chain must be the one the rules give when asked about every row itself."""
    with engine.connect() as conn:
        rows = conn.execute(select(BindingRow).where(BindingRow.site == "site1")).all()
        doors = door_insides(conn, ["site1"])["site1"]
        index = CatalogIndex(door_locations={door: v[-1][1] for door, v in doors.items() if v[-1][1]})
        documents = {
            k: d
            for k, (d, _) in custody_store._documents(conn, {r.document for r in rows if r.document}).items()
        }
        found = [*custody_store.lot_custody(conn, "VX10", "L1").stays,
                 *custody_store.lot_custody(conn, "PLAIN", "G1").stays]  # fmt: skip
    steps = steps_from_bindings([_binding(r) for r in rows if r.document], documents, index)
    for r in rows:
        if r.document is None and r.location is not None:
            named = Identified(
                label="", sscc=r.sscc, product=r.product, lot=r.lot, serial=r.serial, quantity=r.quantity
            )
            step = put_away(named, r.location, r.time, _binding(r).observed.key)
            assert step is not None
            steps.append(step)
    got = [(s.unit.key, s.quantity, s.location, s.party, s.start, s.end, s.began_by.item,
            s.ended_by.item if s.ended_by else None) for s in found]  # fmt: skip
    expected = [(i.unit.key, i.quantity, i.location, i.party, i.start, i.end, i.began_by.source,
                 i.ended_by.source if i.ended_by else None) for i in intervals(steps)]  # fmt: skip
    assert sorted(got, key=repr) == sorted(expected, key=repr)


def test_a_units_chain_by_each_of_its_ids_and_refusals(engine: Engine, world: CustodyWorld) -> None:
    """A case by each id form, a pallet, a serial never received; then the store against the pure rules
    row by row, and every refusal (one world per dialect for all of them)."""
    with engine.connect() as conn:
        forms = [f"{GTIN}.1003", "4006381333931.1003", "urn:epc:id:sgtin:4006381.033393.1003", "VX10~1003"]
        chains = [custody_store.unit_custody(conn, form) for form in forms]
        pallet = custody_store.unit_custody(conn, PALLET)
        never = custody_store.unit_custody(conn, "VX10~1010")  # a serial of lot L1 nobody has received
    assert {c.stays for c in chains} == {chains[0].stays}
    case = chains[0]
    assert (case.unit.key, case.unit.product, case.unit.lot, case.gtin, case.status) == (
        "serial:VX10/1003",
        "VX10",
        "L1",
        GTIN,
        "released",
    )
    assert [(s.location or s.party, s.start, s.end) for s in case.stays] == [
        ("CR1", at(8, 1, 3), at(8, 40)), ("CR3", at(8, 40), at(12, 1, 1)), ("Pharmacy A", at(12, 1, 1), None)
    ]  # fmt: skip
    assert [(s.location, s.began_by.what) for s in pallet.stays] == [("CR1", "receipt"), ("CR3", "put-away")]
    assert pallet.unit.sscc == PALLET and pallet.status is None
    assert never.stays == () and never.unit.lot == "L1"
    _folds_what_the_pure_rules_make_of_each_row(engine)
    _unknown_and_malformed_ids_say_what_is_wrong(engine)


def test_a_door_changed_later_does_not_move_what_it_received_before(
    engine: Engine, world: CustodyWorld
) -> None:
    """D1 opens onto CR1 until a survey on 7 December says CR2: the story's receipts (1 December) stay in
    CR1, a case received after the change goes into CR2.  Custody is derived, yet never rewritten by a
    later correction of master data."""
    with engine.connect() as conn:
        before = custody_store.lot_custody(conn, "VX10", "L1")
    changed = at(8, 0) + 6 * 86_400_000  # 7 December 08:00
    door = {"name": "Dock door 1", "kind": "dock_door", "inside": "CR2", "outside": "YARD"}
    with engine.begin() as conn:
        put_location(conn, SITE, "D1", door, reason="re-survey: the door opens onto CR2", by=QA,
                     now=datetime.datetime.fromtimestamp(changed / 1000, datetime.UTC))  # fmt: skip
    with engine.connect() as conn:
        assert custody_store.lot_custody(conn, "VX10", "L1") == before
    receive_case(engine, "ASN-10", 1005, changed + 3_600_000, seq=18)
    with engine.connect() as conn:
        after = custody_store.lot_custody(conn, "VX10", "L1")
        case = custody_store.unit_custody(conn, "VX10~1005")
    assert [s for s in after.stays if s.unit.serial != "1005"] == list(before.stays)
    assert [(s.location, s.start, s.began_by.what, s.began_by.reference) for s in case.stays] == [
        ("CR2", changed + 3_600_000, "receipt", "ASN-10")
    ]
    assert custody_store.StockLine("site1", "CR2", cases=1) in after.stock


def test_a_transfer_scanned_at_the_door_takes_out_what_is_held_and_brings_in_the_rest(
    engine: Engine, world: CustodyWorld
) -> None:
    """After the story the pallet stands in CR3: scanned by the door's scanner on a transfer to site2 it
    leaves; case 1007, never ours, scanned on the same transfer arrives inside the door (CR1)."""
    later = at(16, 0)
    scans = [scan(18, later, "s-d1", sscc=PALLET),
             scan(19, later + 1000, "s-d1", gtin=GTIN, lot="L1", serial="1007")]  # fmt: skip
    transfer = transfer_by_scanning(world, engine, "site2", scans, later)
    with engine.connect() as conn:
        pallet = custody_store.unit_custody(conn, PALLET)
        case = custody_store.unit_custody(conn, "VX10~1007")
        lot = custody_store.lot_custody(conn, "VX10", "L1")
    assert [(s.location or s.party, s.start, s.began_by.what, s.began_by.reference)
            for s in pallet.stays] == [
        ("CR1", at(8, 1), "receipt", "ASN-9"), ("CR3", at(8, 42), "put-away", None),
        ("site2", later, "transfer out", "TR-1"),
    ]  # fmt: skip
    assert pallet.stays[1].ended_by is not None and pallet.stays[1].ended_by.document == transfer
    assert [(s.location, s.start, s.began_by.what, s.began_by.item_kind) for s in case.stays] == [
        ("CR1", later + 1000, "transfer in", "scan")
    ]
    assert lot.stock == (custody_store.StockLine("site1", "CR1", cases=1),)


def test_the_door_as_it_was_at_each_moment() -> None:
    """Before the first version: the first (the item passed the door, so it was there); at a change's
    very millisecond: the new one; a version naming no inside: None; an unknown door: None."""
    doors = {"D1": [(100, "CR1"), (200, "CR2"), (300, None), (400, "CR3")]}
    assert [_inside_at(doors, "D1", t) for t in (0, 100, 199, 200, 299, 300, 399, 400, 10**13)] == [
        "CR1", "CR1", "CR1", "CR2", "CR2", None, None, "CR3", "CR3"
    ]  # fmt: skip
    assert _inside_at(doors, "D2", 250) is None and _inside_at(doors, None, 250) is None
    assert _inside_at({"D1": [(100, "CR1")]}, "D1", 0) == "CR1"


REFUSALS: list[tuple[tuple[str, ...], type[Exception], str, str]] = [
    (("lot", "VX10", "L9"), NotFound, "lot", "no lot 'L9' of product 'VX10'"),
    (("lot", "NOPE", "L1"), NotFound, "gtin", "no product 'NOPE'"),
    (("lot", "04006381333924", "L1"), NotFound, "gtin", "no product with GTIN 04006381333924"),
    (("lot", "04006381333932", "L1"), UserInputError, "gtin", "check digit"),
    (("lot", "123", "L1"), UserInputError, "gtin", "neither a GTIN"),
    (("unit", "040063810000000024"), NotFound, "unit_id", "pallet 040063810000000024"),
    (("unit", "VX10~9999"), NotFound, "unit_id", "serial '9999' of product 'VX10'"),
    (("unit", "040063810000000018"), UserInputError, "unit_id", "check digit of SSCC"),
    (("unit", "1234"), UserInputError, "unit_id", "18 digits"),
    (("unit", "junk"), UserInputError, "unit_id", "is none of"),
    (("unit", "urn:epc:id:sscc:4006381.0000000001"), UserInputError, "unit_id", "only SGTIN"),
    (("unit", "urn:epc:id:sgtin:4006381.03339.1"), UserInputError, "unit_id", "13 digits"),
    (("unit", "VX10~"), UserInputError, "unit_id", "both needed"),
    (("unit", "NOPE~1"), NotFound, "unit_id", "no product 'NOPE'"),
]


def _unknown_and_malformed_ids_say_what_is_wrong(engine: Engine) -> None:
    for call, error, field, words in REFUSALS:
        with engine.connect() as conn, pytest.raises(UserInputError) as raised:
            if call[0] == "lot":
                custody_store.lot_custody(conn, call[1], call[2])
            else:
                custody_store.unit_custody(conn, call[1])
        assert type(raised.value) is error and raised.value.field == field, call
        assert words in str(raised.value), (call, str(raised.value))


@given(st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_the_units_fold_is_the_pure_one(rng: random.Random) -> None:
    """The store folds pallets and cases over plain tuples (``_fold_units``) for speed: on any history
    (repeated reads where a unit already is, moves at the same millisecond, several items and units) it
    gives the stays ``custody.intervals`` gives."""
    units = [Unit("serial:VX10/1", "VX10", "L1", "1"), Unit(f"sscc:{PALLET}", None, None, sscc=PALLET)]
    # The last: a transfer scanned at a door, out when the unit is held here, else in.
    places = [("CR1", None), ("CR2", None), (None, "Pharmacy A"), ("CR1", "Site B")]
    steps: list[Step] = []
    moves: list[Any] = []
    for seq in range(rng.randint(1, 12)):
        unit, (location, party) = rng.choice(units), rng.choice(places)
        time, item = rng.randint(0, 5), ItemKey(rng.choice(["gw01", "gw02"]), "s", seq)
        what = EITHER_WAY if location and party else "dispatch" if party else "put-away"
        document = rng.choice(["TR-1", "TR-2"]) if what == EITHER_WAY else "SO-1" if party else None
        steps.append(Step(time, unit, 1, location, party, what, item, document))
        event = custody_store.Event(what, time, item.gateway, item.stream, item.seq, "scan", "site1", None,
                                    document)  # fmt: skip
        moves.append((unit.key, time, item.gateway, item.stream, item.seq, unit, location, party, event))
    got = [(s.unit.key, s.location, s.party, s.start, s.end, s.began_by.item, s.began_by.what,
            s.ended_by.item if s.ended_by else None, s.ended_by.what if s.ended_by else None)
           for s in custody_store._fold_units(moves)]  # fmt: skip
    want = [(i.unit.key, i.location, i.party, i.start, i.end, i.began_by.source, i.began_by.what,
             i.ended_by.source if i.ended_by else None, i.ended_by.what if i.ended_by else None)
            for i in intervals(steps)]  # fmt: skip
    assert got == want
