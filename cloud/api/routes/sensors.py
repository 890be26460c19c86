"""Sensors with their newest reading: the "what does every cold room say now" view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.schemas import SensorList

__all__ = ["router"]

router = APIRouter(tags=["sensors"])


@router.get("/sensors", response_model=SensorList)
def list_sensors(
    conn: Annotated[Connection, Depends(connection)],
    gateway: Annotated[str | None, Query(max_length=64)] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
) -> SensorList:
    """Registered sensors by gateway then id; ``last_reading`` is null until one arrives."""
    return SensorList(items=queries.sensors(conn, gateway, site))
