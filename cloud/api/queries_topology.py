"""Each enrolled gateway's reported topology against the cloud's placements: one read for
``GET /gateways/{gateway}/topology`` and the topology page, and the write that accepts its proposals.

The topology is read from the gateway's last status as stored (``gateways.last_status``), decoded
with the contract's own type: a status from before topologies were reported, or one the decoder
refuses, is said in the report's ``note`` rather than failing the page.  The site is the enrolment's,
as ``placements.place`` takes it, so a proposal is for a location ``place`` will accept.  Accepting
compares again inside the write's transaction, on what is stored then, not on what a page showed
minutes ago.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import Connection, select

from coldgate.cloud.alerts.cloud_stream import epoch_ms
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.placements import place, placements
from coldgate.cloud.catalog.topology import Comparison, compare
from coldgate.cloud.catalog.versions import check_reason
from coldgate.cloud.db.models import Gateway, GatewayEnrolment
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.contract.uplink import Topology

__all__ = ["TopologyReport", "accept_proposals", "topology_report", "topology_reports"]


@dataclass(frozen=True, slots=True)
class TopologyReport:
    """``reported_at``: the ts of the status the topology came from (None: no topology to compare)."""

    gateway: str
    site: str
    reported_at: int | None
    note: str
    comparison: Comparison


def _topology(status: object) -> tuple[Topology | None, int | None, str]:
    """The topology in a stored status, when it was reported, and a note when there is none."""
    if not isinstance(status, dict):
        return None, None, "no status heard from it yet"
    raw = status.get("topology")
    ts = status.get("ts") if isinstance(status.get("ts"), int) else None
    if raw is None:
        return None, ts, "its last status carries no topology (software from before 2026-12-06)"
    try:
        return msgspec.convert(raw, Topology), ts, ""
    except msgspec.ValidationError as exc:
        return None, ts, f"the topology in its last status cannot be read: {exc}"


def _report(conn: Connection, gateway: str, site: str, status: object, now_ms: int) -> TopologyReport:
    topology, ts, note = _topology(status)
    if topology is None:
        return TopologyReport(gateway, site, None, note, Comparison())
    placed: dict[tuple[str, str], str | None] = {}
    planned: dict[tuple[str, str], int] = {}
    for p in placements(conn, gateway=gateway):  # oldest first: the newest in force wins
        key = (p["device_kind"], p["device"])
        if p["valid_from"] <= now_ms:
            placed[key] = p["location"]
        else:
            planned.setdefault(key, p["valid_from"])
    planned = {key: start for key, start in planned.items() if key not in placed}
    found = compare(topology, site, locations(conn, site=site, retired=True), placed, planned)
    return TopologyReport(gateway, site, ts, note, found)


def _enrolled(conn: Connection, gateway: str | None = None) -> list[Any]:
    e = GatewayEnrolment
    query = (
        select(e.gateway, e.site, Gateway.last_status)
        .join(Gateway, Gateway.id == e.gateway, isouter=True)
        .where(e.revoked_at.is_(None))
        .order_by(e.site, e.gateway)
    )
    if gateway is not None:
        query = query.where(e.gateway == gateway)
    return list(conn.execute(query))


def topology_report(conn: Connection, gateway: str, now_ms: int) -> TopologyReport:
    """One enrolled gateway's findings at ``now_ms``; ``NotFound`` for any other gateway id."""
    rows = _enrolled(conn, gateway)
    if not rows:
        raise NotFound("gateway", f"no enrolled gateway {gateway!r}")
    return _report(conn, rows[0].gateway, rows[0].site, rows[0].last_status, now_ms)


def topology_reports(conn: Connection, now_ms: int) -> list[TopologyReport]:
    """Every enrolled gateway's findings, by site then gateway."""
    return [_report(conn, r.gateway, r.site, r.last_status, now_ms) for r in _enrolled(conn)]


def accept_proposals(
    conn: Connection,
    gateway: str,
    chosen: list[tuple[str, str]] | None,
    *,
    reason: str,
    by: Actor,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Place each proposed device (only ``chosen`` (device kind, device) pairs, when given) at its
    proposal from ``now`` on, through ``place`` (so each is checked and audited like any placement), in
    ``conn``'s transaction.  A chosen device without a proposal refuses the whole acceptance, naming it
    and why, so a person never believes a placement was made that was not."""
    # Two people accepting at once must not both find a device unplaced and place it twice: the second
    # waits for the first here (PostgreSQL; SQLite has one writer anyway) and then finds it placed.
    e = GatewayEnrolment
    conn.execute(select(e.gateway).where(e.gateway == gateway, e.revoked_at.is_(None)).with_for_update())
    report = topology_report(conn, gateway, epoch_ms(now))
    why = check_reason(reason)
    proposals = {(f.device_kind, f.device): f for f in report.comparison.proposals}
    if chosen is not None:
        if not chosen:
            raise UserInputError("devices", "names no device: leave it out to accept every proposal")
        findings = {(f.device_kind, f.device): f for f in report.comparison.devices}
        seen: set[tuple[str, str]] = set()
        for key in chosen:
            if key in seen:
                raise UserInputError("devices", f"{key[0]} {key[1]} is listed twice")
            seen.add(key)
            if key not in proposals:
                finding = findings.get(key)
                why_not = finding.reason if finding else "not in the gateway's reported topology"
                raise UserInputError("devices", f"{key[0]} {key[1]} has no proposal: {why_not}")
        picked = [proposals[key] for key in chosen]
    else:
        picked = list(proposals.values())
    start = epoch_ms(now)
    return [
        place(conn, gateway, f.device_kind, f.device, f.proposal, start, reason=why, by=by, now=now)
        for f in picked
    ]
