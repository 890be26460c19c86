"""Edge alerts folded from their steps (raised, updated, cleared) into one entry each."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.routes.windows import Window, window
from coldgate.cloud.api.schemas import AlertList
from coldgate.contract.items import Severity

__all__ = ["router"]

router = APIRouter(tags=["alerts"])


@router.get("/alerts", response_model=AlertList)
def list_alerts(
    conn: Annotated[Connection, Depends(connection)],
    when: Annotated[Window, Depends(window)],
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64, description="Alerts of this site's gateways.")] = None,
    rule: Annotated[str | None, Query(max_length=128, description="The rule that raised it.")] = None,
    state: Annotated[Literal["open", "all"], Query(description="open: not cleared yet.")] = "open",
    severity: Annotated[Severity | None, Query(description="Severity of the latest step.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    """Most recently raised first; a window keeps the alerts whose raising to clearing overlaps it (an
    open alert lasts until now)."""
    chosen = None if severity is None else str(severity)
    found = queries.alerts(
        conn, gateway, state == "open", chosen, limit, site=site, rule=rule, start=when.start, end=when.end
    )
    return AlertList(items=found)
