"""Config blocks of the sensor sources: Modbus lines, Modbus and serial loggers.

Every source is one table in ``[[sensors]]`` whose ``source`` key picks its
block (a msgspec tagged union).  A new kind of source — ``source = "llrp"``
for an RFID portal — is one more ``SourceBlock`` subclass with its own tag,
added to ``Source``; the loader, error messages and examples test need no
change.  What a logger's registers mean lives in device profiles
(``gateway.sensors.config_profiles``, re-exported here): data, not code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Annotated

from msgspec import Meta, field

from coldgate.configfile import ConfigBlock, ConfigError
from coldgate.configtypes import (
    BaudRate,
    ByteSize,
    Host,
    Id,
    NonEmptyStr,
    Parity,
    SerialPort,
    StopBits,
    TcpPort,
)
from coldgate.contract.units import UNITS_FOR, Quantity, Unit
from coldgate.gateway.sensors.config_profiles import (
    QUANTITIES,
    REGISTER_COUNT,
    DataType,
    Point,
    Profile,
    builtin_profiles,
    check_profile,
    units_of,
)

__all__ = [
    "QUANTITIES",
    "REGISTER_COUNT",
    "DataType",
    "GroupUnits",
    "LineBlock",
    "ModbusLine",
    "ModbusSensor",
    "Point",
    "Profile",
    "RtuLine",
    "RtuOverTcpLine",
    "SerialAsciiSensor",
    "Source",
    "SourceBlock",
    "TcpLine",
    "builtin_profiles",
    "check_lines",
    "check_pattern",
    "check_profile",
    "check_sources",
]

SECONDS = {"unit": "seconds"}

# ---------------------------------------------------------------- Modbus lines


class LineBlock(ConfigBlock, tag_field="transport", kw_only=True):
    """A Modbus bus or connection; sensors name it in ``line`` and share its schedule."""

    id: Id


class RtuLine(LineBlock, tag="rtu", kw_only=True):
    """An RS-485 bus on a local serial port; polls on it are strictly one at a time."""

    port: SerialPort
    baudrate: BaudRate = 9600
    parity: Parity = "N"
    stopbits: StopBits = 1
    bytesize: ByteSize = 8
    timeout_s: Annotated[float, Meta(gt=0, le=10, extra=SECONDS)] = 1.0
    inter_frame_gap_s: Annotated[float, Meta(gt=0, le=1, extra=SECONDS)] | None = None

    @property
    def frame_gap_s(self) -> float:
        """Silence between frames: 3.5 character times, 1.75 ms above 19200 baud.

        Modbus over Serial Line v1.02, 2.5.1.1.  Some cheap loggers need more;
        that is what ``inter_frame_gap_s`` is for.
        """
        if self.inter_frame_gap_s is not None:
            return self.inter_frame_gap_s
        if self.baudrate > 19200:
            return 0.00175
        bits = 1 + self.bytesize + (self.parity != "N") + self.stopbits
        return 3.5 * bits / self.baudrate


class TcpLine(LineBlock, tag="tcp", kw_only=True):
    """A Modbus TCP device or gateway (MBAP framing)."""

    host: Host
    port: TcpPort = 502
    timeout_s: Annotated[float, Meta(gt=0, le=30, extra=SECONDS)] = 3.0


class RtuOverTcpLine(LineBlock, tag="rtu_over_tcp", kw_only=True):
    """RTU frames tunnelled through a serial-to-Ethernet converter.

    No default port: converters disagree (4196, 8899, 502, 20108...).
    """

    host: Host
    port: TcpPort
    timeout_s: Annotated[float, Meta(gt=0, le=30, extra=SECONDS)] = 2.0


ModbusLine = RtuLine | TcpLine | RtuOverTcpLine

# ---------------------------------------------------------------- sources


class SourceBlock(ConfigBlock, tag_field="source", kw_only=True):
    """What every source has: an id (an MQTT topic level) and the zone whose rules judge it.

    A source without a zone is recorded but not judged against limits.
    """

    id: Id
    zone: Id | None = None


class ModbusSensor(SourceBlock, tag="modbus", kw_only=True):
    """A logger polled over Modbus: which line, which unit, which register map."""

    line: Id
    unit: Annotated[int, Meta(ge=1, le=247)]
    profile: Id
    interval_s: Annotated[float, Meta(ge=1, le=86400, extra=SECONDS)] = 60.0
    timeout_s: Annotated[float, Meta(gt=0, le=30, extra=SECONDS)] | None = None
    retries: Annotated[int, Meta(ge=0, le=10)] = 2
    offline_after: Annotated[int, Meta(ge=1, le=1000)] = 3


class GroupUnits(ConfigBlock, kw_only=True):
    """Unit of each named group of a serial pattern; unset means the quantity's usual unit.

    One key per ``contract.units.Quantity`` (a test keeps them in step).
    """

    temperature: Unit | None = None
    humidity: Unit | None = None
    dew_point: Unit | None = None
    pressure: Unit | None = None
    door: Unit | None = None

    def unit_for(self, quantity: str) -> Unit:
        return getattr(self, quantity) or DEFAULT_UNIT[Quantity(quantity)]


#: The unit a serial group is read in when ``units`` does not say.
DEFAULT_UNIT: Mapping[Quantity, Unit] = MappingProxyType(
    {
        Quantity.TEMPERATURE: Unit.CEL,
        Quantity.HUMIDITY: Unit.P1,
        Quantity.DEW_POINT: Unit.CEL,
        Quantity.PRESSURE: Unit.A97,
        Quantity.DOOR: Unit.C62,
    }
)


class SerialAsciiSensor(SourceBlock, tag="serial_ascii", kw_only=True):
    """A logger that writes text lines such as ``T=4.5;H=45.2`` on a serial port.

    ``pattern`` is searched (re.search) in each line; its named groups, named
    after quantities (``temperature``, ``humidity``...), are the readings.  With
    ``request`` set, that text is sent every ``interval_s`` to ask for a line;
    without it the logger is expected to talk on its own at that interval.
    """

    port: SerialPort
    baudrate: BaudRate = 9600
    parity: Parity = "N"
    stopbits: StopBits = 1
    bytesize: ByteSize = 8
    pattern: NonEmptyStr
    units: GroupUnits = field(default_factory=GroupUnits)
    request: NonEmptyStr | None = None
    interval_s: Annotated[float, Meta(ge=1, le=86400, extra=SECONDS)] = 60.0
    offline_after: Annotated[int, Meta(ge=1, le=1000)] = 3


Source = ModbusSensor | SerialAsciiSensor

# ---------------------------------------------------------------- checks


def check_lines(lines: Sequence[ModbusLine]) -> None:
    """Settings Coldgate's Modbus RTU cannot work with; one serial port, one line."""
    ports: dict[str, int] = {}
    for i, line in enumerate(lines):
        if not isinstance(line, RtuLine):
            continue
        first = ports.setdefault(line.port, i)
        if first != i:
            raise ConfigError(
                f"modbus_lines[{i}].port",
                f'"{line.port}" is already used by modbus_lines[{first}] (one bus per port: '
                "put all its units on one line)",
            )
        if line.bytesize != 8:
            raise ConfigError(
                f"modbus_lines[{i}].bytesize",
                "Modbus RTU always uses 8 data bits (7 is Modbus ASCII, which Coldgate does not speak)",
            )


def check_pattern(pattern: str, key: str) -> re.Pattern[str]:
    """A serial pattern must compile and name at least one quantity, and only quantities."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(key, f"invalid regular expression: {exc}") from None
    groups = set(compiled.groupindex)
    unknown = sorted(groups - set(QUANTITIES))
    if unknown:
        raise ConfigError(
            key,
            f'named group "{unknown[0]}" is not a quantity (use '
            + ", ".join(QUANTITIES[:-1])
            + f" or {QUANTITIES[-1]})",
        )
    if not groups:
        raise ConfigError(
            key,
            "has no named group, so no reading can be taken from a line; write e.g. "
            r"T=(?P<temperature>-?\d+(\.\d+)?)",
        )
    return compiled


def check_sources(
    sources: Sequence[Source],
    lines: Sequence[ModbusLine],
    profiles: Mapping[str, Profile],
) -> None:
    """References to lines and profiles, unit clashes on a bus, port clashes, timing."""
    line_ids = {line.id: line for line in lines}
    on_bus: dict[tuple[str, int], int] = {}
    ports: dict[str, str] = {
        line.port: f"modbus_lines[{i}]" for i, line in enumerate(lines) if isinstance(line, RtuLine)
    }
    for i, src in enumerate(sources):
        at = f"sensors[{i}]"
        if isinstance(src, ModbusSensor):
            _check_modbus_sensor(src, at, line_ids, profiles)
            other = on_bus.setdefault((src.line, src.unit), i)
            if other != i:
                raise ConfigError(
                    f"{at}.unit",
                    f'unit {src.unit} on line "{src.line}" is already polled by sensors[{other}]',
                )
        elif isinstance(src, SerialAsciiSensor):
            check_pattern(src.pattern, f"{at}.pattern")
            groups = re.compile(src.pattern).groupindex
            for quantity in QUANTITIES:
                unit = getattr(src.units, quantity)
                if unit is None:
                    continue
                if quantity not in groups:
                    raise ConfigError(
                        f"{at}.units.{quantity}",
                        f"the pattern has no (?P<{quantity}>...) group to apply it to",
                    )
                if unit not in UNITS_FOR[Quantity(quantity)]:
                    raise ConfigError(
                        f"{at}.units.{quantity}",
                        expected=f"a {quantity} unit: {units_of(quantity)}",
                        found=f'"{unit}"',
                    )
            owner = ports.setdefault(src.port, at)
            if owner != at:
                raise ConfigError(f"{at}.port", f'"{src.port}" is already used by {owner}')


def _check_modbus_sensor(
    src: ModbusSensor, at: str, lines: Mapping[str, ModbusLine], profiles: Mapping[str, Profile]
) -> None:
    line = lines.get(src.line)
    if line is None:
        raise ConfigError(f"{at}.line", _unknown("[[modbus_lines]] entry has id", src.line, lines))
    if src.profile not in profiles:
        raise ConfigError(f"{at}.profile", _unknown("profile is named", src.profile, profiles))
    timeout = src.timeout_s if src.timeout_s is not None else line.timeout_s
    worst = timeout * (src.retries + 1)
    if worst >= src.interval_s:
        raise ConfigError(
            f"{at}.interval_s",
            f"{src.interval_s:g} s is too short: {src.retries + 1} tries of {timeout:g} s "
            f"timeout take up to {worst:g} s, so polls would pile up",
        )


def _unknown(what: str, name: str, known: Mapping[str, object]) -> str:
    names = ", ".join(f'"{k}"' for k in known) or "none"
    return f'no {what} "{name}" (known: {names})'
