"""Who the demo's people are and how it says scenario time: shared by the demo and its dock
(``demo.py``, ``demo_dock.py``), kept apart so neither imports the other."""

from __future__ import annotations

__all__ = ["DEMO_PEOPLE", "hhmm"]

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
