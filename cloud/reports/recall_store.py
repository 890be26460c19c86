"""Recall runs' database edge: opening a recall (its lots set recalled through the catalog's own audited
writer), recording notifications, acknowledgements and returns, the signed closing, and reading a recall
back with its customer list and stock derived from the custody chain (``custody_store``).  The rules are
``recall.py``'s; the API and the pages both go through here.

Every write is checked (``recall.run``), written with its audit entry in the caller's transaction, and
only ever adds rows (migration 0030): a recall is its opening row, its items and its numbered events;
its state and response times are derived.  A refused write raises before anything is written.

A serial is recalled as itself: its dispatches and stock are listed, but its lot's status is left alone
(recalling one case must not block the whole lot), so the gateways' lists, which are per lot, cannot
stop it at the door; the recall's page says so for such an item.  A lot the catalog does not know but
items named (labels of a lot never entered) is entered as recalled, so the gateways stop it too.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from sqlalchemy import Connection, Table, func, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog import lots as catalog_lots
from coldgate.cloud.catalog.versions import Conflict, check_reason
from coldgate.cloud.db.models import Recall, RecallEvent, RecallItem
from coldgate.cloud.documents import custody_store
from coldgate.cloud.identity import signatures
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy
from coldgate.cloud.identity.users import Forbidden, NotFound, UserInputError, aware, checked_text
from coldgate.cloud.reports import recall as rules
from coldgate.cloud.reports.recall import EventKind, RecallState, Refusal

__all__ = [
    "MAX_ITEMS", "close_recall", "customer_csv", "list_recalls", "open_recall", "recall_detail",
    "record_customer_event", "record_refusal", "record_return",
]  # fmt: skip

_recalls: Table = Recall.__table__  # type: ignore[assignment]
_items: Table = RecallItem.__table__  # type: ignore[assignment]
_events: Table = RecallEvent.__table__  # type: ignore[assignment]
_ENTITY: Final = "recall"
PERMISSION: Final = "recall.run"
#: Lots and serials one recall may name (each costs a custody chain on every read).
MAX_ITEMS: Final = 200
#: How far back a recall's decision, or an event recorded after the fact, may be dated.
MAX_BACKDATE: Final = datetime.timedelta(days=365)


def _new_id() -> str:
    return f"recall-{secrets.token_hex(6)}"


def _refused(refusal: Refusal) -> UserInputError:
    if refusal.kind == "state":
        return Conflict(refusal.field, refusal.message)
    if refusal.kind == "missing":
        return NotFound(refusal.field, refusal.message)
    return UserInputError(refusal.field, refusal.message)


def _check_permission(held: frozenset[str]) -> None:
    if PERMISSION not in held:
        raise Forbidden("recall", f"recording on a recall needs {PERMISSION} (the recall coordinator's)")


def _when(
    field: str,
    value: datetime.datetime | None,
    now: datetime.datetime,
    earliest: datetime.datetime | None = None,
) -> datetime.datetime:
    """When something happened, as given (with its zone) or now; never in the future, nor before
    ``earliest`` (or a year back)."""
    if value is None:
        return now
    if value.tzinfo is None or value.utcoffset() is None:
        raise UserInputError(field, f"{value.isoformat()} has no time zone: add Z or an offset like +01:00")
    if value > now + datetime.timedelta(minutes=1):
        raise UserInputError(field, f"{value.isoformat()} is in the future")
    floor = max(earliest or now - MAX_BACKDATE, now - MAX_BACKDATE)
    if value < floor:
        what = "the recall was decided" if earliest else "a year ago"
        raise UserInputError(field, f"{value.isoformat()} is before {what} ({floor.isoformat()})")
    return value


def _text(field: str, value: str | None, max_len: int) -> str | None:
    if value is None:
        return None
    return checked_text(field, value, max_len=max_len).strip() or None


def _resolve_lot(conn: Connection, given: str, lot: str, where: str) -> custody_store.LotCustody:
    """The lot's custody; refusals named after where the lot was in the request (``lots[2].gtin``), the
    product before the lot, as typed."""
    try:
        checked_text("product", given, max_len=64)
        product, _ = custody_store.resolve_product(conn, given)
        checked_text("lot", lot, max_len=64)
        return custody_store.lot_custody(conn, product, lot)
    except UserInputError as exc:
        raise type(exc)(f"{where}.{exc.field}", str(exc).removeprefix(f"{exc.field}: ")) from None


def _resolve_serial(conn: Connection, unit_id: str, where: str) -> custody_store.UnitCustody:
    checked_text(where, unit_id, max_len=200)
    try:
        found = custody_store.unit_custody(conn, unit_id)
    except UserInputError as exc:
        raise type(exc)(where, str(exc).removeprefix(f"{exc.field}: ")) from None
    if found.unit.serial is None:
        raise UserInputError(where, f"{unit_id!r} is a pallet: recall the lots on it, or its cases by serial")
    return found


def open_recall(
    conn: Connection, *, recall_class: str, reason: str, lots: Sequence[tuple[str, str]] = (),
    serials: Sequence[str] = (), initiated_at: datetime.datetime | None = None, by: Actor,
    held: frozenset[str], now: datetime.datetime, new_id: Callable[[], str] = _new_id,
) -> dict[str, Any]:  # fmt: skip
    """Open a recall of ``lots`` ((GTIN or product id, lot number) pairs) and ``serials`` (unit ids, as
    ``custody_store.parse_unit_id`` reads them), set each lot recalled in the catalog (audited there),
    and audit the opening; the recall as :func:`recall_detail` shows it.  The caller sends the gateways
    their lists after the commit.  Refused, nothing written: no ``recall.run`` (403), an unknown product
    or lot (404), a rejected lot (409), a bad class, reason, GTIN, lot, serial or time (422)."""
    _check_permission(held)
    if recall_class not in rules.CLASSES:
        raise UserInputError(
            "recall_class",
            f"{recall_class!r} is not a recall class (one of "
            f"{', '.join(rules.CLASSES)}: I is the most serious)",
        )
    why = check_reason(reason)
    if not lots and not serials:
        raise UserInputError("lots", "a recall names at least one lot (or serial)")
    if len(lots) + len(serials) > MAX_ITEMS:
        raise UserInputError(
            "lots", f"{len(lots) + len(serials)} lots and serials: at most {MAX_ITEMS} a recall"
        )
    decided = _when("initiated_at", initiated_at, now)
    recall_id = new_id()
    items: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    chains: dict[tuple[str, str], custody_store.LotCustody] = {}
    for n, (given, number) in enumerate(lots):
        found = _resolve_lot(conn, given, number, f"lots[{n}]")
        if (found.product, found.lot, None) in seen:
            raise UserInputError(f"lots[{n}]", f"lot {found.lot} of {found.product} is named twice")
        seen.add((found.product, found.lot, None))
        chains[(found.product, found.lot)] = found
        items.append({"kind": "lot", "asked": f"{given} {number}", "product": found.product,
                      "gtin": found.gtin, "lot": found.lot, "serial": None,
                      "status_before": found.status})  # fmt: skip
    for n, unit_id in enumerate(serials):
        unit = _resolve_serial(conn, unit_id, f"serials[{n}]")
        key = (unit.unit.product or "", unit.unit.lot, unit.unit.serial)
        if key in seen:
            raise UserInputError(f"serials[{n}]", f"serial {unit.unit.serial} of {key[0]} is named twice")
        seen.add(key)
        items.append({"kind": "serial", "asked": unit_id, "product": key[0], "gtin": unit.gtin,
                      "lot": unit.unit.lot, "serial": unit.unit.serial,
                      "status_before": unit.status})  # fmt: skip
    moved = f"recall {recall_id} (class {recall_class}): {why}"[:1000]
    for n, item in enumerate(items):
        if item["kind"] != "lot" or item["status_before"] == "recalled":
            continue
        if item["status_before"] == "rejected":
            raise Conflict(
                f"lots[{n}]",
                f"lot {item['lot']} of {item['product']} is rejected: it never left, "
                "and a rejected lot cannot become recalled (its stock is to be destroyed)",
            )
        if item["status_before"] is None:
            catalog_lots.put_lot(
                conn, item["product"], item["lot"], {}, status="recalled", reason=moved, by=by, now=now
            )
        else:
            catalog_lots.move_lot(
                conn, item["product"], item["lot"], "recalled", reason=moved, by=by, now=now
            )
    row = {"id": recall_id, "recall_class": recall_class, "reason": why, "initiated_at": decided,
           "opened_at": now, "by_name": by.name, "by_id": by.id}  # fmt: skip
    conn.execute(insert(_recalls), row)
    rows = [{"recall_id": recall_id, "seq": n + 1, **x} for n, x in enumerate(items)]
    conn.execute(insert(_items), rows)
    after = {
        "class": recall_class,
        "initiated_at": decided.isoformat(),
        "items": [{k: x[k] for k in ("kind", "product", "lot", "serial", "status_before")} for x in items],
    }
    append(conn, actor=by, action="recall.opened", entity_type=_ENTITY, entity_id=recall_id, now=now,
           after=after, reason=why)  # fmt: skip
    return recall_detail(conn, recall_id, _Derived(conn, rows, chains))


def _header(conn: Connection, recall_id: str) -> Any:
    row = conn.execute(select(_recalls).where(_recalls.c.id == recall_id)).one_or_none()
    if row is None:
        raise NotFound("recall_id", f"no recall {recall_id!r}")
    return row


def _rows(conn: Connection, table: Table, recall_id: str) -> list[dict[str, Any]]:
    query = select(table).where(table.c.recall_id == recall_id).order_by(table.c.seq)
    return [
        {**r._mapping, **({"at": aware(r.at)} if "at" in r._mapping else {})} for r in conn.execute(query)
    ]


class _Derived:
    """What a recall's items make of the custody chain now: the dispatch lines, the stock to block, the
    lots' statuses now (read once per detail)."""

    def __init__(
        self, conn: Connection, items: Iterable[dict[str, Any]],
        chains: Mapping[tuple[str, str], custody_store.LotCustody] | None = None,
    ) -> None:  # fmt: skip
        """``chains``: lots' custody already read in this transaction (the opening's), by product and lot:
        the chain is not read again, only the lot's status, which the opening just moved."""
        self.lines: list[rules.Dispatch] = []
        self.stock: list[dict[str, Any]] = []
        self.status: dict[int, str | None] = {}
        for item in items:
            known = (chains or {}).get((item["product"], item["lot"])) if item["kind"] == "lot" else None
            if known is not None:
                stays, lines, status = (
                    known.stays,
                    known.stock,
                    _status_now(conn, item["product"], item["lot"]),
                )
            elif item["kind"] == "lot":
                chain = custody_store.lot_custody(conn, item["product"], item["lot"])
                stays, lines, status = chain.stays, chain.stock, chain.status
            else:
                unit = custody_store.unit_custody(conn, f"{item['product']}~{quote(item['serial'], safe='')}")
                stays, lines, status = unit.stays, custody_store.stock_at(unit.stays), unit.status
            self.status[item["seq"]] = status
            self.lines += rules.dispatches(stays)
            self.stock += [
                {
                    "item": item["seq"],
                    "product": item["product"],
                    "lot": item["lot"],
                    "serial": item["serial"],
                    **s._asdict(),
                }
                for s in lines
            ]
        self.lines.sort(key=lambda d: (d.customer, d.at, d.document or "", d.product or "", d.lot or ""))


def _state(events: Sequence[dict[str, Any]]) -> RecallState:
    return rules.state_of(events)


def _status_now(conn: Connection, product: str, lot: str) -> str | None:
    try:
        return str(catalog_lots.lot(conn, product, lot)["status"])
    except NotFound:
        return None


def recall_detail(conn: Connection, recall_id: str, derived: _Derived | None = None) -> dict[str, Any]:
    """One recall: as opened, its items (each lot's status now), its state, every customer with what
    they got and what was recorded with them, the stock still on hand, the events, the closing's
    signature (checked against the recall as it stands) and the response times.  NotFound
    (``recall_id``) when there is no such recall."""
    header = _header(conn, recall_id)
    items, events = _rows(conn, _items, recall_id), _rows(conn, _events, recall_id)
    derived = derived or _Derived(conn, items)
    customers = rules.customer_status(derived.lines, events)
    state = _state(events)
    closed = next((e for e in events if e["kind"] == EventKind.CLOSED), None)
    recall = {
        **header._mapping,
        "initiated_at": aware(header.initiated_at),
        "opened_at": aware(header.opened_at),
    }

    def content_at(seq: int) -> dict[str, Any]:
        return rules.signed_content(recall, items, derived.lines, derived.stock, events, seq)

    signed = signatures.signatures_of(conn, _ENTITY, recall_id, content_at)
    item_fields = ("seq", "kind", "asked", "product", "gtin", "lot", "serial", "status_before")
    event_fields = ("seq", "kind", "customer", "product", "lot", "quantity", "channel", "note", "detail",
                    "at", "by_name", "by_id")  # fmt: skip
    closing = closed and {"at": closed["at"], "by": closed["by_name"], "reason": closed["note"],
                          "unacknowledged": closed["detail"]}  # fmt: skip
    return {
        "id": recall_id, "recall_class": header.recall_class, "reason": header.reason,
        "initiated_at": recall["initiated_at"], "opened_at": recall["opened_at"], "opened_by": header.by_name,
        "state": state.value,
        "items": [{**{k: i[k] for k in item_fields}, "status": derived.status.get(i["seq"]),
                   "blocked_at_door": i["kind"] == "lot"} for i in items],
        "customers": [_customer_out(c) for c in customers],
        "stock": derived.stock,
        "events": [{k: e[k] for k in event_fields} for e in events],
        "signatures": signed,
        "closing": closing,
        "response": rules.response_times(recall["initiated_at"], recall["opened_at"], customers,
                                         closed["at"] if closed else None),
    }  # fmt: skip


def _customer_out(c: rules.CustomerStatus) -> dict[str, Any]:
    return {
        "customer": c.customer, "notified_at": c.notified_at, "notifications": c.notifications,
        "channels": list(c.channels), "acknowledged_at": c.acknowledged_at,
        "acknowledged_by": c.acknowledged_by,
        "acknowledgement_note": c.acknowledgement_note,
        "dispatches": [d._asdict() for d in c.dispatches],
        "returned": [{"product": k.split("/", 1)[0], "lot": k.split("/", 1)[1], "quantity": v}
                     for k, v in sorted(c.returned.items())],
        "returns": [{"seq": r["seq"], "product": r["product"], "lot": r["lot"], "quantity": r["quantity"],
                     "note": r["note"], "at": r["at"], "by": r["by_name"]} for r in c.returns],
    }  # fmt: skip


def customer_csv(conn: Connection, recall_id: str) -> str:
    """The recall's customer notification list as CSV (``recall.customer_csv``)."""
    _header(conn, recall_id)
    items, events = _rows(conn, _items, recall_id), _rows(conn, _events, recall_id)
    derived = _Derived(conn, items)
    gtins = {i["product"]: i["gtin"] for i in items}
    return rules.customer_csv(rules.customer_status(derived.lines, events), gtins)


def list_recalls(
    conn: Connection, *, state: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Recalls, newest opened first, each with its state and items (no custody is derived: a list stays
    fast); ``state`` (``all``: any) filters."""
    if state == "all":
        state = None
    if state is not None and state not in {s.value for s in RecallState}:
        choices = ", ".join(s.value for s in RecallState)
        raise UserInputError("state", f"{state!r} is not a recall state (one of {choices}, or all)")
    rows = conn.execute(select(_recalls).order_by(_recalls.c.opened_at.desc(), _recalls.c.id)).all()
    ids = [r.id for r in rows]
    kinds: dict[str, list[dict[str, Any]]] = {}
    items: dict[str, list[str]] = {}
    for chunk in range(0, len(ids), 900):
        part = ids[chunk : chunk + 900]
        for e in conn.execute(
            select(_events.c.recall_id, _events.c.kind).where(_events.c.recall_id.in_(part))
        ):
            kinds.setdefault(e.recall_id, []).append({"kind": e.kind})
        query = select(_items).where(_items.c.recall_id.in_(part)).order_by(_items.c.recall_id, _items.c.seq)
        for i in conn.execute(query):
            named = f"{i.product} lot {i.lot}" if i.kind == "lot" else f"{i.product} serial {i.serial}"
            items.setdefault(i.recall_id, []).append(named)
    found = []
    for r in rows:
        now_state = _state(kinds.get(r.id, [])).value
        if state is not None and now_state != state:
            continue
        found.append(
            {
                "id": r.id,
                "recall_class": r.recall_class,
                "reason": r.reason,
                "state": now_state,
                "initiated_at": aware(r.initiated_at),
                "opened_at": aware(r.opened_at),
                "opened_by": r.by_name,
                "items": items.get(r.id, []),
            }
        )
    return found[offset : offset + limit]


def _lock(conn: Connection, recall_id: str) -> Any:
    """The recall's row, locked on PostgreSQL for the write (two people recording at once must not both
    number their event the same, nor close twice); SQLite's writer holds its one lock already."""
    query = select(_recalls).where(_recalls.c.id == recall_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound("recall_id", f"no recall {recall_id!r}")
    return row


def _add_event(
    conn: Connection, recall_id: str, kind: EventKind, by: Actor, now: datetime.datetime,
    at: datetime.datetime, **fields: Any,
) -> int:  # fmt: skip
    e = _events.c
    last = conn.execute(
        select(func.coalesce(func.max(e.seq), 0)).where(e.recall_id == recall_id)
    ).scalar_one()
    seq = int(last) + 1
    row = {"customer": None, "product": None, "lot": None, "quantity": None, "channel": None, "note": None,
           "detail": None, **fields, "recall_id": recall_id, "seq": seq, "kind": kind.value, "at": at,
           "by_name": by.name, "by_id": by.id}  # fmt: skip
    conn.execute(insert(_events), row)
    after = {k: v for k, v in row.items() if k not in ("recall_id", "by_name", "by_id") and v is not None}
    after["at"] = at.isoformat()
    append(conn, actor=by, action=f"recall.{kind.value}", entity_type=_ENTITY, entity_id=recall_id, now=now,
           after=after, reason=fields.get("note"))  # fmt: skip
    return seq


class _Situation(NamedTuple):
    """A recall as a write finds it (its row locked): the custody derived once serves the check and the
    answer, since a write on the recall changes its events, never its custody."""

    header: Any
    items: list[dict[str, Any]]
    events: list[dict[str, Any]]
    derived: _Derived
    customers: list[rules.CustomerStatus]


def _situation(conn: Connection, recall_id: str) -> _Situation:
    header = _lock(conn, recall_id)
    items, events = _rows(conn, _items, recall_id), _rows(conn, _events, recall_id)
    derived = _Derived(conn, items)
    return _Situation(header, items, events, derived, rules.customer_status(derived.lines, events))


def record_customer_event(
    conn: Connection, recall_id: str, customer: str, kind: str, *, channel: str | None = None,
    note: str | None = None, at: datetime.datetime | None = None, by: Actor, held: frozenset[str],
    now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Record that ``customer`` was notified (``channel``: how) or acknowledged, at ``at`` (default now),
    audited; the recall as it then stands.  Refused: an unknown recall or customer (404), a closed
    recall, an acknowledgement before a notification or a second one (409), a bad field (422)."""
    _check_permission(held)
    if kind not in (EventKind.NOTIFIED, EventKind.ACKNOWLEDGED):
        raise UserInputError("kind", f"{kind!r}: a customer is notified or acknowledges")
    how = _text("channel", channel, 32)
    if kind == EventKind.NOTIFIED and how is None:
        raise UserInputError("channel", "say how the customer was notified (email, phone, letter, ...)")
    said = _text("note", note, 1000)
    header, _, events, derived, customers = _situation(conn, recall_id)
    when = _when("at", at, now, aware(header.initiated_at))
    status = next((c for c in customers if c.customer == customer), None)
    refusal = rules.check_event(rules.state_of(events), EventKind(kind), status, customer)
    if refusal is not None:
        raise _refused(refusal)
    first = status.notified_at if status is not None else None
    if kind == EventKind.ACKNOWLEDGED and first is not None and when < first:
        raise UserInputError(
            "at", f"{when.isoformat()} is before {customer} was notified ({first.isoformat()})"
        )
    _add_event(conn, recall_id, EventKind(kind), by, now, when, customer=customer, channel=how, note=said)
    return recall_detail(conn, recall_id, derived)


def record_return(
    conn: Connection, recall_id: str, customer: str, *, quantity: int, product: str | None = None,
    lot: str | None = None, note: str | None = None, at: datetime.datetime | None = None, by: Actor,
    held: frozenset[str], now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Record ``quantity`` of a lot of the recall returned by ``customer`` (``product`` and ``lot`` may be
    left out when the recall has one lot), audited; several returns per customer add up."""
    _check_permission(held)
    said = _text("note", note, 1000)
    header, items, events, derived, customers = _situation(conn, recall_id)
    when = _when("at", at, now, aware(header.initiated_at))
    lots = list(dict.fromkeys(f"{i['product']}/{i['lot']}" for i in items if i["lot"]))
    if lot is None and len(lots) == 1:
        asked = lots[0]
    elif lot is None:
        raise UserInputError(
            "lot", f"the recall has {len(lots)} lots: name the one returned ({', '.join(lots)})"
        )
    else:
        matching = [x for x in lots if x.split("/", 1)[1] == lot
                    and (product is None or product in (x.split("/", 1)[0], _gtin_of(items, x)))]  # fmt: skip
        asked = matching[0] if len(matching) == 1 else f"{product or '?'}/{lot}"
    status = next((c for c in customers if c.customer == customer), None)
    refusal = rules.check_event(
        rules.state_of(events), EventKind.RETURNED, status, customer, lots=lots, lot=asked, quantity=quantity
    )
    if refusal is not None:
        raise _refused(refusal)
    product_id, lot_number = asked.split("/", 1)
    _add_event(conn, recall_id, EventKind.RETURNED, by, now, when, customer=customer, product=product_id,
               lot=lot_number, quantity=quantity, note=said)  # fmt: skip
    return recall_detail(conn, recall_id, derived)


def _gtin_of(items: Iterable[dict[str, Any]], pair: str) -> str | None:
    return next((i["gtin"] for i in items if f"{i['product']}/{i['lot']}" == pair), None)


def close_recall(
    conn: Connection, recall_id: str, *, reason: str, unacknowledged: str | None = None,
    signer: SignedBy | None, by: Actor, held: frozenset[str], now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Close the recall with ``signer``'s e-signature (re-authenticated by the caller) over the recall as
    it stands (``recall.signed_content``), audited.  Refused: no signature or another person's (422,
    403), a customer not notified, or not acknowledged without ``unacknowledged`` saying why (409)."""
    _check_permission(held)
    why = check_reason(reason)
    unacked = _text("unacknowledged", unacknowledged, 1000)
    if signer is None:
        raise UserInputError(
            "signature",
            "closing a recall is signed: give your password (and your login at "
            "your first signature in a session) in signature",
        )
    if by.id != signer.user_id:
        raise Forbidden("signature", "a signature is given by the person signed in, nobody else")
    header, items, events, derived, customers = _situation(conn, recall_id)
    refusal = rules.check_close(rules.state_of(events), customers, unacked)
    if refusal is not None:
        raise _refused(refusal)
    recall = {
        **header._mapping,
        "initiated_at": aware(header.initiated_at),
        "opened_at": aware(header.opened_at),
    }
    seq = max((int(e["seq"]) for e in events), default=0)
    closing = {"seq": seq + 1, "kind": EventKind.CLOSED.value, "note": why, "detail": unacked}
    content = rules.signed_content(recall, items, derived.lines, derived.stock, [*events, closing], seq)
    mark = SignatureMark(
        _ENTITY,
        recall_id,
        seq,
        EventKind.CLOSED.value,
        None,
        "approved",
        why,
        signer.user_id,
        signer.login,
        signer.name,
        now,
    )
    signed = signatures.record_signature(
        conn, mark, content, session_sha256=signer.session_sha256, client=by.client
    )
    _add_event(conn, recall_id, EventKind.CLOSED, by, now, now, note=why, detail=unacked)
    append(
        conn,
        actor=by,
        action="recall.signed",
        entity_type=_ENTITY,
        entity_id=recall_id,
        now=now,
        after={"signature": signed["id"], "meaning": "approved", "content_sha256": signed["content_sha256"]},
        reason=why,
    )
    return recall_detail(conn, recall_id, derived)


def record_refusal(
    conn: Connection,
    recall_id: str,
    asked: str,
    refusal: UserInputError,
    *,
    by: Actor,
    now: datetime.datetime,
) -> None:
    """Audit a refused write on a recall (in its own transaction: the refused one rolled back): an
    inspector asks who tried to close a recall early, not only who closed it."""
    append(conn, actor=by, action="recall.refused", entity_type=_ENTITY, entity_id=recall_id[:64], now=now,
           after={"asked": asked[:64]}, reason=str(refusal)[:1000])  # fmt: skip
