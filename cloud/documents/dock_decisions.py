"""The dock's decisions about a document, each a record with who, when and why, audited in the caller's
transaction: a discrepancy accepted, an unbound item assigned by hand; and the rule that a document is
completed only when none of its discrepancies is left open.

GDP asks that goods received short, over or wrong are not booked as if all were well: someone allowed
to decide (``qa.decide``) says why a difference is accepted, or the dock resolves it (the missing case
turns up, a stray item is assigned), before the receipt is complete.  A discrepancy is *open* while the
reconciliation still reports it, it is not merely informative (a duplicate read), and no acceptance
names its key (``Discrepancy.key``: the discrepancy as it stood, so an acceptance of three missing cases
does not cover a fourth).  Nothing here is edited or deleted: both tables refuse it (migration 0021).

Dates: the moment (``when``) is the caller's; expiry and short dating are judged on the date at the
document's site then (``reconciliation_store.site_date``).  A bare date is taken as it is (tests).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.versions import Conflict, check_reason
from coldgate.cloud.db.models import BindingRow, DiscrepancyAcceptance, ItemAssignment
from coldgate.cloud.documents import binding_store
from coldgate.cloud.documents.binding import ItemKey
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.documents.model import OPEN_STATES
from coldgate.cloud.documents.reconciliation import INFO_KINDS, Discrepancy
from coldgate.cloud.documents.reconciliation_store import check_document, stored_document
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text

__all__ = [
    "Judged", "accept_discrepancy", "acceptances", "assign_item", "judged_discrepancies", "refuse_open",
]  # fmt: skip

#: How many open discrepancies a refusal names before it says "and N more".
_NAMED = 5


@dataclass(frozen=True, slots=True)
class Judged:
    """A discrepancy with its acceptance, if someone accepted it (``accepted`` is the stored record)."""

    key: str
    discrepancy: Discrepancy
    accepted: dict[str, Any] | None

    @property
    def blocking(self) -> bool:
        """Keeps the document from being completed: not informative and not accepted."""
        return self.accepted is None and self.discrepancy.kind not in INFO_KINDS


def acceptances(conn: Connection, document_id: str) -> dict[str, dict[str, Any]]:
    """The acceptances of the document's discrepancies by key (the first one, if a key was accepted
    twice by two people racing)."""
    a = DiscrepancyAcceptance
    query = select(DiscrepancyAcceptance.__table__).where(a.document == document_id).order_by(a.id)
    found: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query).mappings():
        found.setdefault(row["key"], {
            "key": row["key"], "kind": row["kind"], "summary": row["summary"], "reason": row["reason"],
            "accepted_at": row["accepted_at"].isoformat(), "accepted_by": row["accepted_by"],
        })  # fmt: skip
    return found


def judged_discrepancies(
    conn: Connection, document_id: str, when: datetime.date, *, index: CatalogIndex | None = None
) -> list[Judged]:
    """The document's discrepancies now, each with its acceptance; NotFound if there is no document.
    ``index``: the site's catalog index already read (a watch judges many documents of one site)."""
    check = check_document(conn, document_id, when, index=index)
    accepted = acceptances(conn, document_id)
    return [Judged(d.key, d, accepted.get(d.key)) for d in check.reconciliation.discrepancies]


def _described(d: Discrepancy) -> str:
    where = f"line {d.line}" if d.line is not None else "no line"
    return f"{d.kind} ({where}): {d.detail}"


def refuse_open(conn: Connection, document_id: str, when: datetime.date) -> None:
    """A Conflict (``discrepancies``) naming the open discrepancies, if there are any."""
    still = [j for j in judged_discrepancies(conn, document_id, when) if j.blocking]
    if not still:
        return
    named = "; ".join(_described(j.discrepancy) for j in still[:_NAMED])
    more = f"; and {len(still) - _NAMED} more" if len(still) > _NAMED else ""
    raise Conflict(
        "discrepancies",
        f"document {document_id} has {len(still)} open discrepancies: {named}{more}. Resolve them at the "
        "dock, or have them accepted with a reason by someone allowed to decide (qa.decide), then complete",
    )


def accept_discrepancy(
    conn: Connection, document_id: str, key: object, *, reason: str, by: Actor, now: datetime.datetime,
    today: datetime.date | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Accept the document's discrepancy ``key`` as it stands now, with the reason; audited.  Judged on
    ``today`` when given, else on the date at the document's site at ``now``."""
    name = checked_text("key", key, max_len=200)
    why = check_reason(reason)
    document = stored_document(conn, document_id)
    if document.state not in OPEN_STATES:
        raise UserInputError("state", f"document {document_id} is {document.state}: discrepancies are "
                             "accepted while it is worked at the dock (released or in progress)")  # fmt: skip
    judged = {j.key: j for j in judged_discrepancies(conn, document_id, now if today is None else today)}
    found = judged.get(name)
    if found is None:
        raise UserInputError("key", f"document {document_id} has no discrepancy {name!r} now: it was "
                             "resolved or has changed since it was read (read it again)")  # fmt: skip
    if found.accepted is not None:
        raise Conflict("key", f"discrepancy {name!r} was accepted by {found.accepted['accepted_by']} at "
                       f"{found.accepted['accepted_at']}")  # fmt: skip
    if found.discrepancy.kind in INFO_KINDS:
        raise UserInputError("key", f"{found.discrepancy.kind} is informative: nothing to accept")
    record = {
        "document": document_id, "key": name, "kind": found.discrepancy.kind,
        "summary": _described(found.discrepancy), "reason": why, "accepted_at": now, "accepted_by": by.name,
        "accepted_by_id": by.id,
    }  # fmt: skip
    conn.execute(insert(DiscrepancyAcceptance.__table__).values(**record))
    after = {**record, "accepted_at": now.isoformat()}
    del after["accepted_by_id"]
    append(conn, actor=by, action="document.accept_discrepancy", entity_type="document",
           entity_id=document_id, now=now, after=after, reason=why)  # fmt: skip
    return after


def _item_key(fields: dict[str, Any]) -> ItemKey:
    gateway = checked_text("gateway", fields.get("gateway"), max_len=64)
    stream = checked_text("stream", fields.get("stream"), max_len=64)
    seq = fields.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise UserInputError("seq", f"{seq!r} is not an item's sequence number (a whole number, 0 or more)")
    return ItemKey(gateway, stream, seq)


def assign_item(
    conn: Connection, site: str, door: str, fields: dict[str, Any], *, reason: str, by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Assign the item ``fields`` names (gateway, stream, seq), left unbound at ``door`` of ``site``, to
    the document ``fields['document']`` (open, of that site) and, if given, its ``line``; the item is
    bound again at once, and on every re-run.  Audited; returns the item's new binding."""
    key = _item_key(fields)
    why = check_reason(reason)
    b = BindingRow
    row = conn.execute(
        select(b.site, b.door, b.document, b.reason)
        .where(b.gateway == key.gateway, b.stream == key.stream, b.seq == key.seq)
    ).first()  # fmt: skip
    if row is None or row.site != site or row.door != door:
        raise NotFound("item", f"no item {key.gateway}/{key.stream}/{key.seq} bound or left unbound at door "
                       f"{door!r} of site {site!r}")  # fmt: skip
    if row.document is not None:
        raise Conflict("item", f"item {key.gateway}/{key.stream}/{key.seq} is bound to document "
                       f"{row.document}: only an unbound item is assigned")  # fmt: skip
    target = checked_text("document", fields.get("document"), max_len=64)
    document = stored_document(conn, target)
    if document.site != site:
        raise UserInputError("document", f"document {target} is of site {document.site!r}, not {site!r}")
    if document.state not in OPEN_STATES:
        raise UserInputError("document", f"document {target} is {document.state}: an item is assigned to a "
                             "document being worked (released to the dock or in progress)")  # fmt: skip
    line = fields.get("line")
    if line is not None:
        numbers = sorted(x.number for x in document.lines)
        if not isinstance(line, int) or isinstance(line, bool) or line not in numbers:
            raise UserInputError("line", f"{line!r} is no line of document {target} (its lines: "
                                 f"{', '.join(map(str, numbers))})")  # fmt: skip
    record = {"gateway": key.gateway, "stream": key.stream, "seq": key.seq, "document": target, "line": line,
              "reason": why, "assigned_at": now, "assigned_by": by.name, "assigned_by_id": by.id}  # fmt: skip
    conn.execute(insert(ItemAssignment.__table__).values(**record))
    conn.execute(delete(BindingRow.__table__).where(
        b.gateway == key.gateway, b.stream == key.stream, b.seq == key.seq
    ))  # fmt: skip
    binding_store.bind_pending(conn, now, only=key)
    bound = conn.execute(
        select(b.document, b.line, b.how, b.reason)
        .where(b.gateway == key.gateway, b.stream == key.stream, b.seq == key.seq)
    ).one()  # fmt: skip
    after = {"item": f"{key.gateway}/{key.stream}/{key.seq}", "document": bound.document, "line": bound.line,
             "how": bound.how, "binding": bound.reason}  # fmt: skip
    append(conn, actor=by, action="document.assign_item", entity_type="document", entity_id=target, now=now,
           before={"item": after["item"], "unbound": row.reason}, after=after, reason=why)  # fmt: skip
    return after
