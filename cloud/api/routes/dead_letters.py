"""Messages ingest could not store, so an operator can see whose data is failing and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.schemas import DeadLetterList

__all__ = ["router"]

router = APIRouter(tags=["dead letters"])


@router.get("/dead-letters", response_model=DeadLetterList)
def list_dead_letters(
    conn: Annotated[Connection, Depends(connection)],
    gateway: Annotated[str | None, Query(max_length=64, description="The gateway the topic names.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterList:
    """Newest first, with the payload's size and its first 200 bytes, never the whole payload."""
    return DeadLetterList(items=queries.dead_letters(conn, gateway, limit))
