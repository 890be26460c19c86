"""Every barcode case in tests/testcases/barcodes/<case>/ parses to exactly its expected fields.

A case is a folder named after what it reproduces, holding:

``input.txt`` or ``input.hex``
    The frame as the scanner sent it, terminator removed: ``input.txt``
    for printable ASCII, ``input.hex`` (hex bytes, whitespace ignored) for
    anything with GS (0x1D), control or non-ASCII bytes.

``expected.json``
    Every field of `ParsedScan` but ``raw`` (``raw`` must always be the input
    decoded as latin-1, cut at 4096): ``symbology``, ``scheme``, ``gtin``,
    ``lot``, ``expiry`` (``YYYY-MM-DD``), ``serial``, ``sscc`` and the
    exact ``errors``; the fields added with contract 2026-12-06 (``hibc``,
    ``hibc_uom``, ``ma``, ``expiry_hour``, ``best_before``, ``produced``,
    ``quantity``) only where they are not null, so a case written before
    them still says exactly what the parser gives.

A bug report becomes a new folder, not a new test function.  Property tests
below cover what no list of cases can: any bytes, the mod-43 check
character, and the line framer under arbitrary chunking.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.codec import validate
from coldgate.contract.items import Scan, Scheme
from coldgate.gateway.readers.barcode import LineFramer, parse_scan
from coldgate.gateway.readers.barcode.hibc import CHARSET, check_character, parse_hibc
from coldgate.gateway.readers.barcode.symbology import implies_gs1, split_symbology
from tests.rig.cases import case_dirs, each_case, input_bytes, read_expected

CASES = case_dirs("barcodes")
FIELDS = ("symbology", "scheme", "gtin", "lot", "expiry", "serial", "sscc", "errors")
#: Added with contract 2026-12-06; null when a case's expected.json leaves them out.
NEW_FIELDS = ("hibc", "hibc_uom", "ma", "expiry_hour", "best_before", "produced", "quantity")
DATES = ("expiry", "best_before", "produced")


def _scan(data: bytes) -> Scan:
    """Build the contract item and validate it (patterns and bounds are checked on decoding only): proves a
    ParsedScan is always a valid Scan."""
    parsed = parse_scan(data)
    scan = Scan(
        seq=1,
        ts=0,
        boot="b0070001",
        mono=0,
        synced=True,
        scanner="dock1-scanner",
        **dataclasses.asdict(parsed),
    )
    return validate(scan)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30


@each_case("barcodes")
def test_case(case: Path) -> None:
    data = input_bytes(case)
    expected = read_expected(case)
    assert set(FIELDS) <= set(expected) <= {*FIELDS, *NEW_FIELDS}, (
        "expected.json must give every field but raw"
    )
    expected = {**dict.fromkeys(NEW_FIELDS), **expected}
    parsed = parse_scan(data)
    got = dataclasses.asdict(parsed)
    for name in DATES:
        got[name] = got[name].isoformat() if got[name] else None
    assert got.pop("raw") == data[:4096].decode("latin-1")
    assert got == expected
    scan = _scan(data)
    assert msgspec.json.decode(msgspec.json.encode(scan), type=Scan) == scan


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_parse_scan_never_raises_and_keeps_raw(data: bytes) -> None:
    parsed = parse_scan(data)
    assert parsed.raw.encode("latin-1") == data
    assert Scheme(parsed.scheme)
    _scan(data)


_PRINTABLE = st.text(st.characters(min_codepoint=0x1D, max_codepoint=0x7E), max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "",
            "]d2",
            "]C1",
            "]Q3",
            "]d1",
            "+",
            "+$$",
            "+A123CATH120/$$4",
            "MA.156.",
            "MA.156.M0.1.2.",
            "(01)",
            "01",
            "0109506000134352",
            "]d27003",
            "]d215",
            "]d230",
            "(7003)",
        ]
    ),
    _PRINTABLE,
)
def test_parse_scan_plausible_prefixes_never_raise(prefix: str, rest: str) -> None:
    """Random text behind each dispatch prefix reaches the format parsers, not just the byte filter."""
    scan = _scan((prefix + rest).encode("latin-1"))
    assert not any(e.startswith("parser failed") for e in scan.errors), "the safety net caught a bug"


@given(st.text(st.sampled_from(CHARSET), min_size=1, max_size=40))
def test_mod43_computed_check_character_validates(body: str) -> None:
    code = "+" + body.replace("+", "A")
    assert "check character" not in " ".join(parse_hibc(code + check_character(code)).errors)


@given(st.text(st.sampled_from(CHARSET), min_size=1, max_size=40), st.data())
def test_mod43_one_changed_character_is_caught(body: str, data: st.DataObject) -> None:
    code = "+" + body
    full = code + check_character(code)
    where = data.draw(st.integers(1, len(full) - 1))
    other = data.draw(st.sampled_from(CHARSET).filter(lambda c: c != full[where]))
    changed = full[:where] + other + full[where + 1 :]
    assert check_character(changed[:-1]) != changed[-1]


def test_mod43_published_examples() -> None:
    """Examples from HIBC LIC documentation, with their printed check characters."""
    assert check_character("+E20831269/$$8020423286539") == "+"
    assert check_character("+X999123ABC0/$$05191234AB/S5678EDFG/16D20151001") == "A"
    assert check_character("+X999123ABC0/$$619135211234AB/S5678EDFG/16D20151001") == "N"


def test_hibc_fields_beyond_the_contract() -> None:
    primary = parse_hibc("+A123BJC5D6E71" + check_character("+A123BJC5D6E71"))
    assert (primary.lic, primary.product, primary.unit_of_measure, primary.errors) == (
        "A123",
        "BJC5D6E7",
        1,
        [],
    )
    link = primary.check
    secondary = "+$$427113023LOT4" + link
    code = parse_hibc(secondary + check_character(secondary))
    assert (code.link, code.expiry, code.expiry_hour) == (link, datetime.date(2027, 11, 30), 23)


@pytest.mark.parametrize(
    ("text", "symbology", "gs1"),
    [
        ("]d2010", "]d2", True),
        ("]C1x", "]C1", True),
        ("]Q3x", "]Q3", True),
        ("]e0x", "]e0", True),
        ("]d1x", "]d1", False),
        ("]C0x", "]C0", False),
        ("]Q1x", "]Q1", False),
        ("0101", None, False),
    ],
)
def test_symbology(text: str, symbology: str | None, gs1: bool) -> None:
    split = split_symbology(text)
    assert (split.symbology, implies_gs1(split.symbology), split.error) == (symbology, gs1, None)


def test_framer_cr_lf_and_split_chunks() -> None:
    framer = LineFramer()
    assert framer.feed(b"]d201") == []
    frames = framer.feed(b"23\r")
    assert [f.data for f in frames] == [b"]d20123"]
    assert [f.data for f in framer.feed(b"\nABC\r\nDEF\r")] == [b"ABC", b"DEF"]
    assert framer.feed(b"\n") == []


def test_framer_over_long_line_is_one_error_frame() -> None:
    framer = LineFramer(max_length=8)
    frames = framer.feed(b"0123456789")
    frames += framer.feed(b"x" * 10_000)
    assert [(f.data, f.error is not None) for f in frames] == [(b"01234567", True)]
    assert len(framer._buffer) <= 1
    assert [(f.data, f.error) for f in framer.feed(b"tail\rOK\r")] == [(b"OK", None)]


@given(
    st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")), max_size=8),
    st.data(),
)
def test_framer_any_chunking_gives_the_same_frames(lines: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(line + b"\r\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    framer = LineFramer(max_length=64)
    frames = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        frames += framer.feed(stream[start:end])
    assert [f.data for f in frames] == [line for line in lines if line]
    assert all(f.error is None for f in frames)
