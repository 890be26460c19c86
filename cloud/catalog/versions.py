"""What every versioned master-data write shares: the stamp of a version, the reason, the version check.

Master data is never edited in place (DESIGN.md: nothing edited or lost): a
change adds the record's next version with who, when and why, and the
highest version is the one in force.  A writer may say which version it
changed (``if_version``), so two people editing the same product cannot
silently overwrite each other: the second gets a :class:`Conflict` (409).
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Select, Table, and_, func, select

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.identity.users import UserInputError, checked_text

__all__ = ["MAX_REASON", "Conflict", "check_reason", "in_force", "next_version", "stamp", "stamp_of"]

MAX_REASON = 1000


class Conflict(UserInputError):
    """The record changed since the writer read it: a 409 to an API caller."""


def check_reason(reason: object) -> str:
    """Why the change was made: required (an auditor asks), at most ``MAX_REASON`` characters."""
    text = checked_text("reason", reason, max_len=MAX_REASON).strip()
    if not text:
        raise UserInputError("reason", "must say why the change is made")
    return text


def next_version(current: int | None, if_version: int | None, what: str) -> int:
    """The version to write after ``current`` (None: the record is new), checked against ``if_version``."""
    if if_version is not None and if_version != (current or 0):
        found = f"version {current}" if current else "no version yet"
        problem = f"{what} has {found}, not {if_version}: read it again and redo the change"
        raise Conflict("if_version", problem)
    return (current or 0) + 1


def stamp(version: int, *, by: Actor, now: datetime.datetime, reason: str, retired: bool) -> dict[str, Any]:
    return {
        "version": version, "changed_at": now, "changed_by": by.name, "changed_by_id": by.id,
        "reason": reason, "retired": retired,
    }  # fmt: skip


def in_force(table: Table, keys: tuple[str, ...]) -> Select[Any]:
    """Every record's highest version (filter and order it further); ``keys`` name a record."""
    top = (
        select(*(table.c[k] for k in keys), func.max(table.c.version).label("top"))
        .group_by(*(table.c[k] for k in keys))
        .subquery()
    )
    same = [table.c[k] == top.c[k] for k in keys]
    return select(table).join(top, and_(*same, table.c.version == top.c.top))


def stamp_of(row: Any) -> dict[str, Any]:
    """The version fields of a stored row, as the API and the audit trail show them."""
    return {
        "version": row.version, "changed_at": row.changed_at.isoformat(), "changed_by": row.changed_by,
        "reason": row.reason, "retired": bool(row.retired),
    }  # fmt: skip
