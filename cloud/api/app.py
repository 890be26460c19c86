"""Build the FastAPI application around an engine and the API tokens.

A factory rather than a module-level app: the service, the tests and a future
``coldgate cloud api`` command each pass their own engine and tokens, and
nothing connects or reads files at import time.
"""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from coldgate import __version__
from coldgate.cloud.api.auth import ApiTokens, require_token
from coldgate.cloud.api.input_guard import refuse_unstorable_text
from coldgate.cloud.api.routes import alerts, dead_letters, gaps, gateways, health, readings, sensors
from coldgate.cloud.api.routes.health import short_reason

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Read access to what the gateways reported: gateways, sensors and their readings,
gaps in monitoring, alerts and dead letters.

Every endpoint except `/health` needs `Authorization: Bearer <token>` with a token
from the API tokens file. Edge times are integer epoch milliseconds with `*_iso`
twins in UTC; query times accept either epoch ms or ISO-8601 with a zone.
"""


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A lost database is the operator's problem, not a bug: 503 with the reason, not a 500 traceback."""
    reason = short_reason(exc)
    log.warning("API %s %s: database unavailable: %s", request.method, request.url.path, reason)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": f"database unavailable: {reason}"}
    )


def create_app(engine: Engine, tokens: ApiTokens) -> FastAPI:
    """The API over ``engine`` (synchronous SQLAlchemy 2), accepting the bearer tokens in ``tokens``.

    Endpoints are plain ``def``: FastAPI runs them in its thread pool, each with
    its own pooled connection, so the engine's pool size bounds the database load.

    Every router refuses parameters that cannot be text (``input_guard``), after the
    token check so a caller without a token hears 401 whatever they sent.  Route-level
    dependencies run in list order and before the endpoint's own, so the guard answers
    before any parameter reaches a query.
    """
    app = FastAPI(title="Coldgate cloud API", version=__version__, description=_DESCRIPTION)
    app.state.engine = engine
    app.state.tokens = tokens
    app.add_exception_handler(OperationalError, _database_unavailable)
    guard = Depends(refuse_unstorable_text)
    app.include_router(health.router, dependencies=[guard])
    secured = [Depends(require_token), guard]
    for module in (gateways, sensors, readings, gaps, alerts, dead_letters):
        app.include_router(
            module.router,
            dependencies=secured,
            responses={401: {"description": "Missing or unknown bearer token."}},
        )
    return app
