"""A QA case's evidence: what it is judged on, frozen when each alert joins it (issue 16).

Why a snapshot and not a lookup when the case is read: the limits of a temperature class and a
sensor's calibration are master data that change (a class tightened, a new certificate recorded), and
QA decides on what was in force *then*.  So for each alert placed into a case this records, as
canonical JSON text (RFC 8785: the same bytes on both dialects, the numbers as the edge sent them):

* the alert: gateway, id, rule, severity, time, message;
* the edge's evidence for it: the excursion's start (and end once known), peak, min, max, time-weighted
  mean, MKT, seconds out of range, samples, unit, and the limits the gateway judged it by;
* where: the site and the location the sensor was placed at when it began;
* the sensor's calibration in force then (the newest certificate calibrated on or before that day),
  and whether it was overdue.

The excursion's figures go on changing while it lasts (the edge sends ``updated`` and ``cleared``
steps of the alert); the case page reads the newest of them from the alerts themselves
(:func:`latest_figures`), and a signature signs those too, so a signature given while the room was
still warming no longer matches once the final figures arrive.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import rfc8785
from sqlalchemy import Connection, Table, and_, func, insert, select

from coldgate.cloud.alerts.case_opening import CaseAlert
from coldgate.cloud.catalog.placements import location_at
from coldgate.cloud.db.models import Alert, Calibration, GatewayEnrolment, QaCaseAlert, QaCaseEvidence

__all__ = ["evidence_of", "latest_figures", "take_evidence"]

_evidence: Table = QaCaseEvidence.__table__  # type: ignore[assignment]
_alerts: Table = Alert.__table__  # type: ignore[assignment]
_folded: Table = QaCaseAlert.__table__  # type: ignore[assignment]


def _calibration(conn: Connection, gateway: str, sensor: str, at_ms: int) -> dict[str, Any] | None:
    day = datetime.datetime.fromtimestamp(at_ms / 1000, datetime.UTC).date()
    c = Calibration
    row = conn.execute(
        select(c.certificate, c.calibrated_on, c.accuracy, c.next_due)
        .where(c.gateway == gateway, c.sensor == sensor, c.calibrated_on <= day)
        .order_by(c.calibrated_on.desc(), c.certificate)
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"certificate": row.certificate, "calibrated_on": row.calibrated_on.isoformat(),
            "accuracy": row.accuracy, "next_due": row.next_due.isoformat(),
            "overdue": row.next_due < day}  # fmt: skip


def take_evidence(
    conn: Connection, case_id: str, alert: CaseAlert, evidence: dict[str, Any], now: datetime.datetime
) -> dict[str, Any]:
    """Record the snapshot for ``alert`` (with the edge's ``evidence`` of its raised step) on the case;
    the snapshot."""
    start = int(evidence.get("start") or alert.ts)
    g = GatewayEnrolment
    site = conn.execute(select(g.site).where(g.gateway == alert.gateway)).scalar()
    sensor = alert.subject if alert.subject_type == "sensor" else None
    body = {
        "alert": {"gateway": alert.gateway, "alert_id": alert.alert_id, "rule": alert.rule,
                  "severity": alert.severity, "ts": alert.ts, "message": alert.message},
        "edge_evidence": evidence,
        "site": site,
        "location": location_at(conn, alert.gateway, "sensor", sensor, start) if sensor else None,
        "calibration": _calibration(conn, alert.gateway, sensor, start) if sensor else None,
    }  # fmt: skip
    text = rfc8785.dumps(body).decode("utf-8")
    e = _evidence.c
    seq = conn.execute(select(func.coalesce(func.max(e.seq), 0)).where(e.case_id == case_id)).scalar_one()
    conn.execute(insert(_evidence), {"case_id": case_id, "seq": seq + 1, "taken_at": now, "body": text})
    return body


def evidence_of(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The case's snapshots, oldest first, each with its number and time."""
    e = _evidence.c
    rows = conn.execute(select(_evidence).where(e.case_id == case_id).order_by(e.seq))
    return [{"seq": r.seq, "taken_at": r.taken_at, **json.loads(r.body)} for r in rows]


def latest_figures(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """For each alert of the case, its newest step (raised, updated or cleared) and that step's evidence:
    the excursion's figures as they stand."""
    a, f = _alerts.c, _folded.c
    newest = (
        select(a.gateway, a.alert_id, func.max(a.ts).label("ts"))
        .join(_folded, and_(f.gateway == a.gateway, f.alert_id == a.alert_id))
        .where(f.case_id == case_id)
        .group_by(a.gateway, a.alert_id)
        .subquery()
    )
    query = (
        select(a.gateway, a.alert_id, a.action, a.ts, a.evidence)
        .join(
            newest, and_(a.gateway == newest.c.gateway, a.alert_id == newest.c.alert_id, a.ts == newest.c.ts)
        )
        .order_by(a.ts, a.gateway, a.alert_id, a.seq)
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in conn.execute(query):
        found[(row.gateway, row.alert_id)] = {
            "gateway": row.gateway, "alert_id": row.alert_id, "action": row.action, "ts": row.ts,
            "evidence": row.evidence or {},
        }  # fmt: skip
    return list(found.values())
