"""The ``from``/``to`` window the list endpoints (alerts, gaps) share, parsed once the same way.

Times go through ``parse_time``, so a bad one is the same precise 422 as on the
readings.  A list's window keeps what overlaps it, and ``limit`` already bounds
the answer, so unlike a chart's range it has no longest length; it may also be
open on either side (only ``from``: "since Monday").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from coldgate.cloud.api.routes import check_range, parse_time

__all__ = ["TIME_HELP", "Window", "window"]

TIME_HELP = "Epoch ms or ISO-8601 with a zone."


@dataclass(frozen=True, slots=True)
class Window:
    start: int | None
    end: int | None


def window(
    from_: Annotated[
        str | None, Query(alias="from", description=f"Keep those still going at or after this. {TIME_HELP}")
    ] = None,
    to: Annotated[str | None, Query(description=f"Keep those that began before this. {TIME_HELP}")] = None,
) -> Window:
    """The window asked for (a dependency); a 422 naming ``from`` or ``to`` for a bad or reversed one."""
    start = parse_time(from_, "from") if from_ is not None else None
    end = parse_time(to, "to") if to is not None else None
    if start is not None and end is not None:
        check_range(start, end, to or "", max_ms=None)
    return Window(start, end)
