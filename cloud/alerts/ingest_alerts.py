"""Alerts ingest raises itself, for a person: a conflicting item, a batch refused ahead of the
sequence window, a gateway whose dead letters were capped.

Each is a raised row in the gateway's ``cloud`` stream (numbered like the
watchdogs' rows, under the gateway's row lock).  While one is open (raised,
never cleared) the same cause adds an ``updated`` row at most once per
``quiet_s``, so a flood of refusals is a handful of rows, not one per
message.  Nothing here clears them: that is a person's decision (QA cases
come with the identity and cases issues).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, Table, and_, insert, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM, cloud_item_fields, epoch_ms
from coldgate.cloud.alerts.cloud_stream_watch import lock_gateway, next_cloud_seq
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType

__all__ = ["AHEAD_RULE", "CAPPED_RULE", "CONFLICT_RULE", "raise_for_person"]

CONFLICT_RULE = "stream.conflict"
AHEAD_RULE = "stream.ahead"
CAPPED_RULE = "dead_letters.capped"

_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def raise_for_person(
    conn: Connection,
    *,
    gateway: str,
    rule: str,
    key: str,
    message: str,
    details: dict[str, Any],
    now: datetime.datetime,
    severity: Severity = Severity.WARNING,
    quiet_s: float = 3600.0,
) -> bool:
    """Raise alert ``{rule}.{key}`` of ``gateway``, or update it if open; False when it was
    updated less than ``quiet_s`` ago (nothing written)."""
    alert_id = f"{rule}.{key}"[:64]
    lock_gateway(conn, gateway)
    rows = conn.execute(
        select(_alerts.c.action, _alerts.c.ts)
        .where(
            and_(
                _alerts.c.gateway == gateway,
                _alerts.c.stream == CLOUD_STREAM,
                _alerts.c.alert_id == alert_id,
            )
        )
        .order_by(_alerts.c.seq.desc())
        .limit(1)
    ).first()
    if rows is None or rows.action == str(AlertAction.CLEARED):
        action = AlertAction.RAISED
    elif epoch_ms(now) - rows.ts < quiet_s * 1000:
        return False
    else:
        action = AlertAction.UPDATED
    alert = Alert(
        **cloud_item_fields(next_cloud_seq(conn, gateway), now),
        alert_id=alert_id,
        action=action,
        rule=rule,
        subject_type=SubjectType.GATEWAY,
        subject=gateway,
        severity=severity,
        message=message[:1000],
        evidence=Evidence(details=details),
    )
    conn.execute(insert(_alerts), [item_row(gateway, CLOUD_STREAM, alert)])
    return True
