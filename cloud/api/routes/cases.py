"""QA cases (issue 16): the cases the cloud opened from alerts, one case, and moving a case along its
flow.  Reading is ``alerts.read``, and so is reaching the moves' route: the move itself asks its own
permission (``cloud/alerts/case_flow.py``: a dock operator acknowledges, QA investigates and proposes a
disposition, a QA manager closes and cancels), so that a viewer's attempt is refused by the case and
written to the audit trail like any refused move, not turned away unrecorded at the door.

Closing and cancelling are signed (21 CFR Part 11): the body's ``signature`` gives the password again
(and the login, at a session's first signature; ``cloud/api/signing.py``).  Each person signs with
their own request; the move is made by the signature that completes what separation of duties asks
(a release: a QA manager and a second QA person), and until then the case's ``pending`` says whose
signature is awaited.

A refused move answers 403 (the person may not make or sign it, or the password is wrong), 409 (the
case's state does not allow it) or 422 (a reason, disposition or signature missing or not one of the
words), and is itself written to the audit trail: who tried what, and why it was refused.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.alerts import case_store
from coldgate.cloud.alerts.case_flow import NOTE_KINDS, CaseDuties, CaseState, Disposition
from coldgate.cloud.api.routes import connection, query_error
from coldgate.cloud.api.signing import SignatureBody, SignatureOut, signed_write
from coldgate.cloud.api.writes import acting, catalog_changed, utc_now, writing
from coldgate.cloud.identity.principal import Principal

__all__ = ["MoveBody", "make_move", "router"]

router = APIRouter(tags=["cases"])
CaseId = Annotated[str, Path(max_length=64, description="The case's id (case-...).")]
ANSWERS: dict[int | str, dict[str, Any]] = {404: {"description": "No such case."}}


class CaseCard(BaseModel):
    id: str
    site: str | None = Field(description="The site of the gateway whose alert opened it.")
    gateway: str
    rule: str = Field(
        description="The rule of the alert that opened it (temperature.high, dock.discrepancy...)."
    )
    case_type: str = Field(
        description="excursion, door, discrepancy, offline, calibration, stream or other: what "
        "[cases.signatures] configures."
    )
    subject_type: str
    subject: str
    title: str = Field(description="The opening alert's message.")
    opened_at: datetime.datetime
    state: CaseState
    since: datetime.datetime = Field(description="When the case reached its state.")
    severity: str = Field(description="The most severe of its alerts.")
    alerts: int = Field(description="How many alerts were folded into it.")
    last_alert_ts: int | None = Field(description="The newest alert's time, epoch ms.")
    overdue: bool = Field(description="Not acknowledged within 30 minutes, or not decided within 30 days.")


class CaseList(BaseModel):
    items: list[CaseCard]


class CaseAlertOut(BaseModel):
    gateway: str
    alert_id: str
    severity: str
    raised_ts: int
    message: str
    folded_at: datetime.datetime


class CaseStepOut(BaseModel):
    seq: int
    state: CaseState
    at: datetime.datetime
    by: str
    by_id: str | None
    reason: str | None
    disposition: Disposition | None


class CaseSignatureOut(SignatureOut):
    """A signature on a case, with the step and the move it signed."""

    record_seq: int = Field(description="The case's step the signature was given on.")
    action: CaseState = Field(description="The move signed: the state it moves the case to.")
    detail: str | None = Field(description="The disposition signed, when closing.")


class PendingOut(BaseModel):
    to: CaseState
    disposition: str | None
    signed_by: list[str]
    awaiting: str | None = Field(description="Whose signature the move still needs.")


class StockLineOut(BaseModel):
    seq: int
    site: str
    location: str
    product: str | None
    gtin: str | None
    lot: str | None
    unit: str | None = Field(description="sscc:... or serial:product/serial; null: the lot's quantity.")
    quantity: int
    first_in: int = Field(description="When it came into the location (epoch ms).")
    last_out: int | None = Field(description="When it left (epoch ms); null: still there.")
    status_before: str | None = Field(description="The lot's status before; released: the case took it.")


class NoteOut(BaseModel):
    seq: int
    kind: str
    text: str
    ref: str | None
    by: str
    by_id: str | None
    at: datetime.datetime


class CaseOut(CaseCard):
    cause: str = Field(description="What the alerts folded into this case share.")
    next: list[CaseState] = Field(description="The states the case may move to next.")
    alert_list: list[CaseAlertOut]
    steps: list[CaseStepOut]
    signatures: list[CaseSignatureOut] = Field(description="Every signature given on the case, checked.")
    pending: list[PendingOut] = Field(description="Signed moves begun on the current step.")
    evidence: list[dict[str, Any]] = Field(
        description="Taken as each alert joined: the edge's evidence and limits, location, calibration."
    )
    figures: list[dict[str, Any]] = Field(description="Each alert's newest step and its excursion figures.")
    stock: list[StockLineOut] = Field(description=f"The stock found (first {case_store.STOCK_SHOWN} lines).")
    stock_lines: int
    stock_lots: int
    quarantined: list[str] = Field(description="The lots (product/lot) the case quarantined.")
    notes: list[NoteOut]


class NoteBody(BaseModel):
    kind: str = Field(max_length=32, description="One of: " + ", ".join(NOTE_KINDS))
    text: str = Field(max_length=4000)
    ref: str | None = Field(
        default=None, max_length=1000, description="An attachment's name, SHA-256 and where it is kept."
    )


class MoveBody(BaseModel):
    state: str = Field(max_length=32, description="The state to move the case to.")
    reason: str | None = Field(
        default=None, max_length=1000, description="Why (needed going back, cancelling)."
    )
    disposition: str | None = Field(
        default=None, max_length=32, description="The decision proposed or made: " + ", ".join(Disposition)
    )
    signature: SignatureBody | None = Field(
        default=None, description="Closing and cancelling are signed: your password (and login)."
    )


@router.get("/cases", response_model=CaseList)
def list_cases(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    site: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[
        str | None, Query(max_length=32, description="Only cases in this state; all: every case.")
    ] = None,
    view: Annotated[
        str, Query(max_length=16, description="all; mine: those you worked; roles: those your roles can take "
                   "further; overdue.")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CaseList:  # fmt: skip
    """Cases still open first (newest opened first), then closed and cancelled ones; ``offset`` and
    ``limit`` page through them."""
    if state not in (None, "all", *CaseState):
        choices = ", ".join(CaseState)
        raise query_error("state", state, f"{state!r} is not a case state (one of {choices}, or all)")
    if view not in case_store.VIEWS:
        raise query_error("view", view, f"{view!r} is not a view (one of {', '.join(case_store.VIEWS)})")
    principal: Principal = request.state.principal
    found = case_store.list_cases(
        conn, site=site, state=state, limit=limit, offset=offset, view=view, user_id=principal.user_id,
        held=principal.permissions,
    )  # fmt: skip
    return CaseList(items=[CaseCard(**c) for c in found])


def case_duties(request: Request) -> CaseDuties:
    """The signatures each type of case takes, as the service's ``[cases]`` says (one by default)."""
    return getattr(request.app.state, "case_duties", case_store.ONE_SIGNATURE)  # type: ignore[no-any-return]


@router.get("/cases/{case_id}", response_model=CaseOut, responses=ANSWERS)
def get_case(case_id: CaseId, request: Request, conn: Annotated[Connection, Depends(connection)]) -> CaseOut:
    """The case as opened, its alerts, every step (who, when, why) and the moves it allows next."""
    return CaseOut(**case_store.case_detail(conn, case_id, case_duties(request)))


@router.post(
    "/cases/{case_id}/moves", response_model=CaseOut,
    responses={**ANSWERS, 403: {"description": "You may not make or sign it, or the password is wrong."},
               409: {"description": "The case's state does not allow it."}},
)  # fmt: skip
def move_case(case_id: CaseId, body: MoveBody, request: Request) -> CaseOut:
    """Move the case to ``state``, or sign the move; refused moves are audited too."""
    return CaseOut(**make_move(request, case_id, body))


def make_move(request: Request, case_id: str, body: MoveBody) -> dict[str, Any]:
    """The move (or signature) ``body`` asks, as the signed-in person, for this route and the case page's
    form alike: the signer re-authenticated first, a wrong password's count committed, every refusal
    audited in a transaction of its own and raised."""
    principal: Principal = request.state.principal
    by, now = acting(request), utc_now()
    moved = signed_write(
        request, body.signature, now,
        lambda conn, signer: case_store.move_case(
            conn, case_id, body.state, by=by, held=principal.permissions, now=now, reason=body.reason,
            disposition=body.disposition, signer=signer, duties=case_duties(request),
        ),
        lambda conn, refusal: case_store.record_refusal(conn, case_id, body.state, refusal, by=by, now=now),
    )  # fmt: skip
    if moved["state"] in (CaseState.CLOSED, CaseState.CANCELLED):
        catalog_changed(request)  # its lots were released or rejected: the gateways' list, now
    return moved


@router.post(
    "/cases/{case_id}/notes", response_model=CaseOut,
    responses={**ANSWERS, 403: {"description": "Your roles may not add this kind of note."},
               409: {"description": "The case is closed or cancelled."}},
)  # fmt: skip
def add_note(case_id: CaseId, body: NoteBody, request: Request) -> CaseOut:
    """Add a comment, an attachment's reference, or a root cause, corrective or preventive action."""
    principal: Principal = request.state.principal
    with writing(request) as conn:
        noted = case_store.add_note(
            conn, case_id, body.kind, body.text, ref=body.ref, by=acting(request), held=principal.permissions,
            now=utc_now(),
        )  # fmt: skip
    return CaseOut(**noted)
