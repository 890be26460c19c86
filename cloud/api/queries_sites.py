"""Sites and their time zones, read for the API (``GET /sites``) and for every page that shows times.

Pages show each row's times in the zone of the site it belongs to, and rows
name their gateway, not their site: :class:`ZoneBook` answers both questions
from two small reads (sites, and gateways with their enrolments), done once
per page rather than once per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from coldgate.cloud.api.schemas import SiteEntry
from coldgate.cloud.db.models import Gateway, GatewayEnrolment, Site

__all__ = ["DEFAULT_ZONE", "ZoneBook", "sites", "zone_book"]

#: What a site without a zone of its own shows (the column's server default).
DEFAULT_ZONE = "UTC"


@dataclass(frozen=True, slots=True)
class ZoneBook:
    """Site -> IANA zone name and gateway -> site; anything unknown reads as UTC."""

    site_zones: dict[str, str] = field(default_factory=dict)
    gateway_sites: dict[str, str] = field(default_factory=dict)

    def of_site(self, site: str | None) -> str:
        return self.site_zones.get(site or "", DEFAULT_ZONE)

    def of_gateway(self, gateway: str | None) -> str:
        return self.of_site(self.gateway_sites.get(gateway or ""))


def sites(conn: Connection) -> list[SiteEntry]:
    """Every site the cloud knows, by id: those a gateway reported from, and those only enrolled yet
    (which show the default zone until one is set)."""
    found = {
        row.id: SiteEntry(id=row.id, name=row.name, time_zone=row.time_zone or DEFAULT_ZONE)
        for row in conn.execute(select(Site.id, Site.name, Site.time_zone))
    }
    for (site,) in conn.execute(select(GatewayEnrolment.site).distinct()):
        found.setdefault(site, SiteEntry(id=site, name=None, time_zone=DEFAULT_ZONE))
    return [found[key] for key in sorted(found)]


def zone_book(conn: Connection) -> ZoneBook:
    zones = {row.id: row.time_zone or DEFAULT_ZONE for row in conn.execute(select(Site.id, Site.time_zone))}
    enrolled = conn.execute(select(GatewayEnrolment.gateway, GatewayEnrolment.site))
    gateway_sites = {row.gateway: row.site for row in enrolled}
    gateway_sites.update({row.id: row.site for row in conn.execute(select(Gateway.id, Gateway.site))})
    return ZoneBook(zones, gateway_sites)
