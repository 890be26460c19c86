"""The gateway's topology, as its status reports it: the configuration's zones and devices with their ids.

The cloud keeps where each sensor, reader and scanner stands (placements);
the gateway's configuration says it too.  Reporting the configuration's view
in every status lets the cloud propose the placements it lacks and show
where the two disagree, without a person copying ids between them.  Pure.
"""

from __future__ import annotations

from coldgate.contract.uplink import Topology, TopologyNode, TopologyZone
from coldgate.gateway.config import GatewayConfig

__all__ = ["topology_of"]


def topology_of(config: GatewayConfig) -> Topology:
    """Zones with their classes, sensors with their zones, readers and scanners with their doors."""
    return Topology(
        zones=[
            TopologyZone(
                id=zone.id,
                temperature_class=zone.temperature_class,
                transport=zone.transport,
                description=zone.description[:200],
            )
            for zone in config.zones
        ],
        sensors=[TopologyNode(id=sensor.id, zone=sensor.zone) for sensor in config.sensors],
        readers=[TopologyNode(id=reader.id, zone=reader.zone, door=reader.door) for reader in config.readers],
        scanners=[
            TopologyNode(id=scanner.id, zone=scanner.zone, door=scanner.door) for scanner in config.scanners
        ],
    )
