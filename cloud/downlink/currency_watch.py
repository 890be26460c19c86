"""The ``downlink.behind`` watch, database side: read where gateways stand, lock, number, append alerts.

Like the other cloud watches (``cloud/alerts/stream_stuck_watch.py``): an
unlocked read finds the gateways that need an alert raised or cleared
(usually none); each is locked, re-read and judged again, and the rows are
appended in stream ``cloud`` with the shared numbering.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import Connection, Engine, Table, func, insert, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM, epoch_ms
from coldgate.cloud.alerts.cloud_stream_watch import in_retried_transaction, lock_gateway, next_cloud_seq
from coldgate.cloud.api.queries_downlink import downlink_state
from coldgate.cloud.db import models
from coldgate.cloud.db.writes import item_row
from coldgate.cloud.downlink.currency import RULE, ClearBehind, RaiseBehind, behind_alert, judge
from coldgate.contract.items import AlertAction

__all__ = ["check_downlink", "open_behind_alerts"]

log = logging.getLogger(__name__)
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def open_behind_alerts(conn: Connection, gateways: list[str] | None = None) -> set[tuple[str, str]]:
    """(gateway, kind) of every ``downlink.behind`` alert whose newest step is not a clearing."""
    a = _alerts
    newest = (
        select(a.c.gateway, a.c.alert_id, func.max(a.c.seq).label("seq"))
        .where(a.c.stream == CLOUD_STREAM, a.c.rule == RULE)
        .group_by(a.c.gateway, a.c.alert_id)
        .subquery()
    )
    rows = conn.execute(
        select(a.c.gateway, a.c.alert_id, a.c.action).join(
            newest,
            (a.c.gateway == newest.c.gateway) & (a.c.stream == CLOUD_STREAM) & (a.c.seq == newest.c.seq),
        )
    )
    return {
        (row.gateway, row.alert_id.removeprefix(f"{RULE}."))
        for row in rows
        if row.action != str(AlertAction.CLEARED) and (gateways is None or row.gateway in gateways)
    }


def check_downlink(
    engine: Engine, now: datetime.datetime, behind_after_s: float
) -> list[RaiseBehind | ClearBehind]:
    return in_retried_transaction(engine, lambda conn: _check(conn, now, behind_after_s), "downlink watch")


def _check(
    conn: Connection, now: datetime.datetime, behind_after_s: float
) -> list[RaiseBehind | ClearBehind]:
    now_ms = epoch_ms(now)
    planned = judge(downlink_state(conn), open_behind_alerts(conn), now_ms, behind_after_s)
    taken: list[RaiseBehind | ClearBehind] = []
    for gateway in sorted({a.currency.gateway if isinstance(a, RaiseBehind) else a.gateway for a in planned}):
        lock_gateway(conn, gateway)
        fresh = judge(
            downlink_state(conn, [gateway]), open_behind_alerts(conn, [gateway]), now_ms, behind_after_s
        )
        seq = next_cloud_seq(conn, gateway)
        for action in fresh:
            conn.execute(insert(_alerts), [item_row(gateway, CLOUD_STREAM, behind_alert(action, seq, now))])
            seq += 1
            if isinstance(action, RaiseBehind):
                log.warning(
                    "gateway %s behind on %s: %s", gateway, action.currency.kind, action.currency.detail
                )
            else:
                log.info("gateway %s current on %s again", gateway, action.kind)
        taken.extend(fresh)
    return taken
