"""The alert steps whose evidence may carry limits, for ``applied_limits.limits_in_force`` to choose from.

Only steps about sensors whose evidence mentions ``"limits"`` are read (a text
match on the stored JSON, the same on SQLite's JSON text and PostgreSQL's
JSONB), and of those only the newest few per sensor: the pure function then
picks the newest usable one, so a malformed newest step still falls back to
an older one.  The alerts table is small next to readings, and this is one
pass over it.
"""

from __future__ import annotations

from sqlalchemy import Connection, Text, cast, func, select

from coldgate.cloud.api.applied_limits import LimitsStep
from coldgate.cloud.db.models import Alert

__all__ = ["PER_SENSOR", "limit_steps"]

#: Steps with limits kept per sensor: the newest is normally the one; the rest cover malformed ones.
PER_SENSOR = 5


def limit_steps(
    conn: Connection, *, gateway: str | None = None, sensor: str | None = None, until: int | None = None
) -> dict[tuple[str, str], list[LimitsStep]]:
    """(gateway, sensor) -> its newest alert steps (at or before ``until``) that mention limits."""
    raised = func.min(Alert.ts).over(partition_by=(Alert.gateway, Alert.alert_id)).label("raised_at")
    steps = select(Alert.gateway, Alert.subject, Alert.alert_id, Alert.ts, Alert.evidence, raised).where(
        Alert.subject_type == "sensor"
    )
    if gateway is not None:
        steps = steps.where(Alert.gateway == gateway)
    if sensor is not None:
        steps = steps.where(Alert.subject == sensor)
    inner = steps.subquery()
    newest = func.row_number().over(
        partition_by=(inner.c.gateway, inner.c.subject), order_by=(inner.c.ts.desc(), inner.c.alert_id.desc())
    )
    mentioned = select(inner, newest.label("rank")).where(cast(inner.c.evidence, Text).like('%"limits"%'))
    if until is not None:
        mentioned = mentioned.where(inner.c.ts <= until)
    ranked = mentioned.subquery()
    query = select(ranked).where(ranked.c.rank <= PER_SENSOR)
    found: dict[tuple[str, str], list[LimitsStep]] = {}
    for row in conn.execute(query).mappings():
        step = LimitsStep(
            gateway=row["gateway"], alert_id=row["alert_id"], raised_at=row["raised_at"], ts=row["ts"],
            evidence=row["evidence"] or {},
        )  # fmt: skip
        found.setdefault((row["gateway"], row["subject"]), []).append(step)
    return found
