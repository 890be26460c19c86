"""The cloud's web app: the JSON API and the dashboard's pages in one FastAPI application.

Apart from ``cloud/api/app.py`` so the API does not know the pages exist
(the pages build on the API's query layer and access rules, never the other
way round).  The service serves this; tests of the JSON API alone may keep
using ``create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import Engine

from coldgate.cloud.api.app import create_app
from coldgate.cloud.api.auth import ApiTokens, AuthSettings
from coldgate.cloud.web import (
    admin_pages,
    case_pages,
    catalog_change_pages,
    catalog_pages,
    custody_pages,
    document_pages,
    history_pages,
    kpi_pages,
    pages,
    recall_pages,
    report_pages,
    topology_pages,
)

__all__ = ["create_web_app"]


def create_web_app(
    engine: Engine, tokens: ApiTokens, *, writer: Engine | None = None, auth: AuthSettings | None = None
) -> FastAPI:
    """``create_app``'s API with the dashboard's pages, their error pages and static files."""
    app = create_app(engine, tokens, writer=writer, auth=auth)
    openapi = app.openapi()  # as create_app left it (public routes marked): adding pages resets the cache
    # The changes' page before the catalog's: /dashboard/catalog/{kind} would take "changes" for a kind.
    page_modules = (
        admin_pages, catalog_change_pages, catalog_pages, topology_pages, document_pages, custody_pages,
        history_pages, case_pages, recall_pages, report_pages, kpi_pages,
    )  # fmt: skip
    pages.install(app, tuple(module.router for module in page_modules))
    app.openapi_schema = openapi
    return app
