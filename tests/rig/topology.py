"""A site laid out two ways for the topology tests: the gateway's configuration as its status reports
it (sent through ingest, as the gateway sends it), and the cloud's locations and placements (written
through the catalog's own audited functions, as the API writes them).

The layout gives every finding: cr1-t01 placed in CR1 as configured (agreeing); cr1-t02 not placed,
zone CR1 is a location (proposed); fz-t01 not placed, zone FZ has no location (unplaced); cr2-t01
placed at CR1 but configured in CR2 (drift); old-t09 placed but no longer configured (gone); reader
dock1-r1 not placed, at door D1 (proposed, the dock door); scanner dock1-s1 at door D9, which is no
location (unplaced).  Zone CR2 keeps 15-25C in the catalog but 2-8C in the configuration (drift), FZ
has no location (unlocated).
"""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.contract.codec import encode
from coldgate.contract.topics import status_topic
from coldgate.contract.uplink import State, Status, Topology, TopologyNode, TopologyZone
from tests.rig.cloud_db import ingest
from tests.rig.ingest import BOOT, SITE

__all__ = ["LAYOUT_QA", "TOPOLOGY", "lay_out_site", "report_topology"]

LAYOUT_QA = Actor("Marta QA", "u-marta")

TOPOLOGY = Topology(
    zones=[
        TopologyZone(id="CR1", temperature_class="2-8C", description="Cold room 1"),
        TopologyZone(id="CR2", temperature_class="2-8C"),
        TopologyZone(id="FZ", temperature_class="frozen"),
    ],
    sensors=[
        TopologyNode(id="cr1-t01", zone="CR1"),
        TopologyNode(id="cr1-t02", zone="CR1"),
        TopologyNode(id="cr2-t01", zone="CR2"),
        TopologyNode(id="fz-t01", zone="FZ"),
    ],
    readers=[TopologyNode(id="dock1-r1", zone="CR1", door="D1")],
    scanners=[TopologyNode(id="dock1-s1", zone="CR1", door="D9")],
)


def lay_out_site(engine: Engine, now: datetime.datetime, *, gateway: str = "gw01") -> None:
    """Classes 2-8C and 15-25C; locations CR1 (2-8C), CR2 (15-25C), YARD and dock door D1 between CR1
    and YARD; cr1-t01 placed in CR1, cr2-t01 in CR1, old-t09 in CR2, an hour before ``now``."""
    earlier = now - datetime.timedelta(hours=1)
    start = int(earlier.timestamp() * 1000)
    by = LAYOUT_QA
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=by, now=earlier)
        put_class(conn, "15-25C", {"low": 15, "high": 25}, reason="SOP-13", by=by, now=earlier)
        rooms = [("CR1", "Cold room 1", "cold_room", "2-8C"), ("CR2", "Cold room 2", "cold_room", "15-25C"),
                 ("YARD", "Yard", "ambient_store", "15-25C")]  # fmt: skip
        for key, name, kind, klass in rooms:
            fields = {"name": name, "kind": kind, "temperature_class": klass}
            put_location(conn, SITE, key, fields, reason="site survey", by=by, now=earlier)
        door = {"name": "Dock door 1", "kind": "dock_door", "inside": "CR1", "outside": "YARD"}
        put_location(conn, SITE, "D1", door, reason="site survey", by=by, now=earlier)
        for device, location in (("cr1-t01", "CR1"), ("cr2-t01", "CR1"), ("old-t09", "CR2")):
            place(conn, gateway, "sensor", device, location, start, reason="installed", by=by, now=earlier)


def report_topology(
    engine: Engine, ts: int, *, gateway: str = "gw01", topology: Topology | None = TOPOLOGY
) -> None:
    """The gateway's heartbeat with ``topology``, through ingest."""
    status = Status(v=1, site=SITE, gateway=gateway, boot=BOOT, ts=ts, state=State.ONLINE, heartbeat_s=60,
                    topology=topology)  # fmt: skip
    assert ingest(engine, status_topic(SITE, gateway), encode(status)).kind == "status"
