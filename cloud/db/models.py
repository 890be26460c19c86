"""Declarative models of the cloud database.

Edge-stamped times (``ts``, ``mono``, gap ``start``/``end``) stay integer epoch
milliseconds exactly as the contract sends them: converting would lose the
original evidence and behave differently on SQLite and PostgreSQL.  Times the
cloud stamps itself (``received_at``, ``last_seen``) are timezone-aware
timestamps.  Item tables carry no foreign keys: ingest writes them in bulk and
checks gateways itself, and a foreign key on a partitioned table costs a lookup
per row.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Alert",
    "ApiToken",
    "AuditEntry",
    "Base",
    "BatchRange",
    "BootAnchor",
    "BrowserSession",
    "Calibration",
    "DeadLetter",
    "DownlinkDocument",
    "EdgeItem",
    "Gap",
    "GapVerdict",
    "Gateway",
    "ItemKey",
    "LocationVersion",
    "LotSerial",
    "LotVersion",
    "Notification",
    "NotificationAttempt",
    "NotifyLinkKey",
    "Placement",
    "ProductIdentifier",
    "ProductVersion",
    "Reading",
    "ReadingHour",
    "ReadingPurge",
    "Sensor",
    "Site",
    "StreamCoverage",
    "TemperatureClassVersion",
    "User",
    "UserRole",
    "Zone",
    "autogenerate_include",
]

#: JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")
#: Identifiers are 1-64 characters by the contract.
ID_LEN = 64


class Base(DeclarativeBase):
    """Root of every model; ``Base.metadata`` is what the migrations must match."""

    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        dict[str, Any]: JsonDoc,
        str: String(ID_LEN),
    }


class Site(Base):
    """A warehouse; gateways and zones belong to one."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    #: IANA zone name its times are shown in (migration 0011); instants are stored as UTC epoch ms.
    time_zone: Mapped[str] = mapped_column(String(64), server_default="UTC")


class Zone(Base):
    """A storage area of a site with the temperature class its goods need."""

    __tablename__ = "zones"

    site: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    temperature_class: Mapped[str]


class _Version:
    """Who made this version of a master-data record, when and why (``cloud/catalog/``).

    Master data is versioned, never edited: a change adds the next version, the highest is in force,
    and the history of every record is its rows.
    """

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    changed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: The actor's printed name and, for a person, their user id.
    changed_by: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[str | None]
    reason: Mapped[str] = mapped_column(Text)
    #: A retired record is no longer offered or pushed to gateways; its history stays.
    retired: Mapped[bool] = mapped_column(Boolean, default=False)


class TemperatureClassVersion(_Version, Base):
    """A storage condition ("2-8C") as the gateways apply it: ``spec`` holds the fields of the
    gateway's ``TemperatureClass`` except its name (limits, pre-alarm band, delays, MKT window, humidity)."""

    __tablename__ = "temperature_classes"
    __table_args__ = (PrimaryKeyConstraint("name", "version"),)

    name: Mapped[str] = mapped_column(primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]]


class ProductVersion(_Version, Base):
    """A product and the identifiers its labels carry (GTIN, HIBC, MA), its class and TOR budget."""

    __tablename__ = "products"
    __table_args__ = (PrimaryKeyConstraint("id", "version"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    gtin: Mapped[str | None] = mapped_column(String(14))
    hibc_lic: Mapped[str | None] = mapped_column(String(4))
    hibc_pcn: Mapped[str | None] = mapped_column(String(18))
    hibc_uom: Mapped[int | None] = mapped_column(Integer)
    ma_id: Mapped[str | None]
    temperature_class: Mapped[str]
    #: Time out of refrigeration allowed over the product's life, seconds; null: none tolerated.
    tor_budget_s: Mapped[int | None] = mapped_column(Integer)
    serialised: Mapped[bool] = mapped_column(Boolean, default=False)
    #: How long the readings of the months its lots were kept in must be kept (migration 0032,
    #: ``cloud/db/retention.py``): "standard", "device" (past the lot's expiry) or "implant" (for ever).
    #: Null: not yet categorised (every product from before 0032, and one created without it): its months
    #: are kept for ever until someone says which it is, never purged on a guess.
    retention: Mapped[str | None] = mapped_column(String(16))


class ProductIdentifier(Base):
    """Which product each label identifier names, one product per identifier: an index kept by the
    product writes (replaced on each version, so not a record), unique by its key on every dialect."""

    __tablename__ = "product_identifiers"

    scheme: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(primary_key=True)
    product: Mapped[str]


class LotVersion(_Version, Base):
    """A lot of a product: expiry (a date, or a date and hour), manufacture date, and its status."""

    __tablename__ = "lots"
    __table_args__ = (PrimaryKeyConstraint("product", "lot", "version"),)

    product: Mapped[str] = mapped_column(primary_key=True)
    lot: Mapped[str] = mapped_column(primary_key=True)
    expiry: Mapped[datetime.date | None] = mapped_column(Date)
    #: The hour of ``expiry`` the label gives (GS1 AI 7003, HIBC), 0-23; null: the whole day.
    expiry_hour: Mapped[int | None] = mapped_column(Integer)
    manufactured: Mapped[datetime.date | None] = mapped_column(Date)
    #: released, quarantined, recalled or rejected; "expired" is computed from ``expiry``.
    status: Mapped[str] = mapped_column(String(16))


class LocationVersion(_Version, Base):
    """A place of a site that goods are kept in or pass through (``cloud/catalog/locations.py``):
    its kind, the temperature class it keeps, and for a dock door the locations on either side."""

    __tablename__ = "locations"
    __table_args__ = (PrimaryKeyConstraint("site", "id", "version"),)

    site: Mapped[str] = mapped_column(primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    #: cold_room, freezer, ambient_store, dock_door, quarantine_area or vehicle.
    kind: Mapped[str] = mapped_column(String(24))
    temperature_class: Mapped[str | None]
    #: A dock door's two sides: the location inside the building and the one outside (a yard, a truck).
    inside: Mapped[str | None]
    outside: Mapped[str | None]


class Placement(Base):
    """From ``valid_from`` on, device ``device`` (a sensor, reader or scanner of ``gateway``) serves
    ``location`` (null: taken out of service), until the device's next placement.  Append-only: where
    each reading was taken stays as it was recorded when a sensor moves."""

    __tablename__ = "placements"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    device_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    device: Mapped[str] = mapped_column(primary_key=True)
    valid_from: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    site: Mapped[str]
    location: Mapped[str | None]
    recorded_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[str | None]
    reason: Mapped[str] = mapped_column(Text)


class Calibration(Base):
    """A sensor's calibration certificate: when, how accurate, when due next.  Append-only; the newest
    one's ``next_due`` is copied to ``sensors.calibration_due`` for the overview."""

    __tablename__ = "calibrations"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    sensor: Mapped[str] = mapped_column(primary_key=True)
    certificate: Mapped[str] = mapped_column(primary_key=True)
    calibrated_on: Mapped[datetime.date] = mapped_column(Date)
    #: As the certificate states it, e.g. "±0.5 °C".
    accuracy: Mapped[str] = mapped_column(Text)
    next_due: Mapped[datetime.date] = mapped_column(Date)
    recorded_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    recorded_by: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[str | None]
    reason: Mapped[str] = mapped_column(Text)


class DownlinkDocument(Base):
    """A version of a down-link document the cloud published to one gateway (``cloud/downlink/``).

    What was pushed, when, and its content's SHA-256: a new version is made only when the content
    changes, and the gateway's status says which version it applied.  Append-only.
    """

    __tablename__ = "downlink_documents"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    #: "master" or "recall" (the contract's topics).
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    issued: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: SHA-256 of the document's content without its version and time: the same content, the same hash.
    content_sha256: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)


class Gateway(Base):
    """A gateway as the cloud last saw it; ``last_status`` is its newest retained status."""

    __tablename__ = "gateways"

    id: Mapped[str] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(ForeignKey("sites.id"))
    first_seen: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_status: Mapped[dict[str, Any] | None]
    #: Boot id of the newest status; a change means the gateway restarted.
    boot: Mapped[str | None]
    #: When ``online`` last changed (birth, will, or the unheard-gateway watchdog).
    state_since: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class GatewayEnrolment(Base):
    """A gateway the cloud accepts data from, for one site (``coldgate cloud gateways enroll``).

    Ingest stores nothing from a gateway without a row here, or whose row is
    revoked, or whose messages name another site: a broker login is one lock,
    this is the second.  Gateways the cloud knew before enrolment existed were
    enrolled by migration 0005 (``credential`` "before-enrolment").
    """

    __tablename__ = "gateway_enrolments"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    site: Mapped[str]
    enrolled_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: "password", "certificate" or "before-enrolment": what the broker knows the gateway by.
    credential: Mapped[str] = mapped_column(String(32))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class UnknownGateway(Base):
    """Messages under a gateway id that is not enrolled (or revoked, or on another site), counted.

    The first one is logged and kept as a dead letter; the rest only counted
    here, so a misconfigured or hostile client costs one row, not a table.
    """

    __tablename__ = "unknown_gateways"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    site: Mapped[str]
    why: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    messages: Mapped[int] = mapped_column(BigInteger)
    payload_bytes: Mapped[int] = mapped_column(BigInteger)


class Sensor(Base):
    """A sensor of a gateway, the zone it watches and when its calibration expires."""

    __tablename__ = "sensors"

    gateway: Mapped[str] = mapped_column(ForeignKey("gateways.id"), primary_key=True)
    id: Mapped[str] = mapped_column(primary_key=True)
    zone: Mapped[str | None]
    calibration_due: Mapped[datetime.date | None] = mapped_column(Date)


class _ItemColumns:
    """The idempotency key and time evidence every item carries (contract: ItemBase)."""

    gateway: Mapped[str] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger)
    boot: Mapped[str]
    mono: Mapped[int] = mapped_column(BigInteger)
    synced: Mapped[bool] = mapped_column(Boolean)


class Reading(Base):
    """One measurement; the bulk of the data, hence range-partitioned by ``ts`` on PostgreSQL.

    PostgreSQL requires the partition key in every unique constraint of a
    partitioned table, so the primary key is (gateway, stream, seq, ts);
    uniqueness of (gateway, stream, seq) alone is kept by :class:`ItemKey`.
    """

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_sensor_ts", "gateway", "sensor", "ts"),
        # Clock correction looks up a boot's unsynchronised readings when its first anchor arrives.
        Index(
            "ix_readings_unsynced",
            "gateway",
            "boot",
            postgresql_where=text("NOT synced"),
            sqlite_where=text("NOT synced"),
        ),
        # The API selects by the corrected time where one exists (migration 0018).
        Index(
            "ix_readings_corrected",
            "gateway",
            "sensor",
            "ts_corrected",
            postgresql_where=text("ts_corrected IS NOT NULL"),
            sqlite_where=text("ts_corrected IS NOT NULL"),
        ),
        {"postgresql_partition_by": "RANGE (ts)"},
    )

    gateway: Mapped[str] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    boot: Mapped[str]
    mono: Mapped[int] = mapped_column(BigInteger)
    synced: Mapped[bool] = mapped_column(Boolean)
    sensor: Mapped[str]
    quantity: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(8))
    quality: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    #: Wall time reconstructed from a synchronised anchor of the same boot; ``ts`` is never edited.
    ts_corrected: Mapped[int | None] = mapped_column(BigInteger)


class ReadingArchive(Base):
    """An archived month of readings (``cloud/db/archive.py``, migration 0031): how many, in how many packs,
    their SHA-256 before packing and recomputed from the packs, the bytes before and after, who and when."""

    __tablename__ = "reading_archives"

    month: Mapped[datetime.date] = mapped_column(Date, primary_key=True)
    partition: Mapped[str] = mapped_column(Text)
    readings: Mapped[int] = mapped_column(BigInteger)
    packs: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    sha256_packed: Mapped[str] = mapped_column(String(64))
    bytes_before: Mapped[int] = mapped_column(BigInteger)
    bytes_after: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    archived_by: Mapped[str] = mapped_column(Text)


class ReadingPurge(Base):
    """An archived month whose packs were deleted once its retention had passed (``cloud/db/purge.py``,
    migration 0032): how many readings went and the archive's hash of them, the rule and the date it
    allowed from, how many lots the month concerned and the one that held it longest, who and when."""

    __tablename__ = "reading_purges"

    month: Mapped[datetime.date] = mapped_column(Date, ForeignKey("reading_archives.month"), primary_key=True)
    #: Which readings of the month went: "all" (every site's).
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    readings: Mapped[int] = mapped_column(BigInteger)
    packs: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(Text)
    #: The first day the rule let the month go (it was kept until the day before).
    purge_from: Mapped[datetime.date] = mapped_column(Date)
    lots: Mapped[int] = mapped_column(Integer)
    held_longest_by: Mapped[str | None] = mapped_column(Text)
    purged_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    purged_by: Mapped[str] = mapped_column(Text)


class ItemKey(Base):
    """The idempotency key of every stored item, of whatever kind, in a plain (unpartitioned) table.

    A partitioned ``readings`` cannot be unique on (gateway, stream, seq), so a
    re-sent reading whose ``ts`` differs would be stored twice; and one seq
    must not hold a reading in one table and an alert in another.  Every item
    claims its key here first, which settles both on every dialect.  ``ts``
    says which partition holds a reading.
    """

    __tablename__ = "item_keys"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[int] = mapped_column(BigInteger)


class ReadingHour(Base):
    """One hour of one sensor's readings of one quantity, summed (``cloud/db/reading_hours.py``).

    Derived from ``readings`` by ingest in the same transaction, so long charts and figures read 8,760
    rows a sensor-year instead of half a million; ``hour`` is the hour's first epoch ms by ``ts``.
    """

    __tablename__ = "reading_hours"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    sensor: Mapped[str] = mapped_column(primary_key=True)
    quantity: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    #: Readings of quality "ok" with a value: the only ones min, max, sum and arrhenius are over.
    ok_count: Mapped[int] = mapped_column(Integer)
    min: Mapped[float | None] = mapped_column(Double)
    max: Mapped[float | None] = mapped_column(Double)
    sum: Mapped[float] = mapped_column(Double)
    #: Sum of exp(-dH/(R*T)) over the ok readings; null where one of them had no temperature in a known unit.
    arrhenius: Mapped[float | None] = mapped_column(Double)


class Gap(_ItemColumns, Base):
    """A stretch without monitoring, as the edge reported it (``end`` null while open)."""

    __tablename__ = "gaps"

    subject_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str]
    start: Mapped[int] = mapped_column(BigInteger)
    end: Mapped[int | None] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class GapVerdict(Base):
    """What a closed cloud "gateway unheard" gap turned out to be (``cloud/alerts/gap_verdicts.py``).

    A record of its own that refers to the gap by (gateway, stream, start), so the gap is never edited:
    "delayed" (the gateway ran throughout and its backlog arrived whole) or "not_monitored".
    """

    __tablename__ = "gap_verdicts"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    gap_stream: Mapped[str] = mapped_column(primary_key=True)
    gap_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    gap_end: Mapped[int] = mapped_column(BigInteger)
    verdict: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    decided_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class Alert(_ItemColumns, Base):
    """One step (raised, updated, cleared) of an edge alert; ``alert_id`` ties the steps together."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_alert_id", "gateway", "alert_id"),)

    alert_id: Mapped[str]
    action: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str]
    subject_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str]
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]


class EdgeItem(_ItemColumns, Base):
    """Movements, scans and events, kept whole until they get tables of their own.

    Ingest acknowledges only what is committed, so no item kind may be dropped.
    """

    __tablename__ = "edge_items"

    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]]


class DeadLetter(Base):
    """A message ingest could not store (contract error, conflicting duplicate), kept verbatim.

    ``gateway`` is the one the topic names (null when the topic itself is bad):
    it says whose messages are failing, not who sent them.  ``path`` is the
    contract path of the fault (``$.items[3].value``), ``reason`` says why.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)
    gateway: Mapped[str | None]
    path: Mapped[str | None] = mapped_column(Text)
    #: sha256 of topic, path and payload: a message re-sent or re-delivered is one dead letter
    #: whose ``repeats`` grows, not a new row each time.
    fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    repeats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_received_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    #: For one item refused inside an otherwise good batch (``payload`` is the item alone): the
    #: batch's ``stream``, ``boot``, ``first_seq`` and ``last_seq``, so the item can be replayed.
    batch: Mapped[dict[str, Any] | None]
    #: Size and SHA-256 of the payload as it arrived (null on rows from before migration 0004,
    #: which kept every payload whole); ``truncated``: only a prefix of it is in ``payload``
    #: (``ingest.dead_letter_payload``: garbage that can never be replayed).
    payload_size: Mapped[int | None] = mapped_column(BigInteger)
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    truncated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class DeadLetterBudget(Base):
    """How much one source has dead-lettered in the current window, and what was dropped over it.

    A source is a gateway id, or "(no gateway)" for topics that name none.
    Ingest keeps at most ``[ingest] dead_letters_per_window`` rows and
    ``dead_letter_bytes_per_window`` bytes per source per window; past that it
    only counts (``dropped_*``, and ``dropped_total`` over all windows), and
    says so once per window in the log and, for an enrolled gateway, as an
    alert.  Bookkeeping, not a record: the window's counts restart.
    """

    __tablename__ = "dead_letter_budgets"

    source: Mapped[str] = mapped_column(primary_key=True)
    window_start: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    kept: Mapped[int] = mapped_column(Integer)
    kept_bytes: Mapped[int] = mapped_column(BigInteger)
    dropped: Mapped[int] = mapped_column(Integer)
    dropped_bytes: Mapped[int] = mapped_column(BigInteger)
    dropped_total: Mapped[int] = mapped_column(BigInteger)


class AuditEntry(Base):
    """One entry of the append-only audit trail (``cloud/audit/``): who did what to which record, when,
    with the record before and after, chained by hash to the entry before it.

    ``before`` and ``after`` are stored as the canonical JSON text they were
    hashed as (not JSONB, which would reorder keys and rewrite numbers), so
    the chain can be recomputed from the stored bytes.  The database refuses
    UPDATE and DELETE on this table (triggers, migration 0007).
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: The user's id, or null for a system component (``actor_name`` names it).
    actor_id: Mapped[str | None]
    actor_name: Mapped[str] = mapped_column(Text)
    action: Mapped[str]
    entity_type: Mapped[str]
    entity_id: Mapped[str] = mapped_column(Text)
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None]
    client: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class DeadLetterReplay(Base):
    """One attempt to store a dead letter again (``coldgate cloud dead-letters replay``).

    Append-only, like the dead letter it names: a replay never edits or
    deletes the dead letter, it records what became of it.  ``outcome`` is
    ``stored`` (new items written), ``duplicate`` (everything was already
    stored) or ``refused`` (still not storable; ``detail`` says why).
    """

    __tablename__ = "dead_letter_replays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dead_letter_id: Mapped[int] = mapped_column(ForeignKey("dead_letters.id"), index=True)
    replayed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str]
    outcome: Mapped[str] = mapped_column(String(16))
    new_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    detail: Mapped[str] = mapped_column(Text)


class StreamCoverage(Base):
    """How far ingest has committed each outbox stream: the seq it acknowledges.

    ``covered`` is the highest seq such that every seq up to it lies in the
    range of some committed batch (docs/contract.md, "Express batches").
    Workers share this row, so it is read ``FOR UPDATE`` on PostgreSQL.
    """

    __tablename__ = "stream_coverage"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    site: Mapped[str]
    covered: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: Set when ingest took ``covered`` from the gateway's own status (its outbox had already deleted
    #: items an earlier cloud database acknowledged): the seq adopted, kept as the evidence.
    adopted: Mapped[int | None] = mapped_column(BigInteger)


class BatchRange(Base):
    """A committed batch's range that stands apart from ``covered`` (an express batch).

    Merged into :class:`StreamCoverage` and deleted once the stream catches
    up; these rows are ingest bookkeeping, not records.
    """

    __tablename__ = "batch_ranges"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class BootAnchor(Base):
    """The first synchronised (mono, ts) pair seen for a gateway's boot.

    Items stamped before the clock was synchronised are corrected as
    ``anchor.ts + (item.mono - anchor.mono)``: mono is CLOCK_BOOTTIME, so it is
    valid across the whole boot.
    """

    __tablename__ = "boot_anchors"

    gateway: Mapped[str] = mapped_column(primary_key=True)
    boot: Mapped[str] = mapped_column(primary_key=True)
    mono: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A person who uses the cloud (``cloud/identity/users.py``): never deleted, only disabled.

    ``login`` is unique and never reused: a disabled user keeps it, and the
    database refuses DELETE on this table and any change of ``id``, ``login``
    or ``created_at`` (triggers, migration 0008).  ``printed_name`` is the
    name a signature prints.  ``password_hash`` is argon2 (pwdlib), never the
    password.  ``locked`` is set after too many failed logins and cleared
    only by an admin (``coldgate cloud users unlock``).
    """

    __tablename__ = "users"

    #: "u-" and 12 hex digits, made once: what the audit trail and every later record point at.
    id: Mapped[str] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(unique=True)
    printed_name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None]
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean)
    locked: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class UserRole(Base):
    """One role a user holds (``cloud/identity/roles.py`` names them and their permissions).

    A row per role rather than a list in a column, so "who is qa_manager?"
    is one indexed query; rows come and go with ``set_roles`` (audited).
    """

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApiToken(Base):
    """A bearer token for the API (``cloud/identity/tokens.py``): a person's, carrying their roles as
    they are when it is used, or a machine's, carrying the roles it was given.

    Only the SHA-256 of the secret is kept (a token is 256 random bits, so a
    slow hash adds nothing); the token is shown once, when it is made.  Tokens
    are revoked, never deleted, so an audit entry naming one can always be
    traced to who made it and when it stopped working.
    """

    __tablename__ = "api_tokens"

    #: "t-" and 12 hex digits: the public half of the token, how it is listed and revoked.
    id: Mapped[str] = mapped_column(primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    #: The person the token acts for; null for a machine token.
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    #: A machine token's name (what the audit trail shows); null for a person's token.
    machine: Mapped[str | None]
    #: A machine token's roles, comma-separated; a person's token takes the person's roles.
    roles: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[str | None] = mapped_column(Text)


class BrowserSession(Base):
    """A signed-in browser (``cloud/identity/sessions.py``): the cookie's SHA-256, never the cookie.

    ``last_seen_at`` moves with use (the idle timeout); ``expires_at`` never
    moves (the absolute timeout).  An ended session keeps its row and why it
    ended, so "who was signed in when" can be answered.
    """

    __tablename__ = "browser_sessions"

    cookie_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    client: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    #: "logout", "idle timeout", "absolute timeout", "user disabled", ...
    ended_reason: Mapped[str | None] = mapped_column(Text)


class LotSerial(Base):
    """Serials of a product's units that belong to one lot (``cloud/catalog/serials.py``): one serial
    (``first == last``) or a range of numeric serials of one width, ``first..last`` inclusive.

    An SGTIN tag carries GTIN and serial but no lot; this ties it to its lot.  A serial belongs to at
    most one lot of a product (ranges never overlap: checked by the writers, who serialise on a lock).
    Append-only: what was said about a unit is never edited, only added to.
    """

    __tablename__ = "lot_serials"
    __table_args__ = (
        PrimaryKeyConstraint("product", "first"),
        #: ``lot_of``: the range of a numeric serial is the last one of its width starting at or below it.
        Index("ix_lot_serials_lookup", "product", "numeric", "width", "first"),
        Index("ix_lot_serials_lot", "product", "lot"),
    )

    product: Mapped[str] = mapped_column()
    first: Mapped[str] = mapped_column()
    last: Mapped[str]
    lot: Mapped[str]
    #: ``first`` is all digits (then it and ``last`` compare as numbers: same width).
    numeric: Mapped[bool] = mapped_column(Boolean)
    width: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(Text)
    added_by_id: Mapped[str | None]
    reason: Mapped[str] = mapped_column(Text)


def autogenerate_include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic ``include_object`` hook: what autogenerate should compare.

    Monthly ``readings_*`` partitions are made by ``ensure_partitions``, not
    declared as models; ``reading_packs`` (migration 0031) exists on PostgreSQL
    only, with array columns, and only ``cloud/db/archive.py`` writes it, in SQL.
    """
    del reflected, compare_to
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return not (table or "").startswith("readings_") and table != "reading_packs"


class DocumentVersion(Base):
    """One version of an inventory document (``cloud/documents/documents.py``): a receiving note, dispatch
    order or transfer as it stood after one change, with who made the change, when and why.

    Never edited: an edit of a draft and every move of its state add the next version, the highest is the
    document as it stands.  ``kind``, ``site`` and ``reference`` are fixed by the first version, so one
    partial unique index on it keeps a reference unique per site and kind whatever two writers race.
    """

    __tablename__ = "document_versions"
    __table_args__ = (
        PrimaryKeyConstraint("id", "version"),
        Index(
            "ux_document_reference",
            "site",
            "kind",
            "reference",
            unique=True,
            postgresql_where=text("version = 1"),
            sqlite_where=text("version = 1"),
        ),
        Index("ix_document_versions_door", "site", "door"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column(Integer, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(ID_LEN))
    state: Mapped[str] = mapped_column(String(16))
    #: The sender's number: the advance ship notice or purchase order, the customer's order.
    reference: Mapped[str] = mapped_column(String(ID_LEN))
    #: The supplier (receiving) or the customer and ship-to (dispatch).
    party: Mapped[str | None] = mapped_column(Text)
    #: The dock door (a location of the site) it is worked at, from its release.
    door: Mapped[str | None] = mapped_column(String(ID_LEN))
    #: Epoch ms: released (items at the door bind from then) and closed (nothing binds after).
    opened_at: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    reason: Mapped[str] = mapped_column(Text)


class DocumentLine(Base):
    """One expected line of one document version: a row per line, so stock and custody can find the
    documents of a product and lot by index; the expected SSCCs and serials are JSON lists in the line,
    since they are only ever read with their document (binding loads the few open documents of a door
    whole and matches in memory) and a line of 10,000 serials stays one row per version.  Append-only,
    like its version."""

    __tablename__ = "document_lines"
    __table_args__ = (
        PrimaryKeyConstraint("document", "version", "number"),
        Index("ix_document_lines_product", "product", "lot"),
    )

    document: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column(Integer, autoincrement=False)
    number: Mapped[int] = mapped_column(Integer, autoincrement=False)
    product: Mapped[str] = mapped_column(String(ID_LEN))
    lot: Mapped[str | None] = mapped_column(String(ID_LEN))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    ssccs: Mapped[list[str]] = mapped_column(JsonDoc)
    serials: Mapped[list[str]] = mapped_column(JsonDoc)


class BindingRow(Base):
    """Where one stored movement or scan landed (``cloud/documents/binding_store.py``): a document and
    line, a document without a line (unexpected), or no document (unbound at its door, with the reason).

    Derived (migration 0020): recomputed from ``edge_items``, the documents' versions and the catalog
    with the same result, so a re-run may replace rows; the item itself is never touched.  What the item
    named (``label`` as read, the catalog's product, lot, serial, SSCC) is kept beside it for the
    dock's and reconciliation's reads.
    """

    __tablename__ = "bindings"
    __table_args__ = (
        Index("ix_bindings_document", "document", "line"),
        Index("ix_bindings_door", "site", "door", "time"),
        Index("ix_bindings_lot", "product", "lot"),
        Index("ix_bindings_sscc", "sscc"),  # custody: a pallet's rows (migration 0022)
        Index("ix_bindings_serial", "product", "serial"),  # custody: a serialised case's rows
    )

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    stream: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(ID_LEN))
    door: Mapped[str | None] = mapped_column(String(ID_LEN))
    direction: Mapped[str] = mapped_column(String(16))
    #: Epoch ms the item happened (a movement's first read, a scan's time), corrected where it was.
    time: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[str | None] = mapped_column(String(ID_LEN))
    line: Mapped[int | None] = mapped_column(Integer)
    how: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(String(ID_LEN))
    lot: Mapped[str | None] = mapped_column(String(ID_LEN))
    serial: Mapped[str | None] = mapped_column(String(ID_LEN))
    sscc: Mapped[str | None] = mapped_column(String(18))
    quantity: Mapped[int] = mapped_column(Integer)
    unresolved: Mapped[list[dict[str, str]]] = mapped_column(JsonDoc)
    bound_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: A put-away scan's: where its scanner was placed at the scan's time (migration 0021).
    location: Mapped[str | None] = mapped_column(String(ID_LEN))


class BindingQueue(Base):
    """A stored movement or scan binding has not bound yet (migration 0023): ingest adds its key in the
    transaction that stores it, binding deletes it in the one that binds it, so finding the work costs
    what there is to do, not what was ever stored."""

    __tablename__ = "binding_queue"

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    stream: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)


class DiscrepancyAcceptance(Base):
    """A discrepancy of a document accepted by someone allowed to decide (``qa.decide``), with the reason
    (``cloud/documents/discrepancy_store.py``): a record, never edited (migration 0021).

    ``key`` names the discrepancy as it stood when accepted (kind, line and the units it was about), so
    an acceptance of three missing cases does not cover a fourth one found missing later.
    """

    __tablename__ = "discrepancy_acceptances"
    __table_args__ = (Index("ix_discrepancy_acceptances_document", "document", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document: Mapped[str] = mapped_column(String(ID_LEN))
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    #: The discrepancy as the person saw it when accepting (its detail), for the record.
    summary: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    accepted_by: Mapped[str] = mapped_column(Text)
    accepted_by_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    #: What the acceptance's e-signature signed besides the key and kind (migration 0028): the document's
    #: version then and the discrepancy's detail; null in acceptances made before signatures.
    document_version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class ItemAssignment(Base):
    """A movement or scan that bound to no document, assigned to one by hand (and a line, when named):
    a record, never edited (migration 0021); binding applies it on every run, re-runs included."""

    __tablename__ = "item_assignments"
    __table_args__ = (Index("ix_item_assignments_document", "document"),)

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    stream: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    document: Mapped[str] = mapped_column(String(ID_LEN))
    line: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    assigned_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    assigned_by: Mapped[str] = mapped_column(Text)
    assigned_by_id: Mapped[str | None] = mapped_column(String(ID_LEN))


class QaCase(Base):
    """A QA case as opened from an alert (``cloud/alerts/case_store.py``): its cause, the first alert's
    rule, subject and message.  A record, never edited (migration 0024); its state is its newest step."""

    __tablename__ = "qa_cases"
    __table_args__ = (Index("ix_qa_cases_cause", "cause"),)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    site: Mapped[str | None] = mapped_column(String(ID_LEN))
    gateway: Mapped[str] = mapped_column(String(ID_LEN))
    rule: Mapped[str] = mapped_column(String(ID_LEN))
    subject_type: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(ID_LEN))
    #: What alerts of the same cause share (``cloud/alerts/case_opening.py``): they fold into one case.
    cause: Mapped[str] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class QaCaseAlert(Base):
    """A raised alert and the case it was folded into (each alert joins one case)."""

    __tablename__ = "qa_case_alerts"
    __table_args__ = (Index("ix_qa_case_alerts_case", "case_id"),)

    gateway: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(ID_LEN))
    severity: Mapped[str] = mapped_column(String(16))
    raised_ts: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
    folded_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class QaCaseStep(Base):
    """One state of a case, numbered from 1 (opened): who moved it there, when, why, and on closing the
    disposition.  The highest number is the state the case is in."""

    __tablename__ = "qa_case_steps"

    case_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    by_name: Mapped[str] = mapped_column(Text)
    by_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    reason: Mapped[str | None] = mapped_column(Text)
    disposition: Mapped[str | None] = mapped_column(String(32))


class ESignature(Base):
    """One electronic signature given (``cloud/identity/signatures.py``): who, when, meaning, reason,
    and the hash of what was signed.  A record, never edited (migration 0025)."""

    __tablename__ = "e_signatures"
    __table_args__ = (
        Index("ix_e_signatures_record", "record_type", "record_id", "record_seq"),
        Index("ix_e_signatures_session", "session_sha256", "signer_id"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    record_type: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[str] = mapped_column(String(ID_LEN))
    #: The record's step the signature was given on (a case's step number).
    record_seq: Mapped[int] = mapped_column(Integer)
    #: The move signed: a case's target state, and its disposition in ``detail``.
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(ID_LEN))
    meaning: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    signer_id: Mapped[str] = mapped_column(String(ID_LEN))
    signer_login: Mapped[str] = mapped_column(String(ID_LEN))
    signer_name: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    content_sha256: Mapped[str] = mapped_column(String(64))
    content_version: Mapped[int] = mapped_column(SmallInteger)
    session_sha256: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str | None] = mapped_column(String(64))


class QaCaseStock(Base):
    """A lot or unit whose custody was at the excursion's location during its interval, as the case
    derived it (``cloud/documents/location_stock.py``), with the lot's status before the case
    quarantined it.  A record (migration 0026)."""

    __tablename__ = "qa_case_stock"
    __table_args__ = (Index("ix_qa_case_stock_lot", "product", "lot"),)

    case_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: Which derivation of the case's stock the line belongs to (the newest is the case's).
    derivation: Mapped[int] = mapped_column(Integer)
    site: Mapped[str] = mapped_column(String(ID_LEN))
    location: Mapped[str] = mapped_column(String(ID_LEN))
    window_start: Mapped[int] = mapped_column(BigInteger)
    window_end: Mapped[int] = mapped_column(BigInteger)
    product: Mapped[str | None] = mapped_column(String(ID_LEN))
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot: Mapped[str | None] = mapped_column(String(ID_LEN))
    unit: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    first_in: Mapped[int] = mapped_column(BigInteger)
    last_out: Mapped[int | None] = mapped_column(BigInteger)
    status_before: Mapped[str | None] = mapped_column(String(16))
    derived_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class QaCaseEvidence(Base):
    """A snapshot of what a case is judged on (limits, calibration, the excursion's figures), as the
    canonical JSON text it was taken as; the newest is the case's.  A record (migration 0026)."""

    __tablename__ = "qa_case_evidence"

    case_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    taken_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    body: Mapped[str] = mapped_column(Text)


class QaCaseNote(Base):
    """A comment, an attachment's reference, a root cause, a corrective or preventive action: by whom,
    when.  A record (migration 0026)."""

    __tablename__ = "qa_case_notes"

    case_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    ref: Mapped[str | None] = mapped_column(Text)
    by_name: Mapped[str] = mapped_column(Text)
    by_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """A message about a QA case queued for one recipient over one channel (``cloud/alerts/notify_queue.py``):
    what it says, to whom, and when it fell due.  Queued once per (case, severity, level, round, channel,
    recipient); ``id`` is the hash of that key and the e-mail's Message-ID.  A record (migration 0027):
    whether it was delivered is in its attempts."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("case_id", "severity", "level", "round", "channel", "recipient",
                         name="uq_notifications_notice"),
        Index("ix_notifications_queued", "queued_at"),
    )  # fmt: skip

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(ID_LEN))
    severity: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(SmallInteger)
    round: Mapped[int] = mapped_column(Integer)
    #: "email" or "webhook".
    channel: Mapped[str] = mapped_column(String(16))
    #: A user id, or ``webhook-N`` (the N-th of ``[notify] webhook_urls``).
    recipient: Mapped[str] = mapped_column(String(ID_LEN))
    #: The e-mail address as it was when queued; null for a webhook (its URL stays in the config).
    address: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class NotificationAttempt(Base):
    """One try at delivering a notification: when, whether the server accepted it, and its error text.
    A record (migration 0027); a notification with an accepted attempt is never sent again."""

    __tablename__ = "notification_attempts"

    notification_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)
    took_ms: Mapped[int] = mapped_column(Integer)


class NotifyLinkKey(Base):
    """The key of acknowledge links (``cloud/alerts/notify_links.py``) when ``[notify] link_secret_file``
    is unset: made once by the first run that needs it, the lowest id in force.  Never readable by the
    reporting role (migration 0027)."""

    __tablename__ = "notify_link_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    secret_hex: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))


class StoredReport(Base):
    """A periodic GSP report as it was generated (``cloud/reports/periodic_store.py``): what was asked
    (``kind``, ``parameters`` as canonical JSON), when, by whom, and the file itself with its SHA-256.
    A record (migration 0029): regenerating adds a row, so the file an inspector was given stays."""

    __tablename__ = "stored_reports"
    __table_args__ = (
        Index("ix_stored_reports_kind", "kind", "generated_at"),
        Index("ix_stored_reports_generated", "generated_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    #: "monthly_record", "excursion_log" or "calibration_status".
    kind: Mapped[str] = mapped_column(String(32))
    site: Mapped[str | None] = mapped_column(String(ID_LEN))
    location: Mapped[str | None] = mapped_column(String(ID_LEN))
    parameters: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    generated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    generated_by: Mapped[str] = mapped_column(Text)
    generated_by_id: Mapped[str | None] = mapped_column(String(ID_LEN))


class Recall(Base):
    """A recall run as opened (``cloud/reports/recall_store.py``): its class, reason, when it was decided
    and when opened, by whom.  A record (migration 0030): its state is derived from its events."""

    __tablename__ = "recalls"
    __table_args__ = (Index("ix_recalls_opened", "opened_at"),)

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    #: I, II or III (FDA 21 CFR 7.3(m); the EU's risk classes map onto them).
    recall_class: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    #: When the recall was decided (the field safety notice received): response times count from it.
    initiated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    #: When it was opened here, which is when its lots were set recalled (the same transaction).
    opened_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    by_name: Mapped[str] = mapped_column(Text)
    by_id: Mapped[str | None] = mapped_column(String(ID_LEN))


class RecallItem(Base):
    """A lot or serial a recall recalls, as asked and as the catalog named it, with the lot's status
    before the recall.  A record (migration 0030)."""

    __tablename__ = "recall_items"
    __table_args__ = (Index("ix_recall_items_lot", "product", "lot"),)

    recall_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: "lot" or "serial".
    kind: Mapped[str] = mapped_column(String(8))
    asked: Mapped[str] = mapped_column(Text)
    product: Mapped[str] = mapped_column(String(ID_LEN))
    gtin: Mapped[str | None] = mapped_column(String(14))
    lot: Mapped[str | None] = mapped_column(String(ID_LEN))
    serial: Mapped[str | None] = mapped_column(String(ID_LEN))
    status_before: Mapped[str | None] = mapped_column(String(16))


class RecallEvent(Base):
    """What was recorded on a recall after opening: a customer notified, an acknowledgement, a return,
    the closing; numbered per recall.  A record (migration 0030)."""

    __tablename__ = "recall_events"

    recall_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: notified, acknowledged, returned or closed.
    kind: Mapped[str] = mapped_column(String(16))
    customer: Mapped[str | None] = mapped_column(Text)
    product: Mapped[str | None] = mapped_column(String(ID_LEN))
    lot: Mapped[str | None] = mapped_column(String(ID_LEN))
    quantity: Mapped[int | None] = mapped_column(Integer)
    #: How a customer was notified (email, phone, letter, ...).
    channel: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    #: A closing's statement of why it closes without some customers' acknowledgement.
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    by_name: Mapped[str] = mapped_column(Text)
    by_id: Mapped[str | None] = mapped_column(String(ID_LEN))
