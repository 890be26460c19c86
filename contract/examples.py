"""One realistic instance of every message and item kind.

The same instances feed docs/contract.md and the tests, so the documentation
can never show a payload the code would refuse.  The scene: site ams-dc1,
gateway gw01 at the cold-room dock, the morning after a reboot.
"""

from __future__ import annotations

import datetime
from typing import Final, TypedDict

import msgspec

from coldgate.contract.downlink import (
    Ack,
    BatchInfo,
    Command,
    CommandAction,
    ConfigUpdate,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    RecallStatus,
    TemperatureClass,
)
from coldgate.contract.evidence import Evidence, Limits
from coldgate.contract.items import (
    Alert,
    AlertAction,
    Direction,
    Event,
    EventType,
    Gap,
    GapCause,
    Movement,
    Quality,
    Reading,
    Scan,
    Scheme,
    Severity,
    SubjectType,
)
from coldgate.contract.units import Quantity, Unit
from coldgate.contract.uplink import (
    AlarmState,
    Batch,
    ClockState,
    DocumentVersions,
    LinkState,
    SensorState,
    State,
    Status,
    StatusError,
)

SITE: Final = "ams-dc1"
GATEWAY: Final = "gw01"
BOOT: Final = "9f1c2e4a7b3d4c5e8f6a1b2c3d4e5f60"
STREAM: Final = "5b2d7c4e1a9f4e3b8c6d0a1f2e3b4c5d"  # made with the outbox database
T0: Final = 1_741_079_700_000  # 2025-03-04T09:15:00Z
MONO0: Final = 2_712_000  # 45 min 12 s after boot
GTIN: Final = "80614141123458"


class _Stamp(TypedDict):
    seq: int
    ts: int
    boot: str
    mono: int
    synced: bool


def _stamp(seq: int, after_ms: int = 0) -> _Stamp:
    return {"seq": seq, "ts": T0 + after_ms, "boot": BOOT, "mono": MONO0 + after_ms, "synced": True}


READING: Final = Reading(
    **_stamp(1041), sensor="cr1-t01", quantity=Quantity.TEMPERATURE, value=9.4, unit=Unit.CEL
)
READING_ERROR: Final = Reading(
    **_stamp(1042, 40),
    sensor="cr1-h01",
    quantity=Quantity.HUMIDITY,
    value=None,
    unit=Unit.P1,
    quality=Quality.ERROR,
    reason="modbus exception 4 (slave device failure)",
)
GAP: Final = Gap(
    **_stamp(1043, 60),
    subject_type=SubjectType.SENSOR,
    subject="cr1-h01",
    start=T0 - 180_000,
    end=T0 + 60,
    cause=GapCause.SENSOR_OFFLINE,
    detail="no answer on unit 7 for 3 polls",
)
ALERT: Final = Alert(
    **_stamp(1044, 80),
    alert_id="gw01-a-000311",
    action=AlertAction.RAISED,
    rule="temperature.excursion",
    subject_type=SubjectType.SENSOR,
    subject="cr1-t01",
    severity=Severity.CRITICAL,
    message="Cold room 1 above 8.0 °C for 15 min (peak 9.4 °C)",
    evidence=Evidence(
        start=T0 - 900_000,
        peak=9.4,
        min=8.2,
        max=9.4,
        mean=8.9,
        mkt=8.9,
        duration_s=900,
        samples=16,
        unit=Unit.CEL,
        limits=Limits(low=2.0, high=8.0, pre_low=3.0, pre_high=7.0, delay_s=600),
    ),
)
MOVEMENT: Final = Movement(
    **_stamp(1045, 2_400),
    reader="dock2-r1",
    door="dock2",
    direction=Direction.OUT,
    epc="3074257bf7194e4000001a85",
    epc_uri="urn:epc:id:sgtin:0614141.812345.6789",
    first_seen=T0 + 1_100,
    last_seen=T0 + 2_350,
    read_count=37,
    peak_rssi=-48.5,
    antennas=[1, 2],
)
SCAN: Final = Scan(
    **_stamp(1046, 5_000),
    scanner="dock2-s1",
    raw="]d2018061414112345817260731" + "10LOT42\x1d" + "21SN0001",
    symbology="]d2",
    scheme=Scheme.GS1,
    gtin=GTIN,
    lot="LOT42",
    expiry=datetime.date(2026, 7, 31),
    serial="SN0001",
)
EVENT: Final = Event(
    **_stamp(1047, 6_000),
    event=EventType.CONFIG_APPLIED,
    detail="config version 12 applied",
    data={"kind": "config", "version": 12},
)

BATCH: Final = Batch(
    v=1,
    site=SITE,
    gateway=GATEWAY,
    boot=BOOT,
    stream=STREAM,
    first_seq=1041,
    last_seq=1047,
    sent=T0 + 6_100,
    items=[READING, READING_ERROR, GAP, ALERT, MOVEMENT, SCAN, EVENT],
)

STATUS: Final = Status(
    v=1,
    site=SITE,
    gateway=GATEWAY,
    boot=BOOT,
    ts=T0 + 10_000,
    state=State.ONLINE,
    software="coldgate 0.1.0",
    heartbeat_s=60,
    uptime_s=2_722,
    outbox_depth=7,
    oldest_unacked=T0,
    last_seq=1047,
    last_acked_seq=1040,
    clock=ClockState(synced=True, mono=MONO0 + 10_000, offset_ms=-0.8, source="chrony"),
    alarm=AlarmState(active=True, sounding=True, alerts=["gw01-a-000311"]),
    sensors=[
        SensorState(
            id="cr1-t01",
            online=True,
            last_poll=T0,
            lag_p50_ms=12,
            lag_p95_ms=48,
            scheduled=1440,
            served=1440,
            missed=0,
        ),
        SensorState(id="cr1-h01", online=False, last_poll=T0 - 180_000, error="timeout"),
    ],
    readers=[LinkState(id="dock2-r1", online=True, since=T0 - 2_700_000)],
    scanners=[LinkState(id="dock2-s1", online=True, since=T0 - 2_700_000)],
    versions=DocumentVersions(config=12, master=57, recall=9),
    errors=[
        StatusError(
            kind="config_rejected",
            message="config version 11: $.sensors[2].unit: unknown unit id 300",
            ts=T0 - 2_600_000,
        )
    ],
)
STATUS_WILL: Final = Status(
    v=1, site=SITE, gateway=GATEWAY, boot=BOOT, ts=T0 - 2_700_000, state=State.OFFLINE, will=True
)

ACK: Final = Ack(v=1, gateway=GATEWAY, stream=STREAM, seq=1047, ts=T0 + 6_900)

CONFIG: Final = ConfigUpdate(
    v=1,
    gateway=GATEWAY,
    version=12,
    issued=T0 - 3_600_000,
    config={
        "site": SITE,
        "poll_interval_s": 60,
        "sensors": [
            {"id": "cr1-t01", "bus": "rs485-1", "unit": 3, "profile": "ecolog-th1"},
            {"id": "cr1-h01", "bus": "rs485-1", "unit": 7, "profile": "ecolog-th1"},
        ],
        "rules": {"cr1-t01": {"temperature_class": "2-8C", "delay_s": 600}},
    },
)

MASTER: Final = MasterData(
    v=1,
    gateway=GATEWAY,
    version=57,
    issued=T0 - 7_200_000,
    temperature_classes=[
        TemperatureClass(name="2-8C", low=2.0, high=8.0, description="refrigerated"),
        TemperatureClass(name="15-25C", low=15.0, high=25.0, description="controlled room"),
    ],
    products=[
        Product(gtin=GTIN, name="Insulin pen 100 IU/ml", temperature_class="2-8C"),
        Product(gtin="09506000134352", name="Sterile gauze 10x10", temperature_class="15-25C"),
    ],
    batches=[BatchInfo(gtin=GTIN, lot="LOT42", expiry=datetime.date(2026, 7, 31))],
)

RECALL: Final = RecallList(
    v=1,
    gateway=GATEWAY,
    version=9,
    issued=T0 - 1_800_000,
    entries=[
        RecallEntry(
            gtin=GTIN,
            lot="LOT17",
            status=RecallStatus.RECALLED,
            reference="FSN-2025-014",
            reason="particulates found in retained samples",
        ),
        RecallEntry(
            gtin="09506000134352",
            status=RecallStatus.QUARANTINED,
            reference="QA-DEV-0881",
            reason="supplier sterility certificate under review",
        ),
    ],
)

COMMAND: Final = Command(
    v=1,
    gateway=GATEWAY,
    command_id="c-20250304-0007",
    issued=T0 + 30_000,
    expires=T0 + 330_000,
    action=CommandAction.SILENCE_ALARM,
    by="j.devries",
    args={"alert_id": "gw01-a-000311", "minutes": 15},
)

#: Every item kind, keyed by its tag.
ITEMS: Final[dict[str, msgspec.Struct]] = {
    "reading": READING,
    "gap": GAP,
    "alert": ALERT,
    "movement": MOVEMENT,
    "scan": SCAN,
    "event": EVENT,
}

#: Every top-level message, keyed by its topic name.
MESSAGES: Final[dict[str, msgspec.Struct]] = {
    "batch": BATCH,
    "status": STATUS,
    "ack": ACK,
    "config": CONFIG,
    "master": MASTER,
    "recall": RECALL,
    "command": COMMAND,
}
