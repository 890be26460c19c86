"""The uplink as tests drive it: config, outbox, a running uplink.

Every uplink and down-link test builds its gateway the same way: a real
outbox in the test's directory (``uplink_outbox``), the real clock (timeouts
and backoff run on it; stamp items with ``stamp=CLOCK.stamp()``), and an
uplink whose reconnect backoff is capped at a fraction of a second so that a
test waits for the broker, not for the jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coldgate.contract.codec import decode_item
from coldgate.contract.items import Item
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import Clock, SystemClock
from coldgate.gateway.config import UplinkConfig
from coldgate.gateway.uplink.downlink import Downlink
from coldgate.gateway.uplink.drain import Uplink
from coldgate.gateway.uplink.pacing import Backoff
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.outbox import GATEWAY, open_outbox

SITE = "ams-dc1"
CLOCK = SystemClock()


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.05, cap_s=0.5)


def uplink_config(broker: MosquittoBroker | str, **overrides: Any) -> UplinkConfig:
    url = broker if isinstance(broker, str) else broker.url
    settings: dict[str, Any] = {"broker": url, "client_id": GATEWAY, "ack_timeout_s": 30.0}
    settings.update(overrides)
    return UplinkConfig(**settings)


def uplink_outbox(path: Path, clock: Clock = CLOCK) -> Outbox:
    """The outbox an uplink test drains: on the real clock, committing every 20 ms without fsync."""
    return open_outbox(path, clock, commit_interval_ms=20, fsync="normal")


def make_uplink(
    outbox: Outbox, broker: MosquittoBroker | str, *, downlink: Downlink | None = None, **kwargs: Any
) -> Uplink:
    config_keys = set(UplinkConfig.__struct_fields__)
    overrides = {k: kwargs.pop(k) for k in list(kwargs) if k in config_keys}
    kwargs.setdefault("backoff", fast_backoff())
    return Uplink(
        uplink_config(broker, **overrides),
        gateway=GATEWAY,
        site=SITE,
        outbox=outbox,
        clock=CLOCK,
        downlink=downlink,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(uplink: Uplink, *, connected: bool = True) -> AsyncIterator[Uplink]:
    """The uplink's ``run`` as a task; stopped cleanly (offline status, DISCONNECT) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(uplink.run(stop))
    try:
        if connected:
            await asyncio.wait_for(uplink.link.wait_connected(), 10)
        yield uplink
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def kinds_by_seq(items: dict[int, bytes]) -> dict[int, Item]:
    return {seq: decode_item(body) for seq, body in items.items()}
