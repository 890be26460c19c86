"""Recall runs, the pure half: who got the recalled goods (from the custody chain's stays), where what is
left is, what a recall's recorded events make of it (its state, each customer's notification,
acknowledgement and returns, the response times), which next event it accepts, and what its closing
signature signs.  No I/O: ``recall_store.py`` reads the rows and the chains and hands them here.

Why these rules, as a QA or recall manager would run a recall (FDA 21 CFR 7.49, EU GDP 6.5):

* The customer list is every dispatch of a recalled lot or serial: a custody stay begun by a dispatch
  (out of our hands, with the customer as its party).  Transfers to another site are not customers:
  what arrives there is our stock again and is listed as stock.  The list is derived whenever asked,
  never stored, so a dispatch bound late still appears (and a closed recall's signature then shows as
  no longer matching: the recall it signed did not know that customer).
* A recall is ``open`` until the first customer is notified, then ``notifying`` until it is ``closed``.
  Notification and acknowledgement are separate events per customer (a customer is notified, possibly
  several times by several channels; later they acknowledge), and each may be recorded after the fact
  with the time it happened.  An acknowledgement before any notification is refused: it would make
  the response time meaningless.
* Closing is signed and refused (409) while any customer on the list has not been notified: there is
  no recall completed without telling everyone.  Customers notified but silent do not block forever:
  recall practice ends the effectiveness checks after reasonable follow-up, so the closing may go on
  only with an explicit ``unacknowledged`` statement (why it closes without them), which names them in
  the signed record.  Stock still on hand does not block the closing (it stays blocked: a recalled
  lot never returns to released) but is part of what the closing signs.
* Response times count from when the recall was decided (``initiated_at``, by default its opening):
  to all stock blocked (the lots set recalled and the gateways' list sent: the opening's commit), to
  all customers notified (the last customer's first notification; a recall with no customer counts as
  notified at its opening) and to all acknowledged, and to the closing.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "CLASSES",
    "CustomerStatus",
    "Dispatch",
    "EventKind",
    "RecallState",
    "Refusal",
    "check_close",
    "check_event",
    "customer_csv",
    "customer_status",
    "dispatches",
    "response_times",
    "signed_content",
    "state_of",
]

#: Recall classes, most serious first (FDA 21 CFR 7.3(m): I, a reasonable probability of serious harm).
CLASSES: Final = ("I", "II", "III")


class RecallState(StrEnum):
    OPEN = "open"
    NOTIFYING = "notifying"
    CLOSED = "closed"


class EventKind(StrEnum):
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    RETURNED = "returned"
    CLOSED = "closed"


class Refusal(NamedTuple):
    """Why an event is refused: ``state`` (the recall's or the customer's state does not allow it: 409),
    ``missing`` (no such customer or lot on the recall: 404), ``field`` (a value is wrong: 422)."""

    kind: Literal["state", "missing", "field"]
    field: str
    message: str


class Dispatch(NamedTuple):
    """What one dispatch document handed one customer of one recalled lot (or serial): pallets, serialised
    cases and a counted quantity, when (the first unit's hand-over, epoch ms), from which site."""

    customer: str
    product: str | None
    lot: str | None
    document: str | None
    reference: str | None
    site: str
    at: int
    pallets: int
    cases: int
    quantity: int


def dispatches(stays: Iterable[Any]) -> list[Dispatch]:
    """Every dispatch among custody ``stays`` (``custody_store.Stay``), one line per customer, document
    and lot, by customer then time.  A stay is a dispatch when a dispatch began it and it is out of our
    hands (no location, a party)."""
    found: dict[tuple[str, str | None, str | None, str | None], list[Any]] = {}
    for stay in stays:
        if stay.began_by.what != "dispatch" or stay.location is not None or not stay.party:
            continue
        unit = stay.unit
        key = (stay.party, stay.began_by.document, unit.product, unit.lot)
        entry = found.setdefault(key, [stay.began_by.reference, stay.site, stay.start, 0, 0, 0])
        entry[2] = min(entry[2], stay.start)
        if unit.sscc is not None:
            entry[3] += 1
        elif unit.key.startswith("lot:"):
            entry[5] += stay.quantity
        else:
            entry[4] += 1
    lines = [
        Dispatch(party, product, lot, document, reference, site, at, pallets, cases, quantity)
        for (party, document, product, lot), (reference, site, at, pallets, cases, quantity) in found.items()
    ]
    return sorted(lines, key=lambda d: (d.customer, d.at, d.document or "", d.product or "", d.lot or ""))


def state_of(events: Iterable[Mapping[str, Any]]) -> RecallState:
    kinds = {e["kind"] for e in events}
    if EventKind.CLOSED in kinds:
        return RecallState.CLOSED
    return RecallState.NOTIFYING if EventKind.NOTIFIED in kinds else RecallState.OPEN


@dataclass(frozen=True, slots=True)
class CustomerStatus:
    """One customer of a recall: what they got, and what has been recorded with them."""

    customer: str
    dispatches: tuple[Dispatch, ...]
    notified_at: datetime.datetime | None = None
    notifications: int = 0
    channels: tuple[str, ...] = ()
    acknowledged_at: datetime.datetime | None = None
    acknowledged_by: str | None = None
    acknowledgement_note: str | None = None
    returns: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def returned(self) -> dict[str, int]:
        """Quantities returned per lot (``product/lot``)."""
        totals: dict[str, int] = {}
        for r in self.returns:
            key = f"{r['product']}/{r['lot']}"
            totals[key] = totals.get(key, 0) + int(r["quantity"])
        return totals


def customer_status(lines: Sequence[Dispatch], events: Iterable[Mapping[str, Any]]) -> list[CustomerStatus]:
    """Each customer of the dispatch ``lines`` with their notifications, acknowledgement (the first) and
    returns from the recall's ``events`` (rows of ``recall_events``, any order), by customer."""
    by_customer: dict[str, list[Dispatch]] = {}
    for line in lines:
        by_customer.setdefault(line.customer, []).append(line)
    recorded: dict[str, list[Mapping[str, Any]]] = {}
    for event in sorted(events, key=lambda e: int(e["seq"])):
        if event.get("customer"):
            recorded.setdefault(event["customer"], []).append(event)
    shown = []
    for customer in sorted(by_customer.keys() | recorded.keys()):
        mine = recorded.get(customer, [])
        told = sorted((e for e in mine if e["kind"] == EventKind.NOTIFIED), key=lambda e: e["at"])
        acks = sorted((e for e in mine if e["kind"] == EventKind.ACKNOWLEDGED), key=lambda e: e["at"])
        shown.append(
            CustomerStatus(
                customer,
                tuple(by_customer.get(customer, ())),
                notified_at=told[0]["at"] if told else None,
                notifications=len(told),
                channels=tuple(dict.fromkeys(e["channel"] for e in told if e.get("channel"))),
                acknowledged_at=acks[0]["at"] if acks else None,
                acknowledged_by=acks[0]["by_name"] if acks else None,
                acknowledgement_note=acks[0]["note"] if acks else None,
                returns=tuple(e for e in mine if e["kind"] == EventKind.RETURNED),
            )
        )
    return shown


def check_event(
    state: RecallState,
    kind: EventKind,
    customer: CustomerStatus | None,
    asked_customer: str,
    *,
    lots: Sequence[str] = (),
    lot: str | None = None,
    quantity: int | None = None,
) -> Refusal | None:
    """Whether the recall accepts ``kind`` for ``asked_customer`` (``customer``: their status, None when
    they are not on the recall); a return names one of the recall's ``lots`` (``product/lot``)."""
    if state is RecallState.CLOSED:
        return Refusal("state", "recall", "the recall is closed: nothing more is recorded on it")
    if customer is None:
        return Refusal(
            "missing",
            "customer",
            f"{asked_customer!r} is not a customer of this recall (nobody of "
            "that name received a recalled lot)",
        )
    if kind is EventKind.ACKNOWLEDGED:
        if customer.notified_at is None:
            return Refusal(
                "state",
                "customer",
                f"{customer.customer} has no notification recorded yet: record "
                "the notification first, then their acknowledgement",
            )
        if customer.acknowledged_at is not None:
            return Refusal(
                "state",
                "customer",
                f"{customer.customer} already acknowledged (by "
                f"{customer.acknowledged_by}): record a note or a return instead",
            )
    if kind is EventKind.RETURNED:
        if lot not in lots:
            return Refusal(
                "missing",
                "lot",
                f"{lot!r} is not a lot of this recall (its lots: "
                f"{', '.join(lots) or 'none: it recalls serials only'})",
            )
        if quantity is None or quantity < 1:
            return Refusal("field", "quantity", f"{quantity!r}: a return is of at least 1")
    return None


def check_close(
    state: RecallState, customers: Sequence[CustomerStatus], unacknowledged: str | None
) -> Refusal | None:
    """Whether the recall may close now (see the module's rules)."""
    if state is RecallState.CLOSED:
        return Refusal("state", "recall", "the recall is already closed")
    silent = [c.customer for c in customers if c.notified_at is None]
    if silent:
        return Refusal(
            "state",
            "customers",
            f"{len(silent)} customer(s) not notified yet: {', '.join(silent)}; "
            "a recall closes only once every customer was told",
        )
    waiting = [c.customer for c in customers if c.acknowledged_at is None]
    if waiting and not unacknowledged:
        return Refusal(
            "state",
            "unacknowledged",
            f"{len(waiting)} customer(s) have not acknowledged: "
            f"{', '.join(waiting)}; record their acknowledgement, or close with 'unacknowledged' "
            "saying why the recall ends without it (e.g. the follow-ups made)",
        )
    if unacknowledged and not waiting:
        return Refusal("field", "unacknowledged", "every customer acknowledged: leave 'unacknowledged' empty")
    return None


def _seconds(start: datetime.datetime, end: datetime.datetime | None) -> int | None:
    return None if end is None else max(0, int((end - start).total_seconds()))


def response_times(
    initiated_at: datetime.datetime,
    blocked_at: datetime.datetime,
    customers: Sequence[CustomerStatus],
    closed_at: datetime.datetime | None,
) -> dict[str, Any]:
    """When all stock was blocked, all customers notified and acknowledged, the recall closed, and each
    in seconds from ``initiated_at`` (None: not yet)."""
    notified = [c.notified_at for c in customers]
    acked = [c.acknowledged_at for c in customers]
    all_notified = blocked_at if not customers else (None if None in notified else max(notified))  # type: ignore[type-var]
    all_acked = blocked_at if not customers else (None if None in acked else max(acked))  # type: ignore[type-var]
    return {
        "initiated_at": initiated_at, "blocked_at": blocked_at, "all_notified_at": all_notified,
        "all_acknowledged_at": all_acked, "closed_at": closed_at,
        "to_blocked_s": _seconds(initiated_at, blocked_at),
        "to_notified_s": _seconds(initiated_at, all_notified),
        "to_acknowledged_s": _seconds(initiated_at, all_acked),
        "to_closed_s": _seconds(initiated_at, closed_at),
    }  # fmt: skip


def _iso(moment: datetime.datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)
    return aware.astimezone(datetime.UTC).isoformat()


def signed_content(
    recall: Mapping[str, Any],
    items: Iterable[Mapping[str, Any]],
    lines: Iterable[Dispatch],
    stock: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    upto_seq: int,
) -> dict[str, Any]:
    """What a recall's closing signs: the recall as opened, its items, the customer list and the stock as
    derived, its events up to the one signed on, and the closing itself (its reason and, when some
    customers never acknowledged, why it closes without them: the event right after ``upto_seq``).
    Text and integers only (times ISO 8601 UTC), so its canonical JSON is the same on either database."""
    ordered = sorted(events, key=lambda e: int(e["seq"]))
    closing = next(
        (e for e in ordered if int(e["seq"]) == upto_seq + 1 and e["kind"] == EventKind.CLOSED), None
    )
    return {
        "type": "recall",
        "recall": {"id": recall["id"], "class": recall["recall_class"], "reason": recall["reason"],
                   "initiated_at": _iso(recall["initiated_at"]), "opened_at": _iso(recall["opened_at"]),
                   "by": recall["by_name"], "by_id": recall["by_id"]},
        "items": [
            {k: i[k] for k in ("seq", "kind", "asked", "product", "gtin", "lot", "serial", "status_before")}
            for i in sorted(items, key=lambda i: int(i["seq"]))
        ],
        "customers": [list(line) for line in lines],
        "stock": [dict(s) for s in stock],
        "events": [{"seq": int(e["seq"]), "kind": e["kind"], "customer": e["customer"],
                    "product": e["product"], "lot": e["lot"], "quantity": e["quantity"],
                    "channel": e["channel"], "note": e["note"], "at": _iso(e["at"]), "by": e["by_name"],
                    "by_id": e["by_id"]}
                   for e in ordered if int(e["seq"]) <= upto_seq],
        "closing": closing and {"reason": closing["note"], "unacknowledged": closing["detail"]},
    }  # fmt: skip


_CSV_HEADER: Final = ("customer", "product", "gtin", "lot", "dispatched_at", "document", "reference",
                      "site", "pallets", "cases", "quantity", "notified_at", "acknowledged_at",
                      "returned")  # fmt: skip


#: A cell a spreadsheet would run as a formula gets a leading apostrophe (as ``GET /audit.csv`` does): a
#: customer's name comes from a dispatch order someone typed or imported.
_FORMULA: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA) else value


def customer_csv(customers: Sequence[CustomerStatus], gtins: Mapping[str, str | None]) -> str:
    """The customer notification list as CSV: a row per customer, dispatch document and lot, with the
    customer's notification and acknowledgement (UTC) and what they returned of that lot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for c in customers:
        returned = c.returned
        for d in c.dispatches:
            at = datetime.datetime.fromtimestamp(d.at / 1000, datetime.UTC)
            writer.writerow(
                _cell(x)
                for x in (
                    c.customer,
                    d.product or "",
                    gtins.get(d.product or "") or "",
                    d.lot or "",
                    _iso(at),
                    d.document or "",
                    d.reference or "",
                    d.site,
                    d.pallets,
                    d.cases,
                    d.quantity,
                    _iso(c.notified_at) if c.notified_at else "",
                    _iso(c.acknowledged_at) if c.acknowledged_at else "",
                    returned.get(f"{d.product}/{d.lot}", 0),
                )
            )
    return out.getvalue()
