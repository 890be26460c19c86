"""The catalog index binding reads (``cloud/documents/catalog_index.py``), built from the catalog's own
audited writes on both dialects, and used to identify a real SGTIN tag and an MA label."""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.identifiers import LotInfo, SerialSpan, identify_movement, identify_scan
from coldgate.contract import examples
from coldgate.contract.items import Direction, Movement, Scan, Scheme
from coldgate.simulator.rfid_scenarios import sgtin96_hex
from tests.rig.catalog import GTIN, seed_catalog

QA = Actor("Quinn Tester", "u-quinn")
NOW = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
STAMP = {"seq": 1, "ts": examples.T0, "boot": examples.BOOT, "mono": 1, "synced": True}


def _site(engine: Engine) -> None:
    seed_catalog(engine)
    rooms = {
        ("site1", "cr1"): {"name": "Cold room 1", "kind": "cold_room", "temperature_class": "2-8C"},
        ("site1", "amb1"): {"name": "Ambient", "kind": "ambient_store", "temperature_class": "15-25C"},
        ("site1", "dock1"): {"name": "Dock 1", "kind": "dock_door", "inside": "cr1", "outside": "amb1"},
        ("site2", "cr9"): {"name": "Elsewhere", "kind": "cold_room", "temperature_class": "2-8C"},
    }
    with engine.begin() as conn:
        for (site, room), fields in rooms.items():
            put_location(conn, site, room, fields, reason="layout", by=QA, now=NOW)
        add_serials(conn, "VX10", "L1", ["77"], [("1000", "1999")], reason="ASN", by=QA, now=NOW)
        add_serials(conn, "VX10", "L2", [], [("2000", "2999")], reason="ASN", by=QA, now=NOW)


def test_the_index_holds_labels_lots_serials_and_the_sites_rooms(engine: Engine) -> None:
    _site(engine)
    with engine.connect() as conn:
        index = catalog_index(conn, "site1")
    assert index.gtins == {GTIN: "VX10"}
    assert index.ma == {"MA.156.M0.100003.IN20": "IN20"}
    assert index.serial_lots == {("VX10", "77"): "L1"}
    assert index.serial_spans["VX10"] == (SerialSpan("1000", "1999", "L1"), SerialSpan("2000", "2999", "L2"))
    assert index.lots[("VX10", "L1")] == LotInfo("recalled", datetime.date(2027, 6, 30))
    assert index.lots[("IN20", "B7")].expiry == datetime.date(2026, 1, 31)
    assert index.product_classes == {"VX10": "2-8C", "IN20": "2-8C"}
    assert index.location_classes == {"cr1": "2-8C", "amb1": "15-25C"}  # not site2's
    assert index.door_locations == {"dock1": "cr1"} and index.door_class("dock1") == "2-8C"


def test_a_real_sgtin_tag_finds_its_lot_through_the_serial_range_and_an_ma_label_its_product(
    engine: Engine,
) -> None:
    _site(engine)
    with engine.begin() as conn:
        # The product leaves the range: its tags still identify (goods come back, recalls go on).
        fields = {"name": "Vaccine X", "gtin": GTIN, "temperature_class": "2-8C", "serialised": True}
        put_product(conn, "VX10", fields, reason="discontinued", retired=True, by=QA, now=NOW)
    with engine.connect() as conn:
        index = catalog_index(conn, "site1")
    tag = sgtin96_hex("4006381", "033393", 1500)
    movement = Movement(**STAMP, reader="r1", door="dock1", direction=Direction.IN, epc=tag,
                        first_seen=examples.T0, last_seen=examples.T0, read_count=3)  # fmt: skip
    case = identify_movement(movement, index)
    assert (case.product, case.lot, case.serial) == ("VX10", "L1", "1500")
    label = Scan(**STAMP, scanner="s1", raw="MA.156.M0.100003.IN20.LB7", scheme=Scheme.MA,
                 ma="MA.156.M0.100003.IN20", lot="B7")  # fmt: skip
    unit = identify_scan(label, index)
    assert (unit.product, unit.lot, unit.expiry) == ("IN20", "B7", datetime.date(2026, 1, 31))
