"""Register decoding and read planning: properties for every data type and order, plus field cases.

A decoding bug report becomes a folder in tests/testcases/sensors/decode/<what_it_reproduces>/
(the case-folder convention of tests/rig/cases.py) holding ``input.toml``: the profile
(``builtin = "name"`` or a ``[profile]`` table written as a user would) and the register words
(``[input]``/``[holding]``, address = word); and ``expected.toml``: point name = value, or
``"error: <text in the reason>"``.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldgate.configfile import convert_document
from coldgate.gateway.sensors.config import Point, Profile, builtin_profiles, check_profile
from coldgate.gateway.sensors.decode import (
    DecodeError,
    ReadBlock,
    decode_point,
    encode_point,
    plan_reads,
    raw_value,
)
from tests.rig.cases import each_case, read_expected, read_input

pytestmark = pytest.mark.timeout(60)


ORDERS = st.sampled_from(["big", "little"])
RANGES = {
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


def point(data_type: str = "int16", address: int = 0, register: str = "holding", **kw) -> Point:
    return Point(
        quantity="temperature", register=register, address=address, data_type=data_type, unit="CEL", **kw
    )


@given(
    data_type=st.sampled_from(sorted(RANGES)),
    byte_order=ORDERS,
    word_order=ORDERS,
    data=st.data(),
)
def test_integers_round_trip_exactly(data_type, byte_order, word_order, data):
    low, high = RANGES[data_type]
    raw = data.draw(st.integers(low, high))
    p = point(data_type, byte_order=byte_order, word_order=word_order)
    words = encode_point(p, raw)
    assert len(words) == p.register_count and all(0 <= w <= 0xFFFF for w in words)
    assert raw_value(p, words) == raw
    assert decode_point(p, words) == raw


@given(
    data_type=st.sampled_from(sorted(RANGES)),
    byte_order=ORDERS,
    word_order=ORDERS,
    scale=st.sampled_from([0.1, 0.01, 0.5, 10.0]),
    offset=st.sampled_from([0.0, -0.3, 273.15]),
    data=st.data(),
)
def test_scaled_integers_round_trip_to_the_register_step(
    data_type, byte_order, word_order, scale, offset, data
):
    low, high = RANGES[data_type]
    raw = data.draw(st.integers(max(low, -100_000), min(high, 100_000)))
    p = point(data_type, byte_order=byte_order, word_order=word_order, scale=scale, offset=offset)
    value = raw * scale + offset
    assert decode_point(p, encode_point(p, value)) == pytest.approx(value, abs=1e-9)


@given(value=st.floats(width=32, allow_nan=False, allow_infinity=False), byte_order=ORDERS, word_order=ORDERS)
def test_float32_round_trips_to_its_seven_digits(value, byte_order, word_order):
    p = point("float32", byte_order=byte_order, word_order=word_order)
    decoded = decode_point(p, encode_point(p, value))
    assert decoded == pytest.approx(value, rel=1e-6, abs=1e-30)
    assert struct.unpack(">f", struct.pack(">f", decoded))[0] == pytest.approx(value, rel=1e-6, abs=1e-30)


@given(sign=st.integers(0, 1), mantissa=st.integers(0, 2**23 - 1), word_order=ORDERS)
def test_float32_nan_and_infinity_are_errors_never_values(sign, mantissa, word_order):
    bits = sign << 31 | 0xFF << 23 | mantissa  # exponent all ones: infinity (mantissa 0) or NaN
    assert not math.isfinite(struct.unpack(">f", bits.to_bytes(4, "big"))[0])
    p = point("float32", word_order=word_order)
    words = [bits >> 16, bits & 0xFFFF]
    if word_order == "little":
        words.reverse()
    with pytest.raises(DecodeError, match="float32 register holds"):
        decode_point(p, words)


def test_tenths_come_out_as_written():
    p = point("int16", scale=0.1)
    assert decode_point(p, [253]) == 25.3  # not 25.300000000000004
    assert decode_point(p, [0xFFD8]) == -4.0
    assert decode_point(point("uint16", scale=0.1), [0xFFD8]) == 6549.6


def test_too_large_a_value_is_refused_by_the_encoder():
    with pytest.raises(ValueError, match="does not fit int16"):
        encode_point(point("int16", scale=0.1), 4000.0)


# ---------------------------------------------------------------- read planning


def test_the_shipped_profiles_read_in_one_request_each():
    for name in ("xy-md02", "rs485-th-holding", "generic"):
        profile = builtin_profiles()[name]
        (block,) = plan_reads(profile.points)
        assert block.count == sum(p.register_count for p in profile.points)
    (xy,) = plan_reads(builtin_profiles()["xy-md02"].points)
    assert (xy.function_code, xy.address, xy.count) == (4, 1, 2)


def test_tables_are_never_mixed_and_holes_split_blocks():
    points = [
        point("float32", 258),
        point("int16", 0, register="input"),
        point("float32", 256),
        point("uint16", 300),
        point("int16", 1, register="input"),
    ]
    blocks = plan_reads(points)
    assert [(b.function_code, b.address, b.count) for b in blocks] == [(3, 256, 4), (3, 300, 1), (4, 0, 2)]
    bridged = plan_reads(points, max_gap=40)
    assert [(b.function_code, b.address, b.count) for b in bridged] == [(3, 256, 45), (4, 0, 2)]


def test_a_block_never_exceeds_the_modbus_limit():
    points = [point("uint16", address) for address in range(0, 300)]
    blocks = plan_reads(points)
    assert [b.count for b in blocks] == [125, 125, 50]
    assert sum(len(b.points) for b in blocks) == 300


@given(addresses=st.sets(st.integers(0, 400), min_size=1, max_size=40), max_gap=st.integers(0, 10))
def test_planning_covers_every_point_exactly_once(addresses, max_gap):
    points = [point("uint16", a) for a in sorted(addresses)]
    blocks = plan_reads(points, max_gap=max_gap)
    covered = [p.address for b in blocks for p in b.points]
    assert sorted(covered) == sorted(addresses)
    for b in blocks:
        assert 1 <= b.count <= 125
        assert all(b.address <= p.address and p.address + 1 <= b.address + b.count for p in b.points)


# ---------------------------------------------------------------- field cases


def _profile_of(case: dict, name: str) -> Profile:
    if "builtin" in case:
        return builtin_profiles()[case["builtin"]]
    return convert_document(case["profile"], Profile, name, validate=check_profile)


def _decode_all(profile: Profile, tables: dict[int, dict[int, int]]) -> dict[str, float | str]:
    result: dict[str, float | str] = {}
    for block in plan_reads(profile.points):
        table = tables[block.function_code]
        registers = [table[block.address + i] for i in range(block.count)]
        for p in block.points:
            try:
                result[p.key] = decode_point(p, ReadBlock.words_of(block, p, registers))
            except DecodeError as exc:
                result[p.key] = f"error: {exc}"
    return result


@each_case("sensors/decode", argname="case_dir")
def test_decode_case(case_dir: Path):
    case = read_input(case_dir)
    expected_values = read_expected(case_dir)
    profile = _profile_of(case, case_dir.name)
    tables = {
        code: {int(address): word for address, word in case.get(name, {}).items()}
        for code, name in ((3, "holding"), (4, "input"))
    }
    decoded = _decode_all(profile, tables)
    assert set(decoded) == set(expected_values)
    for key, expected in expected_values.items():
        if isinstance(expected, str):
            assert isinstance(decoded[key], str) and expected.removeprefix("error: ") in decoded[key]
        else:
            assert decoded[key] == pytest.approx(expected, abs=1e-9), key
