"""The rows the cloud writes itself, database side: the locking, numbering and retrying every watch shares.

Each watch decides per gateway under that gateway's row lock, numbers its
rows max+1 in stream ``cloud`` (gaps and alerts share one numbering), and
retries the whole check when another run numbered the same row first; see
:mod:`coldgate.cloud.alerts.gateway_unheard_watch` for why this is enough.
The pure half is :mod:`coldgate.cloud.alerts.cloud_stream`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine, Table, and_, func, select, union_all, update
from sqlalchemy.exc import IntegrityError, OperationalError

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.db import models

__all__ = ["ATTEMPTS", "in_retried_transaction", "lock_gateway", "next_cloud_seq"]

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Tries of the whole check on a key collision or a lock conflict before giving up until the next run.
ATTEMPTS = 3

_gateways: Table = models.Gateway.__table__  # type: ignore[assignment]
_gaps: Table = models.Gap.__table__  # type: ignore[assignment]
_alerts: Table = models.Alert.__table__  # type: ignore[assignment]


def in_retried_transaction(engine: Engine, check: Callable[[Connection], T], what: str) -> T:
    """``check`` in a transaction of its own, tried again (up to ``ATTEMPTS``) on a collision:
    another run numbered the same cloud row first, or a lock conflict rolled this one back."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with engine.begin() as conn:
                return check(conn)
        except (IntegrityError, OperationalError) as exc:
            if attempt == ATTEMPTS:
                raise
            log.info("%s: attempt %d collided (%s); retrying", what, attempt, exc.orig)
    raise AssertionError("unreachable")  # pragma: no cover


def lock_gateway(conn: Connection, gateway: str) -> None:
    """Hold the gateway's row until commit, so ingest's update of it waits for this decision."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(_gateways.c.id).where(_gateways.c.id == gateway).with_for_update())
    else:
        # SQLite has no row locks; a write takes the database write lock, and later reads in this
        # transaction then see every commit made before it.
        conn.execute(update(_gateways).where(_gateways.c.id == gateway).values(online=_gateways.c.online))


def next_cloud_seq(conn: Connection, gateway: str) -> int:
    """One past the highest cloud seq of ``gateway`` over gaps and alerts (they share one numbering)."""
    highest = union_all(
        *(
            select(func.max(table.c.seq).label("seq")).where(
                and_(table.c.gateway == gateway, table.c.stream == CLOUD_STREAM)
            )
            for table in (_gaps, _alerts)
        )
    ).subquery()
    top = conn.execute(select(func.max(highest.c.seq))).scalar_one()
    return (top or 0) + 1
