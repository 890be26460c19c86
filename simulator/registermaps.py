"""Register maps of the temperature/humidity loggers found in the field, as data.

The names match the gateway's device profiles, so a simulated logger and the
profile that polls it are chosen with the same word.

- ``xy-md02``: the common SHT20-based RS-485 module (XY-MD02 and clones).
  Function 04, input register 0x0001 = temperature x10 (signed),
  0x0002 = humidity x10.
- ``rs485-th-holding``: the common RS-485 transmitter type (many "RS485 temperature
  humidity transmitter" boxes).  Function 03, holding register 0x0000 =
  humidity x10, 0x0001 = temperature x10 (signed).

Encoding rounds half away from zero on the decimal value (25.25 °C -> 253, not
the float artefact 252) and clamps to what a 16-bit register can hold, as a real
device would rather than wrapping around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Quantity = Literal["temperature", "humidity"]


@dataclass(frozen=True)
class Register:
    """One measured quantity in one 16-bit register."""

    address: int
    quantity: Quantity
    scale: int = 10
    signed: bool = False


@dataclass(frozen=True)
class RegisterMap:
    """Where a logger model keeps its readings and how they are scaled."""

    name: str
    function_code: int  # 3 = holding registers, 4 = input registers
    registers: tuple[Register, ...]
    description: str = ""

    @property
    def first_address(self) -> int:
        return min(r.address for r in self.registers)

    @property
    def count(self) -> int:
        """Registers a single read must cover to get every quantity."""
        return max(r.address for r in self.registers) - self.first_address + 1

    def encode(self, temperature_c: float, humidity_rh: float) -> dict[int, int]:
        """Register address -> 16-bit word for one reading."""
        values = {"temperature": temperature_c, "humidity": humidity_rh}
        return {r.address: encode_word(values[r.quantity], r.scale, r.signed) for r in self.registers}

    def words(self, temperature_c: float, humidity_rh: float) -> list[int]:
        """The words a read of :attr:`count` registers from :attr:`first_address` returns."""
        by_address = self.encode(temperature_c, humidity_rh)
        return [by_address.get(self.first_address + i, 0) for i in range(self.count)]

    def decode(self, words: list[int]) -> tuple[float, float]:
        """(temperature °C, humidity %RH) from the words of a read of :attr:`count` registers."""
        if len(words) < self.count:
            raise ValueError(f"{self.name}: need {self.count} registers, got {len(words)}")
        values: dict[str, float] = {}
        for r in self.registers:
            values[r.quantity] = decode_word(words[r.address - self.first_address], r.scale, r.signed)
        return values["temperature"], values["humidity"]


def encode_word(value: float, scale: int = 10, signed: bool = True) -> int:
    """A physical value as a 16-bit register word (two's complement when signed)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot encode {value!r} in a register")
    scaled = (Decimal(repr(float(value))) * scale).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    low, high = (-32768, 32767) if signed else (0, 65535)
    return int(min(high, max(low, scaled))) & 0xFFFF


def decode_word(word: int, scale: int = 10, signed: bool = True) -> float:
    """The physical value in a 16-bit register word."""
    if signed and word >= 0x8000:
        word -= 0x10000
    return word / scale


REGISTER_MAPS: dict[str, RegisterMap] = {
    "xy-md02": RegisterMap(
        name="xy-md02",
        function_code=4,
        registers=(
            Register(0x0001, "temperature", signed=True),
            Register(0x0002, "humidity"),
        ),
        description="SHT20 RS-485 module: FC04, 0x0001 temperature x10, 0x0002 humidity x10",
    ),
    "rs485-th-holding": RegisterMap(
        name="rs485-th-holding",
        function_code=3,
        registers=(
            Register(0x0000, "humidity"),
            Register(0x0001, "temperature", signed=True),
        ),
        description="RS-485 transmitter: FC03, 0x0000 humidity x10, 0x0001 temperature x10",
    ),
}


def register_map(name: str) -> RegisterMap:
    """Look a map up by name with an error that lists the known ones."""
    try:
        return REGISTER_MAPS[name]
    except KeyError:
        raise ValueError(f"unknown register map {name!r}; known: {', '.join(REGISTER_MAPS)}") from None
