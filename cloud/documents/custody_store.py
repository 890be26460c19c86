"""Custody's database edge: a lot's or a unit's custody chain and stock on hand, read from the stored
bindings and folded by the ``custody`` module's rules, for the JSON API and the pages alike (one reader).

Where the chain comes from (DESIGN.md principle 9, derived, never kept): the ``bindings`` rows, which
binding has already identified against the catalog and tied to documents (``binding_store.py``).  A
row bound to a document is a receipt, transfer or dispatch (``custody.steps_from_bindings``, with the
site's dock doors and the location inside each as the door's version in force at the row's time said,
so correcting a door later never moves what it received before); a scan bound to none but made by a
scanner placed at a location (``bindings.location``) is a put-away (``custody.put_away``); anything
else moves nothing.  Recomputing gives the same chain, so nothing here is written.

What a lot's chain reads, and why it is fast (issue 15's goal: a lot of 10,000 units among a million
movements in under 200 ms on PostgreSQL): only

* the rows naming the lot (``ix_bindings_lot``: product, lot), its cases' put-away scans included,
  since a scanned case's lot is identified from its label or its serial;
* the rows of its pallets (``ix_bindings_sscc``).  A pallet is the lot's when a row of it names the lot
  (a GS1 label with an SSCC and the lot) or when a line of a document naming the product and lot
  lists its SSCC in the document's latest version (``ix_document_lines_product``).  An SSCC tag carries
  no product, so the document is usually what says what is on a pallet;
* the latest version of each document those rows are bound to (one read by id), and the sites' dock
  doors.

and, in Python, as little as a chain needs: the pure rules are asked once per document, door,
direction and inside location (all a step depends on) rather than once per row; pallets and cases are
folded over plain tuples by :func:`_fold_units`, the fold of ``custody.intervals`` for one physical
unit, which a property test holds equal to it (``tests/test_custody_store.py``); lots held by quantity
go through ``custody.intervals`` itself (its FIFO is not worth copying); the cyclic garbage collector
is paused while the objects are made.  Measured by ``python -m bench.binding --parts custody`` on
PostgreSQL 15 with a million bindings and a lot of 10,000 cases (23,000 rows: receipt, put-away,
dispatch) on the shared 2-CPU development machine, whose speed varies up to threefold from day to day:
a median of 143-175 ms a call on a fast day (fetching the rows into Python is half of it), 250-380 ms
on a slow one.

A row of a case whose lot could not be identified (a serial in no range of the catalog) is not the
lot's: :func:`unit_custody` of that case (by product and serial, ``ix_bindings_serial``) shows it.

Units and sites: a pallet or a case is one thing, in one place at a time, whatever site it is at (a
transfer out of one site and into another is one chain); a lot counted by quantity is folded per site,
so a dispatch at one site never takes from what another site holds.  Location names are a site's, so
every stay names its site.

Unit ids (:func:`parse_unit_id`, for the API's paths): an SSCC as its 18 digits; a serialised case as
its SGTIN pure identity URI (``urn:epc:id:sgtin:4006381.033393.1000``), as ``{gtin}.{serial}`` (any
GS1 length of GTIN, ``04006381333931.1000``) or as ``{product}~{serial}`` with the catalog's product id
(HIBC and MA products have no GTIN; ``~`` is in no product id and needs no escaping in a URL).  The
serial is percent-decoded once, as in an EPC URI: a serial holding ``/`` or ``%`` is sent as ``%2F`` or
``%25`` (in a URL path, ``%252F`` and ``%2525``).
"""

from __future__ import annotations

import bisect
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from sqlalchemy import Connection, Table, select

from coldgate.cloud.catalog import lots as catalog_lots
from coldgate.cloud.catalog import products as catalog_products
from coldgate.cloud.catalog.locations import door_insides
from coldgate.cloud.catalog.serials import lot_of
from coldgate.cloud.db.models import BindingRow, DocumentLine, DocumentVersion
from coldgate.cloud.documents.binding import Binding, ItemKey, Observed
from coldgate.cloud.documents.collector import collector_paused
from coldgate.cloud.documents.custody import (
    EITHER_WAY,
    Step,
    Unit,
    held_here,
    intervals,
    put_away,
    steps_from_bindings,
    unit_of,
)
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified
from coldgate.cloud.documents.model import Document, DocumentKind, DocumentState
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.contract.ids import gs1_check_digit_ok, gs1_key_of

__all__ = [
    "Event", "LotCustody", "Stay", "StockLine", "UnitCustody", "lot_custody", "parse_unit_id",
    "resolve_product", "stock_at", "unit_custody",
]  # fmt: skip

_bindings: Table = BindingRow.__table__  # type: ignore[assignment]
_versions: Table = DocumentVersion.__table__  # type: ignore[assignment]
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]
#: Ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
_CHUNK: Final = 900
_GTIN_LENGTHS: Final = (8, 12, 13, 14)
_SGTIN_URI = re.compile(r"urn:epc:id:sgtin:([0-9]+)\.([0-9]+)\.(.+)")


class _Row(NamedTuple):
    """A bindings row as custody reads it: a plain tuple, whose fields read ten times faster than a
    database row's (a lot's chain reads tens of thousands)."""

    gateway: str
    stream: str
    seq: int
    kind: str
    site: str
    door: str | None
    direction: str
    time: int
    document: str | None
    product: str | None
    lot: str | None
    serial: str | None
    sscc: str | None
    quantity: int
    location: str | None


_COLUMNS = _Row._fields


class Event(NamedTuple):
    """What began or ended a stay: ``what`` (receipt, put-away, transfer in, transfer out, dispatch),
    when, the item that recorded it (a movement or scan, at ``door`` of ``site`` or by a scanner placed
    elsewhere), and the document it was bound to (None for a put-away scan)."""

    what: str
    time: int
    gateway: str
    stream: str
    seq: int
    item_kind: str
    site: str
    door: str | None
    document: str | None = None
    document_kind: str | None = None
    reference: str | None = None

    @property
    def item(self) -> ItemKey:
        """The recording item's key (made when asked: a lot's chain has tens of thousands of events)."""
        return ItemKey(self.gateway, self.stream, self.seq)


class Stay(NamedTuple):
    """``quantity`` of ``unit`` at ``location`` of ``site`` (or, out of our hands, with ``party``) from
    ``start`` to ``end`` (epoch ms; None: still there), begun by ``began_by``, ended by ``ended_by``."""

    unit: Unit
    quantity: int
    site: str
    location: str | None
    party: str | None
    start: int
    end: int | None
    began_by: Event
    ended_by: Event | None


class StockLine(NamedTuple):
    """What of one lot a location of a site holds: pallets, serialised cases, and a quantity counted
    from unserialised labels."""

    site: str
    location: str
    pallets: int = 0
    cases: int = 0
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class LotCustody:
    """Every stay of every unit of the lot (by unit, then start), the lot as the catalog has it
    (``status`` and ``expiry`` None when the catalog has no such lot but labels named it), the pallets
    counted as the lot's, and the stock on hand now (the stays still open in our own locations)."""

    product: str
    lot: str
    gtin: str | None
    status: str | None
    expiry: str | None
    pallets: tuple[str, ...]
    stays: tuple[Stay, ...]
    stock: tuple[StockLine, ...] = field(default=())

    @property
    def units(self) -> int:
        """How many distinct units (pallets, cases, and the lot's counted quantity as one) have a chain."""
        return len({s.unit.key for s in self.stays})


@dataclass(frozen=True, slots=True)
class UnitCustody:
    """One pallet's or case's chain, as asked for (``asked``), with its product and lot as identified
    and that lot's status in the catalog."""

    asked: str
    unit: Unit
    gtin: str | None
    status: str | None
    stays: tuple[Stay, ...]


def resolve_product(conn: Connection, given: str, field_name: str = "gtin") -> tuple[str, str | None]:
    """(catalog product id, its GTIN-14) from a GTIN (8, 12, 13 or 14 digits) or a catalog product id:
    a string of digits of a GTIN's length is taken as a GTIN.  The product in force wins over a retired
    one that carried the same GTIN.  NotFound (``field_name``) when there is no such product."""
    if given.isdigit() and len(given) in _GTIN_LENGTHS:
        gtin = catalog_products.gtin14(given, field_name)
        found = sorted(catalog_products.products(conn, retired=True, gtin=gtin), key=lambda p: p["retired"])
        if not found:
            raise NotFound(field_name, f"no product with GTIN {gtin} in the catalog")
        return found[0]["id"], gtin
    if not given or given.isdigit():
        raise UserInputError(
            field_name, f"{given!r} is neither a GTIN (8, 12, 13 or 14 digits) nor a product id"
        )
    try:
        found_product = catalog_products.product(conn, given)
    except NotFound:
        raise NotFound(field_name, f"no product {given!r} in the catalog (nor is it a GTIN)") from None
    return given, found_product["gtin"]


def parse_unit_id(conn: Connection, unit_id: str, field_name: str = "unit_id") -> tuple[str, str, str | None]:
    """``("sscc", sscc, None)`` or ``("serial", product, serial)`` from a unit id of the module's forms;
    422 (``field_name``) naming what is wrong, NotFound when its product is not in the catalog."""
    text = unit_id.strip()
    if text.isdigit():
        if len(text) != 18:
            raise UserInputError(field_name, f"{text!r}: an SSCC has 18 digits, this has {len(text)}")
        if not gs1_check_digit_ok(text):
            raise UserInputError(field_name, f"the check digit of SSCC {text} is wrong")
        return "sscc", text, None
    uri = _SGTIN_URI.fullmatch(text)
    if uri is not None:
        company, item, serial = uri.groups()
        if len(company) + len(item) != 13 or not item:
            raise UserInputError(field_name, f"{text!r}: company prefix and item reference must be 13 digits")
        product, _ = resolve_product(conn, gs1_key_of(company, item), field_name)
        return "serial", product, _serial(serial, field_name)
    if text.startswith("urn:"):
        raise UserInputError(
            field_name, f"{text!r}: only SGTIN pure identity URIs (urn:epc:id:sgtin:) are units"
        )
    for mark in (".", "~"):
        head, sep, serial = text.partition(mark)
        if not sep or (mark == "." and not head.isdigit()):
            continue
        if not head or not serial:
            raise UserInputError(
                field_name, f"{text!r}: a product and a serial are both needed around {mark!r}"
            )
        product, _ = resolve_product(conn, head, field_name)
        return "serial", product, _serial(serial, field_name)
    raise UserInputError(
        field_name, f"{text!r} is none of: an SSCC (18 digits), urn:epc:id:sgtin:..., {{gtin}}.{{serial}}, "
        "{product}~{serial}",
    )  # fmt: skip


def _serial(raw: str, field_name: str) -> str:
    serial = urllib.parse.unquote(raw)
    if not serial or len(serial) > 64:
        raise UserInputError(field_name, f"serial {serial!r} must be 1-64 characters")
    return serial


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _rows(conn: Connection, *where: Any) -> list[_Row]:
    """The rows, from the driver's cursor as it gives them: text and integers need none of SQLAlchemy's
    conversions, and building its row objects cost a third of reading a lot of 10,000 cases."""
    return _rows_of(conn, select(*_row_columns()).where(*where))


def _row_columns() -> list[Any]:
    """The ``bindings`` columns a :class:`_Row` holds, in its order (for a caller's own select)."""
    return [_bindings.c[name] for name in _COLUMNS]


def _rows_of(conn: Connection, query: Any) -> list[_Row]:
    """:func:`_rows` of any query selecting :func:`_row_columns` (a union, a join): same fast fetch."""
    result = conn.execute(query)
    try:
        return list(map(_Row._make, result.cursor.fetchall()))
    finally:
        result.close()


def _documents(conn: Connection, ids: Iterable[str]) -> dict[str, tuple[Document, int]]:
    """The latest version of each document, as the pure steps take it (no lines: custody needs none),
    with its version number."""
    found: dict[str, tuple[Document, int]] = {}
    v = _versions.c
    wanted = sorted(set(ids))
    for chunk in _chunks(wanted):
        query = select(v.id, v.version, v.kind, v.site, v.reference, v.party, v.door).where(v.id.in_(chunk))
        for row in conn.execute(query):
            if row.id in found and found[row.id][1] > row.version:
                continue
            document = Document(id=row.id, kind=DocumentKind(row.kind), site=row.site,
                                state=DocumentState.IN_PROGRESS, reference=row.reference, lines=(),
                                door=row.door, party=row.party)  # fmt: skip
            found[row.id] = (document, row.version)
    return found


#: A site's dock doors: for each, (epoch ms each version came in force, ascending; the location inside
#: in that version), from ``locations.door_insides``.
_Doors = dict[str, list[tuple[int, str | None]]]


def _inside_at(doors: _Doors, door: str | None, time: int) -> str | None:
    """The location inside ``door`` as the door was at ``time``: a movement is judged by the door as it
    was then, so a door corrected later does not move what it received before.  An item older than the
    door's first version takes that version (the door was surely there: the item passed it)."""
    versions = doors.get(door) if door is not None else None
    if not versions:
        return None
    if len(versions) == 1 or time < versions[1][0]:
        return versions[0][1]
    return versions[bisect.bisect_right(versions, time, key=_since) - 1][1]


def _since(version: tuple[int, str | None]) -> int:
    return version[0]


_PROBE_KEY: Final = ItemKey("", "", 0)
#: A stand-in for what an item named, when asking the pure rules what a row's document, door and
#: direction make of a unit: any unit will do, since the rules decide from those alone.
_PROBE_UNIT: Final = Identified(label="", product="?", lot="?")


_Shape = tuple[Step, str | None, str | None]


def _shape_of(row: _Row, documents: dict[str, Document], inside: str | None) -> _Shape | None:
    """What the pure rules make of a row's document, door and direction, the location inside the door
    being ``inside`` (or of a put-away scan's location), with the document's kind and reference; None
    when that moves nothing."""
    if row.document is None:
        assert row.location is not None
        return put_away(_PROBE_UNIT, row.location, 0, _PROBE_KEY), None, None  # type: ignore[return-value]
    seen = Observed(_PROBE_KEY, row.kind, row.door or "", row.direction, 0, _PROBE_UNIT)  # type: ignore[arg-type]
    index = CatalogIndex(door_locations={row.door: inside} if row.door and inside else {})
    made = steps_from_bindings([Binding(seen, row.document, None, "bound", "")], documents, index)
    header = documents.get(row.document)
    if not made or header is None:
        return None
    return made[0], header.kind.value, header.reference


#: One move of a pallet or case, as a plain tuple that sorts by unit, time and item (the order the pure
#: ``custody.intervals`` folds in: time, then the item's key): unit key, time, gateway, stream, seq, the
#: unit, where it went (location, party) and the event.
_Move = tuple[str, int, str, str, int, Unit, str | None, str | None, Event]


def _site_moves(
    rows: Sequence[_Row], documents: dict[str, tuple[Document, int]], doors: _Doors,
    moves: list[_Move], counted: list[Step], events: dict[int, Event],
) -> None:  # fmt: skip
    """What one site's rows do.  What a row's step is (receipt into the door's inside as the door was
    then, dispatch to the party, ...) is the pure rules' (``steps_from_bindings``, ``put_away``), asked
    once per document, door, direction and inside location, which are all they decide from; each row
    then gives its own time, unit, quantity and item.  Pallets and cases go to ``moves`` (folded by
    :func:`_fold_units`); a lot held by quantity to ``counted`` as steps for the pure ``intervals``,
    with each step's event in ``events`` by the id of its item key (the steps keep the keys alive)."""
    plain = {key: found for key, (found, _) in documents.items()}
    shapes: dict[tuple[Any, ...], _Shape | None] = {}
    units: dict[tuple[Any, ...], tuple[Unit, bool] | None] = {}
    # The hot loop of a lot's chain (a row at a time, tens of thousands): fields unpacked into locals,
    # each shape and unit looked up once per row.
    for row in rows:
        gateway, stream, seq, kind, site, door, direction, time, document, *named, quantity, location = row
        if document is not None:
            shape: tuple[Any, ...] = (document, door, direction, _inside_at(doors, door, time))
        elif location is not None and kind == "scan":
            shape = (None, location)
        else:
            continue  # unbound at a door: moves nothing until someone assigns it
        if shape not in shapes:
            shapes[shape] = _shape_of(row, plain, shape[-1] if document is not None else None)
        found = shapes[shape]
        if found is None:
            continue
        unit_key = tuple(named)  # product, lot, serial, sscc
        held = units[unit_key] if unit_key in units else units.setdefault(unit_key, _unit_of(*named))
        if held is None:
            continue
        proto, document_kind, reference = found
        unit, by_quantity = held
        event = Event(proto.what, time, gateway, stream, seq, kind, site, door, proto.document, document_kind,
                      reference)  # fmt: skip
        if by_quantity:
            item = ItemKey(gateway, stream, seq)
            where = (proto.location, proto.party)
            counted.append(Step(time, unit, quantity, *where, proto.what, item, proto.document))
            events[id(item)] = event
        else:
            moves.append((unit.key, time, gateway, stream, seq, unit, proto.location, proto.party, event))


class _Named(NamedTuple):
    """What a row names, as ``custody.unit_of`` reads it (an ``Identified`` has these fields and more;
    this is a tenth of the cost to make, once per unit of a lot of 10,000)."""

    product: str | None
    lot: str | None
    serial: str | None
    sscc: str | None


def _unit_of(
    product: str | None, lot: str | None, serial: str | None, sscc: str | None
) -> tuple[Unit, bool] | None:
    """The unit a row names (``custody.unit_of``) and whether it is a lot held by quantity."""
    unit = unit_of(_Named(product, lot, serial, sscc))  # type: ignore[arg-type]
    return None if unit is None else (unit, unit.counted)


def _fold_units(moves: list[_Move]) -> list[Stay]:
    """Pallets' and cases' stays, by unit then start: the fold of ``custody.intervals`` for one physical
    unit (one place at a time; a move to where it already is records nothing), over plain tuples, since
    a lot of 10,000 cases makes some 30,000 moves.  ``tests/test_custody_store.py`` holds the two equal."""
    stays: list[Stay] = []
    moves.sort()  # by unit, time, item: never further, an item's key being unique
    held: _Move | None = None
    for move in moves:
        if move[8].what == EITHER_WAY:
            same_unit = held is not None and held[0] == move[0]
            if same_unit and held[8].document == move[8].document:  # type: ignore[index]
                continue  # scanned again on the transfer that moved it last (the pure rule's)
            ours = same_unit and held_here(held[6], held[8].site, move[8].site)  # type: ignore[index]
            move = _resolved(move, ours)
        if held is not None and held[0] == move[0]:
            if (held[6], held[7]) == (move[6], move[7]):
                continue
            stays.append(Stay(held[5], 1, held[8].site, held[6], held[7], held[1], move[1], held[8], move[8]))
        elif held is not None:
            stays.append(Stay(held[5], 1, held[8].site, held[6], held[7], held[1], None, held[8], None))
        held = move
    if held is not None:
        stays.append(Stay(held[5], 1, held[8].site, held[6], held[7], held[1], None, held[8], None))
    return stays


def _resolved(move: _Move, leaving: bool) -> _Move:
    """A transfer scanned at a door as the pure ``Step.resolved`` decides it: out to the destination when
    the unit was in our hands at that site, else in."""
    event = move[8]
    if leaving:
        return (*move[:6], None, move[7], event._replace(what="transfer out"))  # type: ignore[return-value]
    return (*move[:6], move[6], None, event._replace(what="transfer in"))  # type: ignore[return-value]


def _as_resolved(event: Event, step: Step) -> Event:
    """A counted lot's event as its step was decided (a transfer scanned at a door: in or out)."""
    return event._replace(what=step.what) if event.what == EITHER_WAY else event


def _chain(conn: Connection, rows: Sequence[_Row]) -> list[Stay]:
    """The stays the rows make, each with its site and the events that began and ended it: pallets and
    cases by unit, then lots held by quantity, folded site by site (a dispatch at one site never takes
    from what another holds)."""
    documents = _documents(conn, {r.document for r in rows if r.document is not None})
    return _chain_with(rows, documents, door_insides(conn, {r.site for r in rows}))


def _chain_with(
    rows: Sequence[_Row], documents: dict[str, tuple[Document, int]], doors: dict[str, _Doors]
) -> list[Stay]:
    """:func:`_chain` with the rows' documents (:func:`_documents`) and their sites' doors
    (``door_insides``) already read: a caller folding several sets of rows reads them once for all."""
    by_site: dict[str, list[_Row]] = {}
    for row in rows:
        by_site.setdefault(row.site, []).append(row)
    moves: list[_Move] = []
    counted: dict[str, list[Step]] = {}
    events: dict[int, Event] = {}
    for site, site_rows in by_site.items():
        _site_moves(site_rows, documents, doors[site], moves, counted.setdefault(site, []), events)
    stays = _fold_units(moves)
    for site in sorted(counted):
        for i in intervals(counted[site]):
            began = _as_resolved(events[id(i.began_by.source)], i.began_by)
            ended = None if i.ended_by is None else _as_resolved(events[id(i.ended_by.source)], i.ended_by)
            stays.append(Stay(i.unit, i.quantity, site, i.location, i.party, i.start, i.end, began, ended))
    return stays


def stock_at(stays: Iterable[Stay], at: int | None = None) -> tuple[StockLine, ...]:
    """Stock on hand per site and location at ``at`` (epoch ms; None: now, the stays still open), from
    the stays in our own locations (a stay with a party is no longer ours), by site and location."""
    held: dict[tuple[str, str], list[int]] = {}
    for stay in stays:
        if stay.location is None:
            continue
        if at is None:
            if stay.end is not None:
                continue
        elif stay.start > at or (stay.end is not None and stay.end <= at):
            continue
        counts = held.setdefault((stay.site, stay.location), [0, 0, 0])
        if stay.unit.sscc is not None:
            counts[0] += 1
        elif stay.unit.counted:
            counts[2] += stay.quantity
        else:
            counts[1] += 1
    return tuple(StockLine(site, where, *held[(site, where)]) for site, where in sorted(held))


def _lot_record(conn: Connection, product: str, lot: str) -> dict[str, Any] | None:
    try:
        return catalog_lots.lot(conn, product, lot)
    except NotFound:
        return None


def lot_custody(conn: Connection, product: str, lot: str) -> LotCustody:
    """The custody chain of every unit of the lot and its stock on hand now.  ``product``: a GTIN (8, 12,
    13 or 14 digits) or a catalog product id; ``lot``: the lot number.  NotFound (``gtin`` or ``lot``)
    when the product is not in the catalog, or the lot is neither in the catalog nor named by any item;
    UserInputError (``gtin``) for a malformed GTIN."""
    product_id, gtin = resolve_product(conn, product)
    with collector_paused():
        return _lot_custody(conn, product_id, gtin, lot)


def _lot_custody(conn: Connection, product_id: str, gtin: str | None, lot: str) -> LotCustody:
    b = _bindings.c
    rows = _rows(conn, b.product == product_id, b.lot == lot)
    record = _lot_record(conn, product_id, lot)
    if record is None and not rows:
        raise NotFound(
            "lot", f"no lot {lot!r} of product {product_id!r} in the catalog, and no item named it"
        )
    pallets = {r.sscc for r in rows if r.sscc is not None}
    listed = conn.execute(
        select(_lines.c.document, _lines.c.version, _lines.c.ssccs)
        .where(_lines.c.product == product_id, _lines.c.lot == lot)
    ).all()  # fmt: skip
    if listed:
        latest = {
            key: version for key, (_, version) in _documents(conn, {x.document for x in listed}).items()
        }
        pallets |= {s for x in listed if latest.get(x.document) == x.version for s in (x.ssccs or ())}
    for chunk in _chunks(sorted(pallets)):
        rows += [r for r in _rows(conn, b.sscc.in_(chunk)) if (r.product, r.lot) != (product_id, lot)]
    stays = tuple(_chain(conn, rows))
    status, expiry = (record["status"], record["expiry"]) if record else (None, None)
    return LotCustody(product_id, lot, gtin, status, expiry, tuple(sorted(pallets)), stays, stock_at(stays))


def unit_custody(conn: Connection, unit_id: str) -> UnitCustody:
    """One pallet's or serialised case's chain, from every row naming it (whatever lot the row names).
    ``unit_id`` in one of the module's forms.  A case the catalog knows (a serial of one of its lots)
    but nobody has received yet has an empty chain: "never here" is an answer a recall needs.
    UserInputError (``unit_id``) when malformed; NotFound when its product is not in the catalog, or
    nothing was recorded of a unit the catalog does not know either."""
    scheme, first, serial = parse_unit_id(conn, unit_id)
    b = _bindings.c
    if scheme == "sscc":
        rows = _rows(conn, b.sscc == first)
        what, known_lot = f"pallet {first}", None
    else:
        assert serial is not None
        rows = _rows(conn, b.product == first, b.serial == serial, b.sscc.is_(None))
        what, known_lot = f"serial {serial!r} of product {first!r}", lot_of(conn, first, serial)
    with collector_paused():
        stays = tuple(s for s in _chain(conn, rows) if not s.unit.counted)
    if not stays and known_lot is None:
        why = "was ever seen" if not rows else "was ever received, moved or dispatched (only unbound items)"
        raise NotFound("unit_id", f"no movement or scan of {what} {why}, and the catalog has no such unit")
    if scheme == "sscc":
        named = Unit(f"sscc:{first}", None, None, sscc=first)
    else:
        named = Unit(f"serial:{first}/{serial}", first, known_lot, serial=serial)
    product = named.product or next((s.unit.product for s in stays if s.unit.product), None)
    lot = named.lot or next((s.unit.lot for s in stays if s.unit.lot), None)
    record = _lot_record(conn, product, lot) if product and lot else None
    gtin = None
    if product is not None:
        try:
            gtin = catalog_products.product(conn, product)["gtin"]
        except NotFound:
            gtin = None
    status = record["status"] if record else None
    return UnitCustody(unit_id, Unit(named.key, product, lot, named.serial, named.sscc), gtin, status, stays)
