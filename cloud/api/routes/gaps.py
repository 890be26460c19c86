"""Interruptions of monitoring, one entry per gap however many times it was reported."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import check_range, connection, parse_time
from coldgate.cloud.api.schemas import GapList

__all__ = ["router"]

router = APIRouter(tags=["gaps"])

_TIME = "Epoch ms or ISO-8601 with a zone."


@router.get("/gaps", response_model=GapList)
def list_gaps(
    conn: Annotated[Connection, Depends(connection)],
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    open_: Annotated[bool | None, Query(alias="open", description="true: still open; false: closed.")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description=f"Gaps still open at or after. {_TIME}")
    ] = None,
    to: Annotated[str | None, Query(description=f"Gaps starting before. {_TIME}")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> GapList:
    """Newest start first; a window keeps the gaps that overlap it."""
    start = parse_time(from_, "from") if from_ is not None else None
    end = parse_time(to, "to") if to is not None else None
    if start is not None and end is not None:
        check_range(start, end, to or "")
    return GapList(items=queries.gaps(conn, gateway, open_, start, end, limit))
