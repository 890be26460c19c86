"""Master-data changes and their approval (GDP change control, 21 CFR Part 11): the changes awaiting a
second person's signed approval, and approving one.  Reading is ``catalog.read``; approving is
``qa.decide`` (``cloud/catalog/change_approval.py``), and the change's author never approves it.

Approving is signed as a QA case's closing is (``cloud/api/signing.py``, ``signed_write``): the
password is checked on a reading connection first, then the signer is re-authenticated in the write
transaction, so a wrong password's count and audit entry commit and only then is it answered.  Every
refused approval is audited (``catalog.change_approval_refused``): 403 (the author, a wrong password),
404 (no such audit entry), 409 (approved already), 422 (no master-data change; no login at a first
signature).
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.api.routes import connection, query_error
from coldgate.cloud.api.signing import SignatureBody, SignatureOut, signed_write
from coldgate.cloud.api.writes import acting, utc_now
from coldgate.cloud.catalog import change_approvals
from coldgate.cloud.catalog.change_approval import STATES
from coldgate.cloud.identity.principal import Principal

__all__ = ["ApproveBody", "approve_change", "router"]

router = APIRouter(prefix="/catalog", tags=["catalog"])
Seq = Annotated[int, Path(ge=1, le=2**62, description="The change's audit entry (its seq).")]


class ChangeOut(BaseModel):
    seq: int = Field(description="The change's audit entry.")
    at: datetime.datetime
    action: str = Field(description="The audit action (product.update, placement.add...).")
    what: str = Field(description="The action in words.")
    entity_type: str
    entity_id: str
    actor_id: str | None = Field(description="The author's user id (null: a command on the cloud host).")
    actor_name: str
    reason: str | None
    before: Any = Field(description="The record before the change (null: it is new).")
    after: Any = Field(description="The record after the change.")
    changes: list[str] = Field(description="Before → after, field by field, in short.")
    approved: bool
    approvals: list[SignatureOut] = Field(description="Its approvals' signatures (meaning: approved).")


class ChangeList(BaseModel):
    items: list[ChangeOut]
    total: int = Field(description="How many changes are in the state asked.")


class ApproveBody(BaseModel):
    reason: str | None = Field(default=None, max_length=1000, description="What was checked, or a comment.")
    signature: SignatureBody = Field(description="Your password (and login) again: the approval is signed.")


@router.get("/changes", response_model=ChangeList)
def list_changes(
    conn: Annotated[Connection, Depends(connection)],
    state: Annotated[str, Query(max_length=16, description="awaiting, approved or all.")] = "awaiting",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ChangeList:  # fmt: skip
    """Master-data changes, newest first: those awaiting approval, those approved (with their signatures,
    each checked) or all."""
    if state not in STATES:
        raise query_error(
            "state", state, f"{state!r} is not a state of a change (one of {', '.join(STATES)})"
        )
    found = change_approvals.changes(conn, state=state, limit=limit, offset=offset)
    return ChangeList(items=[ChangeOut(**c) for c in found], total=change_approvals.count(conn, state=state))


@router.post(
    "/changes/{seq}/approve", response_model=ChangeOut,
    responses={403: {"description": "You made the change, may not approve, or the password is wrong."},
               404: {"description": "No such audit entry."}, 409: {"description": "Approved already."}},
)  # fmt: skip
def approve(seq: Seq, body: ApproveBody, request: Request) -> ChangeOut:
    """Approve the change with your signature; refused approvals are audited too."""
    return ChangeOut(**approve_change(request, seq, body))


def approve_change(request: Request, seq: int, body: ApproveBody) -> dict[str, Any]:
    """The approval ``body`` asks, as the signed-in person, for this route and the page's form alike: the
    signer re-authenticated first, a wrong password's count committed, every refusal audited in a
    transaction of its own and raised."""
    principal: Principal = request.state.principal
    by, now = acting(request), utc_now()
    return signed_write(
        request, body.signature, now,
        lambda conn, signer: change_approvals.approve(
            conn, seq, signer=signer, held=principal.permissions, reason=body.reason, by=by, now=now
        ),
        lambda conn, refusal: change_approvals.record_refusal(conn, seq, refusal, by=by, now=now),
    )  # fmt: skip
