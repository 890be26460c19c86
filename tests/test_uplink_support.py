"""Shared pieces for the uplink and down-link tests: config, outbox, items, a running uplink.

Every test builds its gateway the same way: a real outbox in the test's
directory, the real clock (timeouts and backoff run on it), and an uplink
whose reconnect backoff is capped at a fraction of a second so that a test
waits for the broker, not for the jitter.  The few tests here check the
pieces themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from coldgate.contract import examples
from coldgate.contract.codec import decode_item, validate
from coldgate.contract.items import Alert, Item, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.buffer.outbox import Outbox
from coldgate.gateway.clock import Clock, SystemClock
from coldgate.gateway.config import OutboxConfig, UplinkConfig
from coldgate.gateway.observations import UNSEQUENCED, stamp_fields
from coldgate.gateway.uplink.downlink import Downlink
from coldgate.gateway.uplink.drain import Uplink
from coldgate.gateway.uplink.pacing import Backoff
from tests.rig.mosquitto import MosquittoBroker

GATEWAY = "gw01"
SITE = "ams-dc1"
CLOCK = SystemClock()


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.05, cap_s=0.5)


def uplink_config(broker: MosquittoBroker | str, **overrides: Any) -> UplinkConfig:
    url = broker if isinstance(broker, str) else broker.url
    settings: dict[str, Any] = {"broker": url, "client_id": GATEWAY, "ack_timeout_s": 30.0}
    settings.update(overrides)
    return UplinkConfig(**settings)


def open_outbox(path: Path, clock: Clock = CLOCK) -> Outbox:
    config = OutboxConfig(path=str(path / "outbox.sqlite3"), commit_interval_ms=20, fsync="normal")
    return Outbox(config, gateway=GATEWAY, clock=clock)


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


def reading(sensor: str = "cr1-t01", value: float = 4.5) -> Reading:
    return Reading(
        **stamp_fields(CLOCK.stamp()),  # type: ignore[arg-type]
        sensor=sensor,
        quantity=Quantity.TEMPERATURE,
        value=value,
        unit=Unit.CEL,
    )


def alert(n: int = 1) -> Alert:
    return msgspec.structs.replace(examples.ALERT, **stamp_fields(CLOCK.stamp()), alert_id=f"gw01-a-{n:06d}")  # type: ignore[arg-type]


def kinds_by_seq(items: dict[int, bytes]) -> dict[int, Item]:
    return {seq: decode_item(body) for seq, body in items.items()}


def test_factories_build_valid_items() -> None:
    for item in (reading(), reading("cr1-t02", -1.0), alert(7)):
        assert item.seq == UNSEQUENCED
        validate(msgspec.structs.replace(item, seq=1))


def test_uplink_config_takes_the_broker_url() -> None:
    config = uplink_config("mqtt://127.0.0.1:1884", inflight_max_batches=3)
    assert config.address.port == 1884 and config.inflight_max_batches == 3
