"""QA cases (issue 16): the cases the cloud opened from alerts, one case, and moving a case along its
flow.  Reading is ``alerts.read``; moving asks ``alerts.acknowledge`` to reach the route, and the move
itself asks its own permission (``cloud/alerts/case_flow.py``: a dock operator acknowledges, QA
investigates and proposes a disposition, a QA manager closes and cancels).

A refused move answers 403 (the person may not make it), 409 (the case's state does not allow it, or it
is a signed move: e-signatures are not taken yet) or 422 (a reason or disposition missing or not one
of the words), and is itself written to the audit trail: who tried what, and why it was refused.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.alerts import case_store
from coldgate.cloud.alerts.case_flow import CaseState, Disposition
from coldgate.cloud.api.routes import connection, query_error
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.users import UserInputError

__all__ = ["router"]

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
    subject_type: str
    subject: str
    title: str = Field(description="The opening alert's message.")
    opened_at: datetime.datetime
    state: CaseState
    since: datetime.datetime = Field(description="When the case reached its state.")
    severity: str = Field(description="The most severe of its alerts.")
    alerts: int = Field(description="How many alerts were folded into it.")
    last_alert_ts: int | None = Field(description="The newest alert's time, epoch ms.")


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


class CaseOut(CaseCard):
    cause: str = Field(description="What the alerts folded into this case share.")
    next: list[CaseState] = Field(description="The states the case may move to next.")
    alert_list: list[CaseAlertOut]
    steps: list[CaseStepOut]


class MoveBody(BaseModel):
    state: str = Field(max_length=32, description="The state to move the case to.")
    reason: str | None = Field(
        default=None, max_length=1000, description="Why (needed going back, cancelling)."
    )
    disposition: str | None = Field(
        default=None, max_length=32, description="The decision proposed or made: " + ", ".join(Disposition)
    )


@router.get("/cases", response_model=CaseList)
def list_cases(
    conn: Annotated[Connection, Depends(connection)],
    site: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[
        str | None, Query(max_length=32, description="Only cases in this state; all: every case.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CaseList:
    """Cases still open first (newest opened first), then closed and cancelled ones."""
    if state not in (None, "all", *CaseState):
        choices = ", ".join(CaseState)
        raise query_error("state", state, f"{state!r} is not a case state (one of {choices}, or all)")
    return CaseList(
        items=[CaseCard(**c) for c in case_store.list_cases(conn, site=site, state=state, limit=limit)]
    )


@router.get("/cases/{case_id}", response_model=CaseOut, responses=ANSWERS)
def get_case(case_id: CaseId, conn: Annotated[Connection, Depends(connection)]) -> CaseOut:
    """The case as opened, its alerts, every step (who, when, why) and the moves it allows next."""
    return CaseOut(**case_store.case_detail(conn, case_id))


@router.post(
    "/cases/{case_id}/moves", response_model=CaseOut,
    responses={**ANSWERS, 403: {"description": "Your roles may not make this move."},
               409: {"description": "The case's state does not allow it, or the move is signed."}},
)  # fmt: skip
def move_case(case_id: CaseId, body: MoveBody, request: Request) -> CaseOut:
    """Move the case to ``state``; refused moves are audited too."""
    principal: Principal = request.state.principal
    by, now = acting(request), utc_now()
    try:
        with writing(request) as conn:
            moved = case_store.move_case(
                conn, case_id, body.state, by=by, held=principal.permissions, now=now, reason=body.reason,
                disposition=body.disposition,
            )  # fmt: skip
    except UserInputError as refusal:
        with writing(request) as conn:
            case_store.record_refusal(conn, case_id, body.state, refusal, by=by, now=now)
        raise
    return CaseOut(**moved)
