"""The site overview: every gateway, every sensor as a tile, and per site what is open.

One query layer for the page (``cloud/web/pages.py``) and the JSON
(``GET /overview``): both show exactly this.  The tiles' states are judged by
``cloud/api/tiles.py`` (pure); this module only reads.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from sqlalchemy import Connection

from coldgate.cloud.api import queries
from coldgate.cloud.api.applied_limits import KnownLimits, limits_in_force
from coldgate.cloud.api.queries_limits import limit_steps, placed_class_limits
from coldgate.cloud.api.schemas import AlertEntry, GapEntry, Overview, SensorEntry, SiteCounts, TileOut
from coldgate.cloud.api.tiles import STATES, Tile, tile
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.placements import current_locations

__all__ = ["STALE_AFTER_MS", "overview"]

#: A sensor with no reading for this long is "stale" (gateways poll every few seconds to a minute).
STALE_AFTER_MS = 10 * 60 * 1000
#: Open alerts and gaps read for the tiles: far more than a site has open at once.
_OPEN_LIMIT = 5000


def _located(
    t: Tile, placed: dict[tuple[str, str], str | None], names: dict[tuple[str, str], str]
) -> TileOut:
    zone = placed.get((t.gateway, t.sensor), t.zone)
    return TileOut(**{**dataclasses.asdict(t), "zone": zone}, location_name=names.get((t.site, zone or "")))


def overview(conn: Connection, *, site: str | None, now_ms: int) -> Overview:
    gateways = queries.gateways(conn, site=site)
    by_id = {g.id: g for g in gateways}
    sensors = queries.sensors(conn, None, site, now_ms=now_ms)
    alerts: dict[tuple[str, str], list[AlertEntry]] = defaultdict(list)
    open_alerts = queries.alerts(conn, None, True, None, _OPEN_LIMIT)
    for alert in open_alerts:
        if alert.subject_type == "sensor":
            alerts[(alert.gateway, alert.subject)].append(alert)
    gaps: dict[tuple[str, str], list[GapEntry]] = defaultdict(list)
    open_gaps = queries.gaps(conn, None, True, None, None, _OPEN_LIMIT)
    for gap in open_gaps:
        if gap.subject_type == "sensor":
            gaps[(gap.gateway, gap.subject)].append(gap)
    steps = limit_steps(conn, until=now_ms)
    site_of = {g.id: g.site for g in gateways}
    # The class of the room a sensor is placed in first; what its gateway applied where none is known.
    placed = placed_class_limits(conn, now_ms, site_of)

    def limits(s: SensorEntry) -> KnownLimits | None:
        unit = s.last_reading.unit if s.last_reading else None
        applied = steps.get((s.gateway, s.id), ())
        return placed.get((s.gateway, s.id)) or limits_in_force(applied, now_ms, unit=unit)

    tiles = [
        tile(s, by_id.get(s.gateway), alerts[(s.gateway, s.id)], gaps[(s.gateway, s.id)],
             now_ms=now_ms, stale_after_ms=STALE_AFTER_MS, limits=limits(s))
        for s in sensors
    ]  # fmt: skip
    tiles.sort(key=lambda t: (t.site, STATES.index(t.state), t.gateway, t.sensor))
    counts = {
        name: {"open_alerts": 0, "open_gaps": 0, "gateways_offline": 0}
        for name in sorted(set(site_of.values()))
    }
    for gateway in gateways:
        counts[gateway.site]["gateways_offline"] += 0 if gateway.online else 1
    for alert in open_alerts:
        if alert.gateway in site_of:
            counts[site_of[alert.gateway]]["open_alerts"] += 1
    for gap in open_gaps:
        if gap.gateway in site_of:
            counts[site_of[gap.gateway]]["open_gaps"] += 1
    # Rooms by name: a sensor's zone is the location its newest placement (up to now) put it in.
    names = {(x["site"], x["id"]): x["name"] for x in locations(conn)}
    where = current_locations(conn, "sensor", now_ms)
    return Overview(
        now=now_ms,
        gateways=gateways,
        tiles=[_located(t, where, names) for t in tiles],
        sites=[SiteCounts(site=name, **numbers) for name, numbers in counts.items()],
    )
