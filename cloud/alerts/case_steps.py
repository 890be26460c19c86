"""A QA case's state is its newest step (``qa_case_steps`` is append-only): the one query that says
which, shared by the case store, the quarantine and the notifications so they cannot disagree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, and_, func, select

from coldgate.cloud.alerts.case_flow import FINAL
from coldgate.cloud.db.models import QaCaseStep

__all__ = ["latest_steps", "undecided_case_ids"]

_steps: Table = QaCaseStep.__table__  # type: ignore[assignment]


def latest_steps() -> Any:
    """A select of each case's newest step: the state it is in, and who put it there when."""
    top = select(_steps.c.case_id, func.max(_steps.c.seq).label("top")).group_by(_steps.c.case_id).subquery()
    return select(_steps).join(top, and_(_steps.c.case_id == top.c.case_id, _steps.c.seq == top.c.top))


def undecided_case_ids(conn: Connection) -> set[str]:
    """The cases neither closed nor cancelled."""
    latest = latest_steps().subquery()
    final = [state.value for state in FINAL]
    return set(conn.execute(select(latest.c.case_id).where(latest.c.state.not_in(final))).scalars())
