"""Purging archived months of readings whose retention has passed (``cloud/db/retention.py`` says when):
the month's packs deleted, a record of what went and why, and an audit entry, in one transaction.

Only archived months are purged (``cloud/db/archive.py``): a live partition never is, so a month always
goes through the archive's hash before it can go at all, and the purge record keeps that hash.  The
database holds the same line: ``reading_packs`` refuses a DELETE unless the month's purge record is
already written (migration 0032), and the service's role may not delete packs at all; purging is the
schema owner's, like archiving.

Which lots a month concerns (the conservative rule): every lot that any unit of was in our hands, at
any site of the deployment, at any time during the month, from the custody chains the batch histories
are made from (``custody_store.lot_custody``: a stay with no outside party, whatever location).  A pack
is a sensor's day, and the rule does not narrow a month to the sites or rooms a lot was at: one lot of
an implant anywhere keeps every site's month.  The month's window is the calendar month (UTC) widened
to the times its packed readings carry (a clock-corrected reading may fall outside the month whose
partition held it).  The lots a month concerns are those named by the bindings or by the documents'
lines; binding that is behind (``binding_queue`` not empty) could leave a lot out, so the purge waits
for it.  The category of each lot's product and the lot's expiry are those in force in the catalog.

A lot under a recall not yet closed, or quarantined, holds every month it was kept in for as long as
that lasts, whatever its term: the investigation may need those readings.

A known product's units bound without a lot (a serial whose lot the catalog does not know, a label
without one) count as a lot of that product with no expiry, held on the days they passed a door: a
device's or an implant's keeps those months for ever.  Not followed: their stay between doors (no lot,
no chain), bindings that name no product (a pallet's SSCC; its cases are bound on their own when
scanned), and a recall of serials whose lot is unknown.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Row, Table, exists, func, select, text, union

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.versions import in_force
from coldgate.cloud.db.archive import month_digest
from coldgate.cloud.db.models import (
    BindingQueue,
    BindingRow,
    DocumentLine,
    EdgeItem,
    LotVersion,
    ProductVersion,
    RecallEvent,
    RecallItem,
)
from coldgate.cloud.db.retention import (
    UNCATEGORISED,
    KeptLot,
    Retention,
    RetentionPolicy,
    month_end,
    retention,
)
from coldgate.cloud.documents.collector import collector_paused
from coldgate.cloud.documents.custody_store import _lot_custody
from coldgate.cloud.identity.users import NotFound

__all__ = [
    "ALL_SITES",
    "LotSpans",
    "PurgeError",
    "Purged",
    "kept_lots",
    "lots_in",
    "month_retention",
    "purge_month",
    "purge_plan",
    "purged",
]

#: The scope of a purge under the conservative rule: every site's readings of the month.
ALL_SITES = "all"
_products: Table = ProductVersion.__table__  # type: ignore[assignment]
_lots: Table = LotVersion.__table__  # type: ignore[assignment]
_bindings: Table = BindingRow.__table__  # type: ignore[assignment]
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]
_queue: Table = BindingQueue.__table__  # type: ignore[assignment]
_items: Table = EdgeItem.__table__  # type: ignore[assignment]
_recalled: Table = RecallItem.__table__  # type: ignore[assignment]
_recall_events: Table = RecallEvent.__table__  # type: ignore[assignment]


class PurgeError(Exception):
    """A month that may not or could not be purged; nothing was changed."""


@dataclass(frozen=True, slots=True)
class LotSpans:
    """A lot as the retention rule sees it, and when any of its units was in our hands: (start, end)
    epoch ms, end None while still held."""

    lot: KeptLot
    spans: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class Purged:
    month: datetime.date
    scope: str
    readings: int
    packs: int
    sha256: str
    rule: str
    purge_from: datetime.date
    lots: int
    held_longest_by: str | None
    purged_at: datetime.datetime
    purged_by: str


def _ms(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp() * 1000)


def kept_lots(conn: Connection) -> list[LotSpans]:
    """Every lot named by a binding or a document line, with its catalog category (None: its product is
    not in the catalog, which the rule keeps for ever) and expiry, and the spans its units were held
    (the chain of ``custody_store``, read by catalog id).  A lot that only a document line names, with no
    item and no catalog record, was never held: no spans."""
    b, d = _bindings.c, _lines.c
    named = union(
        select(b.product, b.lot).where(b.lot.is_not(None), b.product.is_not(None)),
        select(d.product, d.lot).where(d.lot.is_not(None), d.product.is_not(None)),
    )
    names = sorted(tuple(row) for row in conn.execute(named))
    categories = {
        row.id: row.retention or UNCATEGORISED for row in conn.execute(in_force(_products, ("id",)))
    }
    lots = conn.execute(in_force(_lots, ("product", "lot"))).all()
    expiries = {(row.product, row.lot): row.expiry for row in lots}
    holds = _holds(conn, lots)
    found = []
    for product, lot in names:
        kept = KeptLot(
            product, lot, categories.get(product), expiries.get((product, lot)), holds.get((product, lot))
        )
        try:
            # By catalog id, not through ``lot_custody``'s GTIN-or-id parsing: a product id of digits
            # would be read as a GTIN, and another product's chain is not a safe stand-in.
            with collector_paused():
                stays = _lot_custody(conn, product, None, lot).stays
            spans = tuple(sorted({(s.start, s.end) for s in stays if s.party is None}, key=_span_order))
        except NotFound:
            spans = ()  # only a document line names it, no item and no catalog record: never held
        found.append(LotSpans(kept, spans))
    return found + _unlotted(conn, categories)


#: The lot name the rule is given for a product's units handled without a lot (a serial the catalog
#: does not know the lot of, a label that carries none).
NO_LOT = "(without a lot)"
DAY_MS = 86_400_000


def _unlotted(conn: Connection, categories: dict[str, str]) -> list[LotSpans]:
    """A known product's units bound without a lot, as one lot per product that has no expiry, held on
    each day one of them passed a door: a device's or an implant's then keeps those months for ever
    (no expiry to count from), a standard product's its standard term.  Only the days they passed a
    door, not their whole stay: without a lot there is no chain to follow (the limit is the docstring's).
    Bindings naming no product (a pallet's SSCC, an unknown label) name no rule and are left out."""
    b = _bindings.c
    rows = conn.execute(
        select(b.product, (b.time / DAY_MS).label("day"))
        .where(b.lot.is_(None), b.product.is_not(None))
        .distinct()
        .order_by(b.product, "day")
    ).all()
    days: dict[str, list[tuple[int, int | None]]] = {}
    for product, day in rows:
        start = int(day) * DAY_MS
        days.setdefault(product, []).append((start, start + DAY_MS))
    return [
        LotSpans(KeptLot(product, NO_LOT, categories.get(product), None), tuple(spans))
        for product, spans in days.items()
    ]


def _holds(conn: Connection, lots: Iterable[Row[Any]]) -> dict[tuple[str, str], str]:
    """What holds a lot's records beyond any term: a recall of it not closed yet, else its quarantine
    (``lots``: the catalog's lot versions in force)."""
    held = {(row.product, row.lot): "the lot is quarantined" for row in lots if row.status == "quarantined"}
    r, e = _recalled.c, _recall_events.c
    closed = exists(select(e.recall_id).where(e.recall_id == r.recall_id, e.kind == "closed"))
    query = select(r.product, r.lot, r.recall_id).where(r.lot.is_not(None), ~closed).order_by(r.recall_id)
    for product, lot, recall in conn.execute(query):
        held[(product, lot)] = f"recall {recall} is open"
    return held


def _span_order(span: tuple[int, int | None]) -> tuple[int, int]:
    return span[0], span[1] if span[1] is not None else 2**63


def lots_in(lots: Iterable[LotSpans], start_ms: int, end_ms: int) -> list[KeptLot]:
    """The lots held at some time in [``start_ms``, ``end_ms``)."""
    return [
        held.lot
        for held in lots
        if any(start < end_ms and (end is None or end > start_ms) for start, end in held.spans)
    ]


def _window(conn: Connection, month: datetime.date) -> tuple[int, int]:
    """The calendar month (UTC) in epoch ms, widened to the times the month's packs hold."""
    start, end = _ms(month), _ms(month_end(month))
    first, last = conn.execute(
        text("SELECT min(t_first), max(t_last) FROM reading_packs WHERE month = :month"), {"month": month}
    ).one()
    return min(start, first if first is not None else start), max(end, last + 1 if last is not None else end)


def month_retention(
    conn: Connection, month: datetime.date, policy: RetentionPolicy, lots: Sequence[LotSpans] | None = None
) -> Retention:
    """The retention of an archived ``month``: the rule over the lots held during it (``lots``: what
    :func:`kept_lots` read, passed in when asking of several months)."""
    held = kept_lots(conn) if lots is None else lots
    return retention(month, policy, lots_in(held, *_window(conn, month)))


def _pending(conn: Connection) -> list[datetime.date]:
    """Archived months not purged yet, oldest first."""
    rows = conn.execute(
        text(
            "SELECT a.month FROM reading_archives a WHERE NOT EXISTS "
            "(SELECT 1 FROM reading_purges p WHERE p.month = a.month) ORDER BY a.month"
        )
    ).scalars()
    return list(rows)


def _check_dialect(conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        raise PurgeError("purging needs PostgreSQL: SQLite keeps its readings in one table and archives none")


def _check_bound(conn: Connection, before_ms: int) -> None:
    """Refused while a movement or scan that may have happened before ``before_ms`` waits to be bound:
    its lot could be missing from the custody chains.  What the live stream keeps queueing (items of
    today) never blocks a purge of a month a year old; an item whose clock was not synchronised might
    be of any time, so it does."""
    q, e = _queue.c, _items.c
    waiting = conn.execute(
        select(func.count())
        .select_from(
            _queue.outerjoin(_items, (e.gateway == q.gateway) & (e.stream == q.stream) & (e.seq == q.seq))
        )
        .where(e.ts.is_(None) | (e.ts < before_ms) | e.synced.is_(False))
    ).scalar_one()
    if waiting:
        raise PurgeError(
            f"binding is behind ({waiting} movements or scans from before {_day(before_ms)} wait to be "
            "bound): the custody chains that say which lots a month concerns may be missing some; purge once "
            "binding has caught up"
        )


def _day(ms: int) -> str:
    return f"{datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC):%Y-%m-%d}"


def purge_plan(conn: Connection, policy: RetentionPolicy) -> list[Retention]:
    """The retention of every archived month not purged yet, oldest first (``Retention.due`` says which
    may go).  Refused (``PurgeError``) on SQLite and while binding is behind."""
    _check_dialect(conn)
    pending = _pending(conn)
    if pending:
        _check_bound(conn, max(_window(conn, month)[1] for month in pending))
    held = kept_lots(conn)
    return [month_retention(conn, month, policy, held) for month in pending]


def purge_month(
    conn: Connection, month: datetime.date, *, policy: RetentionPolicy, now: datetime.datetime, actor: Actor
) -> Purged:
    """Delete archived ``month``'s packs once its retention has passed, with its purge record and audit
    entry, in ``conn``'s transaction (the caller commits).  Refused (``PurgeError``, nothing changed): on
    SQLite, for a month not archived or purged already, while binding is behind, before the retention
    date (or for ever), and when the packs no longer hash as they did when archived."""
    _check_dialect(conn)
    month = month.replace(day=1)
    archived = conn.execute(
        text("SELECT readings, packs, sha256 FROM reading_archives WHERE month = :month"), {"month": month}
    ).one_or_none()
    if archived is None:
        raise PurgeError(f"{month:%Y-%m} cannot be purged: it is not archived (a live month never is)")
    if month not in _pending(conn):
        raise PurgeError(f"{month:%Y-%m} cannot be purged: it was purged already")
    _check_bound(conn, _window(conn, month)[1])
    kept = month_retention(conn, month, policy)
    if kept.purge_from is None or not kept.due(now.date()):
        last_day = None if kept.purge_from is None else kept.purge_from - datetime.timedelta(days=1)
        until = "for ever" if last_day is None else f"until {last_day}"
        raise PurgeError(f"{month:%Y-%m} cannot be purged: it is kept {until} ({kept.rule})")
    readings, digest = month_digest(conn, month, packed=True)
    if (readings, digest) != (archived.readings, archived.sha256):
        raise PurgeError(
            f"{month:%Y-%m} was not purged: its packs hold {readings} readings hashing to {digest}, the "
            f"archive recorded {archived.readings} hashing to {archived.sha256}; look into it before "
            "anything goes"
        )
    done = Purged(
        month, ALL_SITES, readings, 0, digest, kept.rule, kept.purge_from, kept.lots,
        None if kept.held_by is None else str(kept.held_by), now, actor.name,
    )  # fmt: skip
    # The record first: the packs' trigger lets a month's packs go only once it exists.
    conn.execute(
        text(
            "INSERT INTO reading_purges (month, scope, readings, packs, sha256, rule, purge_from, lots, "
            "held_longest_by, purged_at, purged_by) VALUES (:month, :scope, :readings, :packs, :sha256, "
            ":rule, :purge_from, :lots, :held_longest_by, :purged_at, :purged_by)"
        ),
        {**{name: getattr(done, name) for name in Purged.__dataclass_fields__}, "packs": archived.packs},
    )
    packs = conn.execute(text("DELETE FROM reading_packs WHERE month = :month"), {"month": month}).rowcount
    if packs != archived.packs:
        raise PurgeError(
            f"{month:%Y-%m} was not purged: {packs} packs found, the archive made {archived.packs}"
        )
    append(
        conn, actor=actor, action="readings.purged", entity_type="readings_month",
        entity_id=f"{month:%Y-%m}", now=now,
        after={"scope": ALL_SITES, "readings": readings, "packs": packs, "sha256": digest,
               "rule": kept.rule, "purge_from": kept.purge_from.isoformat(), "lots": kept.lots,
               "held_longest_by": done.held_longest_by, "policy": policy.describe()},
    )  # fmt: skip
    return replace(done, packs=packs)


def purged(conn: Connection) -> list[Purged]:
    """Every purge, oldest month first."""
    rows = conn.execute(
        text(
            "SELECT month, scope, readings, packs, sha256, rule, purge_from, lots, held_longest_by, "
            "purged_at, purged_by FROM reading_purges ORDER BY month, scope"
        )
    ).all()
    return [Purged(*row) for row in rows]
