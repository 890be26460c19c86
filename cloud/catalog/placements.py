"""Where each sensor, reader and scanner serves, from when: placements with validity, and calibrations.

Sensors move.  A placement says that from ``valid_from`` on a device of a
gateway serves a location of the gateway's site (or none: taken out of
service), until its next placement; so where a reading was taken is
:func:`location_at` its time, and moving a sensor never rewrites where its
earlier readings were taken.  Placements only go forward: one before or at
the device's newest is refused (history is corrected by a new record with a
reason, not by inserting into the past).  Calibration certificates are kept
per sensor; the newest one's due date is the sensor's ``calibration_due``,
which the overview turns amber when it has passed.  Every record is
append-only and audited with its reason.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from coldgate.cloud.alerts.cloud_stream import epoch_ms
from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.locations import locations
from coldgate.cloud.catalog.temperature_classes import check_name
from coldgate.cloud.catalog.versions import check_reason
from coldgate.cloud.db.models import Calibration, GatewayEnrolment, Placement, Sensor
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text

__all__ = [
    "DEVICE_KINDS",
    "calibrations",
    "current_locations",
    "location_at",
    "place",
    "placements",
    "record_calibration",
]

DEVICE_KINDS = ("sensor", "reader", "scanner")
_placements: Table = Placement.__table__  # type: ignore[assignment]
_calibrations: Table = Calibration.__table__  # type: ignore[assignment]
#: A placement may be recorded ahead of a planned move, but not further ahead than this.
AHEAD_MS = 7 * 86_400_000


def _site_of(conn: Connection, gateway: str) -> str:
    e = GatewayEnrolment
    site = conn.execute(select(e.site).where(e.gateway == gateway, e.revoked_at.is_(None))).scalar()
    if site is None:
        raise NotFound("gateway", f"no enrolled gateway {gateway!r}")
    return str(site)


def place(
    conn: Connection,
    gateway: str,
    device_kind: str,
    device: str,
    location: str | None,
    valid_from: int,
    *,
    reason: str,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Record that ``device`` serves ``location`` (None: none) from ``valid_from`` (epoch ms) on."""
    if device_kind not in DEVICE_KINDS:
        raise UserInputError("device_kind", f"{device_kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    device = check_name(device)
    site = _site_of(conn, gateway)
    if isinstance(valid_from, bool) or not isinstance(valid_from, int) or valid_from < 0:
        raise UserInputError("valid_from", f"{valid_from!r} is not epoch milliseconds")
    if valid_from > epoch_ms(now) + AHEAD_MS:
        raise UserInputError("valid_from", "is more than 7 days ahead: record a move when it is planned")
    if location is not None:
        location = checked_text("location", location, max_len=64)
        if location not in {x["id"] for x in locations(conn, site=site)}:
            raise UserInputError("location", f"no location {location!r} at site {site!r} (the gateway's)")
    why = check_reason(reason)
    p = _placements
    newest = conn.execute(
        select(p.c.valid_from, p.c.location)
        .where(p.c.gateway == gateway, p.c.device_kind == device_kind, p.c.device == device)
        .order_by(p.c.valid_from.desc())
        .limit(1)
    ).first()
    if newest is not None and valid_from <= newest.valid_from:
        raise UserInputError(
            "valid_from",
            f"{device} already has a placement from {newest.valid_from}: a new one must start later",
        )
    row = {
        "gateway": gateway,
        "device_kind": device_kind,
        "device": device,
        "valid_from": valid_from,
        "site": site,
        "location": location,
        "recorded_at": now,
        "recorded_by": by.name,
        "recorded_by_id": by.id,
        "reason": why,
    }
    conn.execute(insert(p).values(**row))
    if device_kind == "sensor" and valid_from <= epoch_ms(now):
        conn.execute(
            update(Sensor).where(Sensor.gateway == gateway, Sensor.id == device).values(zone=location)
        )
    after = {k: v for k, v in row.items() if k not in ("recorded_at", "recorded_by_id")}
    before = {"location": newest.location, "valid_from": newest.valid_from} if newest is not None else None
    append(
        conn,
        actor=by,
        action="placement.add",
        entity_type="placement",
        entity_id=f"{gateway}/{device_kind}/{device}",
        now=now,
        before=before,
        after=after,
        reason=why,
    )
    return after


def placements(
    conn: Connection, *, gateway: str | None = None, device: str | None = None
) -> list[dict[str, Any]]:
    """Every placement, each with ``valid_to`` (the device's next placement, or None), oldest first."""
    p = _placements
    query = select(p).order_by(p.c.gateway, p.c.device_kind, p.c.device, p.c.valid_from)
    if gateway is not None:
        query = query.where(p.c.gateway == gateway)
    if device is not None:
        query = query.where(p.c.device == device)
    rows = conn.execute(query).all()
    found = []
    for i, row in enumerate(rows):
        following = rows[i + 1] if i + 1 < len(rows) else None
        same = following is not None and (following.gateway, following.device_kind, following.device) == (
            row.gateway, row.device_kind, row.device)  # fmt: skip
        found.append({
            "gateway": row.gateway, "device_kind": row.device_kind, "device": row.device, "site": row.site,
            "location": row.location, "valid_from": row.valid_from,
            "valid_to": following.valid_from if same else None,  # type: ignore[union-attr]
            "recorded_by": row.recorded_by, "reason": row.reason,
        })  # fmt: skip
    return found


def current_locations(conn: Connection, device_kind: str, now_ms: int) -> dict[tuple[str, str], str | None]:
    """(gateway, device) -> the location each device of ``device_kind`` serves at ``now_ms``."""
    p = _placements
    rows = conn.execute(
        select(p.c.gateway, p.c.device, p.c.location)
        .where(p.c.device_kind == device_kind, p.c.valid_from <= now_ms)
        .order_by(p.c.gateway, p.c.device, p.c.valid_from)
    )
    return {(row.gateway, row.device): row.location for row in rows}  # the newest of each wins


def location_at(conn: Connection, gateway: str, device_kind: str, device: str, ts: int) -> str | None:
    """The location ``device`` served at ``ts`` (epoch ms): its newest placement from at or before it."""
    p = _placements
    return conn.execute(
        select(p.c.location)
        .where(
            p.c.gateway == gateway, p.c.device_kind == device_kind, p.c.device == device, p.c.valid_from <= ts
        )
        .order_by(p.c.valid_from.desc())
        .limit(1)
    ).scalar()


def _date(field: str, value: object) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    text = checked_text(field, value, max_len=10)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise UserInputError(field, f"{text!r} is not a date (YYYY-MM-DD)") from None


def record_calibration(
    conn: Connection,
    gateway: str,
    sensor: str,
    fields: dict[str, Any],
    *,
    reason: str,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Keep one certificate (``certificate``, ``calibrated_on``, ``accuracy``, ``next_due``) of a sensor."""
    allowed = ("certificate", "calibrated_on", "accuracy", "next_due")
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise UserInputError(unknown[0], f"is not a calibration field (fields: {', '.join(allowed)})")
    _site_of(conn, gateway)
    sensor = check_name(sensor)
    certificate = checked_text("certificate", fields.get("certificate"), max_len=64).strip()
    if not certificate:
        raise UserInputError("certificate", "must name the certificate")
    calibrated_on = _date("calibrated_on", fields.get("calibrated_on"))
    next_due = _date("next_due", fields.get("next_due"))
    accuracy = checked_text("accuracy", fields.get("accuracy"), max_len=100).strip()
    if not accuracy:
        raise UserInputError("accuracy", "must say how accurate, as the certificate states it (e.g. ±0.5 °C)")
    if calibrated_on > now.date():
        raise UserInputError("calibrated_on", f"{calibrated_on} is in the future")
    if next_due <= calibrated_on:
        raise UserInputError("next_due", f"{next_due} is not after the calibration on {calibrated_on}")
    why = check_reason(reason)
    c = _calibrations
    held = select(c.c.certificate).where(
        c.c.gateway == gateway, c.c.sensor == sensor, c.c.certificate == certificate
    )
    if conn.execute(held).first() is not None:
        raise UserInputError("certificate", f"certificate {certificate!r} of {sensor} is already recorded")
    row = {
        "gateway": gateway, "sensor": sensor, "certificate": certificate, "calibrated_on": calibrated_on,
        "accuracy": accuracy, "next_due": next_due, "recorded_at": now, "recorded_by": by.name,
        "recorded_by_id": by.id, "reason": why,
    }  # fmt: skip
    conn.execute(insert(c).values(**row))
    newest = conn.execute(
        select(c.c.next_due)
        .where(c.c.gateway == gateway, c.c.sensor == sensor)
        .order_by(c.c.calibrated_on.desc())
        .limit(1)
    ).scalar()
    conn.execute(
        update(Sensor).where(Sensor.gateway == gateway, Sensor.id == sensor).values(calibration_due=newest)
    )
    after = {**row, "calibrated_on": calibrated_on.isoformat(), "next_due": next_due.isoformat()}
    for private in ("recorded_at", "recorded_by_id"):
        after.pop(private)
    append(conn, actor=by, action="calibration.add", entity_type="calibration",
           entity_id=f"{gateway}/{sensor}/{certificate}", now=now, after=after, reason=why)  # fmt: skip
    return after


def calibrations(
    conn: Connection, *, gateway: str | None = None, sensor: str | None = None
) -> list[dict[str, Any]]:
    c = _calibrations
    query = select(c).order_by(c.c.gateway, c.c.sensor, c.c.calibrated_on)
    if gateway is not None:
        query = query.where(c.c.gateway == gateway)
    if sensor is not None:
        query = query.where(c.c.sensor == sensor)
    return [
        {
            "gateway": r.gateway,
            "sensor": r.sensor,
            "certificate": r.certificate,
            "calibrated_on": r.calibrated_on.isoformat(),
            "accuracy": r.accuracy,
            "next_due": r.next_due.isoformat(),
            "recorded_by": r.recorded_by,
            "reason": r.reason,
        }
        for r in conn.execute(query)
    ]
