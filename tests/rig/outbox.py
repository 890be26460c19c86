"""The outbox as tests drive it: one ``open_outbox`` (on a hand-driven clock by default), direct file reads.

Every outbox, uplink and down-link test opens its outbox here, in the test's
directory, for gateway ``gw01``.  Items come from ``tests.rig.items``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from coldgate.contract.codec import decode_item
from coldgate.contract.items import Item
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import Clock
from coldgate.gateway.config import OutboxConfig
from tests.rig.clocks import FakeClock

GATEWAY = "gw01"
MINUTE = 60_000
DAY = 86_400_000


def config(path: Path, **overrides: Any) -> OutboxConfig:
    settings: dict[str, Any] = {"path": str(path / "outbox.sqlite3"), "commit_interval_ms": 5}
    settings.update(overrides)
    return OutboxConfig(**settings)


def open_outbox(path: Path, clock: Clock | None = None, **overrides: Any) -> Outbox:
    """An outbox in ``path`` on ``clock`` (a new ``FakeClock`` unless given).

    ``overrides`` are ``OutboxConfig`` fields, or the ``Outbox`` options
    ``thin_interval_s``, ``chunk``, ``check`` and ``leading_edge``.
    """
    named = ("thin_interval_s", "chunk", "check", "leading_edge")
    options = {k: overrides.pop(k) for k in named if k in overrides}
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
