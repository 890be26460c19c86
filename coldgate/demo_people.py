"""Who the demo's people are (and how they act), how it says scenario time, how its parts wait and
read a document's reconciliation: shared by the demo,
its dock and its dispatch (``demo.py``, ``demo_dock.py``, ``demo_dispatch.py``), kept apart so none
imports another."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections.abc import Callable
from typing import Any

__all__ = ["DEMO_PEOPLE", "actor", "hhmm", "reconciliation", "wait", "wait_for"]

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


def actor(conn: Any, role: str) -> Any:
    """The demo's person of ``role`` as the audit trail names them (every demo write is theirs)."""
    from coldgate.cloud.audit.log import Actor
    from coldgate.cloud.identity.users import find_user

    person = find_user(conn, DEMO_PEOPLE[role][0])
    return Actor(person["printed_name"], person["id"])


def reconciliation(cloud: Any, document: str) -> Any:
    """A document's reconciliation from what the cloud has bound to it, in the API's shape."""
    from coldgate.cloud.api.routes.documents import reconciliation_out
    from coldgate.cloud.documents.reconciliation_store import check_document

    with cloud.reader_engine.connect() as conn:
        today = datetime.datetime.now(datetime.UTC).date()
        return reconciliation_out(check_document(conn, document, today))
