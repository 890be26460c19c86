"""A gateway reports its configuration's topology, ids and all: the cloud proposes placements from it."""

from __future__ import annotations

from pathlib import Path

from coldgate.contract.codec import decode_status, encode
from coldgate.gateway.config_load import load_gateway_config
from coldgate.gateway.status import build_status
from coldgate.gateway.topology import topology_of
from tests.rig.clocks import FakeClock

EXAMPLES = Path(__file__).parent.parent / "deploy" / "examples"


def test_the_dock_example_reports_its_zone_readers_and_scanners_with_their_doors():
    config = load_gateway_config(EXAMPLES / "gateway-dock.toml")
    topology = topology_of(config)
    assert [zone.id for zone in topology.zones] == [zone.id for zone in config.zones]
    assert {(r.id, r.door) for r in topology.readers} == {(r.id, r.door) for r in config.readers}
    assert [s.id for s in topology.scanners] == ["dock2-s1", "dock2-s2"]
    assert all(s.door is not None for s in topology.scanners)


def test_the_cold_room_example_reports_each_sensor_in_its_zone_and_survives_the_wire():
    config = load_gateway_config(EXAMPLES / "gateway-cold-room.toml")
    topology = topology_of(config)
    assert topology.sensors and {s.zone for s in topology.sensors} <= {z.id for z in config.zones} | {None}
    status = build_status(site="s1", gateway="gw1", clock=FakeClock(), topology=topology)
    assert decode_status(encode(status)).topology == topology
