"""The lot's history as EPCIS 2.0 (``cloud/reports/epcis_export.py``): every document it makes is valid
against GS1's EPCIS 2.0 JSON Schema (draft-07, with the ``uri`` and ``date-time`` formats checked too),
the events say what the custody chain says in CBV words, the sensor figures come out as given, and the
event ids are the CBV 2.0 event hash: the same for the same input, different when an event differs.

Custody chains are made by the pure ``custody.intervals`` from steps (the fold ``lot_custody`` uses),
so they have its real shapes (FIFO remainders of a counted lot included); one test reads issue 15's story
from the database through ``lot_custody`` on both dialects."""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="custody's types live in its database edge: the [cloud] extra")

from coldgate.cloud.documents.binding import ItemKey
from coldgate.cloud.documents.custody import Step, Unit, intervals
from coldgate.cloud.documents.custody_store import Event, LotCustody, Stay
from coldgate.cloud.reports.epcis_export import (
    CONTEXT,
    SegmentSensors,
    SensorFigures,
    epcis_json,
    event_ids,
    lot_epcis,
)  # fmt: skip
from tests.rig.epcis import valid

GTIN = "04006381333931"
SITE = "site1"
SSCC = "340063810000000014"
T0 = int(datetime.datetime(2026, 12, 1, 8, tzinfo=datetime.UTC).timestamp() * 1000)
MIN = 60_000
CREATED = T0 + 24 * 60 * MIN

def at(hour: int, minute: int, second: int = 0) -> int:
    return T0 + ((hour - 8) * 60 + minute) * MIN + second * 1000


def case(serial: str) -> Unit:
    return Unit(f"serial:VX10/{serial}", "VX10", "L1", serial=serial)


PALLET = Unit(f"sscc:{SSCC}", None, None, sscc=SSCC)
COUNTED = Unit("lot:VX10/L1", "VX10", "L1")

#: (seq, time, unit, quantity, location, party, what, door, document, its kind, its reference)
Move = tuple[int, int, Unit, int, str | None, str | None, str, str | None, str | None, str | None, str | None]


def custody(moves: list[Move], gtin: str | None = GTIN) -> LotCustody:
    """The LotCustody ``lot_custody`` would give for these recorded moves: steps folded by the pure
    ``custody.intervals``, each step's item made an :class:`Event`."""
    steps, events = [], {}
    for seq, time, unit, quantity, location, party, what, door, document, kind, reference in moves:
        key = ItemKey("gw01", "items", seq)
        steps.append(Step(time, unit, quantity, location, party, what, key, document, SITE))
        item_kind = "scan" if door is None or unit.counted else "movement"
        events[key] = Event(
            what, time, "gw01", "items", seq, item_kind, SITE, door, document, kind, reference
        )
    stays = tuple(
        Stay(i.unit, i.quantity, SITE, i.location, i.party, i.start, i.end, events[i.began_by.source],
             events[i.ended_by.source] if i.ended_by else None)
        for i in intervals(steps)
    )  # fmt: skip
    return LotCustody("VX10", "L1", gtin, "released", "2028-01-31", (SSCC,), stays)


RECEIPT = ("D1", "doc-r1", "receiving", "ASN-9")
SO1 = ("D1", "doc-d1", "dispatch", "SO-1")
SO2 = ("D1", "doc-d2", "dispatch", "SO-2")
PUT = (None, None, None, None)


def story() -> list[Move]:
    """A pallet of four cases and 10 counted of the same lot received at D1 into CR1 on ASN-9, put away
    in CR2 and CR3, case 1004 moved on to CR2, dispatched on SO-1 to Pharmacy A and SO-2 to Hospital B
    (with 8 of the counted: 6 from CR1, 2 from CR2, first in first out)."""
    return [
        (1, at(8, 1), PALLET, 1, "CR1", None, "receipt", *RECEIPT),
        *[
            (2 + n, at(8, 1, 1 + n), case(str(1001 + n)), 1, "CR1", None, "receipt", *RECEIPT)
            for n in range(4)
        ],
        (6, at(8, 2), COUNTED, 10, "CR1", None, "receipt", *RECEIPT),
        (7, at(8, 30), case("1001"), 1, "CR2", None, "put-away", *PUT),
        (8, at(8, 31), case("1002"), 1, "CR2", None, "put-away", *PUT),
        (9, at(8, 40), case("1003"), 1, "CR3", None, "put-away", *PUT),
        (10, at(8, 41), case("1004"), 1, "CR3", None, "put-away", *PUT),
        (11, at(8, 42), PALLET, 1, "CR3", None, "put-away", *PUT),
        (12, at(8, 45), COUNTED, 4, "CR2", None, "put-away", *PUT),
        (13, at(10, 0), case("1004"), 1, "CR2", None, "put-away", *PUT),
        (14, at(12, 1), case("1001"), 1, None, "Pharmacy A", "dispatch", *SO1),
        (15, at(12, 1, 1), case("1003"), 1, None, "Pharmacy A", "dispatch", *SO1),
        (16, at(13, 1), case("1002"), 1, None, "Hospital B", "dispatch", *SO2),
        (17, at(13, 1, 1), case("1004"), 1, None, "Hospital B", "dispatch", *SO2),
        (18, at(13, 2), COUNTED, 8, None, "Hospital B", "dispatch", *SO2),
    ]


def segments() -> list[SegmentSensors]:
    cr2 = (SensorFigures("gw01/t-cr2", "temperature", 270, 3.1, 7.9, 5.25, "CEL"),
           SensorFigures("gw01/h-cr2", "humidity", 270, 40.0, 55.5, 47.2, "P1"))  # fmt: skip
    cr3 = (SensorFigures("gw01/t-cr3", "temperature", 0, None, None, None, "CEL"),)
    return [SegmentSensors(SITE, "CR2", at(8, 30), at(13, 2), cr2),
            SegmentSensors(SITE, "CR3", at(8, 40), None, cr3)]  # fmt: skip


def export(moves: list[Move] | None = None, **kwargs: Any) -> dict[str, Any]:
    found = custody(story() if moves is None else moves)
    return valid(lot_epcis(found, kwargs.pop("segments", segments()), created_ms=CREATED, **kwargs))


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["epcisBody"]["eventList"])


def dl(serial: str) -> str:
    return f"https://id.gs1.org/01/{GTIN}/21/{serial}"


LGTIN = f"https://id.gs1.org/01/{GTIN}/10/L1"
PALLET_URI = f"https://id.gs1.org/00/{SSCC}"
BASE = "https://coldgate.example"


def test_the_story_gives_receiving_storing_shipping_pallet_and_sensor_events_in_cbv_words() -> None:
    document = export()
    assert document["@context"] == [CONTEXT]
    assert (document["type"], document["schemaVersion"]) == ("EPCISDocument", "2.0")
    assert document["creationDate"] == "2026-12-02T08:00:00.000Z"
    events = events_of(document)
    kinds = [(e["type"], e.get("bizStep")) for e in events]
    assert kinds.count(("ObjectEvent", "receiving")) == 1  # one pass: pallet, cases and the counted 10
    assert kinds.count(("AggregationEvent", "receiving")) == 1
    assert kinds.count(("ObjectEvent", "shipping")) == 2
    assert kinds.count(("ObjectEvent", "sensor_reporting")) == 2
    assert all(e["eventTimeZoneOffset"] == "+00:00" and e["action"] == "OBSERVE" for e in events)
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events)

    receiving = next(e for e in events if e["type"] == "ObjectEvent" and e["bizStep"] == "receiving")
    assert receiving["eventTime"] == "2026-12-01T08:01:00.000Z"
    assert receiving["disposition"] == "in_progress"
    assert receiving["epcList"] == sorted([PALLET_URI, *(dl(str(s)) for s in range(1001, 1005))])
    assert receiving["quantityList"] == [{"epcClass": LGTIN, "quantity": 10}]
    assert receiving["readPoint"] == {"id": f"{BASE}/site/site1/location/D1"}
    assert receiving["bizLocation"] == {"id": f"{BASE}/site/site1/location/CR1"}
    assert receiving["bizTransactionList"] == [
        {"type": "recadv", "bizTransaction": f"{BASE}/document/doc-r1"},
        {"type": "desadv", "bizTransaction": f"{BASE}/reference/ASN-9"},
    ]
    aggregation = next(e for e in events if e["type"] == "AggregationEvent")
    assert aggregation["parentID"] == PALLET_URI
    assert aggregation["childEPCs"] == [dl(str(s)) for s in range(1001, 1005)]
    assert aggregation["bizLocation"] == receiving["bizLocation"]

    shipped = {
        e["bizTransactionList"][0]["bizTransaction"]: e for e in events if e.get("bizStep") == "shipping"
    }
    to_pharmacy, to_hospital = shipped[f"{BASE}/document/doc-d1"], shipped[f"{BASE}/document/doc-d2"]
    assert to_pharmacy["epcList"] == [dl("1001"), dl("1003")]
    assert to_pharmacy["disposition"] == "in_transit"
    assert to_pharmacy["destinationList"] == [
        {"type": "owning_party", "destination": f"{BASE}/party/Pharmacy%20A"}
    ]
    assert to_pharmacy["bizTransactionList"] == [
        {"type": "desadv", "bizTransaction": f"{BASE}/document/doc-d1"},
        {"type": f"{BASE}/voc/BTT-reference", "bizTransaction": f"{BASE}/reference/SO-1"},
    ]
    assert "bizLocation" not in to_pharmacy
    assert to_hospital["epcList"] == [dl("1002"), dl("1004")]
    assert to_hospital["quantityList"] == [{"epcClass": LGTIN, "quantity": 8}]  # 6 from CR1 and 2 from CR2

    storing = [e for e in events if e.get("bizStep") == "storing"]
    into = {(e["bizLocation"]["id"].rsplit("/", 1)[1], e["eventTime"][11:16]): e for e in storing}
    assert set(into) == {("CR2", "08:30"), ("CR3", "08:40"), ("CR2", "08:45"), ("CR2", "10:00")}
    assert into["CR2", "08:30"]["epcList"] == [dl("1001"), dl("1002")]  # a minute apart: one pass
    assert into["CR2", "08:45"]["quantityList"] == [{"epcClass": LGTIN, "quantity": 4}]
    assert "epcList" not in into["CR2", "08:45"]
    assert into["CR3", "08:40"]["epcList"] == [PALLET_URI, dl("1003"), dl("1004")]
    assert into["CR2", "10:00"]["epcList"] == [dl("1004")]
    assert all("disposition" not in e and "bizTransactionList" not in e for e in storing)


def test_sensor_elements_carry_the_given_figures_in_the_shape_of_gs1_examples() -> None:
    raw = []

    def raw_url(device: str, start: int, end: int) -> str:
        raw.append((device, start, end))
        return f"https://coldgate.example/raw/{device}?from={start}&to={end}"

    events = events_of(export(raw_url=raw_url))
    cr2, cr3 = sorted(
        (e for e in events if e.get("bizStep") == "sensor_reporting"), key=lambda e: e["eventTime"]
    )
    place = f"{BASE}/site/site1/location/CR2"
    assert cr2["readPoint"] == cr2["bizLocation"] == {"id": place}
    assert cr2["eventTime"] == "2026-12-01T13:02:00.000Z"  # the segment's end
    # 1001 and 1002 (then dispatched), 1004 from 10:00; the most of the counted held there: 4
    assert cr2["epcList"] == [dl("1001"), dl("1002"), dl("1004")]
    assert cr2["quantityList"] == [{"epcClass": LGTIN, "quantity": 4}]
    by_device = {e["sensorMetadata"]["deviceID"]: e for e in cr2["sensorElementList"]}
    temperature = by_device[f"{BASE}/device/gw01/t-cr2"]
    assert temperature["sensorMetadata"] == {
        "startTime": "2026-12-01T08:30:00.000Z", "endTime": "2026-12-01T13:02:00.000Z",
        "deviceID": f"{BASE}/device/gw01/t-cr2",
        "rawData": f"https://coldgate.example/raw/gw01/t-cr2?from={at(8, 30)}&to={at(13, 2)}",
    }  # fmt: skip
    assert temperature["sensorReport"] == [
        {"type": "Temperature", "minValue": 3.1, "maxValue": 7.9, "meanValue": 5.25, "uom": "CEL"}
    ]
    assert by_device[f"{BASE}/device/gw01/h-cr2"]["sensorReport"] == [
        {"type": "RelativeHumidity", "minValue": 40.0, "maxValue": 55.5, "meanValue": 47.2, "uom": "P1"}
    ]
    # CR3's segment is still going: it ends at the document's creation; its sensor had no reading
    assert cr3["eventTime"] == "2026-12-02T08:00:00.000Z"
    assert cr3["epcList"] == [PALLET_URI, dl("1003"), dl("1004")]
    (element,) = cr3["sensorElementList"]
    assert element["sensorReport"] == [
        {"type": "Temperature", "exception": "ERROR_CONDITION", "stringValue": "no readings"}
    ]
    assert ("gw01/t-cr3", at(8, 40), CREATED) in raw


def test_a_segment_no_sensor_watched_says_it_was_not_monitored() -> None:
    door = SensorFigures("gw01/d1", "door", 9, 0, 1, 0.2, "C62")  # a door contact: no EPCIS measurement
    unwatched = [SegmentSensors(SITE, "CR1", at(8, 1), at(8, 30), ()),
                 SegmentSensors(SITE, "CR2", at(8, 30), at(9, 0), (door,))]  # fmt: skip
    events = [e for e in events_of(export(segments=unwatched)) if e["bizStep"] == "sensor_reporting"]
    assert len(events) == 2
    for event in events:
        (element,) = event["sensorElementList"]
        assert element["sensorReport"] == [
            {"type": "Temperature", "exception": "ERROR_CONDITION", "stringValue": "not monitored"}
        ]
        assert "deviceID" not in element["sensorMetadata"]


def test_event_ids_are_the_event_hash_stable_across_runs_and_changed_by_content() -> None:
    first, second = export(), export()
    assert epcis_json(first) == epcis_json(second)
    ids = [e["eventID"] for e in events_of(first)]
    assert all(re.fullmatch(r"ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0", i) for i in ids)
    assert len(set(ids)) == len(ids)
    # the id is the hash of the event without its id: recomputing it gives it back
    assert event_ids([{k: v for k, v in e.items() if k != "eventID"} for e in events_of(first)]) == ids

    moved = [m if m[0] != 14 else (m[0], m[1] + 1000, *m[2:]) for m in story()]  # 1001 leaves 1 s later
    changed = {e["eventID"] for e in events_of(export(moved))}
    assert len(changed - set(ids)) == 1  # the Pharmacy A dispatch, and nothing else
    renamed = {e["eventID"] for e in events_of(export(base_uri="https://other.example"))}
    assert not renamed & set(ids)
    other_figures = segments()
    other_figures[0] = other_figures[0]._replace(sensors=(other_figures[0].sensors[0]._replace(max=8.0),))
    refigured = {e["eventID"] for e in events_of(export(segments=other_figures))}
    assert len(refigured - set(ids)) == 1


def test_the_canonical_bytes_are_sorted_utf8_json() -> None:
    document = export([(1, at(8, 1), case("Ä/1"), 1, "CR1", None, "receipt", *RECEIPT)], segments=[])
    data = epcis_json(document)
    assert json.loads(data) == document
    assert data.startswith(b'{"@context":') and b'": ' not in data and b', "' not in data
    assert dl("%C3%84%2F1").encode() in data


def test_the_schema_check_refuses_what_gs1_refuses() -> None:
    """The check the other tests lean on is not vacuous: a word CBV lacks, a missing action, a time
    that is no date-time and a URI with a space are each refused."""
    for spoil in (
        lambda e: e.update(bizStep="put_away"),
        lambda e: e.pop("action"),
        lambda e: e.update(eventTime="2026-12-01 08:01"),
        lambda e: e.update(readPoint={"id": "site 1 door D1"}),
    ):
        document = export()
        spoil(document["epcisBody"]["eventList"][0])
        with pytest.raises(AssertionError):
            valid(document)


def test_a_lot_with_no_custody_gives_a_valid_empty_document() -> None:
    empty = LotCustody("VX10", "L9", GTIN, None, None, (), ())
    document = valid(lot_epcis(empty, created_ms=CREATED))
    assert document["epcisBody"]["eventList"] == []
    assert epcis_json(document) == epcis_json(lot_epcis(empty, created_ms=CREATED))


def test_a_product_without_a_gtin_gets_private_uris_and_stays_valid() -> None:
    moves: list[Move] = [(1, at(8, 1), case("7"), 1, "CR1", None, "receipt", *RECEIPT),
                         (2, at(8, 2), COUNTED, 3, "CR1", None, "receipt", *RECEIPT)]  # fmt: skip
    document = valid(lot_epcis(custody(moves, gtin=None), created_ms=CREATED))
    (event,) = events_of(document)
    assert event["epcList"] == [f"{BASE}/product/VX10/serial/7"]
    assert event["quantityList"] == [{"epcClass": f"{BASE}/product/VX10/lot/L1", "quantity": 3}]


def test_two_pallets_in_one_pass_say_no_aggregation() -> None:
    other = Unit("sscc:340063810000000021", None, None, sscc="340063810000000021")
    moves: list[Move] = [(1, at(8, 1), PALLET, 1, "CR1", None, "receipt", *RECEIPT),
                         (2, at(8, 1, 1), other, 1, "CR1", None, "receipt", *RECEIPT),
                         (3, at(8, 1, 2), case("1"), 1, "CR1", None, "receipt", *RECEIPT)]  # fmt: skip
    events = events_of(valid(lot_epcis(custody(moves), created_ms=CREATED)))
    assert [e["type"] for e in events] == ["ObjectEvent"]
    assert len(events[0]["epcList"]) == 3


def test_a_dispatch_whose_document_named_no_party_lists_no_destination() -> None:
    moves: list[Move] = [(1, at(8, 1), case("1"), 1, "CR1", None, "receipt", *RECEIPT),
                         (2, at(9, 0), case("1"), 1, None, "dispatch SO-1", "dispatch", *SO1)]  # fmt: skip
    shipping = [
        e
        for e in events_of(valid(lot_epcis(custody(moves), created_ms=CREATED)))
        if e["bizStep"] == "shipping"
    ]
    assert "destinationList" not in shipping[0]


def test_a_figure_that_is_no_number_or_a_unit_that_is_no_code_is_refused_naming_the_sensor() -> None:
    bad = [SegmentSensors(SITE, "CR1", T0, T0 + MIN, (SensorFigures("gw01/t1", "temperature", 3, float("nan"),
                                                                    1.0, 1.0, "CEL"),))]  # fmt: skip
    with pytest.raises(ValueError, match="gw01/t1"):
        lot_epcis(custody(story()), bad, created_ms=CREATED)
    degrees = [bad[0]._replace(sensors=(SensorFigures("gw01/t2", "temperature", 3, 1.0, 1.0, 1.0, "°C"),))]
    with pytest.raises(ValueError, match="gw01/t2"):
        lot_epcis(custody(story()), degrees, created_ms=CREATED)


# -- random chains --------------------------------------------------------------------------------------

_UNITS = [PALLET, case("1"), case("2/x"), case("3"), COUNTED]
_KINDS = {
    "receipt": ("D1", "doc-r", "receiving", "ASN 1"),
    "transfer in": ("D2", "doc-t", "transfer", "TR-1"),
    "put-away": PUT,
    "transfer out": ("D2", "doc-t", "transfer", "TR-1"),
    "dispatch": ("D1", "doc-d", "dispatch", "SO/1"),
}


@st.composite
def chains(draw: st.DrawFn) -> list[Move]:
    moves: list[Move] = []
    time = T0
    for seq in range(draw(st.integers(0, 12))):
        time += draw(st.sampled_from([0, 1000, 59_000, 61_000, 3_600_000]))
        unit = draw(st.sampled_from(_UNITS))
        what = draw(st.sampled_from(sorted(_KINDS)))
        quantity = draw(st.integers(1, 20)) if unit.counted else 1
        if what in ("transfer out", "dispatch"):
            location, party = (
                None,
                draw(st.sampled_from(["Pharmacy A", "urn:epc:id:pgln:4000001.00000", "x"])),
            )
        else:
            location, party = draw(st.sampled_from(["CR1", "CR2", "Kühl raum"])), None
        moves.append((seq, time, unit, quantity, location, party, what, *_KINDS[what]))
    return moves


figures = st.builds(
    SensorFigures,
    st.sampled_from(["gw01/t1", "gw 2/h:1", "urn:epc:id:giai:4000001.111"]),
    st.sampled_from(["temperature", "humidity", "pressure", "door"]),
    st.integers(0, 5),
    *[st.none() | st.floats(-40, 60, allow_nan=False)] * 3,
    st.sampled_from(["CEL", "P1", "A97"]),
)


@st.composite
def segment_lists(draw: st.DrawFn) -> list[SegmentSensors]:
    found = []
    for _ in range(draw(st.integers(0, 3))):
        start = T0 + draw(st.integers(0, 10)) * 600_000
        end = draw(st.none() | st.integers(start + 1, start + 7_200_000))
        where = draw(st.sampled_from(["CR1", "CR2", "Kühl raum"]))
        found.append(SegmentSensors(SITE, where, start, end, tuple(draw(st.lists(figures, max_size=3)))))
    return found


@settings(max_examples=60, deadline=None)
@given(chains(), segment_lists(), st.booleans())
def test_random_chains_always_give_schema_valid_deterministic_documents(
    moves: list[Move], segment_list: list[SegmentSensors], with_gtin: bool
) -> None:
    lot = custody(moves, GTIN if with_gtin else None)
    document = valid(
        lot_epcis(lot, segment_list, created_ms=CREATED, raw_url=lambda d, s, e: f"{BASE}/r/{s}")
    )
    assert epcis_json(document) == epcis_json(lot_epcis(lot, segment_list, created_ms=CREATED,
                                                        raw_url=lambda d, s, e: f"{BASE}/r/{s}"))  # fmt: skip
    events = events_of(document)
    assert len({e["eventID"] for e in events}) == len(events)
    assert [(e["eventTime"], e["eventID"]) for e in events] == sorted(
        (e["eventTime"], e["eventID"]) for e in events
    )


# -- issue 15's story from the database -----------------------------------------------------------------


def test_the_custody_story_read_from_the_database_exports_valid_epcis(engine: Any) -> None:
    pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")
    from coldgate.cloud.documents.custody_store import lot_custody
    from tests.rig.custody_world import GTIN as RIG_GTIN
    from tests.rig.custody_world import PALLET as RIG_PALLET
    from tests.rig.custody_world import custody_world

    custody_world(engine)
    with engine.connect() as conn:
        found = lot_custody(conn, RIG_GTIN, "L1")
    document = valid(lot_epcis(found, created_ms=CREATED))
    events = events_of(document)
    steps = sorted((e["type"], e.get("bizStep")) for e in events)
    assert steps == sorted([("ObjectEvent", "receiving"), ("AggregationEvent", "receiving"),
                            ("ObjectEvent", "storing"), ("ObjectEvent", "storing"),
                            ("ObjectEvent", "shipping"), ("ObjectEvent", "shipping")])  # fmt: skip
    aggregation = next(e for e in events if e["type"] == "AggregationEvent")
    assert aggregation["parentID"] == f"https://id.gs1.org/00/{RIG_PALLET}"
    assert aggregation["childEPCs"] == [f"https://id.gs1.org/01/{RIG_GTIN}/21/{s}" for s in range(1001, 1005)]
    destinations = sorted(
        e["destinationList"][0]["destination"] for e in events if e.get("bizStep") == "shipping"
    )
    assert destinations == [f"{BASE}/party/Hospital%20B", f"{BASE}/party/Pharmacy%20A"]
