"""A sensor's readings over a window, raw or bucketed so a chart never pulls a year of rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import check_range, connection, parse_time
from coldgate.cloud.api.schemas import ReadingSeries

__all__ = ["router"]

router = APIRouter(tags=["readings"])

_TIME = "Epoch ms or ISO-8601 with a zone, e.g. 2025-03-04T09:15:00Z."


@router.get(
    "/gateways/{gateway}/sensors/{sensor}/readings",
    response_model=ReadingSeries,
    responses={404: {"description": "Unknown gateway or sensor."}},
)
def sensor_readings(
    conn: Annotated[Connection, Depends(connection)],
    gateway: str,
    sensor: str,
    from_: Annotated[str, Query(alias="from", description=f"Inclusive. {_TIME}")],
    to: Annotated[str, Query(description=f"Exclusive. {_TIME}")],
    max_points: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    quantity: Annotated[str | None, Query(max_length=32, description="Only this quantity.")] = None,
) -> ReadingSeries:
    """Readings with from <= ts < to, on the edge's wall time ``ts``.

    Up to ``max_points`` readings come back raw; more are folded into buckets
    of ceil((to - from) / max_points) ms with min/max/avg over 'ok' readings.
    """
    start = parse_time(from_, "from")
    end = parse_time(to, "to")
    check_range(start, end, to)
    if not queries.gateway_exists(conn, gateway):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no gateway {gateway!r}")
    if not queries.sensor_exists(conn, gateway, sensor):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no sensor {sensor!r} on gateway {gateway!r}")
    series = queries.reading_series(conn, gateway, sensor, start, end, max_points, quantity)
    return ReadingSeries.model_validate(series)
