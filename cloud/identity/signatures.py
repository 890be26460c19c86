"""Electronic signatures' records (21 CFR Part 11 §11.50, §11.70, §11.100, §11.200): given, listed and
checked against the record they sign.  Any signed record uses them (a QA case's closing today; a
recall's closing and master data's approval next); the record's own store says what of it is signed.

A signature's hash covers the record's content *and* the signature's own manifest (who, login,
printed name, when, meaning, reason, what move, which record and step), in RFC 8785 canonical JSON
(``rfc8785``, already the audit chain's), so:

* copied onto another record, or onto another step of the same record, it no longer matches (§11.70);
* the record changed after signing (an alert folded into the case, a field altered behind the
  application's back), it no longer matches, and every page showing it says so;
* its printed name or time altered in the table, it no longer matches.

Re-authentication is the login check's (``users.check_login(purpose="signature")``): a wrong password
counts towards the same account lock and is audited.  The first signature of a browser session asks
login and password, later ones in that session the password (§11.200(a)(1)); a signature through an
API token always asks both, a token being no session of continuous controlled access.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import rfc8785
from sqlalchemy import Connection, Table, exists, insert, select

from coldgate.cloud.db.models import ESignature
from coldgate.cloud.identity.users import aware, iso

__all__ = [
    "CONTENT_VERSION", "SignatureMark", "SignedBy", "content_sha256", "manifest", "record_signature",
    "signatures_of", "signed_in_session", "table", "verify",
]  # fmt: skip

_table: Table = ESignature.__table__  # type: ignore[assignment]
#: How ``content_sha256`` is computed; a record's content gaining fields (a case's evidence) bumps it,
#: and a signature is checked as its own version says.
CONTENT_VERSION: Final = 1


class SignedBy(NamedTuple):
    """A signer just re-authenticated (``cloud/api/signing.py``): who, and the browser session they
    signed in (None through an API token)."""

    user_id: str
    login: str
    name: str
    session_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class SignatureMark:
    """What a person signs: the record, its step, the move, its meaning and reason; and who."""

    record_type: str
    record_id: str
    record_seq: int
    action: str
    detail: str | None
    meaning: str
    reason: str | None
    signer_id: str
    signer_login: str
    signer_name: str
    signed_at: datetime.datetime


def table() -> Table:
    """The signatures' table, for a record's store that lists what a person signed."""
    return _table


def manifest(mark: SignatureMark | Any) -> dict[str, Any]:
    """The signature's own fields as they are hashed (a ``SignatureMark`` or a stored row)."""
    return {
        "record_type": mark.record_type, "record_id": mark.record_id, "record_seq": mark.record_seq,
        "action": mark.action, "detail": mark.detail, "meaning": mark.meaning, "reason": mark.reason,
        "signer_id": mark.signer_id, "signer_login": mark.signer_login, "signer_name": mark.signer_name,
        "signed_at": iso(mark.signed_at),
    }  # fmt: skip


def content_sha256(record: Mapping[str, Any], mark: SignatureMark | Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``record`` with the signature's manifest."""
    return hashlib.sha256(rfc8785.dumps({"record": dict(record), "signature": manifest(mark)})).hexdigest()


def record_signature(
    conn: Connection, mark: SignatureMark, record: Mapping[str, Any], *, session_sha256: str | None,
    client: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Store the signature of ``record`` (its content as the record's store gives it) by ``mark``;
    the stored signature as :func:`signatures_of` lists it."""
    row = {
        "id": f"sig-{secrets.token_hex(8)}", **manifest(mark), "signed_at": mark.signed_at,
        "content_sha256": content_sha256(record, mark), "content_version": CONTENT_VERSION,
        "session_sha256": session_sha256, "client": (client or None) and client[:64],
    }  # fmt: skip
    conn.execute(insert(_table), row)
    return _shown(row, matches=True)


def _shown(row: Mapping[str, Any], *, matches: bool) -> dict[str, Any]:
    return {
        "id": row["id"], "record_seq": row["record_seq"], "action": row["action"], "detail": row["detail"],
        "meaning": row["meaning"], "reason": row["reason"], "signer_id": row["signer_id"],
        "signer_login": row["signer_login"], "signer_name": row["signer_name"],
        "signed_at": aware(row["signed_at"]), "content_sha256": row["content_sha256"], "matches": matches,
    }  # fmt: skip


def verify(row: Any, record: Mapping[str, Any]) -> bool:
    """Whether the stored signature ``row`` still matches ``record`` as it stands now."""
    if row.content_version != CONTENT_VERSION:
        return False
    return secrets.compare_digest(content_sha256(record, row), row.content_sha256)


def signatures_of(
    conn: Connection, record_type: str, record_id: str, content_at: Any
) -> list[dict[str, Any]]:
    """Every signature of the record, oldest first, each checked: ``content_at(seq)`` gives the
    record's content as of step ``seq`` (what a signature given on that step signed)."""
    t = _table.c
    query = select(_table).where(t.record_type == record_type, t.record_id == record_id)
    rows = conn.execute(query.order_by(t.signed_at, t.id)).all()
    contents: dict[int, Mapping[str, Any]] = {}
    shown = []
    for row in rows:
        if row.record_seq not in contents:
            contents[row.record_seq] = content_at(row.record_seq)
        shown.append(_shown(row._mapping, matches=verify(row, contents[row.record_seq])))
    return shown


def signed_in_session(conn: Connection, session_sha256: str, signer_id: str) -> bool:
    """Whether ``signer_id`` has already signed in this browser session (then the password is enough)."""
    t = _table.c
    found = exists().where(t.session_sha256 == session_sha256, t.signer_id == signer_id)
    return bool(conn.execute(select(found)).scalar())
