"""The lots quarantined now (issue 16): since when, by whom and why, and the open QA cases holding each
(``cloud/alerts/case_quarantine.py``, the reader the quarantine page uses too).  Reading is
``catalog.read``: a lot's status is master data every role may see; moving it is a case's closing or a
QA decision on the lot (``PUT /catalog/lots/...``)."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.alerts.case_quarantine import quarantined_lots
from coldgate.cloud.api.routes import connection

__all__ = ["router"]

router = APIRouter(tags=["cases"])


class QuarantinedLot(BaseModel):
    product: str
    lot: str
    expiry: str | None
    since: datetime.datetime = Field(description="When the lot's quarantine began (its version's time).")
    by: str = Field(description="Who quarantined it: a person, or the system for a case's excursion.")
    reason: str
    cases: list[str] = Field(description="The open QA cases holding it; empty: quarantined by a decision.")
    rooms: list[str] = Field(description="site/location where those cases found it.")


class QuarantineList(BaseModel):
    items: list[QuarantinedLot]


@router.get("/quarantine", response_model=QuarantineList)
def quarantine(
    conn: Annotated[Connection, Depends(connection)], site: Annotated[str | None, Query(max_length=64)] = None
) -> QuarantineList:
    """Every lot quarantined now, longest held first."""
    return QuarantineList(items=[QuarantinedLot(**x) for x in quarantined_lots(conn, site=site)])
