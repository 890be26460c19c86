"""A gateway's reported topology against the cloud's placements: read with ``gateways.read`` (as the
gateway's other reads), and its proposals accepted with ``catalog.manage`` (placements are the site's
GDP layout, written by whoever may write them by hand)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from coldgate.cloud.alerts.cloud_stream import epoch_ms
from coldgate.cloud.api import queries_topology
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.catalog.topology import DEVICE_STATES, ZONE_STATES

__all__ = ["router"]

router = APIRouter(tags=["gateways"])
GatewayId = Annotated[str, Path(max_length=64)]
ANSWERS = {404: {"description": "Not an enrolled gateway."}}


class DeviceFindingOut(BaseModel):
    device_kind: str = Field(description="sensor, reader or scanner.")
    device: str
    state: str = Field(description=f"One of {', '.join(DEVICE_STATES)}.")
    reason: str = Field(description="Why, in a sentence a person can act on.")
    zone: str | None = Field(description="The zone the configuration puts it in.")
    door: str | None = Field(description="The dock door the configuration puts it at (readers, scanners).")
    placed: str | None = Field(description="The location the cloud has it at now (null: none).")
    placed_name: str | None
    proposal: str | None = Field(description="The location accepting would place it at (state proposed).")
    proposal_name: str | None


class ZoneFindingOut(BaseModel):
    zone: str
    temperature_class: str = Field(description="The class the configuration judges the zone by.")
    transport: bool
    state: str = Field(description=f"One of {', '.join(ZONE_STATES)}.")
    reason: str
    location: str | None = Field(description="The site's location of the zone's id, if any.")
    location_name: str | None


class TopologyOut(BaseModel):
    gateway: str
    site: str = Field(description="The enrolment's site: proposals are its locations.")
    reported_at: int | None = Field(description="ts of the status the topology came from; null: none.")
    note: str = Field(description="Why there is nothing to compare, when there is not.")
    counts: dict[str, int] = Field(description="Devices per state.")
    devices: list[DeviceFindingOut]
    zones: list[ZoneFindingOut]


class Chosen(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_kind: Literal["sensor", "reader", "scanner"]
    device: str = Field(max_length=64)


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000, description="Why the placements are made (kept in the audit trail).")
    devices: list[Chosen] | None = Field(
        default=None, max_length=4608, description="Only these proposals; left out: every proposal."
    )


class PlacedOut(BaseModel):
    gateway: str
    device_kind: str
    device: str
    site: str
    location: str | None
    valid_from: int
    recorded_by: str
    reason: str


class AcceptOut(BaseModel):
    gateway: str
    placed: list[PlacedOut] = Field(description="The placements made (empty: nothing was proposed).")


@router.get("/gateways/{gateway}/topology", response_model=TopologyOut, responses=ANSWERS)
def get_topology(gateway: GatewayId, request: Request) -> TopologyOut:
    """Per sensor, reader and scanner of the gateway's configuration (and per placed device it no longer
    has): agreeing, proposed (with the location), unplaced (why no proposal), drift or gone; per zone,
    whether the site has its location, keeping the class the configuration judges it by."""
    with request.app.state.engine.connect() as conn:
        report = queries_topology.topology_report(conn, gateway, epoch_ms(utc_now()))
    found = report.comparison
    return TopologyOut(
        gateway=report.gateway,
        site=report.site,
        reported_at=report.reported_at,
        note=report.note,
        counts=found.counts(),
        devices=[DeviceFindingOut(**dataclasses.asdict(f)) for f in found.devices],
        zones=[ZoneFindingOut(**dataclasses.asdict(z)) for z in found.zones],
    )


@router.post("/gateways/{gateway}/topology/accept", response_model=AcceptOut, responses=ANSWERS)
def accept_topology(gateway: GatewayId, body: AcceptBody, request: Request) -> AcceptOut:
    """Make the proposed placements (every one, or those in ``devices``) from now on, in one transaction,
    each audited with ``reason``; a listed device without a proposal refuses them all (422)."""
    chosen = None if body.devices is None else [(d.device_kind, d.device) for d in body.devices]
    with writing(request) as conn:
        made = queries_topology.accept_proposals(
            conn, gateway, chosen, reason=body.reason, by=acting(request), now=utc_now()
        )
    return AcceptOut(gateway=gateway, placed=[PlacedOut(**p) for p in made])
