"""The gateway registry: who is out there, since when, online or not, and how it is doing.

Every message from a gateway proves it alive (``last_seen``); statuses also
carry its state (birth and heartbeat: online; clean shutdown or the broker's
last will: offline), its clock and its backlog, kept whole in
``last_status``.  Statuses are retained, so ingest sees an old one again on
every reconnect, and a last will carries the time it was *registered*
(connect time), older than the heartbeats after it.  Hence: a will of the
stored boot always applies (the broker publishes it only when the connection
died), an earlier boot's will never does; any other status applies only if it
is not older than the one stored, whatever its boot (a late re-delivery of
the last boot's heartbeat must not undo the new boot's birth).  A batch means
the gateway is connected, so it sets online too.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db.models import Gateway, Sensor, Site
from coldgate.contract.uplink import State, Status

__all__ = ["apply_status", "note_sensors", "touch_gateway"]


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _upsert(
    conn: Connection,
    site: str,
    gateway: str,
    now: datetime.datetime,
    online: bool,
    *,
    seen: bool = True,
    **values: Any,
) -> Any:
    """Create or update the gateway row; ``state_since`` moves only when ``online`` changes.

    Returns the row as it was (None for a new gateway).
    """
    insert = _insert(conn)
    conn.execute(insert(Site).values(id=site).on_conflict_do_nothing())
    conn.execute(
        insert(Gateway)
        .values(id=gateway, site=site, first_seen=now, last_seen=now, online=online, state_since=now)
        .on_conflict_do_nothing()
    )
    stored = conn.execute(
        select(Gateway.online, Gateway.boot, Gateway.last_status)
        .where(Gateway.id == gateway)
        .with_for_update()
    ).one()
    values.update(site=site, online=online)
    if seen:
        values["last_seen"] = now
    if stored.online != online:
        values["state_since"] = now
    conn.execute(update(Gateway).where(Gateway.id == gateway).values(**values))
    return stored


def touch_gateway(conn: Connection, site: str, gateway: str, now: datetime.datetime) -> None:
    """A batch arrived: the gateway exists, is connected, and was seen now."""
    _upsert(conn, site, gateway, now, True)


def apply_status(
    conn: Connection, site: str, status: Status, now: datetime.datetime, *, retained: bool = False
) -> bool:
    """Record a status; False when it is older than the stored one (then only last_seen moves).

    A ``retained`` status is the broker's copy, delivered because ingest
    (re)subscribed: it proves nothing about the gateway being alive now, so
    it never moves ``last_seen`` (else a cloud restart would close real
    unheard-gateway gaps).
    """
    # Locked before comparing: two workers with two statuses of one gateway must not both win.
    stored = conn.execute(
        select(Gateway.online, Gateway.boot, Gateway.last_status)
        .where(Gateway.id == status.gateway)
        .with_for_update()
    ).first()
    previous_ts = (stored.last_status or {}).get("ts") if stored is not None else None
    if stored is None:
        newer = True
    elif status.will:
        # The broker publishes a will only when a connection died, so it is news, however old its
        # ts (taken at connect); but the will of an earlier boot's connection is history.
        newer = stored.boot in (None, status.boot)
    else:
        newer = not isinstance(previous_ts, int) or status.ts >= previous_ts
    if not newer:
        assert stored is not None
        if not retained:
            _upsert(conn, site, status.gateway, now, stored.online)
        return False
    _upsert(
        conn,
        site,
        status.gateway,
        now,
        status.state is State.ONLINE,
        seen=not retained,
        last_status=_merged(stored, status),
        boot=status.boot,
    )
    return True


def _merged(stored: Any, status: Status) -> dict[str, Any]:
    """The status to keep: a last will carries only state and time, so it is laid over the last
    full status of the same boot (software, clock, backlog and alarm stay visible while offline,
    which is when people look for them)."""
    new: dict[str, Any] = msgspec.to_builtins(status)
    previous = stored.last_status if stored is not None else None
    if status.will and isinstance(previous, dict) and previous.get("boot") == status.boot:
        return {**previous, **new}
    return new


def note_sensors(conn: Connection, gateway: str, sensors: Iterable[str]) -> None:
    """Sensors appear in the registry the first time one of their readings is stored."""
    rows = [{"gateway": gateway, "id": sensor} for sensor in sorted(set(sensors))]
    if rows:
        conn.execute(_insert(conn)(Sensor).on_conflict_do_nothing(), rows)
