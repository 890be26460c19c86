"""Every annotated example in deploy/examples/ loads, and means what its comments say.

The examples are documentation people copy; a broken one is a broken manual.
gateway-*.toml are read with the gateway loader, cloud*.toml with the cloud one;
a new example is picked up without touching this file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from coldgate.cloud.alerts.case_opening import CASE_TYPES
from coldgate.cloud.config import CloudConfig, load_cloud_config
from coldgate.contract.items import Severity
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import load_gateway_config
from coldgate.gateway.sensors.config import (
    GroupUnits,
    ModbusSensor,
    RtuLine,
    RtuOverTcpLine,
    SerialAsciiSensor,
    TcpLine,
    builtin_profiles,
    check_pattern,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
ALL = sorted(EXAMPLES.glob("*.toml"))


def _load(path: Path) -> GatewayConfig | CloudConfig:
    if path.name.startswith("gateway-"):
        return load_gateway_config(path)
    if path.name.startswith("cloud"):
        return load_cloud_config(path)
    raise AssertionError(f"{path.name}: examples are named gateway-*.toml or cloud*.toml")


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_every_example_loads(path: Path) -> None:
    config = _load(path)
    assert isinstance(config, GatewayConfig | CloudConfig)


def test_the_expected_examples_exist() -> None:
    names = {p.name for p in ALL}
    assert {
        "gateway-minimal.toml",
        "gateway-cold-room.toml",
        "cloud.toml",
        "cloud-postgres.toml",
    } <= names


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in ALL:
        assert path.name in readme


def test_minimal_gateway_gets_defaults() -> None:
    config = load_gateway_config(EXAMPLES / "gateway-minimal.toml")
    assert (config.gateway.id, config.gateway.site) == ("pi-demo-01", "demo-site")
    assert config.gateway.data_dir == "/var/lib/coldgate"
    # Defaults that depend on other keys are filled in at load time.
    assert config.uplink.client_id == "pi-demo-01"
    assert config.outbox.path == "/var/lib/coldgate/outbox.sqlite3"
    assert config.uplink.address == ("localhost", 1883, False)
    assert config.uplink.protocol == "5"
    assert config.outbox.fsync == "full"
    (sensor,) = config.sensors
    assert isinstance(sensor, ModbusSensor)
    assert (sensor.line, sensor.unit, sensor.profile, sensor.interval_s) == ("bus-a", 1, "xy-md02", 60.0)
    assert sensor.zone is None
    line = config.get_line("bus-a")
    assert isinstance(line, RtuLine)
    assert (line.baudrate, line.parity, line.stopbits, line.bytesize) == (9600, "N", 1, 8)
    # 3.5 characters of 10 bits at 9600 baud
    assert line.frame_gap_s == pytest.approx(3.5 * 10 / 9600)
    assert config.alarm.relay is None and config.alarm.command is None


def test_cold_room_gateway() -> None:
    config = load_gateway_config(EXAMPLES / "gateway-cold-room.toml")
    assert config.gateway.timezone == "Europe/Berlin"
    assert config.uplink.address == ("mqtt.coldgate.example.com", 8883, True)
    assert config.uplink.client_id == "berlin-dc-cold-01"
    assert config.uplink.password_file == "/etc/coldgate/secrets/mqtt-password"
    assert config.uplink.inflight_max_batches <= 1000
    assert config.uplink.drain_items_per_s == 500

    kinds = {type(line) for line in config.modbus_lines}
    assert kinds == {RtuLine, TcpLine, RtuOverTcpLine}
    converter = config.get_line("annex-converter")
    assert isinstance(converter, RtuOverTcpLine) and converter.port == 4196
    plc = config.get_line("freezer-plc")
    assert isinstance(plc, TcpLine) and (plc.host, plc.port) == ("10.20.0.15", 502)

    bus_a = [s for s in config.sensors if isinstance(s, ModbusSensor) and s.line == "bus-a"]
    assert sorted(s.unit for s in bus_a) == [1, 2, 3]

    probes = config.get_profile("freezer-plc-probes")
    assert [p.key for p in probes.points] == ["air", "product"]
    assert all(p.data_type == "float32" and p.word_order == "little" for p in probes.points)
    assert all(p.register_count == 2 and p.function_code == 3 for p in probes.points)

    (fridge,) = [s for s in config.sensors if isinstance(s, SerialAsciiSensor)]
    match = check_pattern(fridge.pattern, "pattern").search("T=4.5;H=45.2")
    assert match is not None
    assert (float(match["temperature"]), float(match["humidity"])) == (4.5, 45.2)
    assert fridge.units.unit_for("temperature") == Unit.CEL
    assert fridge.units.unit_for("humidity") == Unit.P1
    assert fridge.request == "R\r\n"

    classes = {c.name: (c.low, c.high) for c in config.temperature_classes}
    assert classes == {"2-8C": (2.0, 8.0), "frozen-25..-15C": (-25.0, -15.0), "15-25C": (15.0, 25.0)}
    assert config.get_temperature_class("15-25C").humidity_high == 65
    assert config.get_zone("cold-room-1").recording_interval_s == 1800.0
    for sensor in config.sensors:
        assert sensor.zone is not None
        assert config.get_zone(sensor.zone).temperature_class in classes

    assert config.alarm.min_severity == Severity.CRITICAL
    assert config.alarm.relay is not None
    assert (config.alarm.relay.line, config.alarm.relay.unit, config.alarm.relay.coil) == ("bus-a", 10, 0)
    assert config.alarm.relay.fail_safe is True
    assert config.alarm.command is not None and config.alarm.command[0].startswith("/")


def test_cloud_sqlite() -> None:
    config = load_cloud_config(EXAMPLES / "cloud.toml")
    assert config.database.dialect == "sqlite"
    assert config.mqtt.address == ("localhost", 1883, False)
    assert config.mqtt.worker_client_id(0) == "coldgate-cloud-0"
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8080)
    assert config.influx.enabled is False
    assert config.gateways.heartbeat_timeout_s == 180.0
    # An excursion's case is signed by two people; other types by one (the floors aside).
    by_type = config.cases.signatures_by_type()
    assert by_type["excursion"] == 2 and {n for t, n in by_type.items() if t != "excursion"} == {1}
    assert set(by_type) == set(CASE_TYPES)  # the configuration names every type the cases know


def test_cloud_postgres() -> None:
    config = load_cloud_config(EXAMPLES / "cloud-postgres.toml")
    assert config.database.dialect == "postgresql"
    assert config.database.url.startswith("postgresql+psycopg://")
    assert config.database.password_file == "/etc/coldgate/secrets/db-password"
    assert config.mqtt.address.tls and config.mqtt.workers == 4
    assert config.influx.enabled and config.influx.bucket == "readings"


def test_builtin_profiles_are_data() -> None:
    profiles = builtin_profiles()
    assert set(profiles) == {"xy-md02", "rs485-th-holding", "generic"}
    xy = {p.quantity: p for p in profiles["xy-md02"].points}
    assert (xy[Quantity.TEMPERATURE].function_code, xy[Quantity.TEMPERATURE].address) == (4, 1)
    assert xy[Quantity.TEMPERATURE].data_type == "int16"  # signed: sub-zero rooms
    assert (xy[Quantity.HUMIDITY].address, xy[Quantity.HUMIDITY].scale) == (2, 0.1)
    holding = {p.quantity: p for p in profiles["rs485-th-holding"].points}
    assert (holding[Quantity.HUMIDITY].address, holding[Quantity.TEMPERATURE].address) == (0, 1)
    assert holding[Quantity.TEMPERATURE].function_code == 3


def test_serial_units_cover_every_quantity() -> None:
    # GroupUnits has one key per contract quantity; a new quantity must be added there.
    assert set(GroupUnits.__struct_fields__) == {q.value for q in Quantity}
