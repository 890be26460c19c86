"""The cloud service's configuration: one TOML file, loaded into frozen, typed objects.

Every table has defaults, so an empty file runs a single-site service on
SQLite against a local broker.  Secrets (database password, broker password,
InfluxDB token, API tokens) are read from files named here, never written
inline: the config can then be world-readable and kept in git, while the
secret files stay readable by the service user only.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from msgspec import Meta, field

from coldgate.configfile import ConfigBlock, ConfigError, convert_document, load_toml
from coldgate.configtypes import (
    AbsolutePath,
    Host,
    Id,
    MqttConnection,
    NonEmptyStr,
    TcpPort,
    check_mqtt_connection,
)

__all__ = [
    "ApiConfig",
    "AuditConfig",
    "CloudConfig",
    "CloudMqttConfig",
    "DatabaseConfig",
    "GatewaysConfig",
    "IdentityConfig",
    "InfluxConfig",
    "IngestConfig",
    "NotifyConfig",
    "NotifyLevel",
    "NotifyPolicy",
    "RetentionConfig",
    "SitePolicies",
    "cloud_config_from_document",
    "load_cloud_config",
    "validate_cloud_config",
]

SECONDS = {"unit": "seconds"}
BYTES = {"unit": "bytes"}

#: Only drivers that are installed: plain "postgresql://" would mean psycopg2.
DatabaseUrl = Annotated[
    str,
    Meta(
        pattern=r"^(sqlite:////[^\x00]+|sqlite:///:memory:|postgresql\+psycopg://[^\x00]+)\Z",
        extra={
            "expected": 'a database URL like "sqlite:////var/lib/coldgate/cloud.sqlite3" '
            '(four slashes: an absolute path) or "postgresql+psycopg://coldgate@db.example.com/coldgate"'
        },
    ),
]

HttpUrl = Annotated[
    str,
    Meta(
        pattern=r"^https?://[^\s/?#]+(/[^\s]*)?\Z",
        extra={"expected": 'an http:// or https:// URL like "https://influx.example.com:8086"'},
    ),
]


class DatabaseConfig(ConfigBlock, kw_only=True):
    """Where readings, documents and the audit trail live. SQLite for one site,
    PostgreSQL for production."""

    url: DatabaseUrl = "sqlite:////var/lib/coldgate/cloud.sqlite3"
    password_file: AbsolutePath | None = None
    pool_size: Annotated[int, Meta(ge=1, le=100)] = 5

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.url.split(":", 1)[0].split("+", 1)[0]


class CloudMqttConfig(MqttConnection, kw_only=True):
    """Ingest's broker connection. Each of the ``workers`` joins the shared
    subscription ``$share/{shared_group}/...`` as ``{client_id}-{n}``: ids must be
    stable, since a persistent session keeps unacknowledged messages for the
    same id only."""

    client_id: Id = "coldgate-cloud"
    shared_group: Id = "coldgate-ingest"
    workers: Annotated[int, Meta(ge=1, le=64)] = 2
    #: "3.1.1" for brokers without MQTT 5 (amqtt): no shared subscription then, so one worker.
    protocol: Literal["5", "3.1.1"] = "5"

    def worker_client_id(self, n: int) -> str:
        return f"{self.client_id}-{n}"


class ApiConfig(ConfigBlock, kw_only=True):
    """The REST API and web UI. Bound to loopback by default: put a TLS reverse
    proxy in front rather than exposing uvicorn."""

    host: Host = "127.0.0.1"
    port: TcpPort = 8080
    #: Optional: ``name:token`` lines, accepted as read-only machine tokens (set-ups made before people
    #: and roles existed).  People's and machines' own tokens live in the database.
    tokens_file: AbsolutePath | None = None


class InfluxConfig(ConfigBlock, kw_only=True):
    """Optional mirror of readings into InfluxDB for dashboards; the SQL database
    stays the record."""

    enabled: bool = False
    url: HttpUrl | None = None
    org: NonEmptyStr | None = None
    bucket: NonEmptyStr | None = None
    token_file: AbsolutePath | None = None


class GatewaysConfig(ConfigBlock, kw_only=True):
    """How the cloud judges its gateways."""

    #: No heartbeat for this long opens a "gateway offline" gap; 3x the gateway's heartbeat_s.
    heartbeat_timeout_s: Annotated[float, Meta(ge=10, le=86400, extra=SECONDS)] = 180.0
    #: A stream whose acknowledgement has been held behind the same missing range this long raises
    #: ``stream.stuck``: gateways re-send what is not acknowledged within their ack_timeout_s (30 s),
    #: so a range still missing after minutes is one the gateway no longer has.
    stream_stuck_after_s: Annotated[float, Meta(ge=60, le=604800, extra=SECONDS)] = 600.0
    #: A gateway that has not applied the newest master data or recall list the cloud published to it
    #: this long after it was issued raises ``downlink.behind`` (a recall that stops nothing at the door).
    downlink_behind_after_s: Annotated[float, Meta(ge=10, le=604800, extra=SECONDS)] = 300.0
    #: A sensor whose calibration falls due within this many days raises ``calibration.due`` (info),
    #: and a warning once it is overdue: time to book the calibration before its readings lose their proof.
    calibration_warn_days: Annotated[int, Meta(ge=0, le=366)] = 30


class IngestConfig(ConfigBlock, kw_only=True):
    """What ingest takes from a gateway's stream, and how much it keeps of what it refuses."""

    #: A batch is stored only if its first seq is at most this far ahead of the higher of the
    #: stream's covered seq and the last_seq the gateway announced in its status (gateways announce
    #: every ``contract.uplink.ANNOUNCE_EVERY_ITEMS`` new items): a forged item far ahead cannot take
    #: a number the real gateway will use.  At least twice the announcement step.
    sequence_window: Annotated[int, Meta(ge=256, le=10_000_000, extra={"unit": "items"})] = 256
    #: Dead letters kept per source (gateway id, or "(no gateway)") per window; past either cap a
    #: source's refusals are only counted (``dead_letter_budgets``), logged and alerted once a window.
    dead_letter_window_s: Annotated[float, Meta(ge=60, le=604800, extra=SECONDS)] = 3600.0
    dead_letters_per_window: Annotated[int, Meta(ge=10, le=10_000_000)] = 1000
    dead_letter_bytes_per_window: Annotated[int, Meta(ge=65536, le=1 << 40, extra=BYTES)] = 1 << 24
    #: A message larger than this is cut to its first 4 KiB (with the size and SHA-256 of the whole)
    #: as it arrives and dead-lettered: with at most 256 unacknowledged messages per worker, this
    #: bounds a worker's memory.  Gateways send batches of uplink.batch_max_bytes (128 KiB by
    #: default); the shipped Mosquitto refuses messages over 1 MiB anyway.
    max_message_bytes: Annotated[int, Meta(ge=65536, le=16 * 1024 * 1024, extra=BYTES)] = 1 << 20


class IdentityConfig(ConfigBlock, kw_only=True):
    """People: the password policy, the lockout, and how long a browser stays signed in
    (``cloud/identity/``)."""

    password_min_length: Annotated[int, Meta(ge=8, le=128)] = 12
    #: Failed sign-ins in a row after which the account locks until an admin unlocks it.
    max_failed_logins: Annotated[int, Meta(ge=3, le=20)] = 5
    #: A browser session with no request for this long is signed out.
    session_idle_minutes: Annotated[int, Meta(ge=1, le=240)] = 15
    #: A browser session is signed out this long after signing in, however busy.
    session_absolute_hours: Annotated[int, Meta(ge=1, le=24)] = 12


class AuditConfig(ConfigBlock, kw_only=True):
    """Checkpoints of the audit trail's head, outside the database (``cloud/audit/checkpoint.py``)."""

    #: An append-only file on another disk or a WORM share; unset: no checkpoints.
    checkpoint_file: AbsolutePath | None = None
    #: An Ed25519 private key in PEM (``openssl genpkey -algorithm ed25519``) signing each checkpoint.
    checkpoint_key_file: AbsolutePath | None = None
    checkpoint_every_s: Annotated[float, Meta(ge=60, le=86400, extra=SECONDS)] = 3600.0


Role = Literal["viewer", "dock_operator", "qa", "qa_manager", "recall_coordinator", "admin"]
Channel = Literal["email", "webhook"]
MINUTES = {"unit": "minutes"}


class NotifyLevel(ConfigBlock, kw_only=True):
    """One escalation level: who is told once a case has gone unacknowledged ``after_min`` minutes (the first
    level at 0: as the case opens).  People are named by role (every active holder) or by login."""

    after_min: Annotated[int, Meta(ge=0, le=10080, extra=MINUTES)] = 0
    roles: list[Role] = field(default_factory=list)
    users: list[NonEmptyStr] = field(default_factory=list)


class NotifyPolicy(ConfigBlock, kw_only=True):
    """Who is told of a case of one severity, how, and how often until someone acknowledges it."""

    channels: list[Channel] = field(default_factory=lambda: ["email", "webhook"])
    #: Each level already told is reminded this often while the case stays unacknowledged; 0: no reminders.
    reminder_every_min: Annotated[int, Meta(ge=0, le=1440, extra=MINUTES)] = 15
    levels: list[NotifyLevel] = field(default_factory=list)


def _critical() -> NotifyPolicy:
    """GSP: a cold-chain excursion reaches QA at once, QA management too, and is escalated after 30 min."""
    return NotifyPolicy(
        reminder_every_min=15,
        levels=[
            NotifyLevel(after_min=0, roles=["qa", "qa_manager"]),
            NotifyLevel(after_min=30, roles=["qa_manager", "admin"]),
        ],
    )


def _warning() -> NotifyPolicy:
    """Milder: QA by e-mail, hourly reminders, QA management after two hours."""
    return NotifyPolicy(
        channels=["email"],
        reminder_every_min=60,
        levels=[NotifyLevel(after_min=0, roles=["qa"]), NotifyLevel(after_min=120, roles=["qa_manager"])],
    )


class SitePolicies(ConfigBlock, kw_only=True):
    """The notification policy per case severity (a case's severity is its worst alert's)."""

    critical: NotifyPolicy = field(default_factory=_critical)
    warning: NotifyPolicy = field(default_factory=_warning)


class NotifyConfig(ConfigBlock, kw_only=True):
    """Notifications of QA cases (``cloud/alerts/notify_*.py``): policies per site and severity, the
    channels (e-mail over SMTP, JSON webhooks or any Apprise URL), retries, and the signed acknowledge
    links messages carry.  E-mail is off until ``smtp_host`` is set, webhooks until ``webhook_urls`` is."""

    #: The notify job (plan what is due, send what is queued) runs this often, and right after every
    #: run of the QA cases job that opened or grew a case; the QA cases job runs this often too.
    interval_s: Annotated[float, Meta(ge=0.2, le=60, extra=SECONDS)] = 1.0
    #: What people open: the cloud's address as they reach it (the TLS proxy's).
    base_url: HttpUrl = "http://127.0.0.1:8080"
    #: An acknowledge link works this long after the message carrying it was queued.
    link_valid_hours: Annotated[int, Meta(ge=1, le=720)] = 72
    #: At least 32 random bytes keyed into every acknowledge link (HMAC-SHA256); unset: a key is made once
    #: and kept in the database (table ``notify_link_keys``).
    link_secret_file: AbsolutePath | None = None
    smtp_host: Host | None = None
    smtp_port: TcpPort = 587
    #: "starttls" (port 587), "tls" (implicit TLS, port 465) or "none" (a relay on the same host only).
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_login: NonEmptyStr | None = None
    smtp_password_file: AbsolutePath | None = None
    mail_from: Annotated[
        str, Meta(pattern=r"^[^@\s]+@[^@\s]+\Z", extra={"expected": 'an address like "coldgate@example.com"'})
    ] = "coldgate@localhost"
    #: Apprise URLs told of every case once per level and round (``json://host/path`` for a JSON webhook;
    #: chat and SMS gateways by their Apprise URL); keep secrets out of them where the service allows.
    webhook_urls: list[NonEmptyStr] = field(default_factory=list)
    #: Deliveries made at once (a connection each).
    senders: Annotated[int, Meta(ge=1, le=16)] = 4
    #: A failed delivery is tried again after this, doubling each time up to ``retry_max_s``; never dropped.
    retry_first_s: Annotated[float, Meta(ge=0.1, le=3600, extra=SECONDS)] = 5.0
    retry_max_s: Annotated[float, Meta(ge=1, le=3600, extra=SECONDS)] = 120.0
    #: A critical policy that reaches fewer people with an e-mail address is logged as a warning.
    min_critical_people: Annotated[int, Meta(ge=1, le=50)] = 3
    #: The policies of every site without its own entry in ``sites``.
    policy: SitePolicies = field(default_factory=SitePolicies)
    sites: dict[Id, SitePolicies] = field(default_factory=dict)


SignatureCount = Annotated[int, Meta(ge=1, le=3)]


class CaseSignatures(ConfigBlock, kw_only=True):
    """How many different people sign the closing or cancelling of each type of QA case (1 to 3)."""

    excursion: SignatureCount = 1  # a sensor's limits or time-out-of-range budget
    door: SignatureCount = 1  # a door check: a recalled, quarantined or expired case at a dock door
    discrepancy: SignatureCount = 1  # a receiving or dispatch discrepancy
    offline: SignatureCount = 1  # a source or gateway offline, the down-link behind
    calibration: SignatureCount = 1
    stream: SignatureCount = 1  # a stream stuck or conflicting, dead letters capped
    other: SignatureCount = 1  # a sensor fault and anything else


class CasesConfig(ConfigBlock, kw_only=True):
    """QA cases' separation of duties per case type (``cloud/alerts/case_flow.py``): ``signatures``, e.g.
    ``excursion = 2``.  The floors hold whatever it says: a release, and any closing or cancelling that
    gives quarantined stock back, is signed by two people, and whoever acknowledged a case is never its
    only approver."""

    signatures: CaseSignatures = field(default_factory=CaseSignatures)

    def signatures_by_type(self) -> dict[str, int]:
        return {name: getattr(self.signatures, name) for name in self.signatures.__struct_fields__}


class RetentionConfig(ConfigBlock, kw_only=True):
    """How long archived months of readings are kept before ``coldgate cloud archive purge`` may delete them
    (``cloud/db/retention.py``), by the retention category of the products kept during the month.  GSP
    asks at least five years; the floors below refuse a shorter rule."""

    #: Every month: this many years after the month ends, whatever was kept in it.
    standard_years: Annotated[int, Meta(ge=5, le=100)] = 5
    #: A month that kept a lot of a "device" product: this many years past the lot's expiry (and never less
    #: than ``standard_years``); a device lot with no expiry keeps it for ever.
    device_years_after_expiry: Annotated[int, Meta(ge=2, le=100)] = 2
    #: A month that kept a lot of an "implant" product: this many years past the lot's expiry (and never less
    #: than ``standard_years``); unset, the default: for ever.
    implant_years_after_expiry: Annotated[int, Meta(ge=2, le=100)] | None = None


class CloudConfig(ConfigBlock, kw_only=True):
    """The whole cloud.toml."""

    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    mqtt: CloudMqttConfig = field(default_factory=CloudMqttConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    influx: InfluxConfig = field(default_factory=InfluxConfig)
    gateways: GatewaysConfig = field(default_factory=GatewaysConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    cases: CasesConfig = field(default_factory=CasesConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)


def validate_cloud_config(config: CloudConfig) -> None:
    """Rules that span keys: secrets not inline, TLS files with TLS, Influx complete."""
    db = config.database
    if db.dialect == "postgresql" and urlsplit(db.url).password is not None:
        raise ConfigError(
            "database.url",
            "contains a password; put it in a file and set database.password_file",
        )
    if db.dialect == "sqlite" and db.password_file is not None:
        raise ConfigError("database.password_file", "only used with PostgreSQL")
    check_mqtt_connection(config.mqtt, "mqtt")
    if config.mqtt.protocol == "3.1.1" and config.mqtt.workers > 1:
        raise ConfigError(
            "mqtt.workers",
            "MQTT 3.1.1 has no shared subscriptions, so several workers would each store every message; "
            'use 1 worker or protocol = "5"',
        )
    if config.audit.checkpoint_key_file is not None and config.audit.checkpoint_file is None:
        raise ConfigError("audit.checkpoint_key_file", "signs checkpoints: set audit.checkpoint_file too")
    _check_notify(config.notify)
    if config.influx.enabled:
        for name in ("url", "org", "bucket", "token_file"):
            if getattr(config.influx, name) is None:
                raise ConfigError(f"influx.{name}", "required when influx.enabled = true")


def _check_notify(notify: NotifyConfig) -> None:
    """Levels in escalation order starting at once, each telling someone; SMTP secrets kept apart."""
    where = [("notify.policy", notify.policy), *((f"notify.sites.{s}", p) for s, p in notify.sites.items())]
    for prefix, policies in where:
        for severity in ("critical", "warning"):
            policy: NotifyPolicy = getattr(policies, severity)
            key = f"{prefix}.{severity}"
            if not policy.levels:
                raise ConfigError(f"{key}.levels", "needs a level (roles or users told at once)")
            if policy.levels[0].after_min != 0:
                raise ConfigError(f"{key}.levels[0].after_min", "the first level is told at once: 0")
            for n, level in enumerate(policy.levels):
                if not level.roles and not level.users:
                    raise ConfigError(f"{key}.levels[{n}]", "tells nobody: give roles or users")
                if n and level.after_min <= policy.levels[n - 1].after_min:
                    raise ConfigError(
                        f"{key}.levels[{n}].after_min",
                        f"must be later than the level before ({policy.levels[n - 1].after_min} min)",
                    )
            if not policy.channels:
                raise ConfigError(f"{key}.channels", 'needs a channel ("email", "webhook")')
    if notify.retry_max_s < notify.retry_first_s:
        least = f"must be at least retry_first_s ({notify.retry_first_s:g} s)"
        raise ConfigError("notify.retry_max_s", least)
    if notify.smtp_password_file is not None and notify.smtp_login is None:
        raise ConfigError("notify.smtp_password_file", "is the password of notify.smtp_login: set that too")
    for n, url in enumerate(notify.webhook_urls):
        if "://" not in url:
            raise ConfigError(f"notify.webhook_urls[{n}]", f"{url!r} is not an Apprise URL (like json://host/path)")


def cloud_config_from_document(doc: Any, source_name: str) -> CloudConfig:
    """Check a parsed document (TOML or JSON) as a cloud config."""
    return convert_document(doc, CloudConfig, source_name, validate=validate_cloud_config)


def load_cloud_config(path: str | os.PathLike[str]) -> CloudConfig:
    """Read and check a cloud.toml; raises ConfigError naming the file and key."""
    return load_toml(path, CloudConfig, validate=validate_cloud_config)
