"""Inventory documents: read by anyone signed in (``documents.read``); made, edited as drafts, moved
along their states and imported with ``documents.manage`` (the dock operator's and the QA manager's).

Each state move is a route of its own (release, draft, start, complete, close), so the access table and
the OpenAPI document say what can be done; every one takes the reason (audited) and the version it
moves (``if_version``, 409 when stale), a release also the dock door.  Bodies fix only the shape;
values are checked by ``cloud/documents/`` and refused naming the field's path (``lines[3].lot``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from coldgate.cloud.api.signing import SignatureBody, SignatureOut, signed_write
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.catalog.csv_read import ImportRefused
from coldgate.cloud.documents import dock_decisions, documents, moves, reconciliation_store
from coldgate.cloud.documents.checks import UNITS
from coldgate.cloud.documents.importing import import_documents
from coldgate.cloud.documents.model import DocumentState
from coldgate.cloud.documents.reconciliation import INFO_KINDS

__all__ = ["ReconciliationOut", "accept_signed", "reconciliation_out", "router"]

router = APIRouter(tags=["documents"])
DocumentId = Annotated[str, Path(max_length=64)]
ONE = "/documents/{document_id}"
ANSWERS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such document."},
    409: {"description": "if_version is stale: the document changed since you read it."},
}


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000, description="Why the change is made (kept in the audit trail).")


class DocumentBody(_Change):
    kind: Any = Field(description="receiving, dispatch or transfer.")
    site: Any = Field(description="The site whose dock works it.")
    reference: Any = Field(
        description="The sender's number (ship notice, purchase or customer order); unique per site and kind."
    )
    party: Any = Field(default=None, description="Supplier (receiving), customer and ship-to (dispatch).")
    lines: Any = Field(
        default_factory=list,
        description=f"Each: product (catalog id), lot (optional), quantity (whole, >= 1), unit "
        f"({', '.join(UNITS)}; default case), number (default: its place from 1), ssccs, serials.",
    )


class DraftBody(_Change):
    party: Any = Field(default=None, description="Left as it is when not sent; null clears it.")
    lines: Any = Field(
        default=None,
        description="The whole new set of lines, as in POST /documents; left as they are when not sent.",
    )
    if_version: int | None = Field(
        default=None, ge=0, description="The version you changed; 409 if it moved on."
    )


class MoveBody(_Change):
    if_version: int | None = Field(
        default=None, ge=0, description="The version you moved; 409 if it moved on."
    )


class ReleaseBody(MoveBody):
    door: Any = Field(description="The dock door (a dock_door location of the document's site).")


class LineOut(BaseModel):
    number: int
    product: str
    lot: str | None
    quantity: int
    unit: str
    ssccs: list[str]
    serials: list[str]


class _Header(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str
    version: int
    kind: str
    site: str
    state: str
    reference: str
    party: str | None
    door: str | None
    opened_at: int | None = Field(description="Released (items bind from then), epoch ms.")
    closed_at: int | None = Field(description="Closed (nothing binds after), epoch ms.")
    changed_at: str
    changed_by: str
    reason: str


class DocumentOut(_Header):
    lines: list[LineOut]


class DocumentListed(_Header):
    line_count: int


class DocumentImportOut(BaseModel):
    sha256: str = Field(description="SHA-256 of the file as received (also in the audit entry).")
    documents: int
    lines: int
    ids: list[str]


@router.get("/documents", response_model=list[DocumentListed])
def list_documents(
    request: Request,
    kind: Annotated[str | None, Query(max_length=16, description="receiving, dispatch or transfer")] = None,
    state: Annotated[str | None, Query(max_length=16, description=", ".join(documents.STATE_FILTERS))] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    door: Annotated[str | None, Query(max_length=64)] = None,
) -> list[DocumentListed]:
    """Documents as they stand, most recently changed first (without their lines)."""
    with request.app.state.engine.connect() as conn:
        found = documents.documents(conn, kind=kind, state=state, site=site, door=door)
    return [DocumentListed(**{k: v for k, v in d.items() if k != "lines"}) for d in found]


@router.post("/documents", response_model=DocumentOut, status_code=status.HTTP_201_CREATED, responses=ANSWERS)
def create_document(body: DocumentBody, request: Request) -> DocumentOut:
    """Make a draft."""
    fields = body.model_dump(exclude={"reason"})
    with writing(request) as conn:
        made = documents.create_document(conn, fields, reason=body.reason, by=acting(request), now=utc_now())
    return DocumentOut(**made)


async def _raw(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/documents/import",
    response_model=DocumentImportOut,
    responses={
        422: {"description": "Nothing imported: `detail` lists each bad row (line, column, value, why)."},
        409: {"description": "A document was made meanwhile with a reference of the file: import it again."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
)
def import_file(
    request: Request,
    reason: Annotated[str, Query(max_length=1000, description="Why the file is imported (audited).")],
    data: Annotated[bytes, Depends(_raw)],
) -> Any:
    """Documents from a file, whole or nothing, each made as a draft.  CSV (``text/csv``): one row per
    line, columns kind, site, reference, product, quantity (required), party, line, lot, unit, ssccs,
    serials (the document's columns repeated on each of its rows; ``line``: the
    line number, ``ssccs`` and ``serials`` separated by spaces or semicolons).  JSON
    (``application/json``): a list of documents as ``POST /documents`` takes them (without ``reason``),
    a problem's ``line`` being the document's place in the list from 1 and its ``column`` the field's
    path."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        with writing(request) as conn:
            result = import_documents(
                conn, data, media_type, reason=reason, by=acting(request), now=utc_now()
            )
    except ImportRefused as refused:
        detail = [
            {"type": "value_error", "loc": ["body", e.line, e.column], "msg": e.why, "line": e.line,
             "column": e.column, "value": e.value, "why": e.why}
            for e in refused.errors
        ]  # fmt: skip
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": detail, "more": refused.more, "summary": str(refused).removeprefix("file: ")},
        )
    return DocumentImportOut(**dataclasses.asdict(result))


@router.get(ONE, response_model=DocumentOut, responses=ANSWERS)
def get_document(document_id: DocumentId, request: Request) -> DocumentOut:
    """The document as it stands, with its lines."""
    with request.app.state.engine.connect() as conn:
        return DocumentOut(**documents.document(conn, document_id))


@router.get(ONE + "/history", response_model=list[DocumentOut], responses=ANSWERS)
def document_history(document_id: DocumentId, request: Request) -> list[DocumentOut]:
    """Every version, oldest first: who, when, why, and the document then."""
    with request.app.state.engine.connect() as conn:
        return [DocumentOut(**v) for v in documents.document_history(conn, document_id)]


class LineCheckOut(BaseModel):
    number: int
    product: str
    lot: str | None
    unit: str
    expected: int
    seen: int = Field(description="Distinct units counted on the line (a pallet by its stated contents).")
    complete: bool
    state: str = Field(description="complete, flagged (counted but a unit is not right), missing, short, "
                       "over, or mismatch (the count is right, the instances are not).")  # fmt: skip
    cbv: str | None = Field(description="GS1 CBV 2.0 disposition: completeness_verified, "
                            "completeness_inferred, mismatch_instance or mismatch_quantity.")  # fmt: skip


class AcceptanceOut(BaseModel):
    key: str
    kind: str
    summary: str = Field(description="The discrepancy as it was when accepted.")
    reason: str
    accepted_at: str
    accepted_by: str
    signature: SignatureOut | None = Field(
        description="The acceptance's e-signature (21 CFR Part 11; meaning: accepted), checked; its "
        "content_sha256 covers the document (id, reference, version) and the discrepancy (key, kind, "
        "detail); null: accepted before acceptances were signed."
    )


class DiscrepancyOut(BaseModel):
    key: str = Field(description="Names the discrepancy as it stands (kind, line, what it is about): what an "
                     "acceptance points at.")  # fmt: skip
    kind: str = Field(description="missing, unexpected, unexpected_instance, under_quantity, over_quantity, "
                      "wrong_lot, lot_unknown, duplicate, recalled, quarantined, rejected, expired, "
                      "short_dated, temperature_class or unidentified.")  # fmt: skip
    cbv: str | None = Field(description="Its GS1 CBV 2.0 disposition word, where the vocabulary has one.")
    blocking: bool = Field(description="Keeps the document from being completed: false for what only "
                           "informs the dock (a duplicate read) and for what was accepted.")  # fmt: skip
    accepted: AcceptanceOut | None = Field(description="Who accepted it, when and why (qa.decide).")
    line: int | None
    product: str | None
    lot: str | None
    expected: int | None
    seen: int | None
    units: list[str] = Field(description="sscc:..., serial:product/serial, label:... or item:gw/stream/seq.")
    detail: str


class ReconciliationOut(BaseModel):
    document: str
    reference: str
    kind: str
    site: str
    state: str
    door: str | None
    judged_on: str = Field(description="The UTC date expiry was judged against.")
    complete: bool = Field(description="Every line complete and no discrepancy but duplicates.")
    completeness: str | None
    expected: int
    seen: int
    units_seen: int = Field(description="Distinct units (and unserialised items) bound to the document.")
    duplicates: int = Field(description="Sightings of a unit already counted.")
    open: int = Field(description="Discrepancies neither resolved nor accepted: no completion while any is.")
    lines: list[LineCheckOut]
    discrepancies: list[DiscrepancyOut]


def reconciliation_out(
    check: reconciliation_store.DocumentCheck, accepted: Mapping[str, dict[str, Any]] | None = None
) -> ReconciliationOut:
    """The API's (and the pages') shape of one document's reconciliation, with the acceptances of its
    discrepancies (``dock_decisions.acceptances``)."""
    doc, found = check.document, check.reconciliation
    units = {line.number: line.unit for line in doc.lines}
    gaps = found.discrepancies
    accepted = accepted or {}
    blocking = [d.kind not in INFO_KINDS and d.key not in accepted for d in gaps]
    return ReconciliationOut(
        document=doc.id, reference=doc.reference, kind=doc.kind, site=doc.site, state=doc.state,
        door=doc.door, judged_on=check.today.isoformat(), complete=found.complete,
        completeness=found.completeness, expected=found.expected, seen=found.seen,
        units_seen=found.units_seen, duplicates=found.duplicates, open=sum(blocking),
        lines=[
            LineCheckOut(
                number=r.number, product=r.product, lot=r.lot, unit=units.get(r.number, "case"),
                expected=r.expected, seen=r.seen, complete=r.complete,
                state=reconciliation_store.line_state(r, gaps), cbv=reconciliation_store.line_word(r, gaps),
            )
            for r in found.lines
        ],
        discrepancies=[
            DiscrepancyOut(
                key=d.key, kind=d.kind, cbv=d.cbv, blocking=block, line=d.line, product=d.product, lot=d.lot,
                expected=d.expected, seen=d.seen, units=list(d.units), detail=d.detail,
                accepted=AcceptanceOut(**accepted[d.key]) if d.key in accepted else None,
            )
            for d, block in zip(gaps, blocking, strict=True)
        ],
    )  # fmt: skip


@router.get(ONE + "/reconciliation", response_model=ReconciliationOut, responses=ANSWERS)
def reconciliation(document_id: DocumentId, request: Request) -> ReconciliationOut:
    """Expected vs seen per line from the items bound to the document so far (binding runs every few
    seconds after ingest), and every discrepancy with the units a person at the dock needs to find."""
    with request.app.state.engine.connect() as conn:
        check = reconciliation_store.check_document(conn, document_id, utc_now())
        accepted = dock_decisions.acceptances(conn, document_id)
    return reconciliation_out(check, accepted)


class AcceptBody(_Change):
    key: Any = Field(description="The discrepancy's key, as the reconciliation gives it.")
    signature: SignatureBody = Field(
        description="An acceptance is signed (meaning: accepted): your password, and your login at your "
        "first signature in a browser session and always through an API token."
    )


def accept_signed(request: Request, document_id: str, key: Any, reason: str, signature: SignatureBody) -> Any:
    """The signed acceptance, for this route and the document page's form alike: the password checked
    first on a reading connection (argon2 must not hold the writer), then the signer re-authenticated in
    the write transaction; a refused signature's count and audit entry are committed before it is
    raised, and nothing is accepted."""
    by, now = acting(request), utc_now()
    return signed_write(
        request, signature, now,
        lambda conn, signer: dock_decisions.accept_discrepancy(
            conn, document_id, key, reason=reason, by=by, signer=signer, now=now
        ),
    )  # fmt: skip


@router.post(
    ONE + "/discrepancies/accept", response_model=AcceptanceOut, status_code=status.HTTP_201_CREATED,
    responses={**ANSWERS, 403: {"description": "The password is wrong, or the login is not yours."},
               409: {"description": "Already accepted."}},
)  # fmt: skip
def accept_discrepancy(document_id: DocumentId, body: AcceptBody, request: Request) -> AcceptanceOut:
    """Accept one open discrepancy of a document being worked, with the reason, signed (``qa.decide``;
    21 CFR Part 11): it no longer keeps the document from being completed.  The key must name a
    discrepancy as it stands now; one that changed (a fourth case found missing) is a new discrepancy to
    decide on."""
    done = accept_signed(request, document_id, body.key, body.reason, body.signature)
    return AcceptanceOut(**{k: done[k] for k in AcceptanceOut.model_fields})


@router.put(ONE, response_model=DocumentOut, responses=ANSWERS)
def put_document(document_id: DocumentId, body: DraftBody, request: Request) -> DocumentOut:
    """A draft's next version: its party and its whole set of lines."""
    fields = body.model_dump(exclude={"reason", "if_version"}, exclude_unset=True)
    with writing(request) as conn:
        changed = documents.put_document(
            conn, document_id, fields, reason=body.reason, if_version=body.if_version, by=acting(request),
            now=utc_now(),
        )  # fmt: skip
    return DocumentOut(**changed)


def _move(document_id: str, state: DocumentState, body: MoveBody, request: Request, door: Any = None) -> Any:
    with writing(request) as conn:
        moved = moves.move_document(
            conn, document_id, state, reason=body.reason, door=door, if_version=body.if_version,
            by=acting(request), now=utc_now(),
        )  # fmt: skip
    return DocumentOut(**moved)


@router.post(ONE + "/release", response_model=DocumentOut, responses=ANSWERS)
def release(document_id: DocumentId, body: ReleaseBody, request: Request) -> DocumentOut:
    """Draft → released to the dock door ``door``: items there bind to it from now."""
    return _move(document_id, DocumentState.RELEASED, body, request, body.door)  # type: ignore[no-any-return]


@router.post(ONE + "/draft", response_model=DocumentOut, responses=ANSWERS)
def back_to_draft(document_id: DocumentId, body: MoveBody, request: Request) -> DocumentOut:
    """Released → draft (to correct it): the door is cleared."""
    return _move(document_id, DocumentState.DRAFT, body, request)  # type: ignore[no-any-return]


@router.post(ONE + "/start", response_model=DocumentOut, responses=ANSWERS)
def start(document_id: DocumentId, body: MoveBody, request: Request) -> DocumentOut:
    """Released → in progress."""
    return _move(document_id, DocumentState.IN_PROGRESS, body, request)  # type: ignore[no-any-return]


@router.post(ONE + "/complete", response_model=DocumentOut, responses=ANSWERS)
def complete(document_id: DocumentId, body: MoveBody, request: Request) -> DocumentOut:
    """In progress → completed, with the reason; 409 naming them while any discrepancy is open (neither
    resolved at the dock nor accepted: ``/discrepancies/accept``)."""
    return _move(document_id, DocumentState.COMPLETED, body, request)  # type: ignore[no-any-return]


@router.post(ONE + "/close", response_model=DocumentOut, responses=ANSWERS)
def close(document_id: DocumentId, body: MoveBody, request: Request) -> DocumentOut:
    """Completed → closed: nothing binds to it after now."""
    return _move(document_id, DocumentState.CLOSED, body, request)  # type: ignore[no-any-return]
