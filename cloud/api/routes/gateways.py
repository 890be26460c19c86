"""Gateways as the cloud last saw them: online state, clock, backlog, alarm and acknowledged seqs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.routes import connection
from coldgate.cloud.api.schemas import GatewayEntry, GatewayList

__all__ = ["router"]

router = APIRouter(tags=["gateways"])

Conn = Annotated[Connection, Depends(connection)]


@router.get("/gateways", response_model=GatewayList)
def list_gateways(conn: Conn, site: Annotated[str | None, Query(max_length=64)] = None) -> GatewayList:
    """Every gateway (of ``site``, if given), by site then id."""
    return GatewayList(items=queries.gateways(conn, site=site))


@router.get("/gateways/{gateway}", response_model=GatewayEntry, responses={404: {"description": "Unknown."}})
def get_gateway(conn: Conn, gateway: str) -> GatewayEntry:
    found = queries.gateways(conn, gateway=gateway)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no gateway {gateway!r}")
    return found[0]
