"""What a location held during an interval: the affected stock a QA case quarantines when a room had an
excursion (issue 16: "the affected lots and units, derived from the custody chain: what was in that
location during the excursion interval").

Why it is the custody chain and not a stock table: stock is derived (DESIGN.md principle 9), so the
answer must be the one ``lot_custody`` and ``unit_custody`` give, stay for stay, or a case would
quarantine a lot whose own custody page says it was never in the room (or miss one it says was).  So
the rows are folded by ``custody_store``'s own machinery (``_chain_with``: the pure rules asked once per
document, door and inside, the units' fold, ``custody.intervals`` for lots held by quantity), over
exactly the rows ``lot_custody`` would read for each unit, and only then filtered to the location and
the window.  ``tests/test_location_stock.py`` holds the two equal.

Why it is batched: a cold room holds thousands of lots, and a ``lot_custody`` call per lot is about
half a dozen round trips each (5,000 lots: some 30,000 queries).  Here one statement finds every unit
that ever entered the location before the window's end and reads all of their rows:

* a unit enters a location only by a put-away scan there (``bindings.location``, no door, no document)
  or by a row bound to a document at a dock door whose inside is, or once was, that location (a receipt,
  a transfer in, a transfer scanned at the door); everything else (a put-away elsewhere, a dispatch, a
  lot's quantity taken first-in first-out) moves out of it or among other places.  Those rows are the
  ``entering`` CTE (``ix_bindings_door``: site, door, time);
* its units' rows, as ``lot_custody`` reads them: every row of each pallet (``ix_bindings_sscc``), the
  rows of each lot counted by quantity (``ix_bindings_lot``), the rows of each serialised case
  (``ix_bindings_serial``), one ``UNION ALL``.

Then the documents those rows are bound to (one read by id, chunked), the sites' doors, and, for the
pallets found in the room, the lines of their own documents that list them.  A unit that left before the
window is read and folded too (nothing short of its chain says it left): the cost follows what ever
entered the room before the window's end, not the window.  Measured by ``python -m bench.cases`` on
PostgreSQL with 200,000 bindings, a room that held 5,000 lots during a six-hour window (29,000 rows of
the units that entered it, 1,000 lots gone before the window among them) on the shared 2-CPU
development machine: a median of 400-470 ms a call, of which 130-160 ms is fetching the rows; a
``lot_custody`` call per lot would take 11-22 s.

Exactness, and its one limit:

* a serialised case is folded with the rows naming its lot, as ``lot_custody`` does; a case whose rows
  name two lots (a mislabelled serial) is folded once per lot, each fold the one its lot's chain has;
  one whose rows name no lot (a serial in no range of the catalog) is reported with ``lot`` None,
  folded from those rows (``unit_custody`` folds all of a case's rows: the two differ only for a case
  that some labels also tie to a lot);
* a pallet is reported once per lot it is counted in, as ``lot_custody`` counts it: a row of it naming
  the lot, or a line of the latest version of a document it was bound to listing it with the lot.  A
  line of a document the pallet never passed under is not read (``document_lines.ssccs`` has no index);
  a pallet no row and none of its documents ties to a lot is still reported, with ``product`` and
  ``lot`` None, so the case shows something unknown was in the room rather than nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, and_, or_, select, tuple_, union_all

from coldgate.cloud.catalog import products as catalog_products
from coldgate.cloud.catalog.locations import door_insides
from coldgate.cloud.db.models import DocumentLine, LocationVersion
from coldgate.cloud.documents import custody_store as cs
from coldgate.cloud.documents.collector import collector_paused
from coldgate.cloud.documents.custody_store import Stay
from coldgate.cloud.identity.users import NotFound, UserInputError

__all__ = ["AffectedLine", "affected_lots", "stock_in_location"]

_bindings: Table = cs._bindings
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]
_locations: Table = LocationVersion.__table__  # type: ignore[assignment]


class AffectedLine(NamedTuple):
    """One lot, or one unit of it, that was at the location at some moment of the window.

    ``unit`` is None for a lot held by quantity, else the unit's key (``sscc:…`` with ``sscc``, or
    ``serial:product/serial`` with ``serial``).  ``quantity``: for a lot held by quantity, the most of it
    that can have been there during the window (what it held when the window began plus every arrival
    during it: a label does not say which of them left, so all were exposed); 1 for a unit.
    ``first_in`` and ``last_out``: when the unit's presence there that overlaps the window began and
    ended (epoch ms; before or after the window when it came earlier or stayed; stays back to back, as
    a counted lot's quantity changes, are one presence); ``last_out`` None: still there.  ``stays``: the
    custody stays at the location that overlap the window, as ``lot_custody`` has them (the evidence:
    which receipt, put-away or transfer began and ended each)."""

    product: str | None
    gtin: str | None
    lot: str | None
    unit: str | None
    sscc: str | None
    serial: str | None
    quantity: int
    first_in: int
    last_out: int | None
    stays: tuple[Stay, ...]


def affected_lots(lines: Iterable[AffectedLine]) -> list[tuple[str, str]]:
    """The (product, lot) pairs the lines name, sorted: what a case quarantines (a pallet no lot is known
    of names none)."""
    return sorted({(x.product, x.lot) for x in lines if x.product is not None and x.lot is not None})


def stock_in_location(
    conn: Connection, site: str, location: str, start_ms: int, end_ms: int
) -> list[AffectedLine]:
    """Every lot and unit whose custody stay was at ``location`` of ``site`` at any moment of
    [``start_ms``, ``end_ms``) (epoch ms, as the stays' times): a line per lot held by quantity, per
    serialised case and per pallet (a pallet once for each lot it is counted in), sorted by product, lot,
    unit key (None first: the lot's counted quantity) and first time in; [] when nothing was there.
    ``affected_lots`` of the lines is the lots to quarantine.  UserInputError (``start_ms``, ``end_ms``)
    when a time is not an integer or the window is empty or backwards; NotFound (``site``,
    ``location``) when the catalog has no location of such a site, or no such location at it."""
    for name, value in (("start_ms", start_ms), ("end_ms", end_ms)):
        if type(value) is not int:
            raise UserInputError(name, f"{value!r} is not a time in epoch ms (an integer)")
    if end_ms <= start_ms:
        raise UserInputError(
            "end_ms", f"the window must end after it starts: {end_ms} is not after {start_ms} (epoch ms)"
        )
    _check_place(conn, site, location)
    doors = door_insides(conn, [site])
    inside = sorted(door for door, versions in doors[site].items() if any(v[1] == location for v in versions))
    with collector_paused():  # tens of thousands of rows, stays and events, none in a cycle
        rows = cs._rows_of(conn, _units_rows(site, location, inside, end_ms))
        if not rows:
            return []
        documents = cs._documents(conn, {r.document for r in rows if r.document is not None})
        other_sites = {r.site for r in rows} - doors.keys()
        if other_sites:
            doors.update(door_insides(conn, other_sites))
        stays = [
            s
            for part in _partitions(rows)
            for s in cs._chain_with(part, documents, doors)
            if s.site == site and s.location == location
        ]
        here = [s for s in stays if s.start < end_ms and (s.end is None or s.end > start_ms)]
        pallets = sorted({s.unit.sscc for s in here if s.unit.sscc is not None})
        pallet_lots = _pallet_lots(conn, pallets, rows, documents)
        gtins = _gtins(
            conn, {s.unit.product for s in here if s.unit.product} | {p for p, _ in _flat(pallet_lots)}
        )
        return _lines_of(stays, start_ms, end_ms, pallet_lots, gtins)


def _check_place(conn: Connection, site: str, location: str) -> None:
    """NotFound naming what the catalog lacks: no location of the site at all (an unknown site), or not
    this one.  A retired location is still found: what it held before is still a question."""
    c = _locations.c
    known = {row[0] for row in conn.execute(select(c.id).where(c.site == site).distinct())}
    if not known:
        raise NotFound("site", f"no site {site!r} with any location in the catalog")
    if location not in known:
        raise NotFound("location", f"no location {location!r} at site {site!r}")


def _units_rows(site: str, location: str, inside: Sequence[str], end_ms: int) -> Any:
    """One statement: every row of every unit that entered ``location`` before ``end_ms``, as
    ``lot_custody`` reads each unit (pallets by SSCC; lots by quantity by product and lot; cases by
    product and serial), the three parts disjoint."""
    b = _bindings.c
    put_away = and_(b.door.is_(None), b.document.is_(None), b.location == location)
    ways_in = or_(put_away, and_(b.door.in_(inside), b.document.is_not(None))) if inside else put_away
    entering = (
        select(b.product, b.lot, b.serial, b.sscc)
        .where(b.site == site, b.time < end_ms, ways_in)
        .distinct()
        .cte("entering")
    )
    e = entering.c
    columns = cs._row_columns()
    pallets = select(*columns).where(b.sscc.in_(select(e.sscc).where(e.sscc.is_not(None))))
    counted = select(*columns).where(
        b.sscc.is_(None),
        b.serial.is_(None),
        tuple_(b.product, b.lot).in_(select(e.product, e.lot).where(e.sscc.is_(None), e.serial.is_(None))),
    )
    cases = select(*columns).where(
        b.sscc.is_(None),
        tuple_(b.product, b.serial).in_(
            select(e.product, e.serial).where(e.sscc.is_(None), e.serial.is_not(None))
        ),
    )
    return union_all(pallets, counted, cases)


def _partitions(rows: list[cs._Row]) -> list[list[cs._Row]]:
    """The rows in as few sets as keep every chain ``lot_custody``'s: a case whose rows name several
    lots (None among them) has each lot's rows in a set of its own, as each lot's chain reads only its
    own; everything else in the first set (nearly always all of them: one pass finds no such case)."""
    first: dict[tuple[str | None, str], str | None] = {}
    several: dict[tuple[str | None, str], list[str | None]] = {}
    for r in rows:
        if r.sscc is None and r.serial is not None:
            key = (r.product, r.serial)
            lot = first.setdefault(key, r.lot)
            if lot != r.lot:
                named = several.setdefault(key, [lot])
                if r.lot not in named:
                    named.append(r.lot)
    if not several:
        return [rows]
    parts: list[list[cs._Row]] = [[]]
    for r in rows:
        k = 0
        if r.sscc is None and r.serial is not None and (r.product, r.serial) in several:
            k = several[(r.product, r.serial)].index(r.lot)
        while len(parts) <= k:
            parts.append([])
        parts[k].append(r)
    return parts


def _pallet_lots(
    conn: Connection, pallets: Sequence[str], rows: Sequence[cs._Row], documents: dict[str, tuple[Any, int]]
) -> dict[str, list[tuple[str, str]]]:
    """Each pallet's lots as ``lot_custody`` counts a pallet its lot's: a row of it naming the lot, or a
    line of its documents' latest versions listing it with the lot."""
    wanted = set(pallets)
    found: dict[str, set[tuple[str, str]]] = {p: set() for p in pallets}
    bound: set[str] = set()
    for r in rows:
        if r.sscc in wanted:
            if r.product is not None and r.lot is not None:
                found[r.sscc].add((r.product, r.lot))
            if r.document is not None:
                bound.add(r.document)
    c = _lines.c
    for chunk in cs._chunks(sorted(bound)):
        query = select(c.document, c.version, c.product, c.lot, c.ssccs).where(c.document.in_(chunk))
        for line in conn.execute(query):
            if line.lot is None or documents[line.document][1] != line.version:
                continue
            for sscc in line.ssccs or ():
                if sscc in wanted:
                    found[sscc].add((line.product, line.lot))
    return {p: sorted(lots) for p, lots in found.items()}


def _flat(pallet_lots: dict[str, list[tuple[str, str]]]) -> Iterable[tuple[str, str]]:
    return (lot for lots in pallet_lots.values() for lot in lots)


def _gtins(conn: Connection, products: set[str]) -> dict[str, str | None]:
    """Each product's GTIN as the catalog has it in force (None: none, as HIBC and MA products)."""
    if not products:
        return {}
    return {p["id"]: p["gtin"] for p in catalog_products.products(conn, retired=True) if p["id"] in products}


def _lines_of(
    stays: Sequence[Stay], start_ms: int, end_ms: int, pallet_lots: dict[str, list[tuple[str, str]]],
    gtins: dict[str, str | None],
) -> list[AffectedLine]:  # fmt: skip
    """A line per unit (per lot for a pallet of several) present in the window, from all its stays at the
    location (those around the window say when its presence began and ended)."""
    by_unit: dict[tuple[str, str | None], list[Stay]] = {}
    for s in stays:
        by_unit.setdefault((s.unit.key, s.unit.lot if s.unit.serial is not None else None), []).append(s)
    found: list[AffectedLine] = []
    for unit_stays in by_unit.values():
        if len(unit_stays) == 1:  # most units: one stay there, no presence to widen
            only = unit_stays[0]
            if only.start >= end_ms or (only.end is not None and only.end <= start_ms):
                continue
            window, first_in, last_out = unit_stays, only.start, only.end
        else:
            unit_stays.sort(key=_by_time)
            window = [s for s in unit_stays if s.start < end_ms and (s.end is None or s.end > start_ms)]
            if not window:
                continue
            first_in, last_out = _presence(unit_stays, window)
        unit = window[0].unit
        quantity = _exposed(window, start_ms) if unit.counted else 1
        if unit.sscc is not None:
            owners: list[tuple[str | None, str | None]] = list(pallet_lots.get(unit.sscc, [])) or [
                (None, None)
            ]
        else:
            owners = [(unit.product, unit.lot)]
        key = None if unit.counted else unit.key
        for product, lot in owners:
            gtin = gtins.get(product) if product is not None else None
            found.append(
                AffectedLine(
                    product,
                    gtin,
                    lot,
                    key,
                    unit.sscc,
                    unit.serial,
                    quantity,
                    first_in,
                    last_out,
                    tuple(window),
                )
            )
    found.sort(key=lambda x: (x.product or "", x.lot or "", x.unit or "", x.first_in))
    return found


def _by_time(stay: Stay) -> tuple[int, bool, int]:
    return (stay.start, stay.end is None, stay.end or 0)


def _presence(stays: Sequence[Stay], window: Sequence[Stay]) -> tuple[int, int | None]:
    """When the unit's presence overlapping the window began and ended: the window's stays widened over
    any stay back to back with (or overlapping) them."""
    first_in, last_out = window[0].start, _latest(window)
    for s in reversed(stays):  # by start, descending: walk back while the stays touch
        if s.start < first_in and s.end is not None and s.end >= first_in:
            first_in = s.start
    for s in stays:
        if last_out is None:
            break
        if s.start > window[0].start and s.start <= last_out:
            last_out = None if s.end is None else max(last_out, s.end)
    return first_in, last_out


def _latest(stays: Sequence[Stay]) -> int | None:
    ends = [s.end for s in stays]
    return None if None in ends else max(e for e in ends if e is not None)


def _exposed(window: Sequence[Stay], start_ms: int) -> int:
    """A counted lot's quantity exposed in the window: what was held at its start plus each rise of the
    quantity held during it (a change closes one stay and opens the next at the same millisecond, so the
    rise at a moment is the net of what opened and closed then)."""
    held = sum(s.quantity for s in window if s.start <= start_ms)
    change: dict[int, int] = {}
    for s in window:
        if s.start > start_ms:
            change[s.start] = change.get(s.start, 0) + s.quantity
        if s.end is not None:
            change[s.end] = change.get(s.end, 0) - s.quantity
    return held + sum(max(0, v) for t, v in change.items() if t > start_ms)
