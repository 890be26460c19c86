"""Master-data changes and their approvals, in the database: the one query layer of
``GET /catalog/changes``, ``POST /catalog/changes/{seq}/approve`` and the page
``/dashboard/catalog/changes``.

A change is an audit entry (``audit_log``) of a master-data action (``change_approval.py``); its
approval is an electronic signature of record type ``catalog_change`` whose record id is the entry's
seq, so nothing is stored twice and no table is added: "awaiting" is a change without such a signature.
The approval and its audit entry are written in the caller's transaction (with the re-authentication,
``cloud/api/signing.py``); a refusal is raised and rolls them back, and ``record_refusal`` audits it in
a transaction of its own.  A change's effect is not held back until it is approved (see
``change_approval.py``: a known limit).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from sqlalchemy import Connection, String, and_, cast, exists, func, select, text

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.change_approval import (
    APPROVED_ACTION,
    MASTER_DATA_ACTIONS,
    MEANING,
    RECORD_SEQ,
    RECORD_TYPE,
    REFUSED_ACTION,
    SIGNED_ACTION,
    STATES,
    Refusal,
    check_approval,
    differences,
    not_a_change,
    signed_content,
    what_changed,
)
from coldgate.cloud.catalog.versions import MAX_REASON, Conflict
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.identity import signatures
from coldgate.cloud.identity.signatures import SignatureMark, SignedBy
from coldgate.cloud.identity.users import Forbidden, NotFound, UserInputError, aware, checked_text

__all__ = ["approve", "change", "changes", "count", "record_refusal"]

_audit = AuditEntry.__table__
_signatures = signatures.table()
#: Names the approvals' PostgreSQL advisory lock (an arbitrary constant: "CCAP").
_LOCK_KEY = 0x43434150
#: The stored fields a change is read with.
_FIELDS = ("seq", "at", "actor_id", "actor_name", "action", "entity_type", "entity_id", "before", "after",
           "reason", "hash")  # fmt: skip


def _approved() -> Any:
    """Whether the audit entry of the outer query has an approval signature."""
    s = _signatures.c
    return exists().where(
        and_(
            s.record_type == RECORD_TYPE,
            s.record_id == cast(_audit.c.seq, String),
            s.record_seq == RECORD_SEQ,
        )
    )


def _check_state(state: str) -> None:
    if state not in STATES:
        raise UserInputError("state", f"{state!r} is not a state of a change (one of {', '.join(STATES)})")


def _query(state: str) -> Any:
    query = select(*(_audit.c[name] for name in _FIELDS)).where(
        _audit.c.action.in_(list(MASTER_DATA_ACTIONS))
    )
    if state == "awaiting":
        query = query.where(~_approved())
    elif state == "approved":
        query = query.where(_approved())
    return query


def count(conn: Connection, *, state: str = "awaiting") -> int:
    """How many master-data changes are in ``state`` (awaiting, approved, all)."""
    _check_state(state)
    return int(conn.execute(select(func.count()).select_from(_query(state).subquery())).scalar_one())


def changes(
    conn: Connection, *, state: str = "awaiting", limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """The master-data changes in ``state``, newest first, each with its approvals checked against the
    audit entry as it stands."""
    _check_state(state)
    rows = conn.execute(_query(state).order_by(_audit.c.seq.desc()).limit(limit).offset(offset)).all()
    signed = _signed_seqs(conn, [row.seq for row in rows]) if state != "awaiting" else set()
    return [_shown(conn, row, row.seq in signed) for row in rows]


def _signed_seqs(conn: Connection, seqs: list[int]) -> set[int]:
    """Which of ``seqs`` have an approval signature (one query for a page of changes)."""
    if not seqs:
        return set()
    s = _signatures.c
    found = conn.execute(
        select(s.record_id).where(s.record_type == RECORD_TYPE, s.record_id.in_([str(seq) for seq in seqs]))
    ).scalars()
    return {int(record_id) for record_id in found}


def _row(conn: Connection, seq: int) -> Any:
    row = conn.execute(select(*(_audit.c[name] for name in _FIELDS)).where(_audit.c.seq == seq)).first()
    if row is None:
        raise NotFound("seq", f"no audit entry {seq}: no such change")
    return row


def _approvals(conn: Connection, row: Any) -> list[dict[str, Any]]:
    content = signed_content(row._mapping)
    return signatures.signatures_of(conn, RECORD_TYPE, str(row.seq), lambda _step: content)


def _parsed(stored: str | None) -> Any:
    return None if stored is None else json.loads(stored)


def _shown(conn: Connection, row: Any, signed: bool) -> dict[str, Any]:
    before, after = _parsed(row.before), _parsed(row.after)
    approvals = _approvals(conn, row) if signed else []
    return {
        "seq": row.seq, "at": aware(row.at), "action": row.action, "what": what_changed(row.action),
        "entity_type": row.entity_type, "entity_id": row.entity_id, "actor_id": row.actor_id,
        "actor_name": row.actor_name, "reason": row.reason, "before": before, "after": after,
        "changes": differences(before, after), "approved": bool(approvals), "approvals": approvals,
    }  # fmt: skip


def change(conn: Connection, seq: int) -> dict[str, Any]:
    """One master-data change with its approvals; NotFound for no entry, a 422 for an entry that is no
    master-data change."""
    row = _row(conn, seq)
    refused = not_a_change(row.seq, row.action)
    if refused is not None:
        raise _error(refused)
    return _shown(conn, row, True)


def _error(refusal: Refusal) -> UserInputError:
    if refusal.kind == "forbidden":
        return Forbidden("signature", refusal.message)
    if refusal.kind == "conflict":
        return Conflict("seq", refusal.message)
    return UserInputError("seq", refusal.message)


def approve(
    conn: Connection, seq: int, *, signer: SignedBy, held: frozenset[str], reason: str | None, by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """Approve change ``seq`` with ``signer``'s signature (re-authenticated by the caller in ``conn``'s
    transaction), audited there; or raise why not (nothing written)."""
    if conn.dialect.name == "postgresql":
        # One approval at a time: two people approving the same change at once must not both see it
        # unapproved.  (SQLite's writer holds its one write lock from the transaction's start.)
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    row = _row(conn, seq)
    approvals = _approvals(conn, row) if row.action in MASTER_DATA_ACTIONS else []
    refused = check_approval(
        row._mapping, signer_id=signer.user_id, signer_name=signer.name, held=held, approvals=approvals
    )
    if refused is not None:
        raise _error(refused)
    why = None if reason is None else (checked_text("reason", reason, max_len=MAX_REASON).strip() or None)
    mark = SignatureMark(
        RECORD_TYPE, str(row.seq), RECORD_SEQ, SIGNED_ACTION, row.action, MEANING, why, signer.user_id,
        signer.login, signer.name, now,
    )  # fmt: skip
    signed = signatures.record_signature(
        conn, mark, signed_content(row._mapping), session_sha256=signer.session_sha256, client=by.client
    )
    append(
        conn, actor=by, action=APPROVED_ACTION, entity_type=RECORD_TYPE, entity_id=str(row.seq), now=now,
        after={"signature": signed["id"], "meaning": MEANING, "change": row.action,
               "record": f"{row.entity_type}:{row.entity_id}", "author": row.actor_name,
               "content_sha256": signed["content_sha256"]},
        reason=why,
    )  # fmt: skip
    return _shown(conn, row, True)


def record_refusal(
    conn: Connection, seq: int, refusal: UserInputError, *, by: Actor, now: datetime.datetime
) -> None:
    """Audit a refused approval (its own transaction: the refused one rolled back): who tried to approve
    which change, and why it was refused."""
    append(conn, actor=by, action=REFUSED_ACTION, entity_type=RECORD_TYPE, entity_id=str(seq)[:64], now=now,
           after={"asked": "approve"}, reason=str(refusal)[:MAX_REASON])  # fmt: skip
