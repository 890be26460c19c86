"""Sites: the list (any reader), and each site's time zone (admins), through ``cloud.catalog.sites``.

The zone is a setting (``settings.manage``): the change and its audit entry are
one transaction (``cloud/api/writes.py``); an unknown zone is a 422 naming
``time_zone`` and the value, an unknown site a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from coldgate.cloud.api import queries_sites
from coldgate.cloud.api.auth import signed_in
from coldgate.cloud.api.schemas import SiteEntry, SiteList, TimeZoneBody
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.catalog.sites import set_time_zone
from coldgate.cloud.identity.principal import Principal

__all__ = ["router"]

router = APIRouter(tags=["sites"])
Who = Annotated[Principal, Depends(signed_in)]


@router.get("/sites", response_model=SiteList)
def list_sites(request: Request) -> SiteList:
    """Every site the cloud knows (reported from or enrolled), by id, with its time zone."""
    with request.app.state.engine.connect() as conn:
        return SiteList(items=queries_sites.sites(conn))


@router.put(
    "/sites/{site}/time-zone", response_model=SiteEntry, responses={404: {"description": "No such site."}}
)
def put_time_zone(
    who: Who, site: Annotated[str, Path(max_length=64)], body: TimeZoneBody, request: Request
) -> SiteEntry:
    """Set the IANA zone (``Europe/Berlin``) the site's times are shown in; audited."""
    with writing(request) as conn:
        set_time_zone(conn, site, body.time_zone, by=acting(request), now=utc_now())
        found = [s for s in queries_sites.sites(conn) if s.id == site]
    return found[0]
