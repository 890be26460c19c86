"""What the API returns, kept apart from the database models.

The tables store what ingest needs (steps, open and closing gap rows, raw
status documents); clients need the folded view.  Separate models let the
tables change without breaking clients, and give /openapi.json precise types.

Edge times stay integer epoch milliseconds, exactly as stored (they are
evidence); each gets a ``*_iso`` twin in UTC for people and for tools that do
not speak epoch ms.  Times the cloud stamped itself are ISO-8601 UTC.
"""

from __future__ import annotations

import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from coldgate.cloud.time_text import iso_ms

__all__ = [
    "Alarm",
    "AlertEntry",
    "AlertList",
    "Backlog",
    "Bucket",
    "BudgetLimits",
    "Clock",
    "DeadLetterBudgetEntry",
    "DeadLetterBudgetList",
    "DeadLetterEntry",
    "DeadLetterList",
    "EnrolmentEntry",
    "EnrolmentList",
    "GapEntry",
    "GapList",
    "GatewayEntry",
    "GatewayList",
    "Health",
    "LastReading",
    "Overview",
    "RawPoint",
    "ReadingSeries",
    "SensorEntry",
    "SensorList",
    "SiteCounts",
    "SiteEntry",
    "SiteList",
    "StreamAck",
    "TileOut",
    "TimeZoneBody",
    "UnknownGatewayEntry",
    "UnknownGatewayList",
    "iso_ms",
    "utc",
]


def utc(moment: datetime.datetime | None) -> datetime.datetime | None:
    """A stored cloud timestamp in UTC; SQLite hands them back naive, and they were written as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def iso_twin(field: str) -> Any:
    """The ``<field>_iso`` twin of an epoch-ms field: the same instant as UTC text, null when it is null."""

    def iso(self: BaseModel) -> str | None:
        return iso_ms(getattr(self, field))

    return computed_field(property(iso))


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Health(_Out):
    status: Literal["ok", "degraded"]
    database: str = Field(description='"ok", or "unavailable: <reason>".')


# ---------------------------------------------------------------- gateways


class Clock(_Out):
    synced: bool
    offset_ms: float | None = None
    source: str | None = None


class Backlog(_Out):
    outbox_depth: int | None = Field(None, description="Items waiting for acknowledgement at the gateway.")
    oldest_unacked: int | None = Field(None, description="ts of the oldest unacknowledged item, epoch ms.")

    oldest_unacked_iso = iso_twin("oldest_unacked")


class Alarm(_Out):
    active: bool
    sounding: bool = False
    silenced: bool = False
    acknowledged: bool = False
    alerts: list[str] = []


class StreamAck(_Out):
    stream: str
    covered: int = Field(description="Highest seq the cloud acknowledges: every seq up to it is stored.")
    updated_at: datetime.datetime
    adopted: int | None = Field(
        None, description="Seq taken as acknowledged from the gateway's status (an earlier cloud database)."
    )
    pending_ranges: int = Field(
        0, description="Committed batch ranges waiting for a missing seq before them."
    )
    next_pending_seq: int | None = Field(None, description="First seq of the lowest pending range.")


class GatewayEntry(_Out):
    id: str
    site: str
    online: bool
    state_since: datetime.datetime | None
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    boot: str | None
    status_ts: int | None = Field(description="ts of the newest status message, epoch ms.")
    software: str | None
    heartbeat_s: int | None
    clock: Clock | None
    backlog: Backlog | None
    alarm: Alarm | None
    streams: list[StreamAck]

    status_ts_iso = iso_twin("status_ts")


class GatewayList(_Out):
    items: list[GatewayEntry]


# ---------------------------------------------------------------- sensors and readings


class LastReading(_Out):
    ts: int
    ts_corrected: int | None
    value: float | None
    unit: str
    quantity: str
    quality: str
    reason: str | None

    ts_iso = iso_twin("ts")


class SensorEntry(_Out):
    gateway: str
    site: str
    id: str
    zone: str | None
    calibration_due: datetime.date | None
    last_reading: LastReading | None


class SensorList(_Out):
    items: list[SensorEntry]


class RawPoint(_Out):
    ts: int
    ts_corrected: int | None = Field(description="Wall time rebuilt from a synchronised anchor, if any.")
    value: float | None
    quality: str
    reason: str | None

    ts_iso = iso_twin("ts")


class Bucket(_Out):
    start: int = Field(description="First ms of the bucket; it spans bucket_ms.")
    count: int = Field(description="Readings in the bucket, whatever their quality.")
    min: float | None = Field(description="Over quality 'ok' readings only; null when there are none.")
    max: float | None
    avg: float | None
    not_ok: int = Field(description="Readings with quality 'suspect' or 'error'.")
    arrhenius: float | None = Field(
        default=None,
        description="Sum of exp(-dH/(R*T)) over the bucket's ok temperature readings (T in kelvin), when "
        "the bucket was read from the hourly summaries: with the ok count it gives the bucket's exact MKT.",
    )

    start_iso = iso_twin("start")


class ReadingSeries(_Out):
    gateway: str
    sensor: str
    from_: int = Field(
        alias="from",
        description="Inclusive start of the range, epoch ms; widened to a whole hour when buckets are an "
        "hour or wider (they are then read from the hourly summaries).",
    )
    to: int = Field(description="Exclusive: readings with from <= ts < to; widened like from.")
    count: int = Field(description="Readings in the range.")
    mode: Literal["raw", "buckets"] = Field(description="raw when count <= max_points, else buckets.")
    bucket_ms: int | None = Field(
        description="Bucket width, ceil((to - from) / max_points), rounded up to whole hours when that is "
        "an hour or more; null when raw."
    )
    points: list[RawPoint] | None = None
    buckets: list[Bucket] | None = None

    from_iso = iso_twin("from_")
    to_iso = iso_twin("to")


# ---------------------------------------------------------------- gaps, alerts, dead letters


class GapEntry(_Out):
    gateway: str
    subject_type: str
    subject: str
    cause: str
    start: int
    end: int | None = Field(description="From the closing report; null while the gap is open.")
    open: bool
    detail: str = Field(description="The closing report's detail if any, else the opening one's.")
    reports: int = Field(description="Stored rows folded into this gap (opening, closing, re-sends).")
    verdict: str | None = Field(
        default=None,
        description="For a closed cloud 'gateway unheard' gap, once judged: 'delayed' (the gateway ran "
        "throughout and its backlog arrived: nothing missing) or 'not_monitored'; else null.",
    )
    verdict_detail: str | None = Field(default=None, description="Why the verdict was given.")

    start_iso = iso_twin("start")
    end_iso = iso_twin("end")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_ms(self) -> int | None:
        return None if self.end is None else self.end - self.start


class GapList(_Out):
    items: list[GapEntry]


class AlertEntry(_Out):
    gateway: str
    alert_id: str
    open: bool = Field(description="The latest step is not 'cleared'.")
    last_action: str
    raised_at: int = Field(description="ts of the first stored step, epoch ms.")
    updated_at: int = Field(description="ts of the latest step, epoch ms.")
    steps: int
    rule: str
    subject_type: str
    subject: str
    severity: str
    message: str
    evidence: dict[str, Any]

    raised_at_iso = iso_twin("raised_at")
    updated_at_iso = iso_twin("updated_at")


class AlertList(_Out):
    items: list[AlertEntry]


class DeadLetterReplayOut(_Out):
    replayed_at: datetime.datetime
    by: str
    outcome: str = Field(description="stored, duplicate or refused.")
    new_items: int
    detail: str


class DeadLetterEntry(_Out):
    id: int
    received_at: datetime.datetime
    topic: str
    gateway: str | None
    path: str | None
    reason: str
    repeats: int = Field(description="Times the same refusal (topic, path, payload) arrived again.")
    last_received_at: datetime.datetime
    payload_size: int = Field(description="Bytes of the payload as it arrived.")
    payload_sha256: str | None = Field(
        default=None, description="SHA-256 of the whole payload (null on rows stored before migration 0004)."
    )
    truncated: bool = Field(
        default=False,
        description="Only the first 4096 bytes were kept: not JSON or over the contract's size limit, "
        "so never replayable.",
    )
    payload_head: str = Field(description="The first 200 bytes as UTF-8, undecodable bytes replaced.")
    batch: dict[str, Any] | None = Field(
        default=None,
        description="For one item refused inside a good batch: that batch's stream, boot and range.",
    )
    last_replay: DeadLetterReplayOut | None = Field(
        default=None, description="The newest `coldgate cloud dead-letters replay` attempt, if any."
    )


class DeadLetterList(_Out):
    items: list[DeadLetterEntry]


# ---------------------------------------------------------------- refusals: enrolment, unknown ids, budgets


class EnrolmentEntry(_Out):
    gateway: str
    site: str
    credential: str = Field(description='"password", "certificate" or "before-enrolment" (migration 0005).')
    enrolled_at: datetime.datetime
    revoked_at: datetime.datetime | None
    active: bool = Field(description="Not revoked: ingest stores what it sends under its site's topics.")
    last_seen: datetime.datetime | None = Field(
        description="When ingest last heard from it; null if it never stored anything."
    )


class EnrolmentList(_Out):
    total: int = Field(description="Enrolments matching the filters, whatever limit and offset.")
    items: list[EnrolmentEntry]


class UnknownGatewayEntry(_Out):
    gateway: str = Field(description='The id the topic named; "(others)" counts ids past the first 1,000.')
    site: str = Field(description="The site the topic named.")
    why: str = Field(description="Why ingest refused it, as of its latest message.")
    first_seen: datetime.datetime
    last_seen: datetime.datetime
    messages: int = Field(description="Messages refused; only the first was kept, as a dead letter.")
    payload_bytes: int
    enrolled_now: bool = Field(
        description="Enrolled for this site (not revoked) since: its new messages are stored; "
        "the counts stay as they were."
    )


class UnknownGatewayList(_Out):
    total: int = Field(description="Ids matching the filters, whatever limit and offset.")
    items: list[UnknownGatewayEntry]


class BudgetLimits(_Out):
    window_s: float
    rows: int = Field(description="Dead letters kept per source per window.")
    bytes: int = Field(description="Payload bytes kept per source per window.")
    configured: bool = Field(
        description="From the cloud config's [ingest]; false: the defaults, as this API was not given them."
    )


class DeadLetterBudgetEntry(_Out):
    source: str = Field(
        description='A gateway id, "(not enrolled)" (shared by all ids not enrolled) or "(no gateway)".'
    )
    window_start: datetime.datetime
    window_end: datetime.datetime
    window_open: bool = Field(
        description="The window is still running; false: the counts are of its last window, and its "
        "next dead letter starts a new one."
    )
    kept: int
    kept_bytes: int
    dropped: int = Field(description="Dead letters counted, not kept, in the window.")
    dropped_bytes: int
    dropped_total: int = Field(description="Dropped over all windows.")
    capped: bool = Field(
        description="Over its budget in the running window: its next new dead letter is only counted."
    )


class DeadLetterBudgetList(_Out):
    limits: BudgetLimits
    total: int = Field(description="Sources matching the filters, whatever limit and offset.")
    items: list[DeadLetterBudgetEntry]


class TileOut(_Out):
    """One sensor on the site overview (``cloud/api/tiles.py`` judges ``state``)."""

    gateway: str
    site: str
    sensor: str
    zone: str | None
    state: str = Field(description="gateway offline, offline, excursion, pre-alarm, no data, stale, "
                       "calibration overdue or in range: the most urgent that holds.")  # fmt: skip
    since_ms: int | None = Field(description="When the state began, epoch ms, where known.")
    value: float | None
    unit: str | None
    quantity: str | None
    last_ts: int | None = Field(description="The last reading's time (clock-corrected if it was), epoch ms.")
    why: str | None
    reported_ts: int | None = Field(
        default=None, description="The gateway's own time of the last reading, when the cloud corrected it."
    )
    low: float | None = Field(
        default=None,
        description="Alarm limit: of the class of the sensor's location, else as the gateway "
        "applied it in its newest alert carrying limits; null if not known.",
    )
    high: float | None = Field(default=None, description="Alarm limit, from the same source as ``low``.")
    pre_low: float | None = Field(default=None, description="Pre-alarm limit, if known.")
    pre_high: float | None = Field(default=None, description="Pre-alarm limit, if known.")
    limits_alert: str | None = Field(
        default=None, description="The alert whose evidence gave the limits, when no class did."
    )
    limits_class: str | None = Field(
        default=None,
        description="The temperature class that gave the limits: the class of the location "
        "the sensor is placed in now.",
    )
    location_name: str | None = Field(
        default=None, description="The name of the location the sensor is placed in now (``zone`` is its id)."
    )

    since_iso = iso_twin("since_ms")
    last_ts_iso = iso_twin("last_ts")


class SiteCounts(_Out):
    site: str
    open_alerts: int
    open_gaps: int
    gateways_offline: int


class Overview(_Out):
    now: int = Field(description="The server's time the overview was read at, epoch ms.")
    gateways: list[GatewayEntry]
    tiles: list[TileOut]
    sites: list[SiteCounts]


# ---------------------------------------------------------------- sites


class SiteEntry(_Out):
    id: str
    name: str | None
    time_zone: str = Field(description="IANA zone name the site's times are shown in (UTC until set).")


class SiteList(_Out):
    items: list[SiteEntry]


class TimeZoneBody(BaseModel):
    """``PUT /sites/{site}/time-zone``: the zone is checked by ``cloud.catalog.sites``, which names it."""

    model_config = ConfigDict(extra="forbid")
    time_zone: str = Field(max_length=256, examples=["Europe/Berlin"])
