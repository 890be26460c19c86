"""Register words to values, and which requests read a profile.

Pure functions over a profile's ``Point``s: no I/O, so the poller, the tests
and the simulator agree on one encoding.  ``plan_reads`` groups a profile's
points into as few requests as the Modbus rules allow, because on RS-485 each
request costs a round trip of 10-20 ms at 9600-19200 baud: reading humidity and
temperature in one request halves the bus time a logger takes.

Byte and word order: Modbus itself is big-endian inside a register and says
nothing about 32-bit values.  ``byte_order = "little"`` swaps the two bytes of
every register (rare, some meters); ``word_order = "little"`` puts the low
register first (common on PLCs: "CDAB").
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from coldgate.gateway.sensors.config import Point

#: Modbus allows at most 125 registers in one read (function 03/04, PDU limit).
MAX_REGISTERS_PER_READ = 125

_UNPACK = {"int32": ">i", "uint32": ">I", "float32": ">f"}


class DecodeError(ValueError):
    """The registers hold no trustworthy value for the point (NaN, infinity)."""


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: ``count`` registers of one table from ``address``, and the points in them."""

    function_code: int
    address: int
    count: int
    points: tuple[Point, ...]

    def words_of(self, point: Point, registers: Sequence[int]) -> Sequence[int]:
        start = point.address - self.address
        return registers[start : start + point.register_count]


def plan_reads(
    points: Iterable[Point], *, max_gap: int = 0, max_count: int = MAX_REGISTERS_PER_READ
) -> tuple[ReadBlock, ...]:
    """Group points by function code into the fewest blocks of contiguous registers.

    ``max_gap`` lets a block bridge up to that many unmapped registers.  It is 0 by
    default: many loggers answer exception 2 (illegal address) to a read that
    touches a register they do not implement, and then the whole block is lost.
    """
    by_table: dict[int, list[Point]] = {}
    for point in points:
        by_table.setdefault(point.function_code, []).append(point)
    blocks: list[ReadBlock] = []
    for function_code in sorted(by_table):
        group: list[Point] = []
        start = end = 0  # end: one past the last register of the group
        for point in sorted(by_table[function_code], key=lambda p: p.address):
            point_end = point.address + point.register_count
            if group and point.address - end <= max_gap and point_end - start <= max_count:
                group.append(point)
                end = max(end, point_end)
                continue
            if group:
                blocks.append(ReadBlock(function_code, start, end - start, tuple(group)))
            group, start, end = [point], point.address, point_end
        if group:
            blocks.append(ReadBlock(function_code, start, end - start, tuple(group)))
    return tuple(blocks)


def _swap(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def raw_value(point: Point, words: Sequence[int]) -> float:
    """The unscaled number in a point's registers (an int, or the float32 as stored)."""
    if len(words) != point.register_count:
        raise DecodeError(f"{point.key}: need {point.register_count} registers, got {len(words)}")
    if point.byte_order == "little":
        words = [_swap(w) for w in words]
    if point.data_type == "int16":
        word = words[0]
        return word - 0x10000 if word >= 0x8000 else word
    if point.data_type == "uint16":
        return words[0]
    high, low = (words[0], words[1]) if point.word_order == "big" else (words[1], words[0])
    value = struct.unpack(_UNPACK[point.data_type], struct.pack(">HH", high, low))[0]
    if point.data_type == "float32":
        if not math.isfinite(value):
            what = "NaN" if math.isnan(value) else f"{'+' if value > 0 else '-'}infinity"
            raise DecodeError(f"{point.key}: float32 register holds {what} (a sensor fault code)")
        # A float32 carries ~7 significant digits; drop the binary tail (4.7 -> 4.699999809).
        return float(f"{value:.7g}")
    return value


def decode_point(point: Point, words: Sequence[int]) -> float:
    """The reading in a point's registers: raw * scale + offset.

    Rounded to 12 significant digits so x10 integers give 25.3, not 25.300000000000004;
    no register carries more (int32 has 10 digits, float32 7).
    """
    return float(f"{raw_value(point, words) * point.scale + point.offset:.12g}")


def encode_point(point: Point, value: float) -> list[int]:
    """The registers a device would hold for ``value``: the inverse of :func:`decode_point`.

    Used by tests and simulators.  Integers are rounded to the nearest step; a value
    outside the data type's range raises ``ValueError``.
    """
    raw = (value - point.offset) / point.scale
    if point.data_type == "float32":
        high, low = struct.unpack(">HH", struct.pack(">f", raw))
        words = [high, low]
    else:
        number = round(raw)
        bits = 16 if point.data_type.endswith("16") else 32
        signed = not point.data_type.startswith("u")
        low_limit, high_limit = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        if not low_limit <= number <= high_limit:
            raise ValueError(f"{value} does not fit {point.data_type} at scale {point.scale}")
        number &= (1 << bits) - 1
        words = [number] if bits == 16 else [number >> 16, number & 0xFFFF]
    if len(words) == 2 and point.word_order == "little":
        words.reverse()
    if point.byte_order == "little":
        words = [_swap(w) for w in words]
    return words
