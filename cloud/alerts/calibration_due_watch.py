"""The calibration-due watch, database side: sensors' due dates and the open ``calibration.due`` alerts,
judged (``calibration_due.judge``), rows appended in stream ``cloud`` with the shared locking and
numbering of the cloud's watches (``cloud_stream_watch``)."""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import Connection, Engine, Table, func, insert, select

from coldgate.cloud.alerts.calibration_due import RULE, CalibrationStep, alert_id, calibration_alert, judge
from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.alerts.cloud_stream_watch import in_retried_transaction, lock_gateway, next_cloud_seq
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.contract.items import AlertAction, Severity

__all__ = ["check_calibrations"]

log = logging.getLogger(__name__)
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def _open(conn: Connection, gateways: list[str] | None = None) -> dict[tuple[str, str], Severity]:
    a = _alerts
    newest = (
        select(a.c.gateway, a.c.alert_id, func.max(a.c.seq).label("seq"))
        .where(a.c.stream == CLOUD_STREAM, a.c.rule == RULE)
        .group_by(a.c.gateway, a.c.alert_id)
        .subquery()
    )
    rows = conn.execute(
        select(a.c.gateway, a.c.subject, a.c.action, a.c.severity).join(
            newest,
            (a.c.gateway == newest.c.gateway) & (a.c.stream == CLOUD_STREAM) & (a.c.seq == newest.c.seq),
        )
    )
    return {
        (r.gateway, r.subject): Severity(r.severity)
        for r in rows
        if r.action != str(AlertAction.CLEARED) and (gateways is None or r.gateway in gateways)
    }


def _sensors(
    conn: Connection, gateways: list[str] | None = None
) -> list[tuple[str, str, datetime.date | None]]:
    s = models.Sensor
    query = select(s.gateway, s.id, s.calibration_due).order_by(s.gateway, s.id)
    if gateways is not None:
        query = query.where(s.gateway.in_(gateways))
    return [(r.gateway, r.id, r.calibration_due) for r in conn.execute(query)]


def check_calibrations(engine: Engine, now: datetime.datetime, warn_days: int) -> list[CalibrationStep]:
    return in_retried_transaction(engine, lambda conn: _check(conn, now, warn_days), "calibration watch")


def _check(conn: Connection, now: datetime.datetime, warn_days: int) -> list[CalibrationStep]:
    today = now.date()
    planned = judge(_sensors(conn), _open(conn), today, warn_days)
    taken: list[CalibrationStep] = []
    for gateway in sorted({step.gateway for step in planned}):
        lock_gateway(conn, gateway)
        fresh = judge(_sensors(conn, [gateway]), _open(conn, [gateway]), today, warn_days)
        seq = next_cloud_seq(conn, gateway)
        for step in fresh:
            conn.execute(
                insert(_alerts), [item_row(gateway, CLOUD_STREAM, calibration_alert(step, seq, now, today))]
            )
            seq += 1
            log.info("gateway %s: %s %s (%s)", gateway, alert_id(step.sensor), step.action, step.severity)
        taken.extend(fresh)
    return taken
