"""Liveness for load balancers and systemd watchdogs: no token, no data, just "can we reach the database"."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from coldgate.cloud.api.schemas import Health

__all__ = ["router", "short_reason"]

router = APIRouter(tags=["health"])


def short_reason(exc: BaseException) -> str:
    """One line of the driver's error, without SQLAlchemy's SQL echo and help links.

    Driver messages name host and port but never the password, so they are
    safe to show to whoever can reach the health check.
    """
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return first[:200]


@router.get(
    "/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def health(request: Request, response: Response) -> Health:
    """200 when ``SELECT 1`` succeeds, else 503 with the reason."""
    engine: Engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Health(status="degraded", database=f"unavailable: {short_reason(exc)}")
    return Health(status="ok", database="ok")
