"""Automatic quarantine (issue 16): an excursion's case takes the stock that was in the room and holds it
until QA decides; the case's closing gives it back or rejects it.

Why the case does it and not a person: GDP asks that goods exposed to an excursion are not sold until
QA has judged them, and a room holds hundreds of lots nobody has time to look up while the compressor
is being fixed.  So when a cold-chain excursion opens a case (or joins one), the case

1. finds the room: the location (and its site) the alerting sensor was placed at when the excursion
   began;
2. derives the stock that was there during the excursion (``location_stock.stock_in_location``, the
   custody chain's own answer) from the excursion's start to its end, or to now while it lasts, and
   records it on the case (``qa_case_stock``, with each lot's status before);
3. moves every released lot among it to ``quarantined`` (``lots.move_lot``: a new version of the lot,
   audited, as the system, naming the case).  The down-link publisher sees the catalog change at its
   next pass and sends the gateways their new lot lists, so the dock's checks stop those cases at the
   door (``gateway/rules/dock_checks.py``).

A lot already quarantined, recalled or rejected is recorded with that status and left alone.

Closing the case (:func:`settle`) moves the lots it holds: released again for a release, no impact or
a cancelled case; rejected for rejected/destroyed and returned to the supplier.  Two excursions in two
rooms can hold the same lot: it stays quarantined until the last of their cases closes, and that
case's decision moves it (a lot quarantined by hand before any case is left to a person).  The moves
are made by whoever completed the closing signature, in the same transaction as the closing itself.

Not done here: a unit whose lot is unknown (a pallet no document ties to a lot, a serial in no range)
is recorded on the case but cannot be quarantined by lot; a lot scanned but missing from the catalog
cannot either (there is no lot record to move), and is recorded with ``status_before`` None.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, Final

from sqlalchemy import Connection, Table, func, insert, select, tuple_

from coldgate.cloud.alerts.case_flow import Disposition
from coldgate.cloud.alerts.case_steps import undecided_case_ids
from coldgate.cloud.audit.log import SYSTEM, Actor, append
from coldgate.cloud.catalog.lots import move_lot
from coldgate.cloud.catalog.versions import in_force
from coldgate.cloud.db.models import LotVersion, Placement, QaCaseStock
from coldgate.cloud.documents.location_stock import AffectedLine, affected_lots, stock_in_location

__all__ = [
    "SETTLED_TO", "cases_holding", "quarantine_stock", "quarantined_lots", "settle", "stock_to_settle"
]

_stock: Table = QaCaseStock.__table__  # type: ignore[assignment]
_lots: Table = LotVersion.__table__  # type: ignore[assignment]
_ENTITY: Final = "qa_case"
#: What a closed case's disposition (or a cancelled case) makes of the lots it quarantined.
SETTLED_TO: Final[dict[str | None, str]] = {
    Disposition.RELEASED.value: "released",
    Disposition.NO_IMPACT.value: "released",
    Disposition.REJECTED.value: "rejected",
    Disposition.RETURNED.value: "rejected",
    None: "released",  # cancelled: opened in error, nothing was wrong with the goods
}


def _statuses(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The status in force of each (product, lot) the catalog has."""
    wanted = sorted(set(pairs))
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = in_force(_lots, ("product", "lot")).where(tuple_(_lots.c.product, _lots.c.lot).in_(chunk))
        found.update({(r.product, r.lot): r.status for r in conn.execute(query)})
    return found


def _room_of(conn: Connection, gateway: str, sensor: str, at_ms: int) -> tuple[str | None, str | None]:
    """The site and location the sensor was placed at ``at_ms`` (its newest placement from then or
    before; the placement's own site, which the catalog checked the location against), or Nones."""
    p = Placement
    row = conn.execute(
        select(p.site, p.location)
        .where(p.gateway == gateway, p.device_kind == "sensor", p.device == sensor, p.valid_from <= at_ms)
        .order_by(p.valid_from.desc())
        .limit(1)
    ).first()
    return (row.site, row.location) if row is not None and row.location is not None else (None, None)


def quarantine_stock(
    conn: Connection, case_id: str, *, gateway: str, sensor: str, start_ms: int, end_ms: int, title: str,
    now: datetime.datetime,
) -> list[tuple[str, str]]:  # fmt: skip
    """Record what was in the sensor's room from ``start_ms`` to ``end_ms`` on the case and quarantine
    its released lots; the (product, lot) pairs quarantined now.  Audited (``qa_case.stock_taken``)."""
    site, location = _room_of(conn, gateway, sensor, start_ms)
    where = {"gateway": gateway, "sensor": sensor, "site": site, "location": location,
             "window": [start_ms, end_ms]}  # fmt: skip
    if site is None or location is None:
        append(conn, actor=SYSTEM, action="qa_case.stock_unknown", entity_type=_ENTITY, entity_id=case_id,
               now=now, after=where,
               reason="the sensor was placed at no location then: nothing could be quarantined")  # fmt: skip
        return []
    lines = stock_in_location(conn, site, location, start_ms, max(end_ms, start_ms + 1))
    pairs = affected_lots(lines)
    before = _statuses(conn, pairs)
    _record(conn, case_id, site, location, start_ms, end_ms, lines, before, now)
    taken = [pair for pair in pairs if before.get(pair) == "released"]
    for product, lot in taken:
        move_lot(conn, product, lot, "quarantined", reason=f"QA case {case_id}: {title}"[:1000], by=SYSTEM,
                 now=now)  # fmt: skip
    append(conn, actor=SYSTEM, action="qa_case.stock_taken", entity_type=_ENTITY, entity_id=case_id, now=now,
           after={**where, "lines": len(lines), "lots": len(pairs),
                  "quarantined": [f"{p}/{lot}" for p, lot in taken]})  # fmt: skip
    return taken


def _record(
    conn: Connection, case_id: str, site: str, location: str, start_ms: int, end_ms: int,
    lines: list[AffectedLine], before: dict[tuple[str, str], str], now: datetime.datetime,
) -> None:  # fmt: skip
    s = _stock.c
    top = conn.execute(
        select(func.coalesce(func.max(s.seq), 0), func.coalesce(func.max(s.derivation), 0)).where(
            s.case_id == case_id
        )
    ).one()
    seq, derivation = int(top[0]), int(top[1]) + 1
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(lines, start=seq + 1):
        status = before.get((line.product, line.lot)) if line.product and line.lot else None
        rows.append({
            "case_id": case_id, "seq": n, "derivation": derivation, "site": site, "location": location,
            "window_start": start_ms, "window_end": end_ms, "product": line.product, "gtin": line.gtin,
            "lot": line.lot, "unit": line.unit, "quantity": line.quantity, "first_in": line.first_in,
            "last_out": line.last_out, "status_before": status, "derived_at": now,
        })  # fmt: skip
    if rows:
        conn.execute(insert(_stock), rows)


def cases_holding(
    conn: Connection, pairs: Iterable[tuple[str, str]], *, besides: str | None = None
) -> dict[tuple[str, str], list[str]]:
    """The open cases (other than ``besides``) that list each of ``pairs`` in their stock: a lot a case
    holds is released or rejected by that case's signed disposition, not by hand."""
    wanted = sorted(set(pairs))
    open_ids = undecided_case_ids(conn) - ({besides} if besides else set())
    if not wanted or not open_ids:
        return {}
    s = _stock.c
    held: dict[tuple[str, str], set[str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(s.product, s.lot, s.case_id).where(
            s.case_id.in_(sorted(open_ids)), tuple_(s.product, s.lot).in_(chunk)
        )
        for row in conn.execute(query):
            held.setdefault((row.product, row.lot), set()).add(row.case_id)
    return {pair: sorted(ids) for pair, ids in held.items()}


def stock_to_settle(conn: Connection, case_id: str) -> list[tuple[str, str]]:
    """The lots (product, lot) the case's closing or cancelling would move now (:func:`settle`)."""
    return _settle_plan(conn, case_id)[1]


def _settle_plan(conn: Connection, case_id: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The lots the case holds, and those of them its closing or cancelling would move now.

    The case holds a lot of its stock that it quarantined itself, or that an earlier case quarantined
    and left to it (that case closed while this one was still open).  A lot another open case also
    lists stays, for that case to settle; so does one someone has moved on since (recalled) and one
    that was quarantined by hand before any case (its release is a person's decision)."""
    s = _stock.c
    query = select(s.product, s.lot, s.status_before).where(
        s.case_id == case_id, s.lot.is_not(None), s.status_before.in_(("released", "quarantined"))
    )
    mine: dict[tuple[str, str], set[str]] = {}
    for row in conn.execute(query):
        mine.setdefault((row.product, row.lot), set()).add(row.status_before)
    pairs = sorted(mine)
    taken = _taken_by_a_case(conn, [p for p in pairs if "released" not in mine[p]])
    pairs = [p for p in pairs if "released" in mine[p] or p in taken]
    held = cases_holding(conn, pairs, besides=case_id)
    now_status = _statuses(conn, pairs)
    return pairs, [pair for pair in pairs if pair not in held and now_status.get(pair) == "quarantined"]


def settle(
    conn: Connection, case_id: str, disposition: str | None, *, by: Actor, now: datetime.datetime
) -> dict[str, list[str]]:
    """Move the lots this case holds in quarantine (:func:`stock_to_settle`) as its closing decided
    (:data:`SETTLED_TO`; None: cancelled); what moved where and what stayed, for the audit entry."""
    pairs, moving = _settle_plan(conn, case_id)
    target = SETTLED_TO[disposition]
    how = f"closed as {disposition}" if disposition else "cancelled"
    for product, lot in moving:
        move_lot(conn, product, lot, target, reason=f"QA case {case_id} {how}", by=by, now=now)
    moved = [f"{p}/{lot}" for p, lot in moving]
    going = set(moving)
    kept = [f"{p}/{lot}" for p, lot in pairs if (p, lot) not in going]
    if pairs:
        after = {"to": target, "moved": moved, "kept": kept}
        append(conn, actor=by, action="qa_case.stock_settled", entity_type=_ENTITY, entity_id=case_id,
               now=now, after=after)  # fmt: skip
    return {target: moved, "kept": kept}


def _taken_by_a_case(conn: Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``pairs`` some case quarantined (its stock lists the lot as released before it)."""
    s = _stock.c
    found: set[tuple[str, str]] = set()
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        here = tuple_(s.product, s.lot).in_(chunk)
        query = select(s.product, s.lot).where(s.status_before == "released", here)
        found.update((r.product, r.lot) for r in conn.execute(query))
    return found


def quarantined_lots(conn: Connection, *, site: str | None = None) -> list[dict[str, Any]]:
    """Every lot quarantined now, longest held first: since when, by whom and why (its version), the
    open cases that hold it and the rooms they found it in (``site``: only lots a case found at that
    site, or none of a case).  One reader for the quarantine page and ``GET /quarantine``."""
    held = conn.execute(in_force(_lots, ("product", "lot")).where(_lots.c.status == "quarantined")).all()
    if not held:
        return []
    pairs = sorted({(r.product, r.lot) for r in held})
    open_ids = sorted(undecided_case_ids(conn))
    cases: dict[tuple[str, str], dict[str, set[str]]] = {}
    s = _stock.c
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        query = select(s.product, s.lot, s.case_id, s.site, s.location).where(
            s.case_id.in_(open_ids), tuple_(s.product, s.lot).in_(chunk)
        )
        for row in conn.execute(query):
            found = cases.setdefault((row.product, row.lot), {"cases": set(), "rooms": set()})
            found["cases"].add(row.case_id)
            found["rooms"].add(f"{row.site}/{row.location}")
    out = []
    for row in sorted(held, key=lambda r: (r.changed_at, r.product, r.lot)):
        found = cases.get((row.product, row.lot), {"cases": set(), "rooms": set()})
        if site is not None and found["rooms"] and not any(r.startswith(f"{site}/") for r in found["rooms"]):
            continue
        out.append({
            "product": row.product, "lot": row.lot, "expiry": row.expiry.isoformat() if row.expiry else None,
            "since": row.changed_at, "by": row.changed_by, "reason": row.reason,
            "cases": sorted(found["cases"]), "rooms": sorted(found["rooms"]),
        })  # fmt: skip
    return out
