"""A lot's history as an EPCIS 2.0 JSON-LD document (issue 17): pure, no I/O, same input, same bytes.

Who reads it: a customer's or an authority's EPCIS repository, a recall partner.  It says, in GS1's
words (EPCIS 2.0, CBV 2.0), what :func:`coldgate.cloud.documents.custody_store.lot_custody` says in
ours, plus what the sensors watching our rooms saw while the lot was there.  :func:`lot_epcis` builds
the document; :func:`epcis_json` gives its canonical bytes for the API.

Identifiers (why GS1 Digital Link): an EPC URI (``urn:epc:id:sgtin:…``) needs the GS1 company prefix's
length, which nothing in the catalog records (a product has its GTIN only), and guessing it would make
a wrong but valid-looking URI.  EPCIS 2.0 takes Digital Link URIs for the same keys, so:

* a pallet: ``https://id.gs1.org/00/{sscc}``;
* a serialised case: ``https://id.gs1.org/01/{gtin14}/21/{serial}`` (serial percent-encoded);
* the lot counted by quantity (an LGTIN class): ``https://id.gs1.org/01/{gtin14}/10/{lot}``;
* a product without a GTIN (HIBC, MA labels): ``{base}/product/{product}/serial/{serial}`` and
  ``{base}/product/{product}/lot/{lot}``, private but stable URIs under ``base_uri``.

Places and documents are not GS1 keys in our catalog (sites, doors and rooms carry no GLN), so they are
private URIs under ``base_uri`` (default ``https://coldgate.example``, which a deployment replaces with
a domain it owns): ``{base}/site/{site}/location/{location}`` for a room or a dock door (a door is a
location of its site), ``{base}/document/{id}`` for our document, ``{base}/reference/{reference}`` for
the number printed on it, ``{base}/party/{name}`` for a customer (a party already given as a URI, e.g.
a PGLN, is kept as is), ``{base}/device/{device_id}`` for a sensor.  Every segment is percent-encoded.

What each custody event becomes (CBV 2.0 bizSteps and dispositions; action OBSERVE throughout, since we
watch goods that already exist, and creating or destroying them is not ours to say):

==============  ===========  ============  ==========  ===========  ==========================================
what            bizStep      disposition   readPoint   bizLocation  bizTransactionList / destinationList
==============  ===========  ============  ==========  ===========  ==========================================
receipt         receiving    in_progress   the door    inside room  recadv: our note; desadv: its reference
                                                                    (the supplier's ASN number)
transfer in     receiving    in_progress   the door    inside room  BTT-transfer: our transfer; BTT-reference
put-away        storing      (unchanged)   the room    the room     none
transfer out    shipping     in_transit    the door    none         BTT-transfer: our transfer; BTT-reference;
                                                                    possessing_party: where it went
dispatch        shipping     in_transit    the door    none         desadv: our dispatch order; BTT-reference:
                                                                    its number; owning_party: the customer
==============  ===========  ============  ==========  ===========  ==========================================

A receiving note's reference is the supplier's despatch advice number (what ``epcis_import`` reads from
a supplier's ``desadv``), and our note is the receiving advice; our dispatch order is the despatch
advice the customer receives.  Where CBV has no word (a transfer order; the number printed on a dispatch
order, which may be ours or the customer's order number), the type is ours, ``{base}/voc/BTT-transfer``
and ``{base}/voc/BTT-reference``, rather than a CBV word that would claim what we do not know (EPCIS
allows a type to be left out too, but the event hash generator fails on an untyped one).  A put-away
keeps the disposition (CBV: absent means unchanged): whether stock is sellable is QA's, not a scanner's.
The customer or destination is listed only when the document named one (custody says
``"{kind} {reference}"`` when it did not: that is no party).

One event per pass: the units moved by the same kind of event at the same site, door and document to
the same place, each within :data:`PASS_WINDOW_MS` of the one before, are one business event (a pallet
and its cases pass a portal over a few seconds; a scanner works through a put-away), at the first one's
time.  A counted lot's quantity in an event is what the event added to the place it went to (custody
re-opens a place's stay with its new total, and what stays behind with the remainder).

Pallets (AggregationEvent, OBSERVE, bizStep and places of the receipt): a receipt or transfer-in pass
with exactly one pallet and serialised cases says those cases came on that pallet.  A pass with several
pallets says no more than that the cases came on one of them, so it gets no aggregation (a recall team
must not be told a case was on the wrong pallet); the cases are still in the pass's ObjectEvent.

Sensor figures (:class:`SegmentSensors`, filled by the batch history or anything else): one ObjectEvent
per segment (bizStep ``sensor_reporting``, readPoint and bizLocation the room), with the lot's pallets
and cases in that room at any time during the segment and, for a counted lot, the most it held there at
once, and one ``sensorElement`` per sensor shaped as GS1's SensorDataExample2 (sensorMetadata with
startTime, endTime, deviceID and optionally rawData; one sensorReport per quantity with minValue,
maxValue, meanValue and uom; its type the bare term the schema lists, ``Temperature`` or
``RelativeHumidity``, which GS1's context makes the gs1: vocabulary IRI).  No ``time`` in the metadata:
the figures are over an interval, which startTime and endTime say.  eventTime is the segment's end (the
figures are complete then; an open segment ends at the document's creation time).  A sensor with no
reading in the segment reports ``ERROR_CONDITION`` with ``stringValue`` "no readings": a gap is a record
(DESIGN.md principle 5), not an absence; where its readings were purged by retention, the stringValue
says that instead (``SensorFigures.note``: the date, the rule and the archive's hash), so an EPCIS
reader never takes a purged month for an unmonitored one.  Quantities EPCIS has no measurement type for
(a door contact, a dew point) are left out; a segment left with no sensor at all reports a Temperature
``ERROR_CONDITION`` "not monitored" over the segment (no deviceID).

Event ids: the CBV 2.0 event hash (``ni:///sha-256;…?ver=CBV2.0``) by ``epcis-event-hash-generator``,
which canonicalises an in-memory document (JSON-LD expansion with its bundled copy of GS1's 2.0.0
context: that is why :data:`CONTEXT` is the versioned URL, which the library never fetches; any other
would make it go to the network).  Events are sorted by time, then id; two with the same id are the
same event (a segment given twice), listed once.
"""

from __future__ import annotations

import copy
import datetime
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple
from urllib.parse import quote

import rfc8785

from coldgate.cloud.documents.custody import Unit

if TYPE_CHECKING:  # custody_store is the database edge: its types only, so this imports no SQLAlchemy
    from coldgate.cloud.documents.custody_store import Event, LotCustody, Stay

__all__ = [
    "CONTEXT", "DEFAULT_BASE", "PASS_WINDOW_MS", "RawUrl", "SegmentSensors", "SensorFigures", "epcis_json",
    "event_ids", "lot_epcis",
]  # fmt: skip

#: GS1's JSON-LD context for EPCIS 2.0, the version the hash generator carries offline.
CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
DEFAULT_BASE: Final = "https://coldgate.example"
#: Moves of one kind, door, document and destination no further apart than this are one pass.
PASS_WINDOW_MS: Final = 60_000
_DIGITAL_LINK: Final = "https://id.gs1.org"
_OFFSET: Final = "+00:00"
#: Our measured quantities (contract.units.Quantity values) as EPCIS 2.0 measurement types.
_MEASUREMENT: Final = {"temperature": "Temperature", "humidity": "RelativeHumidity", "pressure": "Pressure"}
_INBOUND: Final = ("receipt", "transfer in")
_UOM: Final = re.compile(r"[A-Z0-9]{2,3}")


class SensorFigures(NamedTuple):
    """One sensor's figures over a segment.  ``device_id``: our ``gateway/sensor`` (or any URI, kept as
    is); ``quantity``: ``temperature``, ``humidity`` (relative) or ``pressure``; ``count``: readings in
    the segment (0: none, whatever the figures say); ``min``/``max``/``mean`` in ``unit``, a UN/CEFACT
    rec 20 code as the readings carry it (``CEL``; ``P1`` for relative humidity, percent)."""

    device_id: str
    quantity: str
    count: int
    min: float | None
    max: float | None
    mean: float | None
    unit: str
    #: Why a sensor with no reading has none, when it is known (its readings purged by retention).
    note: str | None = None


class SegmentSensors(NamedTuple):
    """What the sensors placed at ``location`` of ``site`` saw from ``start_ms`` to ``end_ms`` (epoch
    ms; None: still going) while the lot was there: one custody segment in one of our rooms."""

    site: str
    location: str
    start_ms: int
    end_ms: int | None
    sensors: tuple[SensorFigures, ...]


#: ``raw_url(device_id, start_ms, end_ms)``: where a sensor's raw series over a segment can be read.
RawUrl = Callable[[str, int, int], str]


class _Move(NamedTuple):
    """What one recorded event did to one unit: ``quantity`` of it went to ``location`` (or ``party``)."""

    event: Event
    unit: Unit
    quantity: int
    location: str | None
    party: str | None

    @property
    def group(self) -> tuple[str, str, str, str, str, str]:
        e = self.event
        return (e.what, e.site, e.door or "", e.document or "", self.location or "", self.party or "")


class _Names:
    """The URIs of one export (see the module's docstring)."""

    def __init__(self, base: str, product: str, gtin: str | None) -> None:
        self.base = base.rstrip("/")
        self.product = product
        self.gtin = gtin

    def _private(self, *parts: str) -> str:
        return "/".join([self.base, *(quote(p, safe="") for p in parts)])

    def unit(self, unit: Unit) -> str:
        """A pallet's or a serialised case's URI."""
        if unit.sscc is not None:
            return f"{_DIGITAL_LINK}/00/{unit.sscc}"
        assert unit.serial is not None
        gtin = self._gtin_of(unit.product)
        if gtin is None:
            return self._private("product", unit.product or "", "serial", unit.serial)
        return f"{_DIGITAL_LINK}/01/{gtin}/21/{quote(unit.serial, safe='')}"

    def lot_class(self, unit: Unit) -> str:
        """A lot counted by quantity as an LGTIN class."""
        gtin = self._gtin_of(unit.product)
        if gtin is None:
            return self._private("product", unit.product or "", "lot", unit.lot or "")
        return f"{_DIGITAL_LINK}/01/{gtin}/10/{quote(unit.lot or '', safe='')}"

    def _gtin_of(self, product: str | None) -> str | None:
        return self.gtin if product == self.product else None

    def place(self, site: str, location: str) -> str:
        return self._private("site", site, "location", location)

    def document(self, document: str) -> str:
        return self._private("document", document)

    def reference(self, reference: str) -> str:
        return self._private("reference", reference)

    def vocabulary(self, word: str) -> str:
        """A word of ours where CBV has none (a vocabulary URI outside GS1's, as EPCIS allows)."""
        return self._private("voc", word)

    def party(self, party: str) -> str:
        if party.startswith(("urn:", "https://", "http://")):
            return party
        return self._private("party", party)

    def device(self, device_id: str) -> str:
        if device_id.startswith(("urn:", "https://", "http://")):
            return device_id
        return "/".join([self.base, "device", *(quote(p, safe="") for p in device_id.split("/"))])


def _time(ms: int) -> str:
    """Epoch ms as EPCIS writes it here: UTC, milliseconds, ``Z``."""
    at = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=ms)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _moves(stays: Iterable[Stay]) -> list[_Move]:
    """What each recorded event did to each unit.  A pallet or case: its stay's place.  A counted lot:
    per event, the places whose quantity the event raised, by how much (the stays it began less those it
    ended there), since custody re-opens a place with its new total and re-opens where it took from
    with what is left."""
    moves: list[_Move] = []
    changes: dict[tuple[str, Event], dict[tuple[str | None, str | None], int]] = {}
    units: dict[str, Unit] = {}
    for stay in stays:
        if not stay.unit.counted:
            moves.append(_Move(stay.began_by, stay.unit, 1, stay.location, stay.party))
            continue
        units[stay.unit.key] = stay.unit
        place = (stay.location, stay.party)
        began = changes.setdefault((stay.unit.key, stay.began_by), {})
        began[place] = began.get(place, 0) + stay.quantity
        if stay.ended_by is not None:
            ended = changes.setdefault((stay.unit.key, stay.ended_by), {})
            ended[place] = ended.get(place, 0) - stay.quantity
    for (key, event), by_place in changes.items():
        for (location, party), added in by_place.items():
            if added > 0:
                moves.append(_Move(event, units[key], added, location, party))
    return moves


def _passes(moves: list[_Move]) -> list[list[_Move]]:
    """The moves grouped into passes (module docstring), in a fixed order."""
    ordered = sorted(moves, key=lambda m: (m.group, m.event.time, m.unit.key))
    found: list[list[_Move]] = []
    for move in ordered:
        last = found[-1][-1] if found else None
        near = last is not None and move.event.time - last.event.time <= PASS_WINDOW_MS
        if last is not None and near and last.group == move.group:
            found[-1].append(move)
        else:
            found.append([move])
    return found


def _what_moved(moves: Iterable[_Move], names: _Names) -> dict[str, Any]:
    """``epcList`` (pallets and cases) and ``quantityList`` (counted lots), sorted; an empty
    ``epcList`` when nothing of either (as SensorDataExample3: the conditions of a place)."""
    epcs = sorted({names.unit(m.unit) for m in moves if not m.unit.counted})
    counted: dict[str, int] = {}
    for move in moves:
        if move.unit.counted:
            epc_class = names.lot_class(move.unit)
            counted[epc_class] = counted.get(epc_class, 0) + move.quantity
    out: dict[str, Any] = {}
    if epcs or not counted:
        out["epcList"] = epcs
    if counted:
        out["quantityList"] = [{"epcClass": c, "quantity": counted[c]} for c in sorted(counted)]
    return out


def _transactions(event: Event, names: _Names) -> list[dict[str, str]]:
    """Our document, then the number printed on it, each typed (the hash generator cannot read an
    untyped one, though EPCIS allows it): CBV's word where it has one, else our own (module docstring)."""
    if event.document is None:
        return []
    kind = event.document_kind or ""
    ours = {"receiving": "recadv", "dispatch": "desadv"}.get(kind) or names.vocabulary(f"BTT-{kind}")
    found = [{"type": ours, "bizTransaction": names.document(event.document)}]
    if event.reference:
        theirs = "desadv" if kind == "receiving" else names.vocabulary("BTT-reference")
        found.append({"type": theirs, "bizTransaction": names.reference(event.reference)})
    return found


def _pass_events(moves: list[_Move], names: _Names) -> list[dict[str, Any]]:
    """The ObjectEvent of one pass, and the AggregationEvent of its pallet when it says one."""
    first = moves[0]
    event, site = first.event, first.event.site
    what = event.what
    door = names.place(site, event.door) if event.door else None
    shape: dict[str, Any] = {"type": "ObjectEvent", "eventTime": _time(event.time),
                             "eventTimeZoneOffset": _OFFSET, **_what_moved(moves, names),
                             "action": "OBSERVE"}  # fmt: skip
    transactions = _transactions(event, names)
    if what in _INBOUND:
        shape |= {"bizStep": "receiving", "disposition": "in_progress"}
    elif what == "put-away":
        shape |= {"bizStep": "storing"}
    else:
        shape |= {"bizStep": "shipping", "disposition": "in_transit"}
    read_point = door or (names.place(site, first.location) if first.location else None)
    if read_point is not None:
        shape["readPoint"] = {"id": read_point}
    if first.location is not None:
        shape["bizLocation"] = {"id": names.place(site, first.location)}
    if transactions:
        shape["bizTransactionList"] = transactions
    party = first.party
    if party is not None and party != f"{event.document_kind} {event.reference}":
        kind = "owning_party" if what == "dispatch" else "possessing_party"
        shape["destinationList"] = [{"type": kind, "destination": names.party(party)}]
    events = [shape]
    pallets = {m.unit.sscc for m in moves if m.unit.sscc is not None}
    cases = sorted({names.unit(m.unit) for m in moves if m.unit.serial is not None and m.unit.sscc is None})
    if what in _INBOUND and len(pallets) == 1 and cases:
        aggregation = {"type": "AggregationEvent", "eventTime": shape["eventTime"],
                       "eventTimeZoneOffset": _OFFSET, "parentID": f"{_DIGITAL_LINK}/00/{pallets.pop()}",
                       "childEPCs": cases, "action": "OBSERVE"}  # fmt: skip
        for key in ("bizStep", "disposition", "readPoint", "bizLocation", "bizTransactionList"):
            if key in shape:
                aggregation[key] = copy.deepcopy(shape[key])
        events.append(aggregation)
    return events


def _number(value: float | None, what: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{what} is {value}: sensor figures must be finite numbers or None")
    return value


def _sensor_element(
    figures: SensorFigures, start: int, end: int, names: _Names, raw_url: RawUrl | None
) -> dict[str, Any] | None:
    measurement = _MEASUREMENT.get(figures.quantity)
    if measurement is None:
        return None
    metadata: dict[str, Any] = {"startTime": _time(start), "endTime": _time(end),
                                "deviceID": names.device(figures.device_id)}  # fmt: skip
    if raw_url is not None:
        metadata["rawData"] = raw_url(figures.device_id, start, end)
    report: dict[str, Any] = {"type": measurement}
    if figures.count <= 0:
        report |= {"exception": "ERROR_CONDITION", "stringValue": figures.note or "no readings"}
    else:
        for key, value in (("minValue", figures.min), ("maxValue", figures.max), ("meanValue", figures.mean)):
            checked = _number(value, f"{key} of {figures.device_id} ({figures.quantity})")
            if checked is not None:
                report[key] = checked
        if not _UOM.fullmatch(figures.unit):
            raise ValueError(
                f"unit {figures.unit!r} of {figures.device_id} is no UN/CEFACT rec 20 code (CEL, P1)"
            )
        report["uom"] = figures.unit
    return {"sensorMetadata": metadata, "sensorReport": [report]}


def _there(stays: Sequence[Stay], segment: SegmentSensors, end: int) -> list[_Move]:
    """The lot's units staying in the segment's room during it, as moves (a counted lot: the most it
    held there at once, its stays in one place never overlapping each other)."""
    found: dict[str, _Move] = {}
    for stay in stays:
        if (stay.site, stay.location) != (segment.site, segment.location):
            continue
        if stay.start >= end or (stay.end is not None and stay.end <= segment.start_ms):
            continue
        held = found.get(stay.unit.key)
        if held is None or stay.quantity > held.quantity:
            found[stay.unit.key] = _Move(stay.began_by, stay.unit, stay.quantity, stay.location, None)
    return [found[key] for key in sorted(found)]


def _sensor_event(
    segment: SegmentSensors, stays: Sequence[Stay], created: int, names: _Names, raw_url: RawUrl | None
) -> dict[str, Any]:
    end = segment.end_ms if segment.end_ms is not None else created
    place = names.place(segment.site, segment.location)
    made = (_sensor_element(f, segment.start_ms, end, names, raw_url) for f in segment.sensors)
    elements = [e for e in made if e is not None]
    if not elements:  # no sensor, or none EPCIS can name: the segment was not monitored, and says so
        window = {"startTime": _time(segment.start_ms), "endTime": _time(end)}
        unwatched = {"type": "Temperature", "exception": "ERROR_CONDITION", "stringValue": "not monitored"}
        elements = [{"sensorMetadata": window, "sensorReport": [unwatched]}]
    shape: dict[str, Any] = {"type": "ObjectEvent", "eventTime": _time(end), "eventTimeZoneOffset": _OFFSET,
                             **_what_moved(_there(stays, segment, end), names), "action": "OBSERVE",
                             "bizStep": "sensor_reporting", "readPoint": {"id": place},
                             "bizLocation": {"id": place}}  # fmt: skip
    shape["sensorElementList"] = sorted(elements, key=rfc8785.dumps)
    return shape


def event_ids(events: Sequence[dict[str, Any]]) -> list[str]:
    """The CBV 2.0 event hash of each event (``ni:///sha-256;…?ver=CBV2.0``), in order, computed by
    ``epcis-event-hash-generator`` on an in-memory document (it needs no file: its JSON reader takes a
    dict; it is handed a copy, since it rewrites values in place).  Any ``eventID`` already there is not
    part of the hash (the algorithm drops it)."""
    if not events:
        return []
    from epcis_event_hash_generator import hash_generator, json_to_py

    body = {"eventList": copy.deepcopy(list(events))}
    document = {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
                "creationDate": _time(0), "epcisBody": body}  # fmt: skip
    parsed = json_to_py.event_list_from_epcis_document_json(document)
    found: list[str] = hash_generator.epcis_hashes_from_events(parsed)
    if len(found) != len(events):  # the library logs and skips an event it cannot read
        raise ValueError(f"the event hash generator read {len(found)} of {len(events)} events")
    return found


def lot_epcis(
    custody: LotCustody,
    segments: Sequence[SegmentSensors] = (),
    *,
    created_ms: int,
    base_uri: str = DEFAULT_BASE,
    raw_url: RawUrl | None = None,
) -> dict[str, Any]:
    """The lot's history as an ``EPCISDocument`` (module docstring): the custody events, the pallets'
    aggregations and one sensor-reporting event per segment, each with its event hash as ``eventID``,
    sorted by time then id.  ``created_ms``: the document's creationDate (epoch ms, the caller's clock);
    ``raw_url``: when given, each sensor's ``rawData`` link.  A lot with no custody and no segments gives
    a valid document with an empty event list.  ValueError, naming the sensor, for a figure that is no
    finite number or a unit that is no UN/CEFACT code."""
    names = _Names(base_uri, custody.product, custody.gtin)
    events: list[dict[str, Any]] = []
    for moves in _passes(_moves(custody.stays)):
        events.extend(_pass_events(moves, names))
    events.extend(_sensor_event(s, custody.stays, created_ms, names, raw_url) for s in segments)
    ids = event_ids(events)
    by_id = {i: {"eventID": i, **e} for i, e in zip(ids, events, strict=True)}  # the same event given twice
    stamped = sorted(by_id.values(), key=lambda e: (e["eventTime"], e["eventID"]))  # is one event
    return {"@context": [CONTEXT], "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": _time(created_ms), "epcisBody": {"eventList": stamped}}  # fmt: skip


def epcis_json(document: dict[str, Any]) -> bytes:
    """The document's canonical bytes (RFC 8785: sorted keys, no spaces, UTF-8), for the API and for
    hashing a report: the same document always gives the same bytes."""
    return rfc8785.dumps(document)
