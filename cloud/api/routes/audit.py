"""The audit trail, for QA managers, admins and whoever else holds ``audit.read``: filtered pages
as JSON, or the same filters as a CSV file an inspector opens in a spreadsheet.

The CSV keeps every field as stored, with one exception: a cell that a
spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) gets a leading apostrophe, the usual defence against CSV injection;
the JSON and ``coldgate cloud audit verify`` see the stored value.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from coldgate.cloud.api import queries_audit
from coldgate.cloud.api.queries_audit import AuditFilter
from coldgate.cloud.api.routes import check_range, parse_time
from coldgate.cloud.api.schemas_identity import AuditList

__all__ = ["CSV_MAX_ROWS", "filters", "router"]

router = APIRouter(tags=["audit"])

#: An export larger than this is cut (and says so in its last line): ask for a narrower range.
CSV_MAX_ROWS = 1_000_000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_TEXT = Query(max_length=200)


def filters(
    entity_type: Annotated[str | None, Query(max_length=64, description='e.g. "user", "gateway".')] = None,
    entity_id: Annotated[str | None, _TEXT] = None,
    actor: Annotated[str | None, Query(max_length=200, description="A user id or an actor's name.")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description='"user.lock", or a prefix ending in "." ("user.").')
    ] = None,
    start: Annotated[str | None, Query(alias="from", description="Server time, inclusive.")] = None,
    end: Annotated[str | None, Query(alias="to", description="Server time, exclusive.")] = None,
) -> AuditFilter:
    """The filters of the query; an empty value is no filter (what a form's blank field sends)."""
    entity_type, entity_id, actor, action, start, end = (
        value or None for value in (entity_type, entity_id, actor, action, start, end)
    )
    start_ms = parse_time(start, "from") if start is not None else None
    end_ms = parse_time(end, "to") if end is not None else None
    if start_ms is not None and end_ms is not None and end is not None:
        check_range(start_ms, end_ms, end, max_ms=None)
    moment = lambda ms: _EPOCH + datetime.timedelta(milliseconds=ms) if ms is not None else None  # noqa: E731
    return AuditFilter(entity_type, entity_id, actor, action, moment(start_ms), moment(end_ms))


Filters = Annotated[AuditFilter, Depends(filters)]


@router.get("/audit", response_model=AuditList)
def list_audit(
    request: Request,
    where: Filters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditList:
    """Entries matching every filter given, newest first, with ``total`` for paging."""
    with request.app.state.engine.connect() as conn:
        total = queries_audit.count(conn, where)
        items = queries_audit.entries(conn, where, limit=limit, offset=offset)
    return AuditList(total=total, items=items)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _csv(request: Request, where: AuditFilter) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(queries_audit.COLUMNS)
    written = 0
    with request.app.state.engine.connect() as conn:
        for row in queries_audit.rows(conn, where, limit=CSV_MAX_ROWS + 1):
            if written == CSV_MAX_ROWS:
                writer.writerow([f"# cut at {CSV_MAX_ROWS} entries: narrow the filters (from/to)"])
                break
            writer.writerow([_cell(value) for value in row])
            written += 1
            if buffer.tell() > 65536:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get("/audit.csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def export_audit(request: Request, where: Filters) -> StreamingResponse:
    """The entries matching the filters, oldest first, as CSV (every field, hashes included)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv(request, where),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="coldgate-audit-{stamp}.csv"'},
    )
