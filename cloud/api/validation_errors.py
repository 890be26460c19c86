"""FastAPI's 422 answer, made safe to send whatever the client sent.

FastAPI's own handler echoes each refused value as ``input``.  Two kinds of
value cannot be echoed: a lone surrogate (``"\\ud800"`` in a JSON string, or
the raw bytes ED A0 80 that Python's JSON parser lets through) cannot be
encoded as UTF-8, and ``NaN`` / ``Infinity`` (which Python's JSON parser
accepts) are not JSON.  Either turned a 422 into a 500 (found by
tests/test_api_identity_hostile.py).  This handler sends the same errors
with such values made printable, and long inputs cut, so a 100 KB login is
not sent back whole.

A JSON body that is not UTF-8 never reaches validation: FastAPI answers it
with a bare 400 "There was an error parsing the body" (the decoding error is
its ``__cause__``).  ``http_error`` turns exactly that case into the 422 every
other unparsable body gets, saying which byte, and leaves every other HTTP
error to FastAPI's own handler.

A body FastAPI cannot parse (not JSON, not UTF-8) is refused before the route's
dependencies run, so before ``authorize``: a caller without credentials, or
without the route's permission, heard a 422 about their body where every other
request hears 401 or 403 first (found by the schemathesis pass,
tests/test_api_schemathesis.py).  Both handlers therefore ask the door first
when it has not yet been asked (``_door_refuses``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from coldgate.cloud.api.auth import authorize, bearer_scheme
from coldgate.cloud.api.routes.health import short_reason

__all__ = ["MAX_ECHO", "http_error", "safe", "validation_failed"]

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


async def _door_refuses(request: Request) -> Response | None:
    """The door's 401 or 403 for a request refused before ``authorize`` ran (an unparsable body);
    None when the door lets the caller in or has already done so."""
    if hasattr(request.state, "principal"):
        return None  # authorize let them in; the refusal is about their input
    try:
        await authorize(request, await bearer_scheme(request))
    except HTTPException as refused:
        return await http_exception_handler(request, refused)
    except OperationalError as lost:  # as the app answers a lost database anywhere else: 503, not 500
        detail = f"database unavailable: {short_reason(lost)}"
        return JSONResponse(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": detail})
    return None


async def validation_failed(request: Request, exc: Exception) -> Response:
    """422 with FastAPI's error list, every value in it sendable; the door's answer first if the
    request was refused before the door was asked."""
    assert isinstance(exc, RequestValidationError)
    refused = await _door_refuses(request)
    if refused is not None:
        return refused
    errors = jsonable_encoder(exc.errors())
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": safe(errors)})


async def http_error(request: Request, exc: Exception) -> Response:
    """A body that is not UTF-8 as a 422 at ``["body"]`` naming the byte; any other HTTP error as
    FastAPI answers it."""
    assert isinstance(exc, HTTPException)
    cause = exc.__cause__
    if exc.status_code == status.HTTP_400_BAD_REQUEST and isinstance(cause, UnicodeDecodeError):
        refused = await _door_refuses(request)
        if refused is not None:
            return refused
        bad = cause.object[cause.start : cause.start + 1].hex()
        detail = [
            {
                "type": "json_invalid",
                "loc": ["body", cause.start],
                "msg": f"the body is not UTF-8: byte 0x{bad} at {cause.start} (send JSON as UTF-8 text)",
            }
        ]
        return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})
    return await http_exception_handler(request, exc)
