"""The items a gateway sends up, one kind per thing that happened at the edge.

Each item is stamped when it enters the gateway's outbox, and carries its own
time evidence (wall time, boot id, monotonic offset, clock-synced flag): a
backlog sent after a reboot holds items from earlier boots, and the cloud
corrects unsynchronised wall times per boot from a synchronised anchor of the
same boot.  Cross-field rules raise `FieldError` so the decoder can name the
exact field.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

from coldgate.contract.errors import FieldError
from coldgate.contract.evidence import Evidence
from coldgate.contract.ids import (
    BootId,
    Details,
    EpcHex,
    EpcUri,
    EpochMs,
    Gtin,
    Hibc,
    HibcUom,
    Id,
    Lot,
    MaId,
    MonoMs,
    Seq,
    Serial,
    ShortText,
    Sscc,
    Symbology,
    Text,
    check_details,
    check_finite,
    check_gs1_key,
    doc,
)
from coldgate.contract.units import UNITS_FOR, Quantity, Unit


class SubjectType(StrEnum):
    """What a gap or an alert is about; `subject` holds its id."""

    GATEWAY = "gateway"
    SENSOR = "sensor"
    READER = "reader"
    DOOR = "door"
    SCANNER = "scanner"
    OUTBOX = "outbox"


class ItemBase(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, tag_field="kind"):
    """Fields every item carries, stamped when the item entered the outbox."""

    seq: Seq
    ts: Annotated[EpochMs, doc("UTC wall time of the item, milliseconds since the epoch.")]
    boot: Annotated[BootId, doc("Boot id of the gateway boot that stamped the item.")]
    mono: Annotated[MonoMs, doc("Monotonic clock at stamping, ms since that boot.")]
    synced: Annotated[bool, doc("True when the wall clock was NTP-synchronised at stamping.")]


class Quality(StrEnum):
    OK = "ok"
    SUSPECT = "suspect"  # plausible but doubtful: out of sensor range, stuck value, spike
    ERROR = "error"  # no trustworthy value: bus error, sensor fault code


class Reading(ItemBase, kw_only=True, tag="reading"):
    """One measured value from one sensor.

    Rules: `value` may be null only when `quality` is `error`; `reason`
    is required when `quality` is not `ok`; `unit` must fit `quantity`.
    """

    sensor: Annotated[Id, doc("Sensor id from the gateway configuration.")]
    quantity: Quantity
    value: Annotated[float | None, doc("The value in `unit`; null only when quality is error.")]
    unit: Annotated[Unit, doc("UN/CEFACT rec 20 code: CEL, FAH, KEL, P1, A97, PAL, C62.")]
    quality: Annotated[
        Quality,
        doc("ok; suspect: plausible but doubtful (out of range, stuck, spike); error: no trustworthy value."),
    ] = Quality.OK
    reason: Annotated[ShortText | None, doc("Why quality is not ok.")] = None

    def __post_init__(self) -> None:
        check_finite(self.value, "value")
        if self.value is None and self.quality is not Quality.ERROR:
            raise FieldError("value", "null is only allowed when quality is 'error'")
        if self.unit not in UNITS_FOR[self.quantity]:
            raise FieldError("unit", f"{self.unit} is not a unit of {self.quantity}")
        if self.quality is not Quality.OK and not self.reason:
            raise FieldError("reason", f"required when quality is '{self.quality}'")


class GapCause(StrEnum):
    SENSOR_OFFLINE = "sensor_offline"  # no answer from the sensor
    SENSOR_ERROR = "sensor_error"  # answers, but only with errors
    READER_OFFLINE = "reader_offline"
    SCANNER_OFFLINE = "scanner_offline"
    GATEWAY_OFFLINE = "gateway_offline"  # gateway not running (found at the next start)
    OUTBOX_THINNED = "outbox_thinned"  # the full outbox shed items to keep the newest
    CLOCK_UNSYNCHRONISED = "clock_unsynchronised"
    POLL_OVERRUN = "poll_overrun"  # a poll cycle took longer than its interval
    CONFIG_CHANGE = "config_change"  # monitoring stopped or changed by configuration


class Gap(ItemBase, kw_only=True, tag="gap"):
    """An interval in which monitoring was interrupted: gaps are records too.

    Rule: `end` >= `start`.  A gap still open is sent with `end` null and
    sent again, with the same `subject` and `start`, once it closes.
    """

    subject_type: SubjectType
    subject: Annotated[Id, doc("Id of the sensor, gateway, reader, door or scanner.")]
    start: Annotated[EpochMs, doc("First millisecond without monitoring.")]
    end: Annotated[EpochMs | None, doc("Monitoring resumed; null while the gap is open.")] = None
    cause: GapCause
    detail: Annotated[Text, doc("What the gateway saw, for people.")] = ""

    def __post_init__(self) -> None:
        if self.end is not None and self.end < self.start:
            raise FieldError("end", f"end {self.end} is before start {self.start}")


class AlertAction(StrEnum):
    RAISED = "raised"
    UPDATED = "updated"
    CLEARED = "cleared"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(ItemBase, kw_only=True, tag="alert"):
    """A step in the life of an alert judged at the edge (raised, updated, cleared)."""

    alert_id: Annotated[Id, doc("Gateway-unique id tying raised, updated and cleared together.")]
    action: Annotated[AlertAction, doc("raised once, updated any number of times, cleared once.")]
    rule: Annotated[Id, doc("Rule that judged it, e.g. temperature.excursion.")]
    subject_type: SubjectType
    subject: Annotated[Id, doc("Id of what the alert is about.")]
    severity: Severity
    message: Annotated[Text, doc("One line for people: what is wrong.")]
    evidence: Annotated[Evidence, doc("What the rule saw.")] = msgspec.field(default_factory=Evidence)


class Direction(StrEnum):
    IN = "in"
    OUT = "out"
    UNKNOWN = "unknown"


class Movement(ItemBase, kw_only=True, tag="movement"):
    """A tagged item passing an RFID dock portal, one per EPC and passage.

    Rule: `last_seen` >= `first_seen`.
    """

    reader: Annotated[Id, doc("LLRP reader id.")]
    door: Annotated[Id, doc("Dock door the portal guards.")]
    direction: Annotated[
        Direction, doc("in: receiving; out: dispatch; unknown: the antennas could not tell.")
    ]
    epc: EpcHex
    epc_uri: Annotated[EpcUri | None, doc("Decoded EPC, e.g. urn:epc:id:sgtin:0614141.812345.6789.")] = None
    first_seen: Annotated[EpochMs, doc("First read of the tag in this passage.")]
    last_seen: Annotated[EpochMs, doc("Last read of the tag in this passage.")]
    read_count: Annotated[int, Meta(ge=1, le=2**31 - 1, description="Reads in this passage.")]
    peak_rssi: Annotated[float | None, doc("Strongest read, dBm.")] = None
    antennas: Annotated[
        list[Annotated[int, Meta(ge=1, le=65535)]],
        Meta(max_length=64, description="LLRP antenna ids that read the tag."),
    ] = []

    def __post_init__(self) -> None:
        check_finite(self.peak_rssi, "peak_rssi")
        if self.last_seen < self.first_seen:
            raise FieldError("last_seen", "last_seen is before first_seen")


class Scheme(StrEnum):
    GS1 = "gs1"
    HIBC = "hibc"
    MA = "ma"  # ISO/IEC 15459 issuing agency code MA
    RAW = "raw"  # not understood; only `raw` and `errors` are meaningful


class Scan(ItemBase, kw_only=True, tag="scan"):
    """One barcode read by a scanner, raw and as far as it could be parsed.

    `raw` holds the scanned bytes as latin-1 code points (U+0000-U+00FF), so
    even garbage bytes survive JSON losslessly: `raw.encode("latin-1")`.
    """

    scanner: Annotated[Id, doc("Scanner id from the gateway configuration.")]
    raw: Annotated[str, Meta(max_length=4096, description="Scanned bytes as latin-1 code points.")]
    symbology: Annotated[Symbology | None, doc("AIM symbology identifier, e.g. ]d2 (GS1 DataMatrix).")] = None
    scheme: Annotated[Scheme, doc("Which data structure was recognised in `raw`.")] = Scheme.RAW
    gtin: Gtin | None = None
    lot: Lot | None = None
    expiry: Annotated[datetime.date | None, doc("Expiry date (GS1 AI 17), YYYY-MM-DD.")] = None
    serial: Serial | None = None
    sscc: Annotated[Sscc | None, doc("Serial shipping container code (GS1 AI 00).")] = None
    errors: Annotated[list[ShortText], Meta(max_length=32), doc("Why parsing was partial.")] = []
    hibc: Annotated[Hibc | None, doc("HIBC labeler + product code (added 2026-12-06).")] = None
    hibc_uom: Annotated[HibcUom | None, doc("HIBC unit-of-measure digit (added 2026-12-06).")] = None
    ma: Annotated[MaId | None, doc("MA device identifier (added 2026-12-06).")] = None
    expiry_hour: Annotated[
        Annotated[int, Meta(ge=0, le=23)] | None,
        doc("Hour of `expiry` the unit expires at, 0-23 (added 2026-12-06)."),
    ] = None
    best_before: Annotated[
        datetime.date | None, doc("Best-before date (GS1 AI 15), YYYY-MM-DD (added 2026-12-06).")
    ] = None
    produced: Annotated[
        datetime.date | None,
        doc("Production or manufacture date (GS1 AI 11, HIBC 16D, MA .M) (added 2026-12-06)."),
    ] = None
    quantity: Annotated[
        Annotated[int, Meta(ge=1, le=99_999_999)] | None,
        doc("Units in the package (GS1 AI 30/37, HIBC $$8/$$9) (added 2026-12-06)."),
    ] = None

    def __post_init__(self) -> None:
        try:
            self.raw.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise FieldError("raw", f"character at {exc.start} is not a latin-1 byte") from None
        check_gs1_key(self.gtin, "gtin")
        check_gs1_key(self.sscc, "sscc")
        if self.expiry_hour is not None and self.expiry is None:
            raise FieldError("expiry_hour", "an expiry hour needs the expiry date")
        if self.hibc_uom is not None and self.hibc is None:
            raise FieldError("hibc_uom", "a unit of measure needs the HIBC labeler and product code")

    def raw_bytes(self) -> bytes:
        return self.raw.encode("latin-1")


class EventType(StrEnum):
    STARTED = "started"
    STOPPING = "stopping"
    CLOCK_SYNCED = "clock_synced"
    CLOCK_JUMP = "clock_jump"
    CONFIG_APPLIED = "config_applied"
    CONFIG_REJECTED = "config_rejected"
    MASTER_APPLIED = "master_applied"
    MASTER_REJECTED = "master_rejected"
    RECALL_APPLIED = "recall_applied"
    RECALL_REJECTED = "recall_rejected"
    COMMAND_DONE = "command_done"
    COMMAND_FAILED = "command_failed"
    ALARM_SILENCED = "alarm_silenced"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"


class Event(ItemBase, kw_only=True, tag="event"):
    """Something the gateway itself did or noticed, kept for the audit trail."""

    event: EventType
    detail: Annotated[Text, doc("What happened, for people.")] = ""
    data: Annotated[Details, doc("Facts, e.g. version, command_id, jump_ms.")] = {}

    def __post_init__(self) -> None:
        check_details(self.data, "data")


Item = Reading | Gap | Alert | Movement | Scan | Event
ITEM_TYPES: tuple[type[ItemBase], ...] = (Reading, Gap, Alert, Movement, Scan, Event)
