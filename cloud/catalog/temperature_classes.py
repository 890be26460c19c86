"""Temperature classes, owned by the cloud: versioned, audited, checked exactly as a gateway checks them.

A class is what a gateway judges a room by (limits, pre-alarm band, alarm
delay, hysteresis, MKT window, humidity, excursion budget).  The cloud
stores the fields of the gateway's own ``TemperatureClass`` and checks a new
version with the gateway's converter and ``check_temperature_class``, so a
class the cloud accepts is one every gateway applies, and a mistake is
refused here with the key to fix rather than at a gateway later.
"""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, insert, select

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.catalog.versions import check_reason, in_force, next_version, stamp, stamp_of
from coldgate.cloud.db.models import TemperatureClassVersion
from coldgate.cloud.identity.users import NotFound, UserInputError, checked_text
from coldgate.configfile import ConfigError, convert_document
from coldgate.configtypes import Id
from coldgate.gateway.config import TemperatureClass
from coldgate.gateway.config_checks import check_temperature_class

__all__ = ["check_spec", "class_history", "classes", "put_class"]

_table: Table = TemperatureClassVersion.__table__  # type: ignore[assignment]
_ENTITY = "temperature_class"


def check_name(name: object) -> str:
    text = checked_text("name", name, max_len=64)
    try:
        msgspec.convert(text, Id)
    except msgspec.ValidationError:
        raise UserInputError("name", f"{text!r} is not an id (1-64 of A-Z a-z 0-9 _ . -)") from None
    return text


def check_spec(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` as the gateway would read it (defaults filled in), or a UserInputError naming the key."""
    if not isinstance(spec, dict):
        raise UserInputError("spec", "must be an object of the class's fields")
    if "name" in spec:
        raise UserInputError("spec.name", "the name is the record's key, not a field of its spec")
    try:
        checked = convert_document({"name": name, **spec}, TemperatureClass, "temperature class")
        check_temperature_class(checked, "spec")
    except ConfigError as exc:
        key = exc.key if exc.key.startswith("spec") else f"spec.{exc.key}" if exc.key else "spec"
        raise UserInputError(key, exc.message) from None
    fields = msgspec.to_builtins(checked)
    fields.pop("name")
    return fields


def _record(row: Any) -> dict[str, Any]:
    return {"name": row.name, "description": row.description, "spec": row.spec, **stamp_of(row)}


def classes(conn: Connection, *, retired: bool = False) -> list[dict[str, Any]]:
    """Every class in force (with the retired ones when asked), by name."""
    query = in_force(_table, ("name",)).order_by(_table.c.name)
    if not retired:
        query = query.where(_table.c.retired.is_(False))
    return [_record(row) for row in conn.execute(query)]


def class_history(conn: Connection, name: str) -> list[dict[str, Any]]:
    """Every version of one class, oldest first; NotFound if it never existed."""
    rows = conn.execute(select(_table).where(_table.c.name == name).order_by(_table.c.version)).all()
    if not rows:
        raise NotFound("name", f"no temperature class {name!r}")
    return [_record(row) for row in rows]


def put_class(
    conn: Connection,
    name: str,
    spec: dict[str, Any],
    *,
    description: str = "",
    reason: str,
    retired: bool = False,
    if_version: int | None = None,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    """Add the class's next version (its first makes it) and the audit entry, in ``conn``'s transaction."""
    name = check_name(name)
    fields = check_spec(name, spec)
    description = checked_text("description", description, max_len=1000)
    why = check_reason(reason)
    history = conn.execute(
        select(_table).where(_table.c.name == name).order_by(_table.c.version.desc()).limit(1)
    ).first()
    version = next_version(history.version if history else None, if_version, f"temperature class {name!r}")
    row = {"name": name, "description": description, "spec": fields}
    conn.execute(insert(_table).values(**row, **stamp(version, by=by, now=now, reason=why, retired=retired)))
    stored = select(_table).where(_table.c.name == name, _table.c.version == version)
    after = _record(conn.execute(stored).one())
    append(
        conn, actor=by, action=f"{_ENTITY}.{'create' if history is None else 'update'}", entity_type=_ENTITY,
        entity_id=name, now=now, before=_record(history) if history else None, after=after, reason=why,
    )  # fmt: skip
    return after
