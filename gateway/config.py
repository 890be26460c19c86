"""The gateway's configuration: one TOML file, as frozen, typed objects.

These are the tables; ``gateway.config_load.load_gateway_config(path)`` is the
only way in, and rejects a bad file at start-up with a message naming the key.
Source blocks (Modbus lines, profiles, loggers) are defined in
``gateway.sensors.config``; rules spanning several tables are in
``gateway.config_checks``.  Durations are seconds, in keys ending ``_s``;
temperatures are °C.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, field

from coldgate.configfile import ConfigBlock
from coldgate.configtypes import (
    AbsolutePath,
    Id,
    MqttConnection,
    NonEmptyStr,
)
from coldgate.contract.items import Severity
from coldgate.gateway.readers.config import DoorChecksConfig, ReaderConfig, ScannerConfig
from coldgate.gateway.sensors.config import (
    ModbusLine,
    ModbusSensor,
    Profile,
    SerialAsciiSensor,
    Source,
    builtin_profiles,
)
from coldgate.gateway.uplink.pacing import DEFAULT_DRAIN_ITEMS_PER_S

SECONDS = {"unit": "seconds"}

Celsius = Annotated[float, Meta(ge=-100, le=100, extra={"expected": "a temperature in °C, -100..100"})]
Percent = Annotated[float, Meta(ge=0, le=100, extra={"expected": "a relative humidity in %, 0..100"})]

__all__ = [
    "AlarmConfig",
    "AlarmRelay",
    "GatewayConfig",
    "GatewaySection",
    "ModbusSensor",
    "OfflineAlertZone",
    "OfflineAlertsConfig",
    "OutboxConfig",
    "SerialAsciiSensor",
    "TemperatureClass",
    "UplinkConfig",
    "Zone",
]


class GatewaySection(ConfigBlock, kw_only=True):
    """Who this gateway is. ``id`` and ``site`` are MQTT topic levels; never rename a
    gateway that has data in the cloud (its history is keyed on them)."""

    id: Id
    site: Id
    data_dir: AbsolutePath = "/var/lib/coldgate"
    #: IANA zone (Europe/Berlin) for local displays and daily summaries; records are UTC.
    timezone: NonEmptyStr | None = None


class UplinkConfig(MqttConnection, kw_only=True):
    """The MQTT link to the cloud. ``client_id`` is the gateway id after loading."""

    #: "5" falls back to 3.1.1 when the broker refuses MQTT 5 (amqtt, old brokers).
    protocol: Literal["5", "3.1.1"] = "5"
    batch_max_items: Annotated[int, Meta(ge=1, le=10_000)] = 500
    #: 128 KiB fits AWS IoT Core's limit; MQTT's own ceiling is 256 MiB.
    batch_max_bytes: Annotated[int, Meta(ge=1024, le=268_435_455)] = 131_072
    #: paho's 16-bit message ids overwrite pending messages past 65,535: stay far below.
    inflight_max_batches: Annotated[int, Meta(ge=1, le=1000)] = 16
    #: Re-send a batch the cloud has not acknowledged end to end after this long.
    ack_timeout_s: Annotated[float, Meta(ge=1, le=3600, extra=SECONDS)] = 30.0
    heartbeat_s: Annotated[float, Meta(ge=5, le=3600, extra=SECONDS)] = 60.0
    #: How fast a backlog (what the outbox held when the link came up) drains, in items a second: 500 is
    #: ~150 KB/s of JSON, comfortable on 4G and for a cloud that every gateway returns to at once.  Live
    #: items (committed while the link is up) and alerts are never held to it.
    drain_items_per_s: Annotated[
        float, Meta(gt=0, le=1_000_000, extra={"unit": "items/s"})
    ] = DEFAULT_DRAIN_ITEMS_PER_S


class OutboxConfig(ConfigBlock, kw_only=True):
    """The durable SQLite buffer between sources and uplink. ``path`` is
    ``{data_dir}/outbox.sqlite3`` after loading."""

    path: AbsolutePath | None = None
    #: Past this, the oldest items are shed and a "monitoring interrupted" record says so.
    max_bytes: Annotated[int, Meta(ge=1_048_576)] = 536_870_912
    max_age_s: Annotated[float, Meta(ge=3600, le=31_622_400, extra=SECONDS)] = 2_592_000.0
    #: "full" survives power cuts; "normal" (WAL) may lose the last commits, never corrupts.
    fsync: Literal["full", "normal"] = "full"
    #: Readings closer together than this share a commit (alerts never wait): latency against SD-card
    #: wear, measured side by side by ``python -m bench.uplink`` (see ``gateway/buffer/dbfile.py``).
    commit_interval_ms: Annotated[int, Meta(ge=0, le=10_000)] = 20
    commit_max_items: Annotated[int, Meta(ge=1, le=100_000)] = 500


class Zone(ConfigBlock, kw_only=True):
    """A place whose readings are judged together: a cold room, a freezer, a van.

    ``recording_interval_s`` defaults to 300 s for transport and 1800 s for
    storage (set after loading); every sensor in the zone must poll at least
    that often.
    """

    id: Id
    description: str = ""
    temperature_class: NonEmptyStr
    transport: bool = False
    recording_interval_s: Annotated[float, Meta(ge=1, le=86400, extra=SECONDS)] | None = None


class TemperatureClass(ConfigBlock, kw_only=True):
    """A product storage condition ("2-8C"): limits, pre-alarm band, delays, MKT window.

    Pre-alarm bands are ``pre_alarm_margin`` inside each limit; an alarm clears
    once the reading is ``hysteresis`` back inside the limit.
    """

    #: An id, as in the cloud's master data, so products can name it ("2-8C").
    name: Id
    low: Celsius
    high: Celsius
    pre_alarm_margin: Annotated[float, Meta(ge=0, le=50)] = 0.5
    #: Door openings: an excursion shorter than this raises no alarm (it is still recorded).
    alarm_delay_s: Annotated[float, Meta(ge=0, le=86400, extra=SECONDS)] = 0.0
    hysteresis: Annotated[float, Meta(ge=0, le=10)] = 0.3
    humidity_low: Percent | None = None
    humidity_high: Percent | None = None
    #: Rolling MKT window; unset: 24 h for cold classes (high <= 8 °C), 30 days for room temperature.
    mkt_window_s: Annotated[float, Meta(ge=3600, le=31_622_400, extra=SECONDS)] | None = None

    @property
    def effective_mkt_window_s(self) -> float:
        """The window in force: cold chains are judged per day, room storage per month (USP <1079.2>)."""
        if self.mkt_window_s is not None:
            return self.mkt_window_s
        return 86_400.0 if self.high <= 8.0 else 2_592_000.0

    #: Which limits alarm: "high" for labels such as "store at or below -20 °C" (``low`` then
    #: only bounds the checks of margin and hysteresis), "low" for "do not freeze" products.
    alarm_on: Literal["both", "high", "low"] = "both"
    #: Time allowed outside low..high per ``excursion_budget_window_s``, summed over every
    #: excursion, also those shorter than the alarm delay (from stability data); unset: no budget.
    excursion_budget_s: Annotated[float, Meta(ge=0, le=31_622_400, extra=SECONDS)] | None = None
    excursion_budget_window_s: Annotated[float, Meta(ge=3600, le=31_622_400, extra=SECONDS)] = 86_400.0
    #: Warn when the temperature changes faster than this many °C per minute (least-squares
    #: slope over ``rate_window_s``): a failing compressor, a door left open; unset: no warning.
    rate_max_c_per_min: Annotated[float, Meta(gt=0, le=100)] | None = None
    rate_window_s: Annotated[float, Meta(ge=60, le=86400, extra=SECONDS)] = 600.0
    #: Like ``hysteresis``, in %RH, for the humidity limits.
    humidity_hysteresis: Annotated[float, Meta(ge=0, le=50)] = 2.0


class AlarmRelay(ConfigBlock, kw_only=True):
    """A Modbus coil that drives a siren or a building-management input.

    With ``fail_safe`` the coil is held on while all is well and dropped on
    alarm, so a dead Pi or a cut cable also sounds the alarm.
    """

    line: Id
    unit: Annotated[int, Meta(ge=1, le=247)]
    coil: Annotated[int, Meta(ge=0, le=65535)]
    fail_safe: bool = False


class AlarmConfig(ConfigBlock, kw_only=True):
    """What the gateway does locally, with or without the internet, when a rule fires.

    Severities are the contract's: ``warning`` = pre-alarm, ``critical`` =
    excursion or monitoring gap, ``info`` = everything else.
    ``command`` is an argv list run without a shell, details in its environment.
    """

    min_severity: Severity = Severity.CRITICAL
    relay: AlarmRelay | None = None
    command: Annotated[tuple[NonEmptyStr, ...], Meta(min_length=1)] | None = None
    command_timeout_s: Annotated[float, Meta(gt=0, le=300, extra=SECONDS)] = 10.0


class OfflineAlertZone(ConfigBlock, kw_only=True):
    """Another delay and severity for the sensors of one zone (a fridge whose logger must never
    be silent for long, a staging area nobody minds)."""

    zone: Id
    after_s: Annotated[float, Meta(ge=0, le=604_800, extra=SECONDS)]
    severity: Severity


class OfflineAlertsConfig(ConfigBlock, kw_only=True):
    """Alerts for sources that went offline (rule ``source.offline``, ``gateway.rules.offline_sources``).

    A silent logger only writes a gap record; once a sensor, reader or scanner has
    been offline for longer than its delay (counted from the gap's start, the
    first failed poll) this raises an alert, cleared when the source is back.
    The delay and severity go by where the source is:

    * sensors in a *cold* zone (its class's ``high`` <= 8 °C: fridges, cold
      rooms, freezers): ``cold_after_s`` (300 s) at ``cold_severity``
      (critical), so the local siren sounds, network or not, for a cold room
      nobody is watching;
    * everything else (ambient zones, sensors without a zone, readers and
      scanners): ``after_s`` (900 s) at ``severity`` (warning);
    * ``[[offline_alerts.zones]]`` entries override both for one zone.

    ``enabled = false`` turns the alerts off (the gaps are still recorded).
    """

    enabled: bool = True
    after_s: Annotated[float, Meta(ge=0, le=604_800, extra=SECONDS)] = 900.0
    severity: Severity = Severity.WARNING
    cold_after_s: Annotated[float, Meta(ge=0, le=604_800, extra=SECONDS)] = 300.0
    cold_severity: Severity = Severity.CRITICAL
    zones: tuple[OfflineAlertZone, ...] = ()


class MetricsConfig(ConfigBlock, kw_only=True):
    """Prometheus's view of the gateway (``gateway.metrics``): ``GET http://<listen>/metrics``.

    Local only by default: a site whose Prometheus scrapes the Pi over the network sets
    ``listen = "0.0.0.0:9877"`` (and a firewall rule); ``""`` switches it off.
    """

    listen: Annotated[
        str,
        Meta(
            pattern=r"^(|\[?[A-Za-z0-9.:-]+\]?:[0-9]{1,5})\Z",
            extra={"expected": 'host:port, e.g. "127.0.0.1:9877", or "" for off'},
        ),
    ] = "127.0.0.1:9877"


class GatewayConfig(ConfigBlock, kw_only=True):
    """The whole gateway.toml. Only ``[gateway]`` is required; lists default to empty."""

    gateway: GatewaySection
    uplink: UplinkConfig = field(default_factory=UplinkConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    modbus_lines: tuple[ModbusLine, ...] = ()
    profiles: tuple[Profile, ...] = ()
    sensors: tuple[Source, ...] = ()
    readers: tuple[ReaderConfig, ...] = ()
    scanners: tuple[ScannerConfig, ...] = ()
    door_checks: DoorChecksConfig = field(default_factory=DoorChecksConfig)
    zones: tuple[Zone, ...] = ()
    temperature_classes: tuple[TemperatureClass, ...] = ()
    alarm: AlarmConfig = field(default_factory=AlarmConfig)
    offline_alerts: OfflineAlertsConfig = field(default_factory=OfflineAlertsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def all_profiles(self) -> dict[str, Profile]:
        """Built-in profiles plus this file's own (names never collide: validated)."""
        return {**builtin_profiles(), **{p.name: p for p in self.profiles}}

    def get_profile(self, name: str) -> Profile:
        return self.all_profiles()[name]

    def get_line(self, line_id: str) -> ModbusLine:
        return _by(self.modbus_lines, "id", line_id)

    def get_zone(self, zone_id: str) -> Zone:
        return _by(self.zones, "id", zone_id)

    def get_temperature_class(self, name: str) -> TemperatureClass:
        return _by(self.temperature_classes, "name", name)


def _by(items: tuple[Any, ...], attr: str, value: str) -> Any:
    for item in items:
        if getattr(item, attr) == value:
            return item
    raise KeyError(value)
