"""A list for an outbox, and waiting in a coroutine: for tests that run the gateway's app in process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from coldgate.contract.items import Item

__all__ = ["ListSink", "wait_until"]


class ListSink:
    def __init__(self) -> None:
        self.items: list[Item] = []

    def put(self, item: Item) -> None:
        self.items.append(item)

    def of(self, kind: type) -> list[Any]:
        return [item for item in self.items if isinstance(item, kind)]


async def wait_until(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)
