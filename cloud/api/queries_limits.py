"""The alert steps whose evidence may carry limits, for ``applied_limits.limits_in_force`` to choose from.

Only steps about sensors whose evidence mentions ``"limits"`` are read (a text
match on the stored JSON, the same on SQLite's JSON text and PostgreSQL's
JSONB).  For one sensor (its chart) that is every such step up to the range's
end, newest first, so a malformed newest step still falls back to an older
one; for the overview's many sensors it is each one's newest such step, in
one pass (PostgreSQL's DISTINCT ON, SQLite's bare columns beside max(ts)):
a window function over every alert step cost the overview a tenth of a
second per 20 000 steps on SQLite, and joining back to the newest ts seconds.
When each alert was raised (its first step) is read after, for the chosen
alerts only, on the alerts' (gateway, alert_id) index.

The other source, the class of the location a sensor was placed in, is read
by :func:`class_stays` (one sensor's placements) and
:func:`placed_class_limits` (every sensor's current one); the classes and
locations in force now are used for every stay (a class's history is its
own page).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Text, cast, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from coldgate.cloud.api.applied_limits import KnownLimits, LimitsStep, Stay, class_limits
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.placements import current_locations, placements
from coldgate.cloud.catalog.temperature_classes import classes
from coldgate.cloud.db.models import Alert

__all__ = ["ONE_SENSOR_STEPS", "class_stays", "limit_steps", "placed_class_limits"]

#: Steps with limits read for one sensor: far more than a gateway's configuration changes in a range.
ONE_SENSOR_STEPS = 200


def limit_steps(
    conn: Connection, *, gateway: str | None = None, sensor: str | None = None, until: int | None = None
) -> dict[tuple[str, str], list[LimitsStep]]:
    """(gateway, sensor) -> alert steps at or before ``until`` that mention limits: all of them (up to
    ``ONE_SENSOR_STEPS``, newest first) when ``gateway`` and ``sensor`` are given, else each sensor's
    newest."""
    where: list[Any] = [Alert.subject_type == "sensor", cast(Alert.evidence, Text).like('%"limits"%')]
    if gateway is not None:
        where.append(Alert.gateway == gateway)
    if sensor is not None:
        where.append(Alert.subject == sensor)
    if until is not None:
        where.append(Alert.ts <= until)
    columns = (Alert.gateway, Alert.subject, Alert.alert_id, Alert.ts, Alert.evidence)
    if gateway is not None and sensor is not None:
        query = select(*columns).where(*where).order_by(Alert.ts.desc()).limit(ONE_SENSOR_STEPS)
    elif conn.dialect.name == "postgresql":
        query = (
            select(*columns)
            .where(*where)
            .ext(distinct_on(Alert.gateway, Alert.subject))
            .order_by(Alert.gateway, Alert.subject, Alert.ts.desc())
        )
    else:
        # SQLite takes the other columns from the row holding max(ts): its documented "bare column" rule.
        query = (
            select(*columns[:3], func.max(Alert.ts).label("ts"), Alert.evidence)
            .where(*where)
            .group_by(Alert.gateway, Alert.subject)
        )
    rows = conn.execute(query).mappings().all()
    raised = _raised_at(conn, {(row["gateway"], row["alert_id"]) for row in rows})
    found: dict[tuple[str, str], list[LimitsStep]] = {}
    for row in rows:
        step = LimitsStep(
            gateway=row["gateway"], alert_id=row["alert_id"], ts=row["ts"], evidence=row["evidence"] or {},
            raised_at=raised.get((row["gateway"], row["alert_id"]), row["ts"]),
        )  # fmt: skip
        found.setdefault((row["gateway"], row["subject"]), []).append(step)
    return found


def _raised_at(conn: Connection, alerts: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """When each of ``alerts`` (gateway, alert id) was raised: the time of its first stored step."""
    if not alerts:
        return {}
    query = (
        select(Alert.gateway, Alert.alert_id, func.min(Alert.ts).label("raised_at"))
        .where(Alert.alert_id.in_(sorted({alert_id for _, alert_id in alerts})))
        .group_by(Alert.gateway, Alert.alert_id)
    )
    return {
        (row.gateway, row.alert_id): row.raised_at
        for row in conn.execute(query)
        if (row.gateway, row.alert_id) in alerts
    }


def _location_limits(conn: Connection) -> dict[tuple[str, str], KnownLimits | None]:
    """(site, location id) -> the limits of the location's class (None: it has none)."""
    specs = {c["name"]: c["spec"] for c in classes(conn)}
    found: dict[tuple[str, str], KnownLimits | None] = {}
    for place in locations(conn):
        name = place["temperature_class"]
        spec = specs.get(name) if name is not None else None
        found[(place["site"], place["id"])] = (
            None if spec is None
            else class_limits(name, spec, location=place["id"], location_name=place["name"])
        )  # fmt: skip
    return found


def class_stays(conn: Connection, gateway: str, sensor: str) -> list[Stay]:
    """Every placement of one sensor as a stay with its location's class limits, oldest first."""
    by_location = _location_limits(conn)
    return [
        Stay(
            start=p["valid_from"], end=p["valid_to"],
            limits=None if p["location"] is None else by_location.get((p["site"], p["location"])),
        )
        for p in placements(conn, gateway=gateway, device=sensor)
        if p["device_kind"] == "sensor"
    ]  # fmt: skip


def placed_class_limits(
    conn: Connection, now_ms: int, site_of: dict[str, str]
) -> dict[tuple[str, str], KnownLimits]:
    """(gateway, sensor) -> the class limits of the location each sensor is placed in now, for the
    sensors whose location has a class; ``site_of`` maps a gateway to its site."""
    by_location = _location_limits(conn)
    found: dict[tuple[str, str], KnownLimits] = {}
    for (gateway, sensor), location in current_locations(conn, "sensor", now_ms).items():
        limits = by_location.get((site_of.get(gateway, ""), location or ""))
        if limits is not None:
            found[(gateway, sensor)] = limits
    return found
