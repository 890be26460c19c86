"""Build the FastAPI application around an engine and the API tokens.

A factory rather than a module-level app: the service, the tests and a future
``coldgate cloud api`` command each pass their own engine and tokens, and
nothing connects or reads files at import time.
"""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from coldgate import __version__
from coldgate.cloud.api.access import check_declared
from coldgate.cloud.api.auth import ApiTokens, AuthSettings, authorize
from coldgate.cloud.api.input_guard import refuse_unstorable_text
from coldgate.cloud.api.request_id import RequestIdMiddleware
from coldgate.cloud.api.routes import (
    alerts,
    audit,
    cases,
    catalog_changes,
    catalog_classes,
    catalog_import,
    catalog_lots,
    catalog_places,
    catalog_products,
    catalog_serials,
    custody,
    dead_letters,
    dock,
    documents,
    documents_epcis,
    gaps,
    gateways,
    health,
    history,
    kpis,
    metrics,
    overview,
    quarantine,
    readings,
    recalls,
    reports,
    sensors,
    sites,
    topology,
    users,
)
from coldgate.cloud.api.routes import auth as sign_in
from coldgate.cloud.api.routes import tokens as api_tokens
from coldgate.cloud.api.routes.health import short_reason
from coldgate.cloud.api.validation_errors import http_error, validation_failed
from coldgate.cloud.api.writes import refused
from coldgate.cloud.identity.users import UserInputError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_DESCRIPTION = """\
What the gateways reported (gateways, sensors and their readings, gaps in
monitoring, alerts and dead letters), the people who use it and the audit trail.

Every endpoint except `/health` and `/auth/login` needs credentials: an API token
(`Authorization: Bearer cg_...`, made with `POST /auth/tokens` or `coldgate cloud
tokens`), a browser session from `POST /auth/login` (send its CSRF token as
`X-CSRF-Token` with every change), or a line of the read-only API tokens file.
Each route needs one permission (`cloud/api/access.py`); roles give permissions.
Edge times are integer epoch milliseconds with `*_iso` twins in UTC; query times
accept either epoch ms or ISO-8601 with a zone.
"""


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A lost database is the operator's problem, not a bug: 503 with the reason, not a 500 traceback."""
    reason = short_reason(exc)
    log.warning("API %s %s: database unavailable: %s", request.method, request.url.path, reason)
    return JSONResponse(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, content={"detail": f"database unavailable: {reason}"}
    )


def create_app(
    engine: Engine, tokens: ApiTokens, *, writer: Engine | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """The API over ``engine`` (synchronous SQLAlchemy 2, for reading), writing through ``writer``
    (default: ``engine``), accepting the old tokens file's ``tokens`` as read-only machine tokens.

    Endpoints are plain ``def``: FastAPI runs them in its thread pool, each with
    its own pooled connection, so the engine's pool size bounds the database load.

    Every route first passes ``authorize`` (who is asking, and may they: the
    route's entry in ``cloud/api/access.py``), then ``input_guard`` (parameters
    that cannot be text), so a stranger hears 401 whatever they sent.
    Route-level dependencies run in list order and before the endpoint's own.
    Building the app fails if a route has no entry in the access table.
    """
    app = FastAPI(title="Coldgate cloud API", version=__version__, description=_DESCRIPTION)
    app.state.engine = engine
    app.state.writer = writer if writer is not None else engine
    app.state.tokens = tokens
    app.state.auth = auth if auth is not None else AuthSettings()
    app.add_middleware(RequestIdMiddleware)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(UserInputError, refused)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    checks = [Depends(authorize), Depends(refuse_unstorable_text)]
    answers: dict[int | str, dict[str, str]] = {
        401: {"description": "No credentials, or not valid ones."},
        403: {"description": "Signed in, but the route's permission is not among your roles'."},
    }
    routers = (
        health,
        sign_in,
        users,
        api_tokens,
        audit,
        gateways,
        overview,
        sensors,
        readings,
        gaps,
        alerts,
        dead_letters,
        sites,
        catalog_classes,
        catalog_products,
        catalog_lots,
        catalog_serials,
        catalog_import,
        catalog_places,
        catalog_changes,
        topology,
        documents,
        documents_epcis,
        dock,
        custody,
        history,
        cases,
        quarantine,
        reports,
        recalls,
        kpis,
        metrics,
    )
    for module in routers:
        app.include_router(module.router, dependencies=checks, responses=answers)
    check_declared(app)  # edits the OpenAPI document FastAPI caches: add no route after it
    return app
