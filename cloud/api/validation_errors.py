"""FastAPI's 422 answer, made safe to send whatever the client sent.

FastAPI's own handler echoes each refused value as ``input``.  Two kinds of
value cannot be echoed: a lone surrogate (``"\\ud800"`` in a JSON string, or
the raw bytes ED A0 80 that Python's JSON parser lets through) cannot be
encoded as UTF-8, and ``NaN`` / ``Infinity`` (which Python's JSON parser
accepts) are not JSON.  Either turned a 422 into a 500 (found by
tests/test_api_identity_hostile.py).  This handler sends the same errors
with such values made printable, and long inputs cut, so a 100 KB login is
not sent back whole.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["MAX_ECHO", "safe", "validation_failed"]

#: Characters of a refused string echoed back; the rest is replaced by "...".
MAX_ECHO = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe(value: Any) -> Any:
    """``value`` with every string UTF-8-encodable and cut to ``MAX_ECHO``, and every non-finite
    float as its name ("NaN", "Infinity"), recursively through lists, tuples and dicts."""
    if isinstance(value, str):
        text = _SURROGATE.sub("\ufffd", value)
        return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {safe(str(k)): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return value


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """422 with FastAPI's error list, every value in it sendable."""
    assert isinstance(exc, RequestValidationError)
    del request
    errors = jsonable_encoder(exc.errors())
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": safe(errors)})
