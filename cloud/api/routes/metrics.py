"""``GET /metrics``: the cloud's figures in Prometheus's text format (``cloud/api/queries_metrics.py``).

Scraped with a machine token (``coldgate cloud tokens create --machine prometheus --role viewer``) as a
bearer token; Prometheus's ``authorization`` setting sends it.  In the OpenAPI document as text/plain:
Prometheus's format, not the API's JSON.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine

from coldgate.cloud.api.queries_metrics import CloudFigures, cloud_figures, families

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


class _Once(Collector):
    def __init__(self, figures: CloudFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterable[Metric]:
        return families(self._figures)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}, "description": "Prometheus text."}},
)
def metrics(request: Request) -> Response:
    """The cloud's figures in Prometheus's text format: open QA cases by state, overdue ones, pending
    notifications, dead letters, each gateway's state and unacknowledged items,
    and this process's ingest counters where it runs ingest."""
    engine: Engine = request.app.state.engine
    stats = getattr(request.app.state, "ingest_stats", None)
    ingest = None
    if stats is not None:
        taken = stats()
        ingest = {name: getattr(taken, name) for name in type(taken).COUNTERS}
        ingest["connected"] = int(taken.connected)  # any of this process's workers, as a worker's own says
    with engine.connect() as conn:
        figures = cloud_figures(conn, datetime.datetime.now(datetime.UTC), ingest)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once(figures))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
