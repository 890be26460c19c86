"""The site overview as JSON: what the dashboard's overview page shows, from the same query."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from coldgate.cloud.api import queries_overview
from coldgate.cloud.api.schemas import Overview

__all__ = ["router"]

router = APIRouter(tags=["overview"])


@router.get("/overview", response_model=Overview)
def get_overview(request: Request, site: Annotated[str | None, Query(max_length=64)] = None) -> Overview:
    """Every gateway, each sensor as a tile with its state (most urgent first), and per site the
    open alerts, open gaps and gateways offline."""
    with request.app.state.engine.connect() as conn:
        return queries_overview.overview(conn, site=site, now_ms=int(time.time() * 1000))
