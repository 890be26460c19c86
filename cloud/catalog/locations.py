"""Locations of a site, versioned like all master data: what kind of place, which temperature class it
keeps, and for a dock door the locations on either side.

A location is known by (site, id).  Its class must be one in force, since the
gateway judges the room by it; a dock door names its inside and outside
locations (of the same site, in force), so a movement through it says from
where to where.  A change adds the next version (``versions.py``) and is
audited with its reason.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.temperature_classes import check_name, classes
from coldgate.cloud.catalog.versions import check_reason, in_force, next_version, stamp, stamp_of
from coldgate.cloud.db.models import LocationVersion
from coldgate.cloud.identity.users import NotFound, UserInputError, aware, checked_text

__all__ = ["KINDS", "door_insides", "location_history", "locations", "locations_since", "put_location"]

_table: Table = LocationVersion.__table__  # type: ignore[assignment]
_ENTITY = "location"
KINDS = ("cold_room", "freezer", "ambient_store", "dock_door", "quarantine_area", "vehicle")
#: Kinds that keep goods, hence a temperature class (a dock door passes them; goods do not stay).
KEEPING = frozenset(KINDS) - {"dock_door"}


def _record(row: Any) -> dict[str, Any]:
    return {
        "site": row.site, "id": row.id, "name": row.name, "kind": row.kind,
        "temperature_class": row.temperature_class, "inside": row.inside, "outside": row.outside,
        **stamp_of(row),
    }  # fmt: skip


def locations(conn: Connection, *, site: str | None = None, retired: bool = False) -> list[dict[str, Any]]:
    """Locations in force (of one site when given), by site and id."""
    query = in_force(_table, ("site", "id")).order_by(_table.c.site, _table.c.id)
    if site is not None:
        query = query.where(_table.c.site == site)
    if not retired:
        query = query.where(_table.c.retired.is_(False))
    return [_record(row) for row in conn.execute(query)]


#: Per site, per dock door: (epoch ms a version came in force, the location inside in that version).
DoorInsides = dict[str, dict[str, list[tuple[int, str | None]]]]


def door_insides(conn: Connection, sites: Iterable[str]) -> DoorInsides:
    """Each site's dock doors and, version by version, the location inside each from when that version
    came in force (epoch ms, ascending): what a movement at a door did is judged by the door as it was
    then, so correcting a door's inside later never rewrites the custody already recorded.  A version
    that is no longer a dock door (or names no inside) has None."""
    wanted = sorted(set(sites))
    found: DoorInsides = {site: {} for site in wanted}
    if not wanted:
        return found
    c = _table.c
    query = select(c.site, c.id, c.kind, c.inside, c.changed_at).where(c.site.in_(wanted))
    every: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
    doors: set[tuple[str, str]] = set()  # every location that is, or ever was, a dock door
    for row in conn.execute(query.order_by(c.site, c.id, c.version)):
        versions = every.setdefault((row.site, row.id), [])
        since = int(aware(row.changed_at).timestamp() * 1000)
        # A version is in force from its own time on, and never before the one it followed.
        inside = row.inside if row.kind == "dock_door" else None
        versions.append((max(since, versions[-1][0]) if versions else since, inside))
        if row.kind == "dock_door":
            doors.add((row.site, row.id))
    for site, door in doors:
        found[site][door] = every[(site, door)]
    return found


def locations_since(conn: Connection, site: str) -> dict[str, int]:
    """When each of ``site``'s locations was first entered (epoch ms of its first version): before that
    it did not exist, so no KPI counts its time as unmonitored."""
    c = _table.c
    query = select(c.id, func.min(c.changed_at)).where(c.site == site).group_by(c.id)
    return {row[0]: int(aware(row[1]).timestamp() * 1000) for row in conn.execute(query)}


def location_history(conn: Connection, site: str, location_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(_table).where(_table.c.site == site, _table.c.id == location_id).order_by(_table.c.version)
    ).all()
    if not rows:
        raise NotFound("location", f"no location {location_id!r} at site {site!r}")
    return [_record(row) for row in rows]


def check_location(
    site: str, fields: dict[str, Any], class_names: set[str], others: set[str]
) -> dict[str, Any]:
    """The location's fields checked; ``others``: ids of the site's locations in force (for door sides)."""
    allowed = ("name", "kind", "temperature_class", "inside", "outside")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise UserInputError(unknown[0], f"is not a location field (fields: {', '.join(allowed)})")
    name = checked_text("name", fields.get("name"), max_len=200).strip()
    if not name:
        raise UserInputError("name", "must not be empty")
    kind = fields.get("kind")
    if kind not in KINDS:
        raise UserInputError("kind", f"{kind!r} is not a kind of location ({', '.join(KINDS)})")
    klass = fields.get("temperature_class")
    if kind in KEEPING and klass is None:
        raise UserInputError(
            "temperature_class", f"a {kind} keeps goods: it needs the temperature class it keeps"
        )
    if klass is not None:
        klass = checked_text("temperature_class", klass, max_len=64)
        if klass not in class_names:
            known = ", ".join(sorted(class_names)) or "none yet"
            raise UserInputError("temperature_class", f"no temperature class {klass!r} (known: {known})")
    sides: dict[str, str | None] = {}
    for side in ("inside", "outside"):
        value = fields.get(side)
        if value is not None and kind != "dock_door":
            raise UserInputError(side, f"only a dock door has sides, not a {kind}")
        if value is not None:
            value = checked_text(side, value, max_len=64)
            if value not in others:
                raise UserInputError(side, f"no location {value!r} at site {site!r}: make it first")
        sides[side] = value
    if kind == "dock_door" and (sides["inside"] is None or sides["outside"] is None):
        missing = "inside" if sides["inside"] is None else "outside"
        raise UserInputError(missing, "a dock door names the location on each side")
    return {"name": name, "kind": kind, "temperature_class": klass, **sides}


def put_location(
    conn: Connection,
    site: str,
    location_id: str,
    fields: dict[str, Any],
    *,
    reason: str,
    retired: bool = False,
    if_version: int | None = None,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Add the location's next version (its first makes it) and the audit entry, in ``conn``'s transaction."""
    site = check_name(site)
    key = check_name(location_id)
    others = {x["id"] for x in locations(conn, site=site)} - {key}
    checked = check_location(site, fields, {c["name"] for c in classes(conn)}, others)
    why = check_reason(reason)
    last = conn.execute(
        select(_table)
        .where(_table.c.site == site, _table.c.id == key)
        .order_by(_table.c.version.desc())
        .limit(1)
    ).first()
    version = next_version(last.version if last else None, if_version, f"location {key!r} of {site!r}")
    values = {
        "site": site,
        "id": key,
        **checked,
        **stamp(version, by=by, now=now, reason=why, retired=retired),
    }
    conn.execute(insert(_table).values(**values))
    stored = select(_table).where(_table.c.site == site, _table.c.id == key, _table.c.version == version)
    after = _record(conn.execute(stored).one())
    append(
        conn, actor=by, action=f"{_ENTITY}.{'create' if last is None else 'update'}", entity_type=_ENTITY,
        entity_id=f"{site}/{key}", now=now, before=_record(last) if last else None, after=after, reason=why,
    )  # fmt: skip
    return after
