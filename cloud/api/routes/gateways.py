"""Gateways as the cloud last saw them (online state, clock, backlog, alarm, acknowledged seqs), the
enrolments that let them write, and the ids ingest refused for want of one.

The fixed paths (``/gateways/unknown``, ``/gateways/enrolments``) are declared
before ``/gateways/{gateway}``: Starlette tries routes in order, and the
parameter would otherwise take them as gateway ids.  A gateway whose id is
literally "unknown" or "enrolments" is still listed by ``/gateways``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from sqlalchemy import Connection

from coldgate.cloud.api import queries, queries_downlink, queries_refusals
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.schemas import EnrolmentList, GatewayEntry, GatewayList, UnknownGatewayList
from coldgate.cloud.api.schemas_catalog import DownlinkStateOut

__all__ = ["router"]

router = APIRouter(tags=["gateways"])

Conn = Annotated[Connection, Depends(connection)]
Site = Annotated[str | None, Query(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=1000)]
#: Bounded so that a huge number is a 422 here, not a bigint overflow in PostgreSQL (a 500).
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Entries to skip, for the next page.")]


@router.get("/gateways", response_model=GatewayList)
def list_gateways(conn: Conn, site: Annotated[str | None, Query(max_length=64)] = None) -> GatewayList:
    """Every gateway (of ``site``, if given), by site then id."""
    return GatewayList(items=queries.gateways(conn, site=site))


@router.get("/gateways/unknown", response_model=UnknownGatewayList)
def list_unknown_gateways(
    conn: Conn, site: Site = None, limit: Limit = 100, offset: Offset = 0
) -> UnknownGatewayList:
    """Gateway ids ingest refused (not enrolled, revoked, or on another site's topics), most recently
    heard first: a typo in a gateway's config, a login made on the broker but not enrolled here,
    or someone probing."""
    return queries_refusals.unknown_gateways(conn, site=site, limit=limit, offset=offset)


@router.get("/gateways/enrolments", response_model=EnrolmentList)
def list_enrolments(
    conn: Conn,
    site: Site = None,
    state: Annotated[
        Literal["active", "revoked", "all"], Query(description="active: not revoked; ingest takes its data.")
    ] = "all",
    limit: Limit = 100,
    offset: Offset = 0,
) -> EnrolmentList:
    """The gateways ingest takes data from (``coldgate cloud gateways enroll``), by site then id,
    including those never heard from, which ``/gateways`` cannot show."""
    return queries_refusals.enrolments(conn, site=site, state=state, limit=limit, offset=offset)


@router.get("/gateways/{gateway}", response_model=GatewayEntry, responses={404: {"description": "Unknown."}})
def get_gateway(conn: Conn, gateway: str) -> GatewayEntry:
    found = queries.gateways(conn, gateway=gateway)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no gateway {gateway!r}")
    return found[0]


@router.get(
    "/gateways/{gateway}/downlink",
    response_model=list[DownlinkStateOut],
    responses={404: {"description": "Not an enrolled gateway."}},
)
def get_downlink(conn: Conn, gateway: Annotated[str, Path(max_length=64)]) -> list[DownlinkStateOut]:
    """Per document (master data, recall list): the newest version published to the gateway and when,
    the version it reports in force, and whether it is current, behind (since when), or rejected it (why)."""
    found = queries_downlink.downlink_state(conn, [gateway])
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no enrolled gateway {gateway!r}")
    return [DownlinkStateOut(**dataclasses.asdict(c)) for c in found]
