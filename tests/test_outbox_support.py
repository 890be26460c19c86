"""Shared pieces for the outbox tests: a hand-driven clock, item factories, direct file reads.

Kept in one module the other ``test_outbox_*`` files import, so every test
builds items the same way; the few tests here check that the pieces
themselves produce valid contract items.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from coldgate.contract import examples
from coldgate.contract.codec import decode_item, validate
from coldgate.contract.items import Alert, Item, Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import Stamp
from coldgate.gateway.config import OutboxConfig
from coldgate.gateway.observations import UNSEQUENCED

T0 = examples.T0
BOOT = examples.BOOT
GATEWAY = "gw01"
MINUTE = 60_000
DAY = 86_400_000


class FakeClock:
    """A clock the test sets by hand; ``synced`` says whether NTP would vouch for it."""

    def __init__(self, wall_ms: int = T0, *, synced: bool = True) -> None:
        self.wall_ms = wall_ms
        self.mono_ms = 1_000_000
        self.synced = synced

    def stamp(self) -> Stamp:
        return Stamp(wall_ms=self.wall_ms, mono_ms=self.mono_ms, boot=BOOT, synced=self.synced)

    def monotonic(self) -> float:
        return self.mono_ms / 1000

    def advance(self, ms: int) -> None:
        self.wall_ms += ms
        self.mono_ms += ms


def reading(
    value: float | None = 4.5,
    *,
    sensor: str = "cr1-t01",
    ts: int = T0,
    humidity: bool = False,
    synced: bool = True,
) -> Reading:
    extra: dict[str, Any] = {"quality": Quality.ERROR, "reason": "no answer"} if value is None else {}
    return Reading(
        seq=UNSEQUENCED,
        ts=ts,
        boot=BOOT,
        mono=max(0, ts - T0 + 2_000_000),
        synced=synced,
        sensor=sensor,
        quantity=Quantity.HUMIDITY if humidity else Quantity.TEMPERATURE,
        value=value,
        unit=Unit.P1 if humidity else Unit.CEL,
        **extra,
    )


def alert(n: int = 1, *, ts: int = T0) -> Alert:
    return msgspec.structs.replace(examples.ALERT, seq=UNSEQUENCED, ts=ts, alert_id=f"gw01-a-{n:06d}")


def priority_items(ts: int = T0) -> list[Item]:
    """One of every lane-0 kind: alert, gap, event, movement, scan."""
    kinds = (examples.ALERT, examples.GAP, examples.EVENT, examples.MOVEMENT, examples.SCAN)
    return [msgspec.structs.replace(item, seq=UNSEQUENCED, ts=ts) for item in kinds]  # type: ignore[misc]


def config(path: Path, **overrides: Any) -> OutboxConfig:
    settings: dict[str, Any] = {"path": str(path / "outbox.sqlite3"), "commit_interval_ms": 5}
    settings.update(overrides)
    return OutboxConfig(**settings)


def open_outbox(path: Path, clock: FakeClock | None = None, **overrides: Any) -> Outbox:
    options = {k: overrides.pop(k) for k in ("thin_interval_s", "chunk", "check") if k in overrides}
    return Outbox(config(path, **overrides), gateway=GATEWAY, clock=clock or FakeClock(), **options)


def stored(path: Path) -> list[tuple[int, int, str, Item]]:
    """(seq, lane, kind, decoded item) of every row, read with a connection of the test's own."""
    conn = sqlite3.connect(path / "outbox.sqlite3")
    try:
        rows = conn.execute("SELECT seq, lane, kind, body FROM items ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(seq, lane, kind, decode_item(body)) for seq, lane, kind, body in rows]


def meta(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(path / "outbox.sqlite3")
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def test_factories_build_valid_items() -> None:
    for item in [reading(), reading(None), reading(45.0, humidity=True), alert(), *priority_items()]:
        assert item.seq == UNSEQUENCED
        validate(msgspec.structs.replace(item, seq=1))


def test_fake_clock_stamps() -> None:
    clock = FakeClock(synced=False)
    clock.advance(MINUTE)
    assert clock.stamp() == Stamp(wall_ms=T0 + MINUTE, mono_ms=1_060_000, boot=BOOT, synced=False)
