"""Register maps, wire faults and farm files: the pure parts of the Modbus simulator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU

from coldgate.simulator.config import FarmConfig, LoggerSpec, default_farm, farm_from_mapping, load_farm_file
from coldgate.simulator.registermaps import REGISTER_MAPS, decode_word, encode_word, register_map
from coldgate.simulator.wire import corrupt_rtu, corrupt_socket, unit_of


@pytest.mark.parametrize(
    ("value", "word"),
    [
        (-25.3, 0xFF03),
        (25.3, 253),
        (25.25, 253),  # half away from zero on the decimal value, not the float artefact
        (-25.25, 0xFF03),  # -252.5 -> -253
        (0.04, 0),
        (-0.05, 0xFFFF),
        (-40.0, 0xFE70),
        (1.15, 12),
        (5000.0, 0x7FFF),  # clamped, never wrapped
        (-5000.0, 0x8000),
    ],
)
def test_temperature_encoding(value, word):
    assert encode_word(value, 10, signed=True) == word


def test_humidity_is_unsigned_and_clamped():
    assert encode_word(45.55, 10, signed=False) == 456
    assert encode_word(-1.0, 10, signed=False) == 0
    assert decode_word(0xFFFF, 10, signed=False) == 6553.5


def test_encoding_refuses_nan():
    with pytest.raises(ValueError):
        encode_word(float("nan"))


@given(st.floats(min_value=-3276.8, max_value=3276.7, allow_nan=False))
def test_temperature_round_trips_within_half_a_step(value):
    assert abs(decode_word(encode_word(value, 10, True), 10, True) - value) <= 0.05 + 1e-9


def test_the_two_real_maps():
    xy = register_map("xy-md02")
    assert (xy.function_code, xy.first_address, xy.count) == (4, 0x0001, 2)
    assert xy.words(-25.3, 45.5) == [0xFF03, 455]
    assert xy.decode([0xFF03, 455]) == (-25.3, 45.5)
    holding = register_map("rs485-th-holding")
    assert (holding.function_code, holding.first_address, holding.count) == (3, 0x0000, 2)
    assert holding.words(-25.3, 45.5) == [455, 0xFF03]
    assert holding.decode([455, 0xFF03]) == (-25.3, 45.5)
    assert set(REGISTER_MAPS) == {"xy-md02", "rs485-th-holding"}
    with pytest.raises(ValueError, match="known: xy-md02, rs485-th-holding"):
        register_map("sht30")


rtu_responses = st.builds(
    lambda unit, words: FramerRTU(DecodePDU(False)).encode(
        bytes([4, 2 * len(words)]) + b"".join(w.to_bytes(2, "big") for w in words), unit, 0
    ),
    st.integers(1, 247),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4),
)


@given(frame=rtu_responses, seed=st.integers(0, 2**32))
def test_corrupted_rtu_frames_never_pass_the_crc(frame, seed):
    assert unit_of(frame, rtu=True) == frame[0]
    bad = corrupt_rtu(frame, random.Random(seed))
    assert len(bad) == len(frame) and bad != frame
    body, crc = bad[:-2], int.from_bytes(bad[-2:], "big")
    assert not FramerRTU.check_CRC(body, crc)


socket_responses = st.builds(
    lambda tid, unit, words: FramerSocket(DecodePDU(False)).encode(
        bytes([3, 2 * len(words)]) + b"".join(w.to_bytes(2, "big") for w in words), unit, tid
    ),
    st.integers(1, 65000),
    st.integers(1, 247),
    st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=4),
)


@given(frame=socket_responses, seed=st.integers(0, 2**32))
def test_corrupted_tcp_frames_are_rejected_by_the_framer(frame, seed):
    assert unit_of(frame, rtu=False) == frame[6]
    bad = corrupt_socket(frame, random.Random(seed))
    used, _unit, _tid, pdu = FramerSocket(DecodePDU(False)).decode(bad)
    assert (used, pdu) == (0, b""), "the client keeps waiting for a frame that never completes"


def test_default_farm_is_mostly_steady_with_one_of_each_fault():
    farm = default_farm(8, seed=1)
    assert [s.scenario for s in farm.loggers] == [
        "steady",
        "door_open",
        "compressor_failure",
        "dropout",
        "drift",
        "steady",
        "steady",
        "steady",
    ]
    assert [s.register_map for s in farm.loggers[:2]] == ["xy-md02", "rs485-th-holding"]
    assert len({s.seed for s in farm.loggers}) == 8
    assert {s.scenario for s in default_farm(3, scenario="stuck").loggers} == {"stuck"}
    assert {s.register_map for s in default_farm(3, register_map="xy-md02").loggers} == {"xy-md02"}


def test_farm_file(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text(
        "speed = 60\nstart_at_s = 300\n"
        '[[logger]]\nunit = 1\nmap = "xy-md02"\nscenario = "compressor_failure"\nseed = 7\n'
        "[logger.params]\nfailure_s = 600\n"
        '[[logger]]\nunit = 2\nmap = "rs485-th-holding"\nroom = "freezer"\nname = "freezer 1"\n'
    )
    farm = load_farm_file(path)
    assert (farm.speed, farm.start_at_s) == (60.0, 300.0)
    assert farm.logger(1).curve().failure_s == 600.0
    assert farm.logger(2).room == "freezer"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"unit": 0}, r"logger\[0\]\.unit: 0 is outside"),
        ({"unit": 1, "map": "sht30"}, r"logger\[0\]\.map: unknown 'sht30'"),
        ({"unit": 1, "scenario": "fire"}, r"logger\[0\]\.scenario: unknown 'fire'"),
        ({"unit": 1, "room": "garage"}, r"logger\[0\]\.room: unknown 'garage'"),
        ({"unit": 1, "params": {"bogus": 1}}, r"logger\[0\]\.params: .*no parameter bogus"),
        ({"unit": "1"}, r"logger\[0\]\.unit: expected int"),
        ({"unit": 1, "colour": "red"}, r"logger\[0\]\.colour: unknown key"),
    ],
)
def test_bad_farm_entries_point_at_the_key(entry, message):
    with pytest.raises(ValueError, match=message):
        farm_from_mapping({"logger": [entry]})


def test_duplicate_units_are_refused():
    with pytest.raises(ValueError, match=r"more than once: \[3\]"):
        FarmConfig((LoggerSpec(3), LoggerSpec(3)))


def test_unreadable_farm_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("speed = = 3")
    with pytest.raises(ValueError, match=r"broken\.toml"):
        load_farm_file(path)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start_s": "600"}, "params: start_s: expected a number, got '600'"),
        ({"duration_s": True}, "params: duration_s: expected a number, got True"),
        ({"inner": "steady"}, "params: inner: expected a table with a scenario, got 'steady'"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_refused_at_load_not_at_the_first_poll(params, message) -> None:
    from coldgate.simulator.config import LoggerSpec

    with pytest.raises(ValueError) as caught:
        LoggerSpec(unit=1, scenario="dropout", params=params)
    assert str(caught.value) == message
