"""Binding's database edge: the stored movements and scans not yet bound, bound and kept in ``bindings``.

Ingest stores movements and scans whole (``edge_items``), queues their keys (``binding_queue``, in the
same transaction) and acknowledges the batch after its commit; binding runs afterwards, from the
scheduler (:func:`bind_pending`), so it can never slow ingest down nor keep a batch from being
acknowledged: a failure here leaves the items queued and the next run tries again.  The pure steps
(``identifiers``, ``binding``) decide; this module only reads what they need and writes what they
decided.

Re-running gives the same bindings (:func:`rebind`, after a document or the catalog was corrected, or
after an upgrade), because nothing here depends on when it runs:

* a document is offered to an item as it stood at the item's time, not as it stands now: each stretch
  in which a version of it was open at a door (released, or in progress) becomes one window,
  ``opened_at`` to the moment the next version took it out of the open states (its ``changed_at``) or
  moved it to another door (:func:`door_documents`); a document completed since still binds the
  items that passed while it was open;
* an item's time is its own (a movement's first read, a scan's time), placed by the boot's anchor
  where the gateway's clock was not synchronised (principle 4);
* a scan's door is where its scanner was placed at the scan's time (a scanner at a dock door binds,
  unknown direction; one elsewhere is a put-away scan: unbound here with its ``location`` kept,
  custody's business);
* an item a person assigned by hand (``item_assignments``, a record) binds where they put it, on
  every run (``binding.assigned``), against the document as it stands when the run happens.

Speed (``bench/binding.py``; the goal is 20,000 movements/s): a run's fixed reads (scanner placements,
the catalog index, the documents' door index) are kept between runs in a :class:`BindingCache` while
nothing audited changed; the queue drives the pending SELECT (:func:`pending_query`); a movement's body
is decoded only as far as binding reads it (``_Tag``: ingest validated it whole); the cyclic garbage
collector is paused while a batch's objects are made (``collector.py``); on PostgreSQL the bindings are
COPYed into the table and their items dequeued in one statement by key arrays, instead of one
parameter set per row.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec
import psycopg
from sqlalchemy import Connection, Table, Text, and_, cast, delete, exists, insert, or_, select, true
from sqlalchemy.dialects import sqlite

from coldgate.cloud.audit.log import head as audit_head
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.placements import placements
from coldgate.cloud.db.models import (
    BindingQueue,
    BindingRow,
    BootAnchor,
    DocumentLine,
    DocumentVersion,
    EdgeItem,
    GatewayEnrolment,
    ItemAssignment,
)
from coldgate.cloud.db.writes import BINDABLE
from coldgate.cloud.documents.binding import (
    Binding,
    DoorIndex,
    ItemKey,
    Observed,
    assigned,
    bind_indexed,
    observed_scan,
)
from coldgate.cloud.documents.catalog_index import catalog_index
from coldgate.cloud.documents.collector import collector_paused
from coldgate.cloud.documents.documents import document_model
from coldgate.cloud.documents.identifiers import CatalogIndex, identify_scan, identify_tag
from coldgate.cloud.documents.model import OPEN_STATES, Document, DocumentKind, DocumentState, Line
from coldgate.contract.items import Movement, Scan

__all__ = [
    "BATCH", "SETTLE_MS", "BindingCache", "bind_pending", "door_documents", "enqueue_all", "pending_query",
    "rebind",
]  # fmt: skip

#: Items bound per run and transaction: a few hundred milliseconds of work at most.
BATCH: Final = 2000
#: An item is bound once it is this old by the cloud's clock: a document's release or close is stamped
#: before its transaction commits, and a run in between would bind an item of that moment otherwise than
#: a re-run later.  (An item stamped further ahead than this, by a gateway clock running fast, is bound at
#: once rather than left waiting.)
SETTLE_MS: Final = 5000

_bindings: Table = BindingRow.__table__  # type: ignore[assignment]
_items: Table = EdgeItem.__table__  # type: ignore[assignment]
_queue: Table = BindingQueue.__table__  # type: ignore[assignment]
_versions: Table = DocumentVersion.__table__  # type: ignore[assignment]
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]


def _ms(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def door_documents(conn: Connection, site: str) -> list[Document]:
    """Every window in which a document of ``site`` was open at a door, as a document the pure binding
    takes (state in progress, ``opened_at``..``closed_at`` the window), oldest first."""
    v = _versions.c
    rows = conn.execute(select(_versions).where(v.site == site).order_by(v.id, v.version)).all()
    wanted = {(row.id, row.version) for row in rows if row.state in OPEN_STATES and row.door}
    lines: dict[tuple[str, int], list[Line]] = {key: [] for key in wanted}
    if wanted:
        ids = sorted({key for key, _ in wanted})
        query = (
            select(_lines)
            .where(_lines.c.document.in_(ids))
            .order_by(_lines.c.document, _lines.c.version, _lines.c.number)
        )
        for line in conn.execute(query):
            if (line.document, line.version) in lines:
                expected = (tuple(line.ssccs or ()), tuple(line.serials or ()))
                lines[(line.document, line.version)].append(
                    Line(line.number, line.product, line.quantity, line.unit, line.lot, *expected)
                )
    windows: list[Document] = []
    for i, row in enumerate(rows):
        if (row.id, row.version) not in wanted:
            continue
        following = rows[i + 1] if i + 1 < len(rows) and rows[i + 1].id == row.id else None
        if following is not None and following.state in OPEN_STATES and following.door == row.door:
            continue  # still open at the same door: the window goes on (with the later version's lines)
        start = row.opened_at if row.opened_at is not None else _ms(row.changed_at)
        for earlier in reversed(rows[:i]):  # where this open stretch began
            if earlier.id != row.id or earlier.state not in OPEN_STATES or earlier.door != row.door:
                break
            start = earlier.opened_at if earlier.opened_at is not None else _ms(earlier.changed_at)
        end = None if following is None else _ms(following.changed_at)
        if row.closed_at is not None:
            end = row.closed_at if end is None else min(end, row.closed_at)
        windows.append(Document(
            id=row.id, kind=DocumentKind(row.kind), site=row.site, state=DocumentState.IN_PROGRESS,
            reference=row.reference, lines=tuple(lines[(row.id, row.version)]), door=row.door,
            opened_at=start, closed_at=end, party=row.party,
        ))  # fmt: skip
    return sorted(windows, key=lambda d: (d.opened_at or 0, d.id))


_decoder: Final = msgspec.json.Decoder(Movement | Scan)
_envelope: Final = msgspec.json.Encoder()


class _Tag(msgspec.Struct):
    """What binding reads of a stored movement's body (validated whole when ingest stored it)."""

    door: str
    direction: str
    epc: str
    first_seen: int
    epc_uri: str | None = None


_tag_decoder: Final = msgspec.json.Decoder(_Tag)


def _item(row: Any) -> Movement | Scan:
    """The stored item whole again: its envelope (kind, seq, ts, boot, mono, synced; columns of their
    own) spliced into its body's JSON text, decoded and validated by msgspec in one pass."""
    envelope = _envelope.encode(
        {
            "kind": row.kind,
            "seq": row.seq,
            "ts": row.ts,
            "boot": row.boot,
            "mono": row.mono,
            "synced": row.synced,
        }
    )
    body = row.body_text.encode() if isinstance(row.body_text, str) else bytes(row.body_text)
    rest = body.lstrip()[1:]
    joined = envelope[:-1] + (rest if rest.lstrip().startswith(b"}") else b"," + rest)
    return _decoder.decode(joined)


def _anchors(conn: Connection, rows: Sequence[Any]) -> dict[tuple[str, str], tuple[int, int]]:
    """(gateway, boot) -> (mono, ts) of the boot's first synchronised moment, for unsynchronised items."""
    wanted = {(row.gateway, row.boot) for row in rows if not row.synced}
    if not wanted:
        return {}
    a = BootAnchor
    gateways = sorted({gateway for gateway, _ in wanted})
    found = conn.execute(select(a.gateway, a.boot, a.mono, a.ts).where(a.gateway.in_(gateways)))
    return {(g, b): (m, t) for g, b, m, t in found if (g, b) in wanted}


class _Scanners:
    """Where each scanner was placed, over time; and which of a site's locations are dock doors."""

    def __init__(self, conn: Connection) -> None:
        self._places: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        for p in placements(conn):
            if p["device_kind"] == "scanner":
                where = self._places.setdefault((p["gateway"], p["device"]), [])
                where.append((p["valid_from"], p["location"]))
        self._doors = {(x["site"], x["id"]) for x in locations(conn) if x["kind"] == "dock_door"}

    def at(self, site: str, gateway: str, scanner: str, time: int) -> tuple[str | None, str | None]:
        """(the dock door, the location) the scanner served at ``time``; the door None when it was not
        placed at a door."""
        places = self._places.get((gateway, scanner), [])
        i = bisect.bisect_right(places, time, key=lambda p: p[0]) - 1
        location = places[i][1] if i >= 0 else None
        return (location if (site, location) in self._doors else None), location


def _row(site: str, binding: Binding, now: datetime.datetime, location: str | None = None) -> tuple[Any, ...]:
    """One ``bindings`` row, in the table's column order (``_COLUMNS``); ``unresolved`` as JSON text."""
    seen, named = binding.observed, binding.observed.identified
    key = seen.key
    unresolved = [{"field": u.field, "value": u.value, "reason": u.reason} for u in named.unresolved]
    return (
        key.gateway, key.stream, key.seq, seen.kind, site, seen.door or None, seen.direction, seen.time,
        binding.document, binding.line, binding.how, binding.reason, named.unit, named.label[:1000],
        named.product, named.lot, named.serial, named.sscc, named.quantity,
        _envelope.encode(unresolved).decode() if unresolved else "[]", now, location,
    )  # fmt: skip


def _assignments(conn: Connection, rows: Sequence[Any]) -> dict[ItemKey, Any]:
    """The hand assignments of the items in ``rows`` (few: a person made each)."""
    a = ItemAssignment
    query = select(a.gateway, a.stream, a.seq, a.document, a.line, a.assigned_by, a.reason).where(
        a.gateway.in_(sorted({row.gateway for row in rows}))
    )
    found = {ItemKey(hand.gateway, hand.stream, hand.seq): hand for hand in conn.execute(query)}
    if not found:
        return found
    wanted = {ItemKey(row.gateway, row.stream, row.seq) for row in rows}
    return {key: hand for key, hand in found.items() if key in wanted}


def _item_columns() -> Any:
    e = _items.c
    body = cast(e.body, Text).label("body_text")
    return select(e.gateway, e.stream, e.seq, e.kind, e.ts, e.boot, e.mono, e.synced, body)


def pending_query(now: datetime.datetime, limit: int = BATCH, dialect: str = "postgresql") -> Any:
    """The SELECT of the items a run binds: the queue ingest fills (what there is to do, however much
    was ever stored), settled items only (``SETTLE_MS``), in the queue's key order.

    On PostgreSQL the queue drives: its key index is walked in order and each entry's item looked up by
    its key (a LATERAL subquery), stopping at ``limit`` settled items; joined plainly, the planner
    hashes the whole of ``edge_items`` to find a few thousand queued items in it (tens of milliseconds
    at a few hundred thousand stored, growing with every item ever stored).  SQLite has no LATERAL and
    walks the join that way by itself."""
    e, q = _items.c, _queue.c
    now_ms = _ms(now)
    settled = or_(e.ts <= now_ms - SETTLE_MS, e.ts > now_ms + SETTLE_MS)
    if dialect != "postgresql":
        return (
            _item_columns()
            .select_from(_items)
            .join(_queue, and_(q.gateway == e.gateway, q.stream == e.stream, q.seq == e.seq))
            .where(settled)
            .order_by(q.gateway, q.stream, q.seq)
            .limit(limit)
        )
    item = (
        _item_columns()
        .where(e.gateway == q.gateway, e.stream == q.stream, e.seq == q.seq, settled)
        .limit(1)  # one item per key anyway; it keeps the planner from flattening it back into a join
        .lateral("item")
    )
    return (
        select(*item.c)
        .select_from(_queue)
        .join(item, true())
        .order_by(q.gateway, q.stream, q.seq)
        .limit(limit)
    )


class BindingCache:
    """What a run reads besides the items (the scanners' placements and each site's catalog index and
    documents' door index), kept from run to run while nothing audited changed.

    Every write these come from (a placement, a location, the catalog, a document) writes its audit
    entry in the same transaction, and audit entries are numbered in commit order (``cloud.audit.log``:
    each is the committed head's number plus one, a unique key), so the audit log's last number moves
    whenever one of them may have changed: a run reads it first and drops what it kept when it moved.
    Read in that order, what is kept is never older than the number it is kept under.  A run without a
    cache (``bind_pending``'s default) reads everything afresh; the scheduler keeps one.
    """

    def __init__(self) -> None:
        self._marker = -1
        self._scanners: _Scanners | None = None
        self._catalogs: dict[str, CatalogIndex] = {}
        self._doors: dict[str, DoorIndex] = {}
        #: How many times what was kept was dropped (the bench reports it).
        self.reloads = 0

    def check(self, conn: Connection) -> None:
        """Drop what was kept if anything audited was written since it was read."""
        marker, _ = audit_head(conn)
        if marker != self._marker:
            self._marker, self._scanners = marker, None
            self._catalogs, self._doors = {}, {}
            self.reloads += 1

    def scanners(self, conn: Connection) -> _Scanners:
        if self._scanners is None:
            self._scanners = _Scanners(conn)
        return self._scanners

    def catalog(self, conn: Connection, site: str) -> CatalogIndex:
        if site not in self._catalogs:
            self._catalogs[site] = catalog_index(conn, site)
        return self._catalogs[site]

    def doors(self, conn: Connection, site: str) -> DoorIndex:
        if site not in self._doors:
            self._doors[site] = DoorIndex(door_documents(conn, site))
        return self._doors[site]


def bind_pending(
    conn: Connection, now: datetime.datetime, *, limit: int = BATCH, only: ItemKey | None = None,
    cache: BindingCache | None = None,
) -> int:  # fmt: skip
    """Bind up to ``limit`` stored movements and scans that have no binding yet (``only``: that one
    item, if it has none); returns how many.  ``cache``: what the previous runs read, kept while it
    stands (:class:`BindingCache`)."""
    e, b = _items.c, _bindings.c
    if only is not None:  # an item bound before, bound again at once (a hand assignment)
        bound = exists().where(and_(b.gateway == e.gateway, b.stream == e.stream, b.seq == e.seq))
        query = _item_columns().where(
            e.gateway == only.gateway, e.stream == only.stream, e.seq == only.seq, ~bound
        )
    else:
        query = pending_query(now, limit, conn.dialect.name)
    rows = conn.execute(query).all()
    if not rows:
        return 0
    with collector_paused():  # a batch makes some ten small objects an item, none in a cycle
        return _bind(conn, rows, now, BindingCache() if cache is None else cache)


def _bind(conn: Connection, rows: Sequence[Any], now: datetime.datetime, cache: BindingCache) -> int:
    """The items of ``rows`` bound, written and taken off the queue; how many."""
    cache.check(conn)
    g = GatewayEnrolment  # read every run: a gateway enrols at its first message, with no audit entry
    site_of = {row.gateway: row.site for row in conn.execute(select(g.gateway, g.site))}
    anchors = _anchors(conn, rows)
    scanners = cache.scanners(conn)
    hands = _assignments(conn, rows)
    models: dict[str, Document] = {}
    written: list[tuple[Any, ...]] = []
    by_site: dict[str, list[Any]] = {}
    for row in rows:
        by_site.setdefault(site_of.get(row.gateway, ""), []).append(row)
    for site, site_rows in sorted(by_site.items()):
        index = cache.catalog(conn, site)
        observed: list[Observed] = []
        for row in site_rows:
            key = ItemKey(row.gateway, row.stream, row.seq)
            anchor = anchors.get((row.gateway, row.boot))
            late = anchor is not None and not row.synced
            shift = anchor[1] + (row.mono - anchor[0]) - row.ts if late else 0  # type: ignore[index]
            location, scanner = None, ""
            if row.kind == "movement":  # nearly every item: only what binding reads is decoded
                tag = _tag_decoder.decode(row.body_text)
                found = identify_tag(tag.epc, tag.epc_uri, index)
                seen = Observed(key, "movement", tag.door, tag.direction, tag.first_seen + shift, found)  # type: ignore[arg-type]
            else:
                item = _item(row)
                assert isinstance(item, Scan), item
                scanner = item.scanner
                door, location = scanners.at(site, row.gateway, scanner, item.ts + shift)
                if door is not None:
                    seen = observed_scan(key, item, index, door=door, time=item.ts + shift)
                else:
                    seen = Observed(key, "scan", "", "unknown", item.ts + shift, identify_scan(item, index))
            hand = hands.get(key)
            if hand is not None:
                if hand.document not in models:
                    models[hand.document] = document_model(conn, hand.document)
                binding = assigned(seen, models[hand.document], hand.line, hand.assigned_by, hand.reason)
                written.append(_row(site, binding, now))
            elif seen.door:
                observed.append(seen)
            else:
                where = f"at {location}" if location is not None else "placed nowhere"
                why = f"scanner {scanner} was {where}, not at a dock door: a put-away or stock scan"
                written.append(_row(site, Binding(seen, None, None, "no door", why), now, location))
        if observed:
            written += [
                _row(site, binding, now) for binding in bind_indexed(observed, cache.doors(conn, site))
            ]
    # One binding per item read (bind_indexed keeps one per key, and the keys are the table's).
    assert len(written) == len(rows), (len(written), len(rows))
    if conn.dialect.name == "postgresql":
        _copy_and_dequeue(conn, written)
    else:
        # An item bound meanwhile by another run (two cloud processes) keeps its binding: the same one.
        values = [dict(zip(_COLUMNS, row, strict=True)) for row in written]
        for value in values:
            value["unresolved"] = msgspec.json.decode(value["unresolved"])
        conn.execute(sqlite.insert(_bindings).on_conflict_do_nothing(), values)
        _dequeue(conn, [ItemKey(row.gateway, row.stream, row.seq) for row in rows])
    return len(written)


_COLUMNS: Final = tuple(column.name for column in _bindings.columns)
_ROW_ORDER: Final = (
    "gateway", "stream", "seq", "kind", "site", "door", "direction", "time", "document", "line", "how",
    "reason", "unit", "label", "product", "lot", "serial", "sscc", "quantity", "unresolved", "bound_at",
    "location",
)  # fmt: skip
assert _COLUMNS == _ROW_ORDER, f"_row writes {_ROW_ORDER}, the table has {_COLUMNS}"
_STAGE: Final = "binding_stage"


def _copy_and_dequeue(conn: Connection, written: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL: the bindings COPYed straight into ``bindings``, their items taken off the queue by
    their keys (one statement, the keys as three arrays).

    COPY has no ON CONFLICT: an item bound meanwhile by another run (two cloud processes) makes it fail,
    inside a savepoint; the batch then goes through a temporary table of ``bindings``' shape and an
    ``INSERT ... ON CONFLICT DO NOTHING`` from it, so the binding written first stays (the same one)."""
    names = ", ".join(_COLUMNS)
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute("SAVEPOINT binding_copy")
        try:
            with cursor.copy(f"COPY bindings ({names}) FROM STDIN") as copy:
                for row in written:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT binding_copy")
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (LIKE bindings) ON COMMIT DELETE ROWS")
            cursor.execute(f"TRUNCATE {_STAGE}")
            with cursor.copy(f"COPY {_STAGE} ({names}) FROM STDIN") as copy:
                for row in written:
                    copy.write_row(row)
            staged = f"SELECT {names} FROM {_STAGE}"
            cursor.execute(f"INSERT INTO bindings ({names}) {staged} ON CONFLICT DO NOTHING")
        cursor.execute("RELEASE SAVEPOINT binding_copy")
        cursor.execute(
            "DELETE FROM binding_queue q USING unnest(%s::text[], %s::text[], %s::bigint[]) AS k(g, s, n)"
            " WHERE q.gateway = k.g AND q.stream = k.s AND q.seq = k.n",
            ([row[0] for row in written], [row[1] for row in written], [row[2] for row in written]),
        )


def _dequeue(conn: Connection, keys: Sequence[ItemKey]) -> None:
    q = _queue.c
    by_stream: dict[tuple[str, str], list[int]] = {}
    for key in keys:
        by_stream.setdefault((key.gateway, key.stream), []).append(key.seq)
    for (gateway, stream), seqs in by_stream.items():
        for start in range(0, len(seqs), 1000):
            conn.execute(delete(_queue).where(
                q.gateway == gateway, q.stream == stream, q.seq.in_(seqs[start : start + 1000])
            ))  # fmt: skip


def enqueue_all(conn: Connection, site: str | None = None) -> None:
    """Queue every stored movement and scan not bound (of the gateways enrolled at ``site``, when
    given) for binding: what ``rebind`` binds again."""
    e, b, q = _items.c, _bindings.c, _queue.c
    bound = exists().where(and_(b.gateway == e.gateway, b.stream == e.stream, b.seq == e.seq))
    queued = exists().where(and_(q.gateway == e.gateway, q.stream == e.stream, q.seq == e.seq))
    query = select(e.gateway, e.stream, e.seq).where(e.kind.in_(sorted(BINDABLE)), ~bound, ~queued)
    if site is not None:
        g = GatewayEnrolment
        query = query.where(e.gateway.in_(select(g.gateway).where(g.site == site)))
    conn.execute(insert(_queue).from_select(["gateway", "stream", "seq"], query))


def rebind(conn: Connection, now: datetime.datetime, *, site: str | None = None) -> int:
    """Bind every stored movement and scan again (of one site when given): after a document or the
    catalog was corrected.  Returns how many were bound; the same stored records give the same rows."""
    query = delete(_bindings) if site is None else delete(_bindings).where(_bindings.c.site == site)
    conn.execute(query)
    enqueue_all(conn, site)
    total = 0
    while found := bind_pending(conn, now):
        total += found
    return total


def bindings_of(conn: Connection, keys: Iterable[ItemKey]) -> dict[ItemKey, dict[str, Any]]:
    """The stored binding of each of ``keys`` that has one."""
    b = _bindings.c
    found: dict[ItemKey, dict[str, Any]] = {}
    wanted = set(keys)
    for gateway in sorted({k.gateway for k in wanted}):
        for row in conn.execute(select(_bindings).where(b.gateway == gateway)).mappings():
            key = ItemKey(row["gateway"], row["stream"], row["seq"])
            if key in wanted:
                found[key] = dict(row)
    return found
