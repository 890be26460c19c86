"""Interruptions of monitoring, one entry per gap however many times it was reported."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.routes.windows import Window, window
from coldgate.cloud.api.schemas import GapList

__all__ = ["router"]

router = APIRouter(tags=["gaps"])


@router.get("/gaps", response_model=GapList)
def list_gaps(
    conn: Annotated[Connection, Depends(connection)],
    when: Annotated[Window, Depends(window)],
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64, description="Gaps of this site's gateways.")] = None,
    open_: Annotated[bool | None, Query(alias="open", description="true: still open; false: closed.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> GapList:
    """Open ones first, then newest start first; a window keeps the gaps that overlap it (an open gap
    lasts until now)."""
    found = queries.gaps(conn, gateway, open_, when.start, when.end, limit, site=site)
    return GapList(items=found)
