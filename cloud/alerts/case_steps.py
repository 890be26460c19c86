"""A QA case's state is its newest step (``qa_case_steps`` is append-only): the one query that says
which, shared by the case store, the quarantine and the notifications so they cannot disagree.  The
same for a case's severity (:func:`case_summaries`), which the inbox shows and the notifications' policy
follows.

Why a case's severity is read from its alerts' steps and not from the row that folded each alert: an
alert is folded as it is raised, and a door check raised as a warning (the case seen at the door, its
direction not yet known) is updated to critical once the case leaves outbound.  The case must become
critical then, and the critical policy's people be told; the fold row keeps the raise's severity.  An
alert that was once critical keeps its case critical: clearing it does not make the excursion milder."""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, Table, and_, func, select

from coldgate.cloud.alerts.case_flow import FINAL
from coldgate.cloud.db.models import Alert, QaCaseAlert, QaCaseStep

__all__ = ["RANK", "case_summaries", "latest_steps", "undecided_case_ids"]

_steps: Table = QaCaseStep.__table__  # type: ignore[assignment]
_folded: Table = QaCaseAlert.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
RANK: Final = {"info": 0, "warning": 1, "critical": 2}


def latest_steps() -> Any:
    """A select of each case's newest step: the state it is in, and who put it there when."""
    top = select(_steps.c.case_id, func.max(_steps.c.seq).label("top")).group_by(_steps.c.case_id).subquery()
    return select(_steps).join(top, and_(_steps.c.case_id == top.c.case_id, _steps.c.seq == top.c.top))


def undecided_case_ids(conn: Connection) -> set[str]:
    """The cases neither closed nor cancelled."""
    latest = latest_steps().subquery()
    final = [state.value for state in FINAL]
    return set(conn.execute(select(latest.c.case_id).where(latest.c.state.not_in(final))).scalars())


def case_summaries(conn: Connection, case_ids: list[str]) -> dict[str, tuple[str, int, int]]:
    """Per case: the worst severity any step of its alerts has had, how many alerts it holds, and the
    newest one's raise time (epoch ms)."""
    if not case_ids:
        return {}
    f, a = _folded.c, _alerts.c
    counted = select(f.case_id, func.count(), func.max(f.raised_ts)).where(f.case_id.in_(case_ids))
    found: dict[str, tuple[str, int, int]] = {}
    for case_id, count, newest in conn.execute(counted.group_by(f.case_id)):
        found[case_id] = ("info", count, newest)
    steps = (
        select(f.case_id, a.severity)
        .join(_alerts, and_(a.gateway == f.gateway, a.alert_id == f.alert_id))
        .where(f.case_id.in_(case_ids))
        .distinct()
    )
    raised = select(f.case_id, f.severity).where(f.case_id.in_(case_ids)).distinct()
    for case_id, severity in [*conn.execute(steps), *conn.execute(raised)]:
        worst, count, newest = found[case_id]
        if RANK.get(severity, 0) > RANK.get(worst, 0):
            found[case_id] = (severity, count, newest)
    return found
