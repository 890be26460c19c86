"""Which loggers a simulated site has: unit ids, register maps, scenarios, seeds.

Kept apart from the server so a bad farm file is rejected at load time with a
message that points at the key (``logger[2].scenario: ...``) before any port is
opened.  A farm file is TOML::

    speed = 60            # optional: scenario seconds per real second
    start_at_s = 0        # optional: begin the scenario this far in

    [[logger]]
    unit = 1
    map = "xy-md02"                 # or "rs485-th-holding"
    scenario = "compressor_failure" # steady, drift, door_open, compressor_failure,
                                    # dropout, stuck, garbage, probe_failure
    room = "cold_room"              # cold_room, freezer, ambient
    seed = 7
    name = "cold room A, back wall" # optional label
    [logger.params]                 # optional, scenario-specific
    failure_s = 600
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldgate.simulator.curves import ROOMS, SCENARIOS, Curve, make_curve
from coldgate.simulator.registermaps import REGISTER_MAPS, RegisterMap, register_map

# Used for the default mix: the faults a demo or a poller test most wants to see.
SPECIAL_SCENARIOS = ("door_open", "compressor_failure", "dropout", "drift", "stuck", "garbage")
MAP_CHOICES = (*REGISTER_MAPS, "mixed")


@dataclass(frozen=True)
class LoggerSpec:
    """One simulated logger on the bus."""

    unit: int
    register_map: str = "xy-md02"
    scenario: str = "steady"
    room: str = "cold_room"
    seed: int = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        # Messages start with the farm-file key so the loader can point at it.
        if not 1 <= self.unit <= 247:
            raise ValueError(f"unit: {self.unit} is outside the Modbus unit range 1..247")
        if self.register_map not in REGISTER_MAPS:
            raise ValueError(f"map: unknown {self.register_map!r}; known: {', '.join(REGISTER_MAPS)}")
        if self.room not in ROOMS:
            raise ValueError(f"room: unknown {self.room!r}; known: {', '.join(ROOMS)}")
        if self.scenario not in SCENARIOS:
            raise ValueError(f"scenario: unknown {self.scenario!r}; known: {', '.join(SCENARIOS)}")
        try:
            self.curve()  # rejects a bad parameter now, not at the first poll
        except (ValueError, TypeError) as exc:
            raise ValueError(f"params: {exc}") from None

    @property
    def map(self) -> RegisterMap:
        return register_map(self.register_map)

    def curve(self) -> Curve:
        return make_curve(self.scenario, room=ROOMS[self.room], seed=self.seed, **dict(self.params))

    def describe(self) -> str:
        label = f" ({self.name})" if self.name else ""
        return f"unit {self.unit:>3}  {self.register_map:<17} {self.scenario:<18}{label}"


@dataclass(frozen=True)
class FarmConfig:
    """A farm of loggers sharing one scenario clock."""

    loggers: tuple[LoggerSpec, ...]
    speed: float = 1.0
    start_at_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.loggers:
            raise ValueError("a farm needs at least one logger")
        units = [spec.unit for spec in self.loggers]
        duplicates = sorted({u for u in units if units.count(u) > 1})
        if duplicates:
            raise ValueError(f"unit ids used more than once: {duplicates}")
        if self.speed <= 0:
            raise ValueError(f"speed: must be positive, got {self.speed}")

    def logger(self, unit: int) -> LoggerSpec:
        for spec in self.loggers:
            if spec.unit == unit:
                return spec
        raise KeyError(f"no logger with unit id {unit}")


def default_farm(
    count: int,
    *,
    register_map: str = "mixed",
    scenario: str | None = None,
    seed: int = 0,
    speed: float = 1.0,
    first_unit: int = 1,
) -> FarmConfig:
    """``count`` loggers; without ``scenario``, mostly steady with one of each fault.

    At most half the farm misbehaves (in the order of SPECIAL_SCENARIOS) so a demo
    looks like a real site: mostly quiet, a few things to look at.  With
    ``register_map="mixed"`` odd units speak xy-md02 and even units rs485-th-holding.
    """
    if count < 1:
        raise ValueError("loggers: need at least one")
    if register_map not in MAP_CHOICES:
        raise ValueError(f"map: unknown {register_map!r}; known: {', '.join(MAP_CHOICES)}")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"scenario: unknown {scenario!r}; known: {', '.join(SCENARIOS)}")
    specials = SPECIAL_SCENARIOS[: count // 2]
    loggers = []
    for index in range(count):
        unit = first_unit + index
        if scenario is not None:
            name = scenario
        elif 1 <= index <= len(specials):
            name = specials[index - 1]
        else:
            name = "steady"
        if register_map == "mixed":
            map_name = "xy-md02" if unit % 2 else "rs485-th-holding"
        else:
            map_name = register_map
        loggers.append(LoggerSpec(unit, map_name, name, seed=seed * 1000 + unit))
    return FarmConfig(tuple(loggers), speed=speed)


def load_farm_file(path: str | Path) -> FarmConfig:
    """Read a TOML farm file; errors name the file and the offending key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    try:
        return farm_from_mapping(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def farm_from_mapping(data: Mapping[str, Any]) -> FarmConfig:
    """Build a FarmConfig from parsed TOML (or any mapping of the same shape)."""
    unknown = sorted(set(data) - {"speed", "start_at_s", "logger"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; expected speed, start_at_s, [[logger]]")
    entries = data.get("logger", [])
    if not isinstance(entries, list) or not entries:
        raise ValueError("logger: at least one [[logger]] table is required")
    loggers = []
    for index, entry in enumerate(entries):
        try:
            loggers.append(_logger_from_mapping(entry))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"logger[{index}].{exc}") from exc
    return FarmConfig(
        tuple(loggers),
        speed=float(data.get("speed", 1.0)),
        start_at_s=float(data.get("start_at_s", 0.0)),
    )


_LOGGER_KEYS = {"unit", "map", "scenario", "room", "seed", "params", "name"}


def _logger_from_mapping(entry: Mapping[str, Any]) -> LoggerSpec:
    unknown = sorted(set(entry) - _LOGGER_KEYS)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key; expected one of {sorted(_LOGGER_KEYS)}")
    params = entry.get("params", {})
    if not isinstance(params, Mapping):
        raise ValueError("params: must be a table")
    return LoggerSpec(
        unit=_typed(entry, "unit", int),
        register_map=_typed(entry, "map", str, "xy-md02"),
        scenario=_typed(entry, "scenario", str, "steady"),
        room=_typed(entry, "room", str, "cold_room"),
        seed=_typed(entry, "seed", int, 0),
        params=dict(params),
        name=_typed(entry, "name", str, ""),
    )


def _typed(entry: Mapping[str, Any], key: str, kind: type, default: Any = None) -> Any:
    value = entry.get(key, default)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value
