"""One router per resource, and the dependencies they share.

Query times are accepted as epoch ms (what the edge stamps and the API
returns) or as ISO-8601 with a zone (what people type); anything else is a
422 in FastAPI's own error shape, so clients handle one format of mistake.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Connection, Engine

from coldgate.contract.ids import MAX_EPOCH_MS

__all__ = ["MAX_RANGE_MS", "check_range", "connection", "parse_time"]

#: Longest from..to window one request may ask for: a year of minute readings is ~527k rows to bucket.
MAX_RANGE_MS = 366 * 24 * 3600 * 1000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_INTEGER = re.compile(r"[+-]?\d+")
_TIME_HELP = "epoch milliseconds (1741079700000) or ISO-8601 with a zone (2025-03-04T09:15:00Z)"


def connection(request: Request) -> Iterator[Connection]:
    """One pooled connection per request, returned to the pool when the response is sent.

    Endpoints only read, so no transaction is committed; closing rolls back.
    """
    engine: Engine = request.app.state.engine
    with engine.connect() as conn:
        yield conn


def query_error(name: str, raw: object, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own validation errors, pointing at query parameter ``name``."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", name), "msg": message, "input": raw}]
    )


def parse_time(raw: str, name: str) -> int:
    """Epoch ms from a query value, or a 422 saying what was wrong with it."""
    text = raw.strip()
    if _INTEGER.fullmatch(text):
        ms = int(text)
        if not 0 <= ms <= MAX_EPOCH_MS:
            raise query_error(name, raw, f"{ms} is outside 0..{MAX_EPOCH_MS} epoch milliseconds")
        return ms
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        hint = ""
        if " " in text and ("T" in text or ":" in text):
            hint = " (a '+' in a URL reads as a space: send the offset as %2B01:00, or use Z)"
        raise query_error(name, raw, f"{raw!r} is neither {_TIME_HELP}{hint}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise query_error(name, raw, f"{raw!r} has no time zone: add Z or an offset like +01:00")
    ms = (moment - _EPOCH) // datetime.timedelta(milliseconds=1)
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise query_error(name, raw, f"{raw!r} is before 1970")
    return ms


def check_range(start: int, end: int, raw_end: str, *, max_ms: int | None = MAX_RANGE_MS) -> None:
    """Reject an empty, reversed or (past ``max_ms``, if given) too long window (422 on ``to``)."""
    if end <= start:
        raise query_error("to", raw_end, f"'to' ({end}) must be after 'from' ({start})")
    if max_ms is not None and end - start > max_ms:
        raise query_error(
            "to",
            raw_end,
            f"the range is {(end - start) / 86_400_000:.1f} days; at most {max_ms // 86_400_000} "
            "days per request",
        )
