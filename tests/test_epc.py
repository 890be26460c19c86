"""EPC decoding: GS1 TDS vectors decode, round-trip through epcpy's encoder, and nothing ever raises.

The real reader capture (45 RO_ACCESS_REPORTs from an Impinj reader, see
/work/shared/fixtures/llrp/README.md) is decoded with sllurp and then with the
gateway's ``decode_epc``, so what a real reader sends is what is tested.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from epcpy.epc_schemes import GIAI, SGTIN, SSCC
from epcpy.epc_schemes.giai import GIAIFilterValue
from epcpy.epc_schemes.sgtin import SGTINFilterValue
from epcpy.epc_schemes.sscc import SSCCFilterValue
from hypothesis import given
from hypothesis import strategies as st

from coldgate.gateway.readers.epc import (
    _SGTIN_PARTITIONS,
    _SSCC_PARTITIONS,
    DecodedEpc,
    _by_epcpy,
    _sliced,
    decode_epc,
    normalise_epc,
    report_epc_hex,
)
from coldgate.simulator.rfid_scenarios import sgtin96_hex, sscc96_hex

FIXTURE = Path("/work/shared/fixtures/llrp/impinj-ro-access-reports.bin")


def test_sgtin96_tds_vector() -> None:
    got = decode_epc("3074257BF7194E4000001A85")
    assert got == DecodedEpc(
        hex="3074257BF7194E4000001A85",
        scheme="sgtin-96",
        uri="urn:epc:id:sgtin:0614141.812345.6789",
        gtin="80614141123458",
        serial="6789",
    )
    assert got.decoded and got.reason is None


def test_lower_case_and_spaces_are_the_same_epc() -> None:
    assert decode_epc(" 3074257bf7194e40 00001a85\n") == decode_epc("3074257BF7194E4000001A85")


def test_sscc96_round_trip() -> None:
    epc = SSCC("urn:epc:id:sscc:0614141.1234567890").hex(
        binary_coding_scheme=SSCC.BinaryCodingScheme.SSCC_96, filter_value=SSCCFilterValue.UNIT_LOAD
    )
    assert epc == "31D4257BF4499602D2000000" == sscc96_hex("0614141", "1234567890")
    got = decode_epc(epc)
    assert got.scheme == "sscc-96"
    assert got.uri == "urn:epc:id:sscc:0614141.1234567890"
    assert got.sscc == "106141412345678908"  # extension digit 1, check digit 8
    assert got.gtin is None and got.serial is None and got.giai is None


def test_giai96_round_trip() -> None:
    uri = "urn:epc:id:giai:0614141.12345400"
    epc = GIAI(uri).hex(
        binary_coding_scheme=GIAI.BinaryCodingScheme.GIAI_96, filter_value=GIAIFilterValue.ALL_OTHERS
    )
    got = decode_epc(epc)
    assert (got.scheme, got.uri, got.giai) == ("giai-96", uri, "061414112345400")


@given(
    serial=st.integers(min_value=0, max_value=2**38 - 1),
    item=st.integers(min_value=0, max_value=999_999),
)
def test_sgtin96_round_trips_any_serial_and_item(serial: int, item: int) -> None:
    uri = f"urn:epc:id:sgtin:0614141.{item:06d}.{serial}"
    epc = SGTIN(uri).hex(
        binary_coding_scheme=SGTIN.BinaryCodingScheme.SGTIN_96, filter_value=SGTINFilterValue.FULL_CASE
    )
    got = decode_epc(epc)
    assert got.scheme == "sgtin-96" and got.uri == uri and got.serial == str(serial)
    assert got.gtin is not None and len(got.gtin) == 14
    assert sgtin96_hex("0614141", f"{item:06d}", serial) == got.hex


@pytest.mark.parametrize(
    ("epc", "reason"),
    [
        ("", "empty EPC"),
        ("3", "too short"),
        ("30G4257BF7194E4000001A85", "not hex: 'G' at position 2"),
        ("3074257BF7194E4000001A", "SGTIN-96 header but 88 bits instead of 96"),
        ("3074257BF7194E4000001A8500", "SGTIN-96 header but 104 bits instead of 96"),
        ("3674257BF7194E4000001A85", "SGTIN-198"),
        ("3F74257BF7194E4000001A85", "SGCN-96"),
        ("000000000000000000000000", "unprogrammed tag"),
        ("E2801160600002054CC2C1B9", "unknown EPC header 0xE2 (96-bit EPC)"),
        ("317FFFFFFFFFFFFFFFFFFFFF", "invalid SSCC-96: Invalid partition header 111"),
        ("1FB41F712AC9C37AB79D618173188324001A", "unknown EPC header 0x1F (144-bit EPC)"),
    ],
)
def test_undecodable_epcs_are_kept_with_a_reason(epc: str, reason: str) -> None:
    got = decode_epc(epc)
    assert got.scheme == "unknown" and not got.decoded
    assert got.hex == epc.upper()
    assert got.reason is not None and reason in got.reason, got.reason
    assert got.uri is None and got.gtin is None and got.sscc is None and got.giai is None


def test_not_a_string_is_kept_with_a_reason() -> None:
    got = decode_epc(b"3074257BF7194E4000001A85")  # type: ignore[arg-type]
    assert got.scheme == "unknown" and got.reason is not None and "bytes" in got.reason


@given(st.text(alphabet="0123456789abcdefABCDEF", max_size=64))
def test_any_hex_string_never_raises(epc: str) -> None:
    got = decode_epc(epc)
    assert (got.scheme == "unknown") == (got.reason is not None)
    if got.decoded:
        assert got.uri is not None and len(got.hex) == 24


@given(st.text(max_size=40))
def test_any_text_never_raises(epc: str) -> None:
    assert isinstance(decode_epc(epc), DecodedEpc)


@given(st.binary(min_size=12, max_size=12).map(lambda b: "3" + b.hex()[1:]))
def test_random_96_bit_epcs_with_gs1_headers_never_raise(epc: str) -> None:
    got = decode_epc(epc)
    assert (got.scheme == "unknown") == (got.reason is not None)


_NAMES = {"sgtin-96": "SGTIN-96", "sscc-96": "SSCC-96"}


def _well_formed(scheme: str, filter_value: int, partition: int, company: int, other: int, tail: int) -> str:
    """A 96-bit SGTIN (``tail`` the serial) or SSCC (``tail`` ignored: reserved bits zero) of ``partition``
    whose fields fit their digits (``company`` and ``other`` reduced into range)."""
    table = _SGTIN_PARTITIONS if scheme == "sgtin-96" else _SSCC_PARTITIONS
    company_bits, digits, other_bits = table[partition]
    total = 13 if scheme == "sgtin-96" else 17
    company %= 10**digits
    other %= min(10 ** (total - digits), 1 << other_bits)
    header = 0x30 if scheme == "sgtin-96" else 0x31
    value = header << 88 | filter_value << 85 | partition << 82 | company << (82 - company_bits)
    value |= other << (82 - company_bits - other_bits)
    if scheme == "sgtin-96":
        value |= tail & ((1 << 38) - 1)
    return f"{value:024X}"


@given(
    st.sampled_from(["sgtin-96", "sscc-96"]), st.integers(0, 7), st.integers(0, 6),
    st.integers(0, 2**40), st.integers(0, 2**38), st.integers(0, 2**38 - 1),
)  # fmt: skip
def test_sliced_decoding_of_well_formed_tags_is_epcpys(
    scheme: str, filter_value: int, partition: int, company: int, other: int, tail: int
) -> None:
    text = _well_formed(scheme, filter_value, partition, company, other, tail)
    sliced = _sliced(text, scheme)  # type: ignore[arg-type]
    assert sliced is not None, "a well-formed tag must take the fast path"
    assert sliced == _by_epcpy(text, scheme, _NAMES[scheme])  # type: ignore[arg-type]
    assert decode_epc(text) == sliced


@given(st.sampled_from(["30", "31"]), st.binary(min_size=11, max_size=11))
def test_sliced_decoding_of_any_96_bits_is_epcpys_or_leaves_it_to_epcpy(header: str, rest: bytes) -> None:
    text = (header + rest.hex()).upper()
    scheme = "sgtin-96" if header == "30" else "sscc-96"
    sliced = _sliced(text, scheme)  # type: ignore[arg-type]
    by_epcpy = _by_epcpy(text, scheme, _NAMES[scheme])  # type: ignore[arg-type]
    assert sliced is None or sliced == by_epcpy
    assert decode_epc(text) == by_epcpy


def _fixture_reports() -> list[dict[str, object]]:
    from sllurp.llrp import LLRPMessage

    data = FIXTURE.read_bytes()
    reports: list[dict[str, object]] = []
    offset = 0
    while offset < len(data):
        (length,) = struct.unpack_from("!I", data, offset + 2)  # 10-byte header: ver/type, length, id
        message = LLRPMessage(msgbytes=data[offset : offset + length])
        offset += length
        reports.extend(message.msgdict["RO_ACCESS_REPORT"]["TagReportData"])
    return reports


@pytest.mark.skipif(not FIXTURE.is_file(), reason="shared LLRP fixture not present")
def test_real_impinj_reports_all_decode() -> None:
    reports = _fixture_reports()
    assert len(reports) == 45
    decoded = [decode_epc(report_epc_hex(r) or "") for r in reports]
    by_hex = {d.hex: d for d in decoded}
    # Two SGTIN-96 tags (test tags of Impinj's, filter 0) seen 22 times each on antenna 1 ...
    assert sum(d.scheme == "sgtin-96" for d in decoded) == 44
    a = by_hex["3005FB63AC1F3841EC880467"]
    assert (a.uri, a.gtin, a.serial) == (
        "urn:epc:id:sgtin:68100645113.97.8263304295",
        "96810064511377",
        "8263304295",
    )
    b = by_hex["300833B2DDD906C000000000"]
    assert (b.uri, b.gtin, b.serial) == ("urn:epc:id:sgtin:0867360217.027.0", "00867360217277", "0")
    # ... and one 144-bit EPC (reported as EPCData, not EPC-96) with no GS1 header: kept raw.
    (odd,) = [d for d in decoded if not d.decoded]
    assert odd.hex == "1FB41F712AC9C37AB79D618173188324001A"
    assert odd.reason == "unknown EPC header 0x1F (144-bit EPC): not SGTIN-96, SSCC-96 or GIAI-96"


def test_report_epc_hex_reads_both_sllurp_keys() -> None:
    assert report_epc_hex({"EPC-96": b"3074257bf7194e4000001a85"}) == "3074257bf7194e4000001a85"
    assert report_epc_hex({"EPC": b"1fb4"}) == "1fb4"
    assert report_epc_hex({"AntennaID": 1}) is None


def test_an_epc_is_normalised_once_to_the_edges_case_and_decoding_keeps_it() -> None:
    """The LLRP source normalises where the read enters; decode_epc's ``hex`` is the same form."""
    raw = report_epc_hex({"EPC-96": b"3074257bf7194e4000001a85"})
    assert raw is not None
    assert normalise_epc(raw) == "3074257BF7194E4000001A85"
    assert normalise_epc(" 3074 257b\tf7194e4000001a85 ") == "3074257BF7194E4000001A85"
    assert normalise_epc(normalise_epc(raw)) == normalise_epc(raw)
    assert decode_epc(raw).hex == normalise_epc(raw)
