"""The one path an API write takes: a transaction on the writer engine, the acting principal, and
refusals turned into answers.

Every change the API makes happens inside ``writing(request)``, and every
``cloud/identity`` (and later) write function appends its audit entry in the
connection it is given, so the change and its entry commit together; a
refusal raised inside rolls both back.  ``UserInputError`` becomes a 422 in
FastAPI's error shape naming the field (a path parameter, or the body's
field), ``NotFound`` a 404, ``Conflict`` (a stale version) a 409: decided
here once, so routes do not each map them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.versions import Conflict
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.users import Forbidden, NotFound, UserInputError

__all__ = ["acting", "catalog_changed", "client_of", "refused", "request_id_of", "utc_now", "writing"]


@contextmanager
def writing(request: Request) -> Iterator[Connection]:
    """One transaction on the writer engine: committed if the block ends, rolled back if it raises."""
    with request.app.state.writer.begin() as conn:
        yield conn


def catalog_changed(request: Request) -> None:
    """After a committed master-data write: the down-link publisher (when this process runs one) sends
    the gateways their new documents now rather than at its next pass."""
    nudge = getattr(request.app.state, "catalog_changed", None)
    if nudge is not None:
        nudge()


def acting(request: Request) -> Actor:
    """The signed-in principal as the audit trail records them: with this request's id and client."""
    principal: Principal = request.state.principal
    return dataclasses.replace(principal.actor, request_id=request_id_of(request), client=client_of(request))


def request_id_of(request: Request) -> str | None:
    """The id ``RequestIdMiddleware`` gave this request (None outside the app, e.g. a bare router)."""
    return getattr(request.state, "request_id", None)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def refusal_status(exc: UserInputError) -> int:
    """The HTTP status of a refused write, for the API and the pages' forms alike: 404 for what does
    not exist, 403 for what the person may not do to the record, 409 for a conflict with the record's
    state, 422 for a bad field."""
    if isinstance(exc, NotFound):
        return status.HTTP_404_NOT_FOUND
    if isinstance(exc, Forbidden):
        return status.HTTP_403_FORBIDDEN
    return status.HTTP_409_CONFLICT if isinstance(exc, Conflict) else status.HTTP_422_UNPROCESSABLE_CONTENT


async def refused(request: Request, exc: Exception) -> JSONResponse:
    """``UserInputError`` → 422 naming the field (``NotFound`` → 404, ``Conflict`` → 409); nothing was
    written."""
    assert isinstance(exc, UserInputError)
    code = refusal_status(exc)
    if code != status.HTTP_422_UNPROCESSABLE_CONTENT:
        return JSONResponse(status_code=code, content={"detail": str(exc)})
    where = "path" if exc.field in request.path_params else "body"
    message = str(exc).removeprefix(f"{exc.field}: ")
    detail = [{"type": "value_error", "loc": [where, exc.field], "msg": message}]
    return JSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})
