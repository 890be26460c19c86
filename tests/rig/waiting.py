"""Waiting on the event loop for what a test asserts, instead of sleeping a guessed time.

A passing test returns as soon as its condition holds; the deadline is only how
long a failing one takes to say so, so it is generous (CI is a loaded 2-vCPU machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEADLINE_S = 15.0


async def eventually(condition: Callable[[], bool], timeout: float = DEADLINE_S, every: float = 0.02) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds (checked every ``every`` s)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)
    return True


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """From a plain thread: block until ``condition()`` holds, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.05)
