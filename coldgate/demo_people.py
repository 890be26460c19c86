"""Who the demo's people are, how it says scenario time and how its parts wait: shared by the demo,
its dock and its dispatch (``demo.py``, ``demo_dock.py``, ``demo_dispatch.py``), kept apart so none
imports another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["DEMO_PEOPLE", "hhmm", "wait", "wait_for"]

#: One demo person per role: login, printed name.
DEMO_PEOPLE = {
    "viewer": ("vera", "Vera Viewer"),
    "dock_operator": ("dominik", "Dominik Dock"),
    "qa": ("quentin", "Quentin QA"),
    "qa_manager": ("marta", "Marta QA-Manager"),
    "recall_coordinator": ("rico", "Rico Recall"),
    "admin": ("ada", "Ada Admin"),
}


def hhmm(seconds: float) -> str:
    """Scenario seconds as hh:mm, as the demo prints them."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}"


async def wait_for(predicate: Callable[[], bool], stop: asyncio.Event, seconds: float) -> bool:
    """Wait up to ``seconds`` for ``predicate()`` (run in a thread: it may read the database); False
    if it never held or ``stop`` came first."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while not await asyncio.to_thread(predicate):
        if loop.time() > give_up or await wait(stop, 0.2):
            return False
    return True


async def wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds``; True if ``stop`` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
