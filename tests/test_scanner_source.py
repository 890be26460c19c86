"""A serial barcode scanner on a pseudo-terminal: codes become Scan items, a refused line is still
recorded, and a missing port is a scanner_offline gap that closes when the port appears."""

from __future__ import annotations

import asyncio
import datetime
import os
import tty
from collections.abc import Callable
from pathlib import Path

from coldgate.contract.codec import validate
from coldgate.contract.items import Gap, GapCause, Item, Scan, Scheme
from coldgate.contract.uplink import LinkState
from coldgate.gateway.app import build_sources
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.barcode.hibc import check_character
from coldgate.gateway.readers.config import ScannerConfig
from coldgate.gateway.readers.scanner import ScannerSource
from coldgate.simulator.scanner import CODES, ScannerEmulator
from tests.rig.pty import PtyPair
from tests.rig.waiting import eventually

GS = b"\x1d"


#: After the awaited items, how long to go on watching for ones that should not come.
GRACE_S = 0.3


def scans_in(items: list[Item]) -> list[Scan]:
    return [item for item in items if isinstance(item, Scan)]


def gaps_in(items: list[Item]) -> list[Gap]:
    return [item for item in items if isinstance(item, Gap)]


async def collect(
    source: ScannerSource, write: Callable[[bytes], None], feed: list[bytes], scans: int
) -> tuple[list[Item], LinkState]:
    """Run the source, write ``feed`` chunk by chunk once its port is open, wait for ``scans``
    scans (and ``GRACE_S`` more for any extra), and return its items and its link state."""
    items: list[Item] = []
    task = asyncio.create_task(source.run(items.append))
    try:
        # The port opens in a thread, and pyserial's open() discards input already waiting.
        assert await eventually(lambda: source.link_state().online), source.link_state()
        for chunk in feed:
            write(chunk)
            await asyncio.sleep(0.05)  # separate reads, so a code can arrive split across them
        await eventually(lambda: len(scans_in(items)) >= scans)  # fewer: the asserts say so
        await asyncio.sleep(GRACE_S)
        return items, source.link_state()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_codes_become_scans_split_across_chunks(pty_pair: PtyPair) -> None:
    source = ScannerSource(ScannerConfig(id="dock2-s1", port=pty_pair.device, max_length=64), SystemClock())
    code = b"]d2" + b"0109506000134352" + b"17261231" + b"10LOT42" + GS + b"21SN7"
    hibc_data = "+A99912345/$$52001510X"
    hibc_code = (hibc_data + check_character(hibc_data)).encode()
    feed = [code[:9], code[9:] + b"\r\n", hibc_code + b"\r", b"x" * 100 + b"\r"]
    items, link = asyncio.run(collect(source, pty_pair.write, feed, scans=3))
    scans = scans_in(items)
    assert len(scans) == 3
    first, hibc, too_long = scans
    assert (first.scanner, first.symbology, first.scheme) == ("dock2-s1", "]d2", Scheme.GS1)
    assert (first.gtin, first.lot, first.serial) == ("09506000134352", "LOT42", "SN7")
    assert first.expiry == datetime.date(2026, 12, 31)
    assert (hibc.scheme, hibc.lot, hibc.errors) == (Scheme.HIBC, "10X", [])
    assert (hibc.hibc, hibc.hibc_uom) == ("A9991234", 5)
    assert hibc.expiry == datetime.date(2020, 1, 15)
    assert too_long.scheme is Scheme.RAW and too_long.errors and "long" in too_long.errors[0]
    for scan in scans:  # what the outbox will accept
        validate(scan.__class__(**{**{f: getattr(scan, f) for f in scan.__struct_fields__}, "seq": 1}))
    assert link.online and link.error is None and source.scans == 3


def test_missing_port_is_a_gap_that_closes_when_the_port_appears(tmp_path: Path) -> None:
    link = tmp_path / "scanner"
    source = ScannerSource(ScannerConfig(id="s1", port=str(link), reopen_s=0.5), SystemClock())
    controller, device = os.openpty()
    tty.setraw(device)

    async def scenario() -> list[Item]:
        items: list[Item] = []
        task = asyncio.create_task(source.run(items.append))
        try:
            assert await eventually(lambda: source.link_state().error is not None), source.link_state()
            assert not source.link_state().online and "cannot open" in (source.link_state().error or "")
            link.symlink_to(os.ttyname(device))  # the USB scanner is plugged in
            await eventually(lambda: len(gaps_in(items)) >= 2)  # reopened within reopen_s; fewer: asserts
            await asyncio.sleep(GRACE_S)
            return items
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        items = asyncio.run(scenario())
    finally:
        os.close(controller)
        os.close(device)
    gaps = gaps_in(items)
    assert [g.end is None for g in gaps] == [True, False]
    assert gaps[0].cause is GapCause.SCANNER_OFFLINE and gaps[0].start == gaps[1].start
    assert gaps[1].end is not None and gaps[1].end >= gaps[1].start


def test_scanners_from_the_config_file_are_sources() -> None:
    config = gateway_config_from_document(
        {
            "gateway": {"id": "gw01", "site": "s1", "data_dir": "/var/lib/coldgate"},
            "scanners": [{"id": "dock2-s1", "port": "/dev/ttyACM0", "terminator": "CRLF", "door": "dock2"}],
        },
        "gateway.toml",
    )
    sources = build_sources(config, SystemClock())
    assert [s.id for s in sources] == ["scanner:dock2-s1"]


def test_the_scanner_emulator_through_the_gateway_source() -> None:
    """Every code of the emulated dock scanner arrives as one Scan, parsed or refused with a reason."""
    with ScannerEmulator() as emulator:
        source = ScannerSource(ScannerConfig(id="dock2-s1", port=emulator.device), SystemClock())
        feed = list(emulator.codes())
        items, link = asyncio.run(collect(source, emulator.send, feed, scans=len(CODES)))
    scans = scans_in(items)
    assert len(scans) == len(CODES) and link.online
    by_kind = {name: scan for (name, _), scan in zip(CODES, scans, strict=True)}
    first = by_kind["GS1 DataMatrix: GTIN, expiry, lot, serial"]
    assert (first.scheme, first.gtin, first.lot, first.serial) == (
        Scheme.GS1,
        "09506000134352",
        "LOT42",
        "SN7",
    )
    assert by_kind["GS1-128 pallet label: SSCC"].sscc == "106141411234567897"
    assert by_kind["HIBC primary + secondary (expiry, lot)"].scheme is Scheme.HIBC
    assert by_kind["MA (IDcode) UDI"].scheme is Scheme.MA
    wrong = by_kind["GS1 DataMatrix with a wrong GTIN check digit"]
    assert wrong.gtin is None and wrong.errors
    garbage = by_kind["garbage from a noisy line"]
    assert garbage.scheme is Scheme.RAW and garbage.errors


def test_a_cut_frame_keeps_no_parsed_field_and_still_validates() -> None:
    """A frame cut at ``max_length`` may parse as something else (here an HIBC code with an expiry hour
    whose check character happens to be cut off); none of it is kept, so the Scan validates."""
    source = ScannerSource(ScannerConfig(id="dock2-s1", port="/dev/null"), SystemClock())
    items: list[Item] = []
    source._emit = items.append
    data = "+A123CATH120/$$4270131081234AB"
    frame = (data + check_character(data)).encode()
    source._scan(frame, "line longer than 31 bytes: cut")
    [scan] = scans_in(items)
    assert scan.scheme is Scheme.RAW and scan.errors[0].startswith("line longer")
    parsed = ("gtin", "lot", "expiry", "serial", "sscc", "hibc", "hibc_uom", "ma", "expiry_hour")
    assert all(getattr(scan, name) is None for name in (*parsed, "best_before", "produced", "quantity"))
    validate(scan.__class__(**{**{f: getattr(scan, f) for f in scan.__struct_fields__}, "seq": 1}))
