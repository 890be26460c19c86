"""The documents store: receiving notes, dispatch orders and transfers kept as versions, each change
audited in the caller's transaction.

A document is never edited (GDP, 21 CFR Part 11): an edit of a draft and every move of its state add
the next version, whole (header and lines), with who, when and why, and the highest version is the
document as it stands.  A writer may say which version it changed (``if_version``): a stale one is a
:class:`Conflict` (409), as in the catalog.  ``kind``, ``site`` and ``reference`` are fixed when the
document is made (a wrong one is corrected by a new document), so the reference stays unique per site
and kind by one index on first versions.

States move in ``moves.py`` (it reads the reconciliation, which reads documents through this module).

The checks are pure (``checks.py``, against a snapshot of the catalog); this module does the reading
and writing around them.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.versions import Conflict, check_reason, next_version
from coldgate.cloud.db.models import DocumentLine, DocumentVersion, LotVersion, ProductVersion
from coldgate.cloud.documents.checks import Catalog, check_header, check_lines
from coldgate.cloud.documents.model import (
    OPEN_STATES,
    Document,
    DocumentKind,
    DocumentState,
    Line,
)
from coldgate.cloud.identity.users import NotFound, UserInputError

__all__ = [
    "STATE_FILTERS", "catalog_snapshot", "create_document", "document", "document_history", "document_model",
    "documents", "epoch_ms", "header_of", "last_version", "open_at_door", "put_document", "reference_holder",
    "write_version",
]  # fmt: skip

_versions: Table = DocumentVersion.__table__  # type: ignore[assignment]
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]
_products: Table = ProductVersion.__table__  # type: ignore[assignment]
_lots: Table = LotVersion.__table__  # type: ignore[assignment]
_ENTITY = "document"
#: Filters the list accepts besides a state: any state, or those items bind in.
STATE_FILTERS = (*DocumentState, "open", "all")


def epoch_ms(now: datetime.datetime) -> int:
    return int(now.timestamp() * 1000)


def catalog_snapshot(conn: Connection, lines: object = None) -> Catalog:
    """Products in force (→ retired) and their lots: what the line checks need, in two reads.  Given the
    lines to check, only the lots of the products they name are read (a catalog holds many more lots than
    a document names); else every lot (an import checks many documents against one snapshot)."""
    p = _products.c
    top = select(p.id, func.max(p.version).label("top")).group_by(p.id).subquery()
    query = select(p.id, p.retired).join(top, and_(p.id == top.c.id, p.version == top.c.top))
    products = {key: bool(retired) for key, retired in conn.execute(query)}
    lots_query = select(_lots.c.product, _lots.c.lot).distinct()
    if isinstance(lines, list):
        named = {x.get("product") for x in lines if isinstance(x, dict) and isinstance(x.get("product"), str)}
        named &= products.keys()
        lots_query = lots_query.where(_lots.c.product.in_(sorted(named)))
    lots = frozenset((r.product, r.lot) for r in conn.execute(lots_query))
    return Catalog(products, lots)


def _line_dict(line: Line) -> dict[str, Any]:
    return {"number": line.number, "product": line.product, "lot": line.lot, "quantity": line.quantity,
            "unit": line.unit, "ssccs": list(line.ssccs), "serials": list(line.serials)}  # fmt: skip


def _record(row: Any, lines: Sequence[Line]) -> dict[str, Any]:
    return {
        "id": row.id, "version": row.version, "kind": row.kind, "site": row.site, "state": row.state,
        "reference": row.reference, "party": row.party, "door": row.door, "opened_at": row.opened_at,
        "closed_at": row.closed_at, "changed_at": row.changed_at.isoformat(), "changed_by": row.changed_by,
        "reason": row.reason, "lines": [_line_dict(line) for line in lines],
    }  # fmt: skip


def _line_of(row: Any) -> Line:
    return Line(number=row.number, product=row.product, quantity=row.quantity, unit=row.unit, lot=row.lot,
                ssccs=tuple(row.ssccs or ()), serials=tuple(row.serials or ()))  # fmt: skip


def _lines_of(conn: Connection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], list[Line]]:
    """The lines of each (document, version), by number."""
    wanted = list(keys)
    found: dict[tuple[str, int], list[Line]] = {key: [] for key in wanted}
    if not wanted:
        return found
    ids = sorted({key for key, _ in wanted})
    l = _lines.c  # noqa: E741
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(_lines).where(l.document.in_(chunk)).order_by(l.document, l.version, l.number)
        for row in conn.execute(query):
            if (row.document, row.version) in found:
                found[(row.document, row.version)].append(_line_of(row))
    return found


def _in_force() -> Any:
    v = _versions.c
    top = select(v.id, func.max(v.version).label("top")).group_by(v.id).subquery()
    return select(_versions).join(top, and_(v.id == top.c.id, v.version == top.c.top))


def documents(
    conn: Connection, *, kind: str | None = None, state: str | None = None, site: str | None = None,
    door: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Documents as they stand, newest change first, without their lines (``line_count`` instead);
    ``state`` may be ``open`` (released or in progress) or ``all``.  An unknown kind or state is a
    UserInputError naming it (a filter that silently matches nothing would read as "no documents")."""
    v = _versions.c
    query = _in_force().order_by(v.changed_at.desc(), v.id)
    if kind is not None:
        if kind not in set(DocumentKind):
            raise UserInputError("kind", f"{kind!r} is not a kind of document ({', '.join(DocumentKind)})")
        query = query.where(v.kind == kind)
    if state is not None and state != "all":
        if state not in STATE_FILTERS:
            raise UserInputError("state", f"{state!r} is no state ({', '.join(STATE_FILTERS)})")
        query = query.where(v.state.in_(sorted(OPEN_STATES) if state == "open" else [state]))
    if site is not None:
        query = query.where(v.site == site)
    if door is not None:
        query = query.where(v.door == door)
    rows = conn.execute(query).all()
    counts = _line_counts(conn, [(row.id, row.version) for row in rows])
    return [{**_record(row, []), "line_count": counts.get((row.id, row.version), 0)} for row in rows]


def _line_counts(conn: Connection, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    l = _lines.c  # noqa: E741
    found: dict[tuple[str, int], int] = {}
    ids = sorted({key for key, _ in keys})
    for start in range(0, len(ids), 500):
        query = (
            select(l.document, l.version, func.count())
            .where(l.document.in_(ids[start : start + 500]))
            .group_by(l.document, l.version)
        )
        found.update({(d, ver): n for d, ver, n in conn.execute(query)})
    return found


def document_history(conn: Connection, document_id: str) -> list[dict[str, Any]]:
    """Every version of the document with its lines, oldest first; NotFound if there is none."""
    rows = conn.execute(
        select(_versions).where(_versions.c.id == document_id).order_by(_versions.c.version)
    ).all()
    if not rows:
        raise NotFound("document_id", f"no document {document_id!r}")
    lines = _lines_of(conn, [(row.id, row.version) for row in rows])
    return [_record(row, lines[(row.id, row.version)]) for row in rows]


def last_version(conn: Connection, document_id: str) -> Any:
    row = conn.execute(
        select(_versions).where(_versions.c.id == document_id).order_by(_versions.c.version.desc()).limit(1)
    ).first()
    if row is None:
        raise NotFound("document_id", f"no document {document_id!r}")
    return row


def document(conn: Connection, document_id: str) -> dict[str, Any]:
    """The document as it stands (its newest version) with its lines."""
    row = last_version(conn, document_id)
    return _record(row, _lines_of(conn, [(row.id, row.version)])[(row.id, row.version)])


def _model(row: Any, lines: Sequence[Line]) -> Document:
    return Document(
        id=row.id, kind=DocumentKind(row.kind), site=row.site, state=DocumentState(row.state),
        reference=row.reference, lines=tuple(lines), door=row.door, opened_at=row.opened_at,
        closed_at=row.closed_at, party=row.party,
    )  # fmt: skip


def document_model(conn: Connection, document_id: str) -> Document:
    """The document as it stands, as the pure steps (binding, reconciliation) take it; NotFound if none."""
    row = last_version(conn, document_id)
    return _model(row, _lines_of(conn, [(row.id, row.version)])[(row.id, row.version)])


def open_at_door(conn: Connection, site: str, door: str) -> list[Document]:
    """The documents items at ``door`` of ``site`` may bind to now (released or in progress there), as
    the pure binding takes them, oldest release first."""
    v = _versions.c
    query = (
        _in_force()
        .where(v.site == site, v.door == door, v.state.in_(sorted(OPEN_STATES)))
        .order_by(v.opened_at, v.id)
    )
    rows = conn.execute(query).all()
    lines = _lines_of(conn, [(row.id, row.version) for row in rows])
    return [_model(row, lines[(row.id, row.version)]) for row in rows]


def write_version(
    conn: Connection, header: dict[str, Any], lines: Sequence[Line], *, version: int, action: str,
    before: dict[str, Any] | None, why: str, by: Actor, now: datetime.datetime, clash: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Insert the version and its lines, audit it; a concurrent writer who took the same version (or, for
    a new document, the same reference) makes the insert fail: a Conflict, the transaction rolls back."""
    values = {**header, "version": version, "changed_at": now, "changed_by": by.name, "changed_by_id": by.id,
              "reason": why}  # fmt: skip
    try:
        conn.execute(insert(_versions).values(**values))
    except IntegrityError:
        field, problem = (
            ("reference", clash)
            if clash
            else (
                "if_version",
                f"document {header['id']!r} changed meanwhile: read it again and redo the change",
            )
        )
        raise Conflict(field, problem) from None
    if lines:
        conn.execute(insert(_lines), [{"document": header["id"], "version": version, **_line_dict(line)}
                                      for line in lines])  # fmt: skip
    after = document(conn, header["id"])
    append(conn, actor=by, action=f"{_ENTITY}.{action}", entity_type=_ENTITY, entity_id=header["id"], now=now,
           before=before, after=after, reason=why)  # fmt: skip
    return after


def reference_holder(conn: Connection, site: str, kind: str, reference: str) -> str | None:
    v = _versions.c
    return conn.execute(
        select(v.id).where(v.site == site, v.kind == kind, v.reference == reference, v.version == 1)
    ).scalar()


def create_document(
    conn: Connection, fields: dict[str, Any], *, reason: str, by: Actor, now: datetime.datetime,
    catalog: Catalog | None = None, document_id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Make a draft from ``fields`` (kind, site, reference, party, lines); audited in ``conn``'s
    transaction.  ``catalog``: a snapshot already read (an import checks many documents against one)."""
    header = check_header(fields)
    lines = check_lines(fields.get("lines"), catalog or catalog_snapshot(conn, fields.get("lines")))
    why = check_reason(reason)
    holder = reference_holder(conn, header["site"], header["kind"], header["reference"])
    if holder is not None:
        what = f"{header['kind']} {header['reference']!r} of site {header['site']!r}"
        raise UserInputError("reference", f"{what} is already document {holder}")
    key = document_id or f"doc-{secrets.token_hex(6)}"
    row = {"id": key, **header, "state": DocumentState.DRAFT.value, "door": None, "opened_at": None,
           "closed_at": None}  # fmt: skip
    clash = f"{header['kind']} {header['reference']!r} of site {header['site']!r} was made meanwhile"
    return write_version(
        conn, row, lines, version=1, action="create", before=None, why=why, by=by, now=now, clash=clash
    )


def header_of(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "site": row.site, "state": row.state, "reference": row.reference,
            "party": row.party, "door": row.door, "opened_at": row.opened_at,
            "closed_at": row.closed_at}  # fmt: skip


def put_document(
    conn: Connection, document_id: str, fields: dict[str, Any], *, reason: str, if_version: int | None = None,
    by: Actor, now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    """A new version of a draft: its party and its whole set of lines, each kept as stored when ``fields``
    does not name it (a change of the party alone must not drop the lines).  Kind, site and reference are
    the document's own: when given they must be as stored."""
    last = last_version(conn, document_id)
    version = next_version(last.version, if_version, f"document {document_id!r}")
    if last.state != DocumentState.DRAFT:
        raise UserInputError("state", f"document {document_id} is {last.state}: only a draft is edited "
                             "(send it back to draft first, if it is released)")  # fmt: skip
    for name in ("kind", "site", "reference"):
        if name in fields and fields[name] != getattr(last, name):
            stored = getattr(last, name)
            raise UserInputError(name, f"is {stored!r} for this document: a different one is a new document")
    before = document(conn, document_id)
    merged = {"kind": last.kind, "site": last.site, "reference": last.reference, "party": last.party,
              "lines": before["lines"], **fields}  # fmt: skip
    header = check_header({k: v for k, v in merged.items() if k != "lines"})
    lines = check_lines(merged["lines"], catalog_snapshot(conn, merged["lines"]))
    why = check_reason(reason)
    row = {**header_of(last), "party": header["party"]}
    return write_version(
        conn, row, lines, version=version, action="update", before=before, why=why, by=by, now=now
    )
