"""A site's time zone: the one setting of a site the pages need, set by an admin and audited.

Instants are stored as UTC epoch ms (the edge's evidence); a site's IANA zone
only says how people at that site read them.  The zone is checked against the
tz database (``zoneinfo``) before anything is written, and refused with a
:class:`UserInputError` naming ``time_zone`` and the value, so a typo never
reaches the pages, where it would silently mean UTC.

A site is known once a gateway of it has reported (ingest's registry makes its
row) or once a gateway is enrolled for it: an operator sets the zone right
after enrolling, before the Pi is plugged in, so the row is made here then
(ingest's insert leaves an existing row alone).  The change and its audit entry
land in the caller's transaction, as every write does (DESIGN.md, principle 10).
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo

from sqlalchemy import Connection, insert, literal, select, update

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.models import GatewayEnrolment, Site
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text

__all__ = ["MAX_ZONE_LENGTH", "check_time_zone", "set_time_zone"]

#: The column's width (migration 0011); the longest IANA name is about 30.
MAX_ZONE_LENGTH = 64
_ENTITY = "site"


@functools.cache
def _known_zones() -> frozenset[str]:
    """The tz database's names (read once: it walks the zoneinfo folder)."""
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: object) -> str:
    """``value`` if it is an IANA zone name the tz database knows ("Europe/Berlin", "UTC"); else a
    UserInputError naming ``time_zone`` and the value."""
    text = checked_text("time_zone", value, max_len=MAX_ZONE_LENGTH)
    problem = f"{text!r} is not an IANA time zone name (like 'Europe/Berlin' or 'UTC')"
    known = _known_zones()
    if known and text not in known:
        raise UserInputError("time_zone", problem)
    try:
        zoneinfo.ZoneInfo(text)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise UserInputError("time_zone", problem) from None
    return text


def _check_site(value: object) -> str:
    text = checked_text("site", value, max_len=64)
    if not text:
        raise UserInputError("site", "must not be empty")
    return text


def set_time_zone(conn: Connection, site: str, time_zone: str, *, by: Actor, now: datetime.datetime) -> str:
    """Set ``site``'s zone and audit before/after in the same transaction; the zone as stored.

    Unknown site: ``NotFound`` (a 404 to an API caller).  Setting the zone it
    already has still records who confirmed it (an auditor sees the decision).
    """
    zone = check_time_zone(time_zone)
    name = _check_site(site)
    row = conn.execute(select(Site.id, Site.time_zone).where(Site.id == name)).first()
    if row is None:
        enrolled = select(literal(1)).where(GatewayEnrolment.site == name).limit(1)
        if conn.execute(enrolled).first() is None:
            raise NotFound("site", f"no site {name!r} (none of its gateways has reported or been enrolled)")
        conn.execute(insert(Site).values(id=name, time_zone=zone))
        before = None
    else:
        before = {"id": name, "time_zone": row.time_zone}
        conn.execute(update(Site).where(Site.id == name).values(time_zone=zone))
    after = {"id": name, "time_zone": zone}
    append(
        conn, actor=by, action="site.time_zone", entity_type=_ENTITY, entity_id=name, now=now,
        before=before, after=after,
    )  # fmt: skip
    return zone
