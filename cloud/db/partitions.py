"""Monthly range partitions of ``readings`` on PostgreSQL.

Readings are partitioned by ``ts`` (epoch milliseconds) so old months can be
detached and archived without a bulk DELETE.  A DEFAULT partition catches
anything outside the created months (a gateway with a wild clock, a backlog
from years ago), so an insert never fails for want of a partition.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Connection, text

__all__ = ["ensure_partitions", "month_starts", "partition_name"]

UTC = datetime.UTC
_OWNER_FUNCTION = "coldgate_ensure_readings_partition"


def _epoch_ms(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def _next_month(day: datetime.date) -> datetime.date:
    return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_starts(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    """First days of every month that overlaps [start, end] (both inclusive)."""
    month = datetime.date(start.year, start.month, 1)
    months = []
    while month <= end:
        months.append(month)
        month = _next_month(month)
    return months


def partition_name(month: datetime.date) -> str:
    """``readings_YYYY_MM``: sortable, and says which month it holds."""
    return f"readings_{month.year:04d}_{month.month:02d}"


def ensure_partitions(conn: Connection, start: datetime.date, end: datetime.date) -> list[str]:
    """Create the DEFAULT partition and the monthly partitions covering [start, end].

    Idempotent (IF NOT EXISTS), so a scheduler may call it daily for the months
    ahead.  Returns the names of the monthly partitions covering the range.  A
    month whose rows already sit in the DEFAULT partition cannot be created
    (PostgreSQL refuses); create months ahead of time to avoid that.  No-op on
    other dialects.
    """
    if conn.dialect.name != "postgresql":
        return []
    # From migration 0009 on, the schema owner's SECURITY DEFINER function makes them: the service's
    # role may not, and a partition it made would be its own to change.
    owner_made = conn.execute(text(f"SELECT to_regprocedure('{_OWNER_FUNCTION}(date)')")).scalar() is not None
    if owner_made:
        months = month_starts(start, end)
        for month in months:
            conn.execute(text(f"SELECT {_OWNER_FUNCTION}(:month)"), {"month": month})
        return [partition_name(month) for month in months]
    conn.execute(text("CREATE TABLE IF NOT EXISTS readings_default PARTITION OF readings DEFAULT"))
    names = []
    for month in month_starts(start, end):
        name = partition_name(month)
        low, high = _epoch_ms(month), _epoch_ms(_next_month(month))
        # Bounds are integers we computed, not user input: safe to inline (DDL takes no parameters).
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF readings FOR VALUES FROM ({low}) TO ({high})"
            )
        )
        names.append(name)
    return names
