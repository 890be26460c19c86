"""Messages ingest could not store, so an operator can see whose data is failing and why, and how
much of each source's refusals were only counted because it went over its dead-letter budget."""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Connection

from coldgate.cloud.api import queries, queries_refusals
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.schemas import DeadLetterBudgetList, DeadLetterList
from coldgate.cloud.ingest.dead_letter_budget import Budget

__all__ = ["BUDGET_STATE", "router"]

#: The ``app.state`` attribute holding ingest's ``Budget`` (``IngestLimits.from_config(...).budget``):
#: whether a window is still open and a source capped depends on the configured window and rows,
#: which ``create_app`` is not given; without it the defaults are used, and the reply says so.
BUDGET_STATE = "dead_letter_budget"

router = APIRouter(tags=["dead letters"])


@router.get("/dead-letters", response_model=DeadLetterList)
def list_dead_letters(
    conn: Annotated[Connection, Depends(connection)],
    gateway: Annotated[str | None, Query(max_length=64, description="The gateway the topic names.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterList:
    """Newest first, with the payload's size and its first 200 bytes, never the whole payload."""
    return DeadLetterList(items=queries.dead_letters(conn, gateway, limit))


@router.get("/dead-letters/budgets", response_model=DeadLetterBudgetList)
def list_dead_letter_budgets(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    capped: Annotated[
        bool | None, Query(description="true: only sources capped now; false: the others.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Entries to skip, for the next page.")] = 0,
) -> DeadLetterBudgetList:
    """Each source's latest budget window, sources capped now first: who is flooding ingest with
    refusals, and how much of it was counted without being kept."""
    given = getattr(request.app.state, BUDGET_STATE, None)
    budget = given if isinstance(given, Budget) else Budget()
    return queries_refusals.dead_letter_budgets(
        conn,
        budget,
        datetime.datetime.now(datetime.UTC),
        configured=budget is given,
        capped=capped,
        limit=limit,
        offset=offset,
    )
