"""The gateway's configuration (its reported topology) set against the cloud's placements and locations.

Two records say where each sensor, reader and scanner stands: the gateway's
configuration (what it judges readings by, on site) and the cloud's placements
(what the evidence is filed under).  Nobody should have to copy ids from one
to the other, and nobody should find out at an audit that they disagree.  So
each device of either side gets one finding with a reason a person can act
on: placed and agreeing; not placed, with the placement to make (a location
of the gateway's site named as its zone, or for a reader or scanner as its
dock door) or why none can be proposed; drift (placed elsewhere, or in a
location that keeps another temperature class than the zone is judged by);
or gone (placed, but no longer in the configuration).  Each reported zone is
checked against the location of its id as well.

A proposal is only made when accepting it would give an agreeing placement:
a location of another class, a retired one, or one of the wrong kind is a
question for a person, not something to accept in bulk.  Pure: the caller
reads the status, the locations and the placements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coldgate.contract.uplink import Topology, TopologyNode, TopologyZone

__all__ = ["DEVICE_STATES", "ZONE_STATES", "Comparison", "DeviceFinding", "ZoneFinding", "compare"]

DEVICE_STATES = ("agreeing", "proposed", "unplaced", "drift", "gone")
ZONE_STATES = ("located", "unlocated", "drift")
_KINDS = ("sensor", "reader", "scanner")


@dataclass(frozen=True, slots=True)
class DeviceFinding:
    """One sensor, reader or scanner: ``placed`` is where the cloud has it now (None: nowhere, or taken
    out of service), ``proposal`` the location accepting would place it at (state ``proposed`` only)."""

    device_kind: str
    device: str
    state: str
    reason: str
    zone: str | None = None
    door: str | None = None
    placed: str | None = None
    placed_name: str | None = None
    proposal: str | None = None
    proposal_name: str | None = None


@dataclass(frozen=True, slots=True)
class ZoneFinding:
    """One zone of the configuration and the location of the same id, if the site has one."""

    zone: str
    temperature_class: str
    transport: bool
    state: str
    reason: str
    location: str | None = None
    location_name: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    devices: tuple[DeviceFinding, ...] = ()
    zones: tuple[ZoneFinding, ...] = ()

    @property
    def proposals(self) -> tuple[DeviceFinding, ...]:
        return tuple(f for f in self.devices if f.state == "proposed")

    def counts(self) -> dict[str, int]:
        """Devices per state, every state named (a page says "0 drift" rather than nothing)."""
        return {state: sum(f.state == state for f in self.devices) for state in DEVICE_STATES}


def _named(location: Mapping[str, Any] | None, location_id: str) -> str:
    """'CR1 (Cold room 1)': the id people see on the gateway, and the name they know the room by."""
    name = location.get("name") if location else None
    return f"{location_id} ({name})" if name and name != location_id else location_id


def _where(node: TopologyNode, door: bool) -> str:
    return f"at door {node.door}" if door else f"in zone {node.zone}"


def _unusable(
    location: Mapping[str, Any] | None, target: str, site: str, door: bool, zone: TopologyZone | None
) -> str | None:
    """Why the location of id ``target`` cannot take the device (None: it can)."""
    if location is None:
        return f"site {site} has no location {target}: make it in the catalog, then accept"
    if location.get("retired"):
        return f"location {_named(location, target)} is retired"
    kind = location.get("kind")
    if door:
        if kind != "dock_door":
            return f"location {_named(location, target)} is a {kind}, not a dock door"
        return None
    if kind == "dock_door":
        return f"location {_named(location, target)} is a dock door, not a place that keeps goods"
    if zone is not None and location.get("temperature_class") != zone.temperature_class:
        return (
            f"location {_named(location, target)} keeps {location.get('temperature_class')}, but the "
            f"configuration judges zone {zone.id} by {zone.temperature_class}"
        )
    return None


def _configured(
    kind: str,
    node: TopologyNode,
    zones: Mapping[str, TopologyZone],
    site: str,
    locations: Mapping[str, Mapping[str, Any]],
    placed: Mapping[tuple[str, str], str | None],
    planned: Mapping[tuple[str, str], int],
) -> DeviceFinding:
    """The finding for a device the configuration has."""
    door = kind != "sensor" and node.door is not None
    target = node.door if door else node.zone
    zone = zones.get(node.zone) if node.zone is not None and not door else None

    def finding(state: str, reason: str, **more: Any) -> DeviceFinding:
        return DeviceFinding(kind, node.id, state, reason, zone=node.zone, door=node.door, **more)

    key = (kind, node.id)
    if key in placed:
        at = placed[key]
        if at is None:
            where = _where(node, door) if target is not None else "without a zone"
            return finding(
                "drift", f"taken out of service in the cloud; the configuration still has it {where}"
            )
        location = locations.get(at)
        shown = {"placed": at, "placed_name": location.get("name") if location else None}
        if target is None:
            what = "zone" if kind == "sensor" else "zone or door"
            said = f"placed at {_named(location, at)}; the configuration names no {what} to compare with"
            return finding("agreeing", said, **shown)
        if at != target:
            where = _where(node, door)
            said = f"placed at {_named(location, at)} in the cloud; the configuration puts it {where}"
            return finding("drift", said, **shown)
        problem = _unusable(location, at, site, door, zone)
        if problem is not None:
            return finding("drift", f"placed as configured, but {problem}", **shown)
        return finding("agreeing", f"placed at {_named(location, at)}, as configured", **shown)
    if key in planned:
        said = f"a placement from {planned[key]} (epoch ms) is already recorded: nothing to propose before it"
        return finding("unplaced", said)
    if target is None:
        what = "zone" if kind == "sensor" else "zone or door"
        return finding("unplaced", f"not placed, and the configuration names no {what} to propose")
    location = locations.get(target)
    problem = _unusable(location, target, site, door, zone)
    if problem is not None:
        return finding("unplaced", f"not placed; no proposal: {problem}")
    assert location is not None
    said = f"not placed; the configuration puts it {_where(node, door)}: location {_named(location, target)}"
    return finding("proposed", said, proposal=target, proposal_name=location.get("name"))


def _zone(zone: TopologyZone, location: Mapping[str, Any] | None, site: str) -> ZoneFinding:
    base = {"zone": zone.id, "temperature_class": zone.temperature_class, "transport": zone.transport}
    if location is None:
        return ZoneFinding(**base, state="unlocated",
                           reason=f"site {site} has no location {zone.id}: its devices cannot be placed "
                                  "until it is made")  # fmt: skip
    shown = {"location": zone.id, "location_name": location.get("name")}
    if location.get("retired"):
        return ZoneFinding(**base, **shown, state="unlocated", reason=f"location {zone.id} is retired")
    if location.get("kind") == "dock_door":
        return ZoneFinding(**base, **shown, state="drift",
                           reason=f"{_named(location, zone.id)} is a dock door in the catalog, a zone that "
                                  "keeps goods in the configuration")  # fmt: skip
    keeps = location.get("temperature_class")
    if keeps != zone.temperature_class:
        return ZoneFinding(**base, **shown, state="drift",
                           reason=f"{_named(location, zone.id)} keeps {keeps} in the catalog; the "
                                  f"configuration judges the zone by {zone.temperature_class}")  # fmt: skip
    return ZoneFinding(**base, **shown, state="located",
                       reason=f"{_named(location, zone.id)} keeps {keeps}, as configured")  # fmt: skip


def compare(
    topology: Topology,
    site: str,
    locations: Iterable[Mapping[str, Any]],
    placed: Mapping[tuple[str, str], str | None],
    planned: Mapping[tuple[str, str], int] | None = None,
) -> Comparison:
    """The findings for ``topology`` (reported by a gateway of ``site``).

    ``locations``: the site's locations, retired ones included (so a finding can say a location is
    retired rather than missing).  ``placed``: (device kind, device) -> the location the device serves
    now, None when taken out of service; a device never placed is absent.  ``planned``: devices with no
    placement in force yet but one recorded to start later -> its start.
    """
    by_id = {str(x["id"]): x for x in locations}
    zones = {z.id: z for z in topology.zones}
    nodes = {"sensor": topology.sensors, "reader": topology.readers, "scanner": topology.scanners}
    devices = [
        _configured(kind, node, zones, site, by_id, placed, planned or {})
        for kind in _KINDS
        for node in nodes[kind]
    ]
    configured = {(kind, node.id) for kind in _KINDS for node in nodes[kind]}
    for (kind, device), at in placed.items():
        if (kind, device) in configured or at is None:
            continue  # taken out of service and gone from the configuration: the two agree
        location = by_id.get(at)
        said = (
            f"placed at {_named(location, at)} in the cloud, but no longer in the gateway's configuration: "
            "take it out of service if it was removed"
        )
        name = location.get("name") if location else None
        devices.append(DeviceFinding(kind, device, "gone", said, placed=at, placed_name=name))
    order = {kind: n for n, kind in enumerate(_KINDS)}
    devices.sort(key=lambda f: (order.get(f.device_kind, len(order)), f.device))
    found = tuple(_zone(z, by_id.get(z.id), site) for z in topology.zones)
    return Comparison(devices=tuple(devices), zones=found)
