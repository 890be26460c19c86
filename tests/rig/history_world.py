"""The custody story of ``tests/rig/custody_world.py`` with the rooms' sensors and what they recorded:
what the batch history is tested against.

Sensors of gw01 placed at 07:00 on 1 December 2026 (UTC): ``t-cr1`` in CR1 (inside door D1, where the
receipt lands), ``t-cr2`` in CR2 and ``t-cr3`` in CR3.  Each reads the temperature once a minute from
07:00 to 14:00, ingested on a stream of their own:

* CR1 holds 4.0 °C throughout;
* CR2 holds 5.0 °C except 10:00-10:19, when it reads 9.5 °C (20 readings above 8 °C: 20 minutes out of
  range); the edge raised ``temperature.high`` at 10:10 and cleared it at 10:20;
* CR3 holds 6.0 °C but its sensor was offline 11:00-11:30: no readings then, and a gap reported.

So case 1001 (CR1, then CR2 from 08:30 to its dispatch at 12:01) and 1002 (CR2 until 13:01) spent the
20 minutes out of range; CR3's pallet and cases were unmonitored for 30 minutes.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.catalog.placements import place
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Gap, GapCause, Item, Severity, SubjectType
from tests.rig import items as rig_items
from tests.rig.cloud_db import ingest
from tests.rig.custody_world import GATEWAY, MIN, CustodyWorld, at, custody_world
from tests.rig.documents import QA
from tests.rig.ingest import batch_message

__all__ = ["AS_OF", "EXCURSION", "SENSORS", "history_world", "room_value"]

SENSORS = {"CR1": "t-cr1", "CR2": "t-cr2", "CR3": "t-cr3"}
STREAM = "5e2507a5"  # a stream id is a boot id's form (hex); the rig's own stream holds the custody items
EXCURSION = "gw01-a-cr2-high"
#: The moment the tests ask the history up to: the last reading's minute.
AS_OF = at(14, 0)


def room_value(room: str, ms: int) -> float | None:
    """What the room's sensor read at minute ``ms`` (None: offline, no reading)."""
    if room == "CR1":
        return 4.0
    if room == "CR2":
        return 9.5 if at(10, 0) <= ms < at(10, 20) else 5.0
    return None if at(11, 0) <= ms < at(11, 30) else 6.0


def _when(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def history_world(engine: Engine) -> CustodyWorld:
    """The custody story, then the sensors' placements and records."""
    world = custody_world(engine)
    with engine.begin() as conn:
        for room, sensor in SENSORS.items():
            place(conn, GATEWAY, "sensor", sensor, room, at(7, 0), reason="installed", by=QA,
                  now=_when(at(7, 0)))  # fmt: skip
    records: list[Item] = []
    seq = 1
    for minute in range(7 * 60, 14 * 60 + 1):
        ms = at(minute // 60, minute % 60)
        for room, sensor in SENSORS.items():
            value = room_value(room, ms)
            if value is None:
                continue
            records.append(rig_items.reading(value, sensor=sensor, ts=ms, seq=seq, mono=seq * 1000))
            seq += 1
    records.append(Gap(seq=seq, ts=at(11, 30), boot=records[0].boot, mono=seq * 1000, synced=True,
                       subject_type=SubjectType.SENSOR, subject="t-cr3", start=at(11, 0), end=at(11, 30),
                       cause=GapCause.SENSOR_OFFLINE, detail="no answer for 30 polls"))  # fmt: skip
    seq += 1
    raised = Evidence(start=at(10, 0), peak=9.5, duration_s=600)
    cleared = Evidence(start=at(10, 0), end=at(10, 20), peak=9.5, duration_s=1200)
    for action, ms, step_evidence in ((AlertAction.RAISED, at(10, 10), raised),
                                      (AlertAction.CLEARED, at(10, 20), cleared)):  # fmt: skip
        records.append(Alert(seq=seq, ts=ms, boot=records[0].boot, mono=seq * 1000, synced=True,
                             alert_id=EXCURSION, action=action, rule="temperature.high",
                             subject_type=SubjectType.SENSOR, subject="t-cr2", severity=Severity.CRITICAL,
                             message="Cold room 2 above 8.0 °C", evidence=step_evidence))  # fmt: skip
        seq += 1
    for first in range(0, len(records), 500):
        chunk = records[first : first + 500]
        ingest(engine, *batch_message(GATEWAY, chunk, stream=STREAM), now=_when(AS_OF + MIN))
    return world
