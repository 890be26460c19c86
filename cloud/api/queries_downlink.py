"""Where each enrolled gateway stands with the documents the cloud published to it: one read for the
gateways page, ``GET /gateways/{gateway}/downlink`` and the ``downlink.behind`` watch."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, select

from coldgate.cloud.alerts.cloud_stream import epoch_ms
from coldgate.cloud.db.models import DownlinkDocument, Gateway, GatewayEnrolment
from coldgate.cloud.downlink.currency import Currency, currency
from coldgate.cloud.downlink.versions import KINDS

__all__ = ["downlink_state"]


def downlink_state(conn: Connection, gateways: list[str] | None = None) -> list[Currency]:
    """Per enrolled gateway (only ``gateways`` when given) and document kind, by gateway then kind."""
    e = GatewayEnrolment
    enrolled = select(e.gateway).where(e.revoked_at.is_(None)).order_by(e.gateway)
    if gateways is not None:
        enrolled = enrolled.where(e.gateway.in_(gateways))
    names = list(conn.execute(enrolled).scalars())
    d = DownlinkDocument
    published: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for row in conn.execute(select(d.gateway, d.kind, d.version, d.issued).where(d.gateway.in_(names))):
        published[(row.gateway, row.kind)].append((row.version, epoch_ms(row.issued)))
    rows = conn.execute(select(Gateway.id, Gateway.last_status).where(Gateway.id.in_(names)))
    statuses = {row.id: row.last_status for row in rows if isinstance(row.last_status, dict)}
    return [
        currency(name, kind, published[(name, kind)], statuses.get(name)) for name in names for kind in KINDS
    ]
