"""The affected stock of a location over an interval (``cloud/documents/location_stock.py``) on both
dialects, on issue 15's custody story (``tests/rig/custody_world.py``): what CR1, CR2 and CR3 of site1
held at moments of the day, cases and a pallet by unit and a lot counted by quantity, each line's stays
the very ones ``lot_custody`` has; a transfer taking a pallet out and bringing a case in; labels that
tie a case to two lots or to none, and a pallet to no lot; a unit that left before the window, another
site's room of the same name and a room that was empty then are not affected; a bad window and an
unknown place are refused with what is wrong."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, insert

from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.db.models import BindingRow
from coldgate.cloud.documents import custody_store
from coldgate.cloud.documents.location_stock import AffectedLine, affected_lots, stock_in_location
from coldgate.cloud.identity.users import NotFound, UserInputError
from tests.rig.custody_world import GTIN, PALLET, CustodyWorld, at, custody_world, scan, transfer_by_scanning
from tests.rig.documents import QA, SITE, sscc

#: (product, lot, unit, quantity, first in, last out)
Brief = tuple[str | None, str | None, str | None, int, int, int | None]


@pytest.fixture
def world(engine: Engine) -> CustodyWorld:
    return custody_world(engine)


def _brief(lines: list[AffectedLine]) -> list[Brief]:
    return [(x.product, x.lot, x.unit, x.quantity, x.first_in, x.last_out) for x in lines]


def _stock(engine: Engine, location: str, start: int, end: int, site: str = SITE) -> list[AffectedLine]:
    with engine.connect() as conn:
        return stock_in_location(conn, site, location, start, end)


def test_what_each_room_held_during_a_window(engine: Engine, world: CustodyWorld) -> None:
    # CR1 from 08:00 to 08:35: the pallet and its four cases came in at 08:01 and two of the cases left
    # inside the window (put away in CR2 at 08:30 and 08:31); PLAIN G1's 10 came at 08:02 and stayed on
    # past the window, 6 of them until the dispatch at 13:02 (back-to-back stays: one presence).
    cr1 = _stock(engine, "CR1", at(8, 0), at(8, 35))
    assert _brief(cr1) == [
        ("PLAIN", "G1", None, 10, at(8, 2), at(13, 2)),
        ("VX10", "L1", "serial:VX10/1001", 1, at(8, 1, 1), at(8, 30)),
        ("VX10", "L1", "serial:VX10/1002", 1, at(8, 1, 2), at(8, 31)),
        ("VX10", "L1", "serial:VX10/1003", 1, at(8, 1, 3), at(8, 40)),
        ("VX10", "L1", "serial:VX10/1004", 1, at(8, 1, 4), at(8, 41)),
        ("VX10", "L1", f"sscc:{PALLET}", 1, at(8, 1), at(8, 42)),
    ]
    assert affected_lots(cr1) == [("PLAIN", "G1"), ("VX10", "L1")]
    pallet, case = cr1[5], cr1[1]
    assert (pallet.sscc, pallet.serial, pallet.gtin) == (PALLET, None, GTIN)
    assert (case.sscc, case.serial, case.gtin, cr1[0].gtin) == (None, "1001", GTIN, None)
    assert [(s.began_by.what, s.began_by.reference, s.ended_by and s.ended_by.what) for s in case.stays] == [
        ("receipt", "ASN-9", "put-away")
    ]
    # CR1 from 09:00: the units all left before the window, only the 6 of PLAIN remain (since 08:02).
    assert _brief(_stock(engine, "CR1", at(9, 0), at(10, 0))) == [
        ("PLAIN", "G1", None, 6, at(8, 2), at(13, 2))
    ]
    # CR2 from 09:00 to 10:00: 1001 and 1002, there before and gone after; PLAIN's 4 still there (2 now).
    assert _brief(_stock(engine, "CR2", at(9, 0), at(10, 0))) == [
        ("PLAIN", "G1", None, 4, at(8, 45), None),
        ("VX10", "L1", "serial:VX10/1001", 1, at(8, 30), at(12, 1)),
        ("VX10", "L1", "serial:VX10/1002", 1, at(8, 31), at(13, 1)),
    ]
    # CR2 after the last dispatch: the 2 left of PLAIN, still there.
    assert _brief(_stock(engine, "CR2", at(14, 0), at(15, 0))) == [("PLAIN", "G1", None, 2, at(8, 45), None)]
    # CR3 before anything came (the window's end is exclusive: 1003 arrived at 08:40 on the dot).
    assert _stock(engine, "CR3", at(8, 0), at(8, 40)) == []
    assert _brief(_stock(engine, "CR3", at(8, 0), at(8, 40, 1))) == [
        ("VX10", "L1", "serial:VX10/1003", 1, at(8, 40), at(12, 1, 1))
    ]
    # Another site's room of the same name held none of it.
    with engine.begin() as conn:
        room = {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"}
        put_location(conn, "site2", "CR1", room, reason="survey", by=QA,
                     now=datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC))  # fmt: skip
    assert _stock(engine, "CR1", at(8, 0), at(18, 0), site="site2") == []
    _same_as_lot_custody(engine)
    _bad_windows_and_places_are_refused(engine)


def test_a_transfer_takes_the_pallet_out_and_brings_a_case_in(engine: Engine, world: CustodyWorld) -> None:
    """At 16:00 the pallet leaves CR3 on a transfer scanned at the door; case 1007, never ours, scanned on
    the same transfer arrives inside the door (CR1) and is still there."""
    later = at(16, 0)
    scans = [scan(18, later, "s-d1", sscc=PALLET),
             scan(19, later + 1000, "s-d1", gtin=GTIN, lot="L1", serial="1007")]  # fmt: skip
    transfer_by_scanning(world, engine, "site2", scans, later)
    assert _brief(_stock(engine, "CR3", at(15, 0), at(17, 0))) == [
        ("VX10", "L1", f"sscc:{PALLET}", 1, at(8, 42), later)
    ]
    cr1 = _stock(engine, "CR1", at(15, 0), at(17, 0))
    assert _brief(cr1) == [("VX10", "L1", "serial:VX10/1007", 1, later + 1000, None)]
    assert cr1[0].stays[0].began_by.what == "transfer in"
    _same_as_lot_custody(engine)


def _put_away(seq: int, time: int, location: str, **named: str | None) -> dict[str, object]:
    """A put-away scan's ``bindings`` row as binding writes it (``binding_store._row``)."""
    return {
        "gateway": "gw01", "stream": "odd", "seq": seq, "kind": "scan", "site": SITE, "door": None,
        "direction": "unknown", "time": time, "document": None, "line": None, "how": "no door",
        "reason": f"scanner at {location}", "unit": None, "label": "label", "quantity": 1, "unresolved": [],
        "bound_at": datetime.datetime(2026, 12, 1, 18, tzinfo=datetime.UTC), "location": location,
        **{"product": None, "lot": None, "serial": None, "sscc": None, **named},
    }  # fmt: skip


def test_labels_that_say_two_lots_no_lot_or_no_product(engine: Engine, world: CustodyWorld) -> None:
    """What binding writes for odd labels, stored as its rows (binding's own rules are tested elsewhere):
    case 1050 put away in CR2 under lot L1 and, mislabelled, in CR3 under lot L7 (each lot's chain reads
    only its own rows, so for L1 it is still in CR2); case 9999 whose lot nobody knows; a pallet whose
    label names no product.  Each is reported, the first as each lot's chain has it."""
    odd = sscc(7)
    rows = [
        _put_away(1, at(9, 0), "CR2", product="VX10", lot="L1", serial="1050"),
        _put_away(2, at(9, 30), "CR3", product="VX10", lot="L7", serial="1050"),
        _put_away(3, at(9, 40), "CR2", product="VX10", serial="9999"),
        _put_away(4, at(9, 50), "CR2", sscc=odd),
    ]
    with engine.begin() as conn:
        conn.execute(insert(BindingRow), rows)
    cr2 = _stock(engine, "CR2", at(10, 0), at(11, 0))
    assert _brief(cr2) == [
        (None, None, f"sscc:{odd}", 1, at(9, 50), None),
        ("PLAIN", "G1", None, 4, at(8, 45), None),
        ("VX10", None, "serial:VX10/9999", 1, at(9, 40), None),
        ("VX10", "L1", "serial:VX10/1001", 1, at(8, 30), at(12, 1)),
        ("VX10", "L1", "serial:VX10/1002", 1, at(8, 31), at(13, 1)),
        ("VX10", "L1", "serial:VX10/1050", 1, at(9, 0), None),
    ]
    assert affected_lots(cr2) == [("PLAIN", "G1"), ("VX10", "L1")]
    assert _brief(_stock(engine, "CR3", at(10, 0), at(11, 0))) == [
        ("VX10", "L1", "serial:VX10/1003", 1, at(8, 40), at(12, 1, 1)),
        ("VX10", "L1", "serial:VX10/1004", 1, at(8, 41), at(13, 1, 1)),
        ("VX10", "L1", f"sscc:{PALLET}", 1, at(8, 42), None),
        ("VX10", "L7", "serial:VX10/1050", 1, at(9, 30), None),
    ]
    with engine.connect() as conn:
        l7 = custody_store.lot_custody(conn, "VX10", "L7")
        lost = custody_store.unit_custody(conn, "VX10~9999")
    assert [(s.location, s.start) for s in l7.stays] == [("CR3", at(9, 30))]
    assert [(s.location, s.start) for s in lost.stays] == [("CR2", at(9, 40))]
    _same_as_lot_custody(engine, (("VX10", "L1"), ("VX10", "L7"), ("PLAIN", "G1")))


def _overlaps(stay: custody_store.Stay, start: int, end: int) -> bool:
    return stay.start < end and (stay.end is None or stay.end > start)


def _same_as_lot_custody(
    engine: Engine, lots: tuple[tuple[str, str], ...] = (("VX10", "L1"), ("PLAIN", "G1"))
) -> None:
    """For every room and many windows (edges on the story's moments), each lot's lines hold exactly the
    stays of its ``lot_custody`` chain at that room overlapping the window, and every lot with such a
    stay has lines."""
    moments = [at(7, 0), at(8, 1), at(8, 1, 2), at(8, 30), at(8, 42), at(8, 45), at(9, 35), at(12, 1),
               at(13, 2), at(16, 0), at(16, 0, 1), at(23, 0)]  # fmt: skip
    # Windows between neighbouring moments, every third one, and the whole day (some 30).
    windows = [(a, b) for i, a in enumerate(moments) for b in moments[i + 1 :: 3]] + [(at(0, 0), at(23, 59))]
    with engine.connect() as conn:
        chains = {lot: custody_store.lot_custody(conn, *lot).stays for lot in lots}
        for room in ("CR1", "CR2", "CR3"):
            for start, end in windows:
                lines = stock_in_location(conn, SITE, room, start, end)
                for lot, stays in chains.items():
                    want = sorted(
                        (s for s in stays if s.location == room and _overlaps(s, start, end)), key=repr
                    )
                    got = sorted((s for x in lines if (x.product, x.lot) == lot for s in x.stays), key=repr)
                    assert got == want, (room, start, end, lot)
                assert set(affected_lots(lines)) <= set(chains)


def _bad_windows_and_places_are_refused(engine: Engine) -> None:
    cases: list[tuple[tuple[Any, ...], type[Exception], str, str]] = [
        ((SITE, "CR1", "08:00", at(9, 0)), UserInputError, "start_ms", "not a time in epoch ms"),
        ((SITE, "CR1", at(9, 0), at(8, 0)), UserInputError, "end_ms", "must end after it starts"),
        ((SITE, "CR1", at(9, 0), at(9, 0)), UserInputError, "end_ms", "must end after it starts"),
        (("nowhere", "CR1", at(8, 0), at(9, 0)), NotFound, "site", "no site 'nowhere'"),
        ((SITE, "CR9", at(8, 0), at(9, 0)), NotFound, "location", "no location 'CR9' at site 'site1'"),
    ]
    for args, error, field, words in cases:
        with engine.connect() as conn, pytest.raises(UserInputError) as raised:
            stock_in_location(conn, *args)
        assert type(raised.value) is error and raised.value.field == field, args
        assert words in str(raised.value), (args, str(raised.value))
