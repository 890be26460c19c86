"""The dock's decisions about a document, each a record with who, when and why, audited in the caller's
transaction: a discrepancy accepted, an unbound item assigned by hand; and the rule that a document is
completed only when none of its discrepancies is left open.

GDP asks that goods received short, over or wrong are not booked as if all were well: someone allowed
to decide (``qa.decide``) says why a difference is accepted, or the dock resolves it (the missing case
turns up, a stray item is assigned), before the receipt is complete.  A discrepancy is *open* while the
reconciliation still reports it, it is not merely informative (a duplicate read), and no acceptance
names its key (``Discrepancy.key``: the discrepancy as it stood, so an acceptance of three missing cases
does not cover a fourth).  Nothing here is edited or deleted: both tables refuse it (migration 0021).

An acceptance is a signed decision (21 CFR Part 11), as a QA case's closing is: the route re-authenticates
the person (``cloud/api/signing.py``) and the acceptance stores their signature of the document as it
stood and the discrepancy as QA saw it (``acceptance_content``), in the same transaction; wherever it is
shown, the signature is checked against the stored record again.  Acceptances made before signatures
have none and show so (``signature`` None).

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
from coldgate.cloud.db.models import BindingRow, DiscrepancyAcceptance, DocumentVersion, ItemAssignment
from coldgate.cloud.documents import binding_store
from coldgate.cloud.documents.acceptance_content import ACTION, MEANING, RECORD_TYPE, signed_content
from coldgate.cloud.documents.binding import ItemKey
from coldgate.cloud.documents.documents import last_version
from coldgate.cloud.documents.identifiers import CatalogIndex
from coldgate.cloud.documents.model import OPEN_STATES
from coldgate.cloud.documents.reconciliation import INFO_KINDS, Discrepancy
from coldgate.cloud.documents.reconciliation_store import check_document, stored_document
from coldgate.cloud.identity import signatures
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy
from coldgate.cloud.identity.users import Forbidden, NotFound, UserInputError, checked_text

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


def _shown(row: Any, signature: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "key": row["key"], "kind": row["kind"], "summary": row["summary"], "reason": row["reason"],
        "accepted_at": row["accepted_at"].isoformat(), "accepted_by": row["accepted_by"],
        "signature": signature,
    }  # fmt: skip


def _utc(signature: dict[str, Any]) -> dict[str, Any]:
    """The signature with its time in UTC, as Part 11 pages show it (PostgreSQL may hand it back in the
    session's zone)."""
    return {**signature, "signed_at": signature["signed_at"].astimezone(datetime.UTC)}


def _content(document_id: str, reference: str | None, row: Any) -> dict[str, Any]:
    """What the acceptance ``row``'s signature signed, rebuilt from the stored record (nothing for a row
    from before signatures: a signature pointing at it cannot match)."""
    if row is None or row["document_version"] is None or reference is None:
        return {}
    return signed_content(document_id, reference, row["document_version"], key=row["key"], kind=row["kind"],
                          detail=row["detail"] or "")  # fmt: skip


def acceptances(conn: Connection, document_id: str) -> dict[str, dict[str, Any]]:
    """The acceptances of the document's discrepancies by key (the first one, if a key was accepted
    twice by two people racing), each with its signature checked against the record as it stands now
    (``signature`` None: accepted before acceptances were signed)."""
    a = DiscrepancyAcceptance
    query = select(DiscrepancyAcceptance.__table__).where(a.document == document_id).order_by(a.id)
    rows = conn.execute(query).mappings().all()
    if not rows:
        return {}
    by_id = {row["id"]: row for row in rows}
    v = DocumentVersion
    versions = conn.execute(select(v.version, v.reference).where(v.id == document_id))
    references: dict[int, str] = {row.version: row.reference for row in versions}

    def content_at(seq: int) -> dict[str, Any]:
        row = by_id.get(seq)
        return _content(document_id, references.get(row["document_version"]) if row else None, row)

    signed: dict[int, dict[str, Any]] = {}
    for given in signatures.signatures_of(conn, RECORD_TYPE, document_id, content_at):
        if given["action"] == ACTION:
            signed.setdefault(given["record_seq"], _utc(given))
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["key"] not in found:
            found[row["key"]] = _shown(row, signed.get(row["id"]))
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
    conn: Connection, document_id: str, key: object, *, reason: str, by: Actor, signer: SignedBy,
    now: datetime.datetime, today: datetime.date | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Accept the document's discrepancy ``key`` as it stands now, with the reason, signed by ``signer``
    (re-authenticated by the caller: the person acting, nobody else); audited.  Judged on ``today`` when
    given, else on the date at the document's site at ``now``."""
    if by.id != signer.user_id:
        raise Forbidden("signature", "a signature is given by the person signed in, nobody else")
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
    version = last_version(conn, document_id).version
    gap = found.discrepancy
    record = {
        "document": document_id, "key": name, "kind": gap.kind, "summary": _described(gap), "reason": why,
        "accepted_at": now, "accepted_by": by.name, "accepted_by_id": by.id, "document_version": version,
        "detail": gap.detail,
    }  # fmt: skip
    added = conn.execute(insert(DiscrepancyAcceptance.__table__).values(**record)).inserted_primary_key
    assert added is not None
    content = signed_content(document_id, document.reference, version, key=name, kind=gap.kind,
                             detail=gap.detail)  # fmt: skip
    mark = SignatureMark(RECORD_TYPE, document_id, int(added[0]), ACTION, gap.kind, MEANING, why,
                         signer.user_id, signer.login, signer.name, now)  # fmt: skip
    signed = signatures.record_signature(conn, mark, content, session_sha256=signer.session_sha256,
                                         client=by.client)  # fmt: skip
    after = {**record, "accepted_at": now.isoformat(), "signature": {
        "id": signed["id"], "meaning": MEANING, "signer": signer.login,
        "content_sha256": signed["content_sha256"],
    }}  # fmt: skip
    del after["accepted_by_id"]
    append(conn, actor=by, action="document.accept_discrepancy", entity_type="document",
           entity_id=document_id, now=now, after=after, reason=why)  # fmt: skip
    return {**after, "signature": _utc(signed)}


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
