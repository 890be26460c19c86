"""What the cloud's operators watch in Prometheus (``GET /metrics``): figures read from the database at
each scrape, so every process of the cloud (API, scheduler, ingest workers) is seen in them, plus the
in-process ingest counters where the scraped process runs ingest.

Each figure is one cheap query over small tables (cases and their steps, the notification queue, dead
letters, the gateways' last status); nothing reads ``readings`` or the hourly summaries, which grow with
years of data and have no index by hour alone (a scrape every 15 s must not scan them).  How fast
readings are stored is the ingest counters' (``rate()`` in Prometheus).  The families are built by a
pure function from the figures, so the mapping is tested without a database.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Connection, func, select

from coldgate.cloud.alerts.case_flow import FINAL, CaseState, is_overdue
from coldgate.cloud.alerts.case_steps import latest_steps
from coldgate.cloud.alerts.notify_queue import pending_where
from coldgate.cloud.db.models import (
    DeadLetter,
    Gateway,
    Notification,
    QaCase,
)
from coldgate.cloud.identity.users import aware
from coldgate.cloud.ingest.metrics import ingest_families

__all__ = ["CloudFigures", "cloud_figures", "families"]

#: The ``worker`` label of the ingest workers ``cloud run`` runs in its own process (their counters
#: summed); separate ``cloud ingest`` workers label theirs with their client ids.
INGEST_HERE = "cloud-run"


@dataclass(frozen=True, slots=True)
class GatewayFigures:
    online: bool
    last_seen_age_s: float
    unacked_items: int | None
    oldest_unacked_age_s: float | None


@dataclass(frozen=True, slots=True)
class CloudFigures:
    """One scrape's figures."""

    #: Open (not closed or cancelled) QA cases by state, and how many of them are overdue.
    cases: dict[str, int]
    cases_overdue: int
    #: Notifications queued and not yet accepted by a mail server or webhook, and the oldest one's age.
    notifications_pending: int
    notifications_oldest_s: float
    dead_letters: int
    dead_letters_received: int
    gateways: dict[str, GatewayFigures] = field(default_factory=dict)
    #: The scraped process's own ingest counters (``IngestStats``), when it runs ingest.
    ingest: Mapping[str, int] | None = None


def cloud_figures(conn: Connection, now: datetime.datetime, ingest: Mapping[str, int] | None) -> CloudFigures:
    latest = latest_steps().subquery()
    cases: dict[str, int] = {}
    overdue = 0
    rows = conn.execute(
        select(QaCase.opened_at, latest.c.state)
        .join(latest, latest.c.case_id == QaCase.id)
        .where(latest.c.state.not_in([s.value for s in FINAL]))
    ).all()
    for opened_at, state in rows:
        cases[state] = cases.get(state, 0) + 1
        overdue += is_overdue(CaseState(state), aware(opened_at), now)
    pending, oldest = conn.execute(
        select(func.count(), func.min(Notification.queued_at)).where(*pending_where(now))
    ).one()
    letters, repeats = conn.execute(
        select(func.count(), func.coalesce(func.sum(DeadLetter.repeats), 0))
    ).one()
    gateways = {
        row.id: _gateway(row.online, row.last_seen, row.last_status, now)
        for row in conn.execute(select(Gateway.id, Gateway.online, Gateway.last_seen, Gateway.last_status))
    }
    return CloudFigures(
        cases=cases,
        cases_overdue=overdue,
        notifications_pending=int(pending),
        notifications_oldest_s=0.0 if oldest is None else max(0.0, (now - aware(oldest)).total_seconds()),
        dead_letters=int(letters),
        dead_letters_received=int(letters) + int(repeats),
        gateways=gateways,
        ingest=ingest,
    )


def _gateway(
    online: bool, last_seen: datetime.datetime, status: dict[str, Any] | None, now: datetime.datetime
) -> GatewayFigures:
    status = status or {}
    last_seq, acked = status.get("last_seq"), status.get("last_acked_seq")
    unacked = max(0, last_seq - (acked or 0)) if isinstance(last_seq, int) else None
    oldest = status.get("oldest_unacked")
    oldest_age = max(0.0, now.timestamp() - oldest / 1000) if isinstance(oldest, int) else None
    return GatewayFigures(
        bool(online), max(0.0, (now - aware(last_seen)).total_seconds()), unacked, oldest_age
    )


def families(figures: CloudFigures) -> list[Metric]:
    """The metric families of one scrape's figures (pure)."""
    out: list[Metric] = []
    cases = GaugeMetricFamily("coldgate_cloud_cases_open", "QA cases not closed or cancelled, by state.",
                              labels=["state"])  # fmt: skip
    for state in CaseState:
        if state not in FINAL:
            cases.add_metric([state.value], figures.cases.get(state.value, 0))
    out.append(cases)
    for name, what, value in (
        ("coldgate_cloud_cases_overdue", "Open QA cases past their time to acknowledge or decide.",
         figures.cases_overdue),
        ("coldgate_cloud_notifications_pending", "Notifications queued and not yet accepted.",
         figures.notifications_pending),
        ("coldgate_cloud_notifications_oldest_pending_seconds", "Age of the oldest pending notification.",
         figures.notifications_oldest_s),
        ("coldgate_cloud_dead_letters", "Messages ingest could not store (kept).", figures.dead_letters),
    ):  # fmt: skip
        out.append(GaugeMetricFamily(name, what, value=value))
    what = "Messages refused and kept, repeats included."
    out.append(
        CounterMetricFamily("coldgate_cloud_dead_letters_received", what, value=figures.dead_letters_received)
    )
    by_gateway = ["gateway"]
    online = GaugeMetricFamily(
        "coldgate_cloud_gateway_online", "1 while the gateway is online.", labels=by_gateway
    )
    seen = GaugeMetricFamily("coldgate_cloud_gateway_last_seen_age_seconds", "Since the cloud last heard it.",
                             labels=by_gateway)  # fmt: skip
    unacked = GaugeMetricFamily("coldgate_cloud_gateway_unacked_items",
                                "Items the gateway assigned and the cloud has not acknowledged (its status).",
                                labels=by_gateway)  # fmt: skip
    oldest = GaugeMetricFamily("coldgate_cloud_gateway_oldest_unacked_age_seconds",
                               "Age of the gateway's oldest unacknowledged item, per its status.",
                               labels=by_gateway)  # fmt: skip
    for gateway, found in sorted(figures.gateways.items()):
        online.add_metric([gateway], int(found.online))
        seen.add_metric([gateway], found.last_seen_age_s)
        if found.unacked_items is not None:
            unacked.add_metric([gateway], found.unacked_items)
        if found.oldest_unacked_age_s is not None:
            oldest.add_metric([gateway], found.oldest_unacked_age_s)
    out += [online, seen, unacked, oldest]
    if figures.ingest is not None:
        out += ingest_families(figures.ingest, INGEST_HERE)
    return out
