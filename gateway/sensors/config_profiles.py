"""Device profiles: what a logger model's Modbus registers mean, as data.

A profile maps registers to readings (quantity, unit, data type, scaling), so
a new logger model is a ``[[profiles]]`` table or a TOML file in
``gateway/sensors/profiles/``, not a code change.  The built-in files are
checked with the same rules as a user's profile when first used.

Addresses are protocol addresses (0-based), as on the wire and in pymodbus:
"input register 30002" in a datasheet's 1-based Modicon numbering is
``register = "input", address = 1``.
"""

from __future__ import annotations

import functools
import importlib.resources
import tomllib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from msgspec import Meta

from coldgate.configfile import ConfigBlock, ConfigError, convert_document
from coldgate.configtypes import Id
from coldgate.contract.units import UNITS_FOR, Quantity, Unit

# ---------------------------------------------------------------- vocabulary

#: Quantities and units are the wire contract's (UN/CEFACT rec 20 codes), so a
#: configured point becomes a reading without translation.
QUANTITIES = tuple(q.value for q in Quantity)

DataType = Literal["int16", "uint16", "int32", "uint32", "float32"]
REGISTER_COUNT: Mapping[str, int] = MappingProxyType(
    {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
)

# ---------------------------------------------------------------- profiles


class Point(ConfigBlock, kw_only=True):
    """One value a device exposes: where it is and how raw registers become a reading.

    reading = raw * scale + offset.  ``name`` tells apart two points of the
    same quantity (a two-probe logger); it defaults to the quantity.
    """

    name: Id | None = None
    quantity: Quantity
    register: Literal["input", "holding"]
    address: Annotated[int, Meta(ge=0, le=65535)]
    data_type: DataType = "int16"
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    scale: Annotated[float, Meta(ge=-1e6, le=1e6)] = 1.0
    offset: Annotated[float, Meta(ge=-1e6, le=1e6)] = 0.0
    unit: Unit

    @property
    def key(self) -> str:
        return self.name or self.quantity

    @property
    def register_count(self) -> int:
        return REGISTER_COUNT[self.data_type]

    @property
    def function_code(self) -> int:
        """03 read holding registers, 04 read input registers."""
        return 4 if self.register == "input" else 3


class Profile(ConfigBlock, kw_only=True):
    """A logger model's register map, shared by every unit of that model."""

    name: Id
    description: str = ""
    points: Annotated[tuple[Point, ...], Meta(min_length=1)]


# ---------------------------------------------------------------- built-in profiles


@functools.cache
def builtin_profiles() -> Mapping[str, Profile]:
    """The profiles shipped in gateway/sensors/profiles/*.toml, checked like user ones."""
    folder = importlib.resources.files("coldgate.gateway.sensors") / "profiles"
    found: dict[str, Profile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        doc = tomllib.loads(entry.read_text(encoding="utf-8"))
        profile = convert_document(
            doc, Profile, f"gateway/sensors/profiles/{entry.name}", validate=check_profile
        )
        found[profile.name] = profile
    return MappingProxyType(found)


# ---------------------------------------------------------------- checks


def check_profile(profile: Profile, key: str = "") -> None:
    """Points that cannot be read as written: unit/quantity mismatch, registers past 65535,
    overlapping registers, scale 0, two points with one name."""
    where = f"{key}." if key else ""
    seen: dict[str, int] = {}
    used: dict[tuple[str, int], int] = {}
    for i, point in enumerate(profile.points):
        at = f"{where}points[{i}]"
        if point.key in seen:
            what = "name" if point.name else "quantity"
            raise ConfigError(
                f"{at}.{what}",
                f'"{point.key}" is already used by points[{seen[point.key]}]; give one of '
                "them a distinct name (e.g. probe_1, probe_2)",
            )
        seen[point.key] = i
        if point.unit not in UNITS_FOR[point.quantity]:
            raise ConfigError(
                f"{at}.unit",
                expected=f"a {point.quantity} unit: {units_of(point.quantity)}",
                found=f'"{point.unit}"',
            )
        last = point.address + point.register_count - 1
        if last > 65535:
            raise ConfigError(
                f"{at}.address",
                f"{point.data_type} needs {point.register_count} registers from "
                f"{point.address}, past the last register 65535",
            )
        if point.scale == 0:
            raise ConfigError(
                f"{at}.scale",
                expected="a non-zero number (0 would make every reading the offset)",
                found="0",
            )
        for address in range(point.address, last + 1):
            other = used.get((point.register, address))
            if other is not None:
                raise ConfigError(
                    f"{at}.address",
                    f"{point.register} register {address} is already read by points[{other}]",
                )
            used[(point.register, address)] = i


def units_of(quantity: str) -> str:
    return ", ".join(f'"{u}"' for u in sorted(UNITS_FOR[Quantity(quantity)]))
