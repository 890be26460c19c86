"""The gateway's configuration against the cloud's placements, pure: every finding a device or a zone can
get, with the reason a person reads, and the proposals that would make agreeing placements only."""

from __future__ import annotations

from typing import Any

from coldgate.cloud.catalog.topology import DEVICE_STATES, DeviceFinding, compare
from coldgate.contract.uplink import Topology, TopologyNode, TopologyZone

SITE = "site1"


def room(key: str, klass: str | None = "2-8C", kind: str = "cold_room", **more: Any) -> dict[str, Any]:
    return {"id": key, "name": f"Room {key}", "kind": kind, "temperature_class": klass, "retired": False,
            **more}  # fmt: skip


LOCATIONS = [room("CR1"), room("CR2", "15-25C"), room("D1", None, "dock_door"), room("OLD", retired=True),
             room("YARD", "15-25C", "ambient_store")]  # fmt: skip
ZONES = [TopologyZone(id="CR1", temperature_class="2-8C"), TopologyZone(id="CR2", temperature_class="2-8C"),
         TopologyZone(id="FZ", temperature_class="frozen"), TopologyZone(id="OLD", temperature_class="2-8C"),
         TopologyZone(id="D1", temperature_class="2-8C")]  # fmt: skip


def one(kind: str, node: TopologyNode, placed: dict[tuple[str, str], str | None] | None = None,
        **more: Any) -> DeviceFinding:  # fmt: skip
    lists: dict[str, list[TopologyNode]] = {"sensors": [], "readers": [], "scanners": []}
    lists[f"{kind}s"].append(node)
    found = compare(Topology(zones=ZONES, **lists), SITE, LOCATIONS, placed or {}, **more)
    [finding] = found.devices
    return finding


def test_placed_as_configured_agrees() -> None:
    f = one("sensor", TopologyNode(id="t1", zone="CR1"), {("sensor", "t1"): "CR1"})
    assert (f.state, f.placed, f.placed_name) == ("agreeing", "CR1", "Room CR1")
    assert f.reason == "placed at CR1 (Room CR1), as configured"
    reader = one("reader", TopologyNode(id="r1", zone="CR1", door="D1"), {("reader", "r1"): "D1"})
    assert reader.state == "agreeing"  # a dock door keeps no class: nothing to compare it by
    unsaid = one("sensor", TopologyNode(id="t1"), {("sensor", "t1"): "CR1"})
    assert unsaid.state == "agreeing" and "names no zone to compare with" in unsaid.reason


def test_an_unplaced_device_is_proposed_its_zone_or_its_door() -> None:
    f = one("sensor", TopologyNode(id="t1", zone="CR1"))
    assert (f.state, f.proposal, f.proposal_name) == ("proposed", "CR1", "Room CR1")
    assert f.reason == "not placed; the configuration puts it in zone CR1: location CR1 (Room CR1)"
    reader = one("reader", TopologyNode(id="r1", zone="CR1", door="D1"))
    assert (reader.state, reader.proposal) == ("proposed", "D1") and "at door D1" in reader.reason
    scanner = one("scanner", TopologyNode(id="s1", zone="CR1"))  # no door: where it stands
    assert (scanner.state, scanner.proposal) == ("proposed", "CR1")


def test_no_proposal_says_why() -> None:
    cases = [
        ("sensor", TopologyNode(id="t1", zone="FZ"), "site site1 has no location FZ: make it in the catalog"),
        ("sensor", TopologyNode(id="t1", zone="CR2"),
         "location CR2 (Room CR2) keeps 15-25C, but the configuration judges zone CR2 by 2-8C"),
        ("sensor", TopologyNode(id="t1", zone="OLD"), "location OLD (Room OLD) is retired"),
        ("sensor", TopologyNode(id="t1", zone="D1"), "is a dock door, not a place that keeps goods"),
        ("sensor", TopologyNode(id="t1"), "the configuration names no zone to propose"),
        ("reader", TopologyNode(id="r1", door="D9"), "site site1 has no location D9"),
        ("reader", TopologyNode(id="r1", door="CR1"), "CR1 (Room CR1) is a cold_room, not a dock door"),
        ("scanner", TopologyNode(id="s1"), "names no zone or door to propose"),
    ]  # fmt: skip
    for kind, node, says in cases:
        f = one(kind, node)
        assert (f.state, f.proposal) == ("unplaced", None), (node, f)
        assert says in f.reason, (node, f.reason)
    planned = one("sensor", TopologyNode(id="t1", zone="CR1"), planned={("sensor", "t1"): 1_800_000_000_000})
    assert planned.state == "unplaced" and "a placement from 1800000000000" in planned.reason


def test_drift_elsewhere_other_class_or_out_of_service() -> None:
    elsewhere = one("sensor", TopologyNode(id="t1", zone="CR1"), {("sensor", "t1"): "YARD"})
    assert elsewhere.state == "drift" and elsewhere.placed == "YARD"
    assert (
        elsewhere.reason == "placed at YARD (Room YARD) in the cloud; the configuration puts it in zone CR1"
    )
    klass = one("sensor", TopologyNode(id="t1", zone="CR2"), {("sensor", "t1"): "CR2"})
    assert (
        klass.state == "drift"
        and "keeps 15-25C, but the configuration judges zone CR2 by 2-8C" in klass.reason
    )
    retired = one("sensor", TopologyNode(id="t1", zone="OLD"), {("sensor", "t1"): "OLD"})
    assert (
        retired.state == "drift"
        and retired.reason == "placed as configured, but location OLD (Room OLD) is retired"
    )
    door = one("reader", TopologyNode(id="r1", zone="CR1", door="D1"), {("reader", "r1"): "CR1"})
    assert door.state == "drift" and "puts it at door D1" in door.reason
    out = one("sensor", TopologyNode(id="t1", zone="CR1"), {("sensor", "t1"): None})
    assert out.state == "drift" and out.placed is None
    assert out.reason == "taken out of service in the cloud; the configuration still has it in zone CR1"


def test_gone_zones_order_and_counts() -> None:
    topology = Topology(zones=ZONES, sensors=[TopologyNode(id="t2", zone="CR1")],
                        scanners=[TopologyNode(id="s1", zone="CR1")])  # fmt: skip
    placed = {
        ("sensor", "t9"): "CR2",
        ("sensor", "t8"): None,
        ("reader", "r1"): "D1",
        ("sensor", "t2"): "CR1",
    }
    found = compare(topology, SITE, LOCATIONS, placed)
    assert [(f.device_kind, f.device, f.state) for f in found.devices] == [
        ("sensor", "t2", "agreeing"),
        ("sensor", "t9", "gone"),
        ("reader", "r1", "gone"),
        ("scanner", "s1", "proposed"),
    ]  # t8 is out of service and not configured: the two agree, nothing to say
    gone = found.devices[1]
    assert gone.placed_name == "Room CR2" and "no longer in the gateway's configuration" in gone.reason
    assert found.counts() == {"agreeing": 1, "proposed": 1, "unplaced": 0, "drift": 0, "gone": 2}
    assert set(found.counts()) == set(DEVICE_STATES)
    assert [f.device for f in found.proposals] == ["s1"]
    zones = {z.zone: (z.state, z.location) for z in found.zones}
    assert zones == {"CR1": ("located", "CR1"), "CR2": ("drift", "CR2"), "FZ": ("unlocated", None),
                     "OLD": ("unlocated", "OLD"), "D1": ("drift", "D1")}  # fmt: skip
    reasons = {z.zone: z.reason for z in found.zones}
    assert reasons["FZ"] == "site site1 has no location FZ: its devices cannot be placed until it is made"
    assert (
        reasons["CR2"]
        == "CR2 (Room CR2) keeps 15-25C in the catalog; the configuration judges the zone by 2-8C"
    )
    assert "is a dock door in the catalog" in reasons["D1"]


def test_an_empty_topology_with_nothing_placed_says_nothing() -> None:
    found = compare(Topology(), SITE, [], {})
    assert found.devices == () and found.zones == () and found.proposals == ()
