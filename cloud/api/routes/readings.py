"""A sensor's readings over a window, raw or bucketed so a chart never pulls a year of rows, with the
months in it whose readings retention purged (said, so that a purged month never reads as a gap)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import Field
from sqlalchemy import Connection, Engine

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import check_range, connection, parse_time
from coldgate.cloud.api.routes.history import PurgedMonthOut
from coldgate.cloud.api.schemas import ReadingSeries, iso_ms

__all__ = ["router"]

router = APIRouter(tags=["readings"])

_TIME = "Epoch ms or ISO-8601 with a zone, e.g. 2025-03-04T09:15:00Z."


class PurgedSeries(ReadingSeries):
    """The series and the purged months in its range (here, not in ``schemas``: only this route and the
    sensor page, which reads the query's dict, carry them)."""

    purged: list[PurgedMonthOut] = Field(
        default_factory=list,
        description="Months overlapping the range whose readings retention purged: no raw reading of "
        "them is left (hour buckets may still come from the hourly summaries); not a monitoring gap.",
    )


@router.get(
    "/gateways/{gateway}/sensors/{sensor}/readings",
    response_model=PurgedSeries,
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
) -> PurgedSeries:
    """Readings with from <= time < to, where a reading's time is the one the cloud corrected (a
    gateway that stamped it before its clock was synchronised) or else the gateway's ``ts``; both
    come back, the gateway's as evidence.

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
    return PurgedSeries.model_validate(series)


_CSV_COLUMNS = (
    "ts",
    "ts_iso",
    "ts_corrected",
    "ts_corrected_iso",
    "quantity",
    "value",
    "unit",
    "quality",
    "reason",
)


def _csv(
    engine: Engine, gateway: str, sensor: str, start: int, end: int, quantity: str | None
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    with engine.connect() as conn:
        for row in queries.reading_rows(conn, gateway, sensor, start, end, quantity):
            writer.writerow(
                (row.ts, iso_ms(row.ts), row.ts_corrected, iso_ms(row.ts_corrected), row.quantity, row.value,
                 row.unit, row.quality, row.reason or "")
            )  # fmt: skip
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/gateways/{gateway}/sensors/{sensor}/readings.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, 404: {"description": "Unknown gateway or sensor."}},
)
def sensor_readings_csv(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    gateway: str,
    sensor: str,
    from_: Annotated[str, Query(alias="from", description=f"Inclusive. {_TIME}")],
    to: Annotated[str, Query(description=f"Exclusive. {_TIME}")],
    quantity: Annotated[str | None, Query(max_length=32, description="Only this quantity.")] = None,
) -> StreamingResponse:
    """Every reading of the range, raw (never bucketed), oldest first, as CSV: what a chart showed,
    for a spreadsheet or an inspector."""
    start = parse_time(from_, "from")
    end = parse_time(to, "to")
    check_range(start, end, to)
    if not queries.sensor_exists(conn, gateway, sensor):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no sensor {sensor!r} on gateway {gateway!r}")
    name = f"{gateway}-{sensor}-{iso_ms(start)}".replace(":", "")
    return StreamingResponse(
        _csv(request.app.state.engine, gateway, sensor, start, end, quantity),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
