"""Archiving old months of readings on PostgreSQL: each month's partition packed into ``reading_packs``
(migration 0031), proven whole by a hash, then detached and dropped, in one transaction.

GSP keeps records for years (at least five; longer for devices and implants) while the live path only ever
touches the last weeks.  A live reading costs its heap row and two index entries, about 190 B; packed, a
sensor's day is one row of arrays that PostgreSQL compresses (``python -m bench.archive`` measures both).
Nothing is deleted: every column of every reading is in its pack, the reports read packs through the same
selection as live rows (``cloud/db/selections.py``, the ``archived_readings`` view), and the month's
SHA-256 (over its readings in a fixed order and text form) is computed from the partition before and from
the packs after; if they differ, the transaction rolls back and the month stays as it was.  The archive is
a record (who, when, the hashes, the bytes before and after) and an audit entry, in the same transaction.

Kept in PostgreSQL rather than exported (to Parquet, say): every query of the reports keeps working on
archived months without a second engine, and backups and the roles cover them as they cover the rest.
Archiving is the schema owner's, like migrating: the service's role may not drop a partition.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, text

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.partitions import partition_name

__all__ = [
    "ARCHIVE_AFTER_MONTHS",
    "ArchiveError",
    "Archived",
    "archivable_months",
    "archive_month",
    "archives",
    "month_digest",
]

#: Months kept live after the current one: a year of readings and the month before, so that the monthly
#: reports and the last year's charts never read packs.
ARCHIVE_AFTER_MONTHS = 13
DAY_MS = 86_400_000
#: The columns of a reading a pack keeps (migration 0031), in the hash's order.
PACKED = (
    "ts", "ts_corrected", "stream", "seq", "boot", "mono", "synced", "value", "unit", "quality", "reason",
)  # fmt: skip


class ArchiveError(Exception):
    """A month that may not or could not be archived; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Archived:
    month: datetime.date
    partition: str
    readings: int
    packs: int
    sha256: str
    bytes_before: int
    bytes_after: int

    @property
    def bytes_per_reading_before(self) -> float:
        return self.bytes_before / max(1, self.readings)

    @property
    def bytes_per_reading_after(self) -> float:
        return self.bytes_after / max(1, self.readings)


def _row_text() -> str:
    """A reading as text, every column, NULL spelled out (``concat_ws`` would drop it)."""
    return " || '|' || ".join(f"coalesce({c}::text, '\\N')" for c in PACKED)


def _digest_sql(source: str) -> str:
    """(count, SHA-256) of the readings ``source`` yields: a hash per sensor, quantity and day over its
    readings in time order, then one over those in key order, so no single string holds a whole month."""
    return f"""
        WITH r AS (SELECT gateway, sensor, quantity, {", ".join(PACKED)}, coalesce(ts_corrected, ts) AS t
                   FROM {source}),
        days AS (
            SELECT gateway, sensor, quantity, t / {DAY_MS} AS d, count(*) AS n,
                   encode(sha256(convert_to(string_agg({_row_text()}, E'\\n' ORDER BY t, stream, seq),
                                            'UTF8')), 'hex') AS h
            FROM r GROUP BY gateway, sensor, quantity, t / {DAY_MS}
        )
        SELECT coalesce(sum(n), 0), encode(sha256(convert_to(coalesce(string_agg(
                   gateway || '|' || sensor || '|' || quantity || '|' || d || '|' || h, E'\\n'
                   ORDER BY gateway, sensor, quantity, d), ''), 'UTF8')), 'hex')
        FROM days
    """


def _packed_source(month: datetime.date) -> str:
    unnest = ", ".join(f"p.{c}" for c in PACKED)
    return (
        f"(SELECT p.gateway, p.sensor, p.quantity, u.* FROM reading_packs AS p "
        f"CROSS JOIN LATERAL unnest({unnest}) AS u({', '.join(PACKED)}) "
        f"WHERE p.month = DATE '{month.isoformat()}') AS packed"
    )


def month_digest(conn: Connection, month: datetime.date, *, packed: bool = False) -> tuple[int, str]:
    """(readings, SHA-256) of ``month``: of its live partition, or with ``packed`` of its packs."""
    source = _packed_source(month) if packed else partition_name(month)
    count, digest = conn.execute(text(_digest_sql(source))).one()
    return int(count), str(digest)


def _first_of_month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def _months_before(day: datetime.date, months: int) -> datetime.date:
    index = day.year * 12 + day.month - 1 - months
    return datetime.date(index // 12, index % 12 + 1, 1)


def _live_months(conn: Connection) -> list[datetime.date]:
    """The monthly partitions attached to ``readings`` (not the DEFAULT one)."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'readings' AND c.relname ~ '^readings_[0-9]{4}_[0-9]{2}$'"
        )
    ).scalars()
    return sorted(datetime.date(int(n[9:13]), int(n[14:16]), 1) for n in names)


def archivable_months(
    conn: Connection, today: datetime.date, after_months: int = ARCHIVE_AFTER_MONTHS
) -> list[datetime.date]:
    """Live months older than ``after_months`` before this one, oldest first."""
    if conn.dialect.name != "postgresql":
        return []
    before = _months_before(_first_of_month(today), after_months)
    return [month for month in _live_months(conn) if month < before]


def _size(conn: Connection, relation: str) -> int:
    size = conn.execute(text("SELECT pg_total_relation_size(CAST(:r AS regclass))"), {"r": relation})
    return int(size.scalar_one())


def archive_month(
    conn: Connection,
    month: datetime.date,
    *,
    now: datetime.datetime,
    actor: Actor,
    after_months: int = ARCHIVE_AFTER_MONTHS,
) -> Archived:
    """Pack ``month``'s readings, check the packs hold exactly them, drop its partition, record it; all in
    ``conn``'s transaction (the caller commits).  Refused (``ArchiveError``, nothing changed) on SQLite, for
    a month not yet ``after_months`` old or not live, and when the hashes differ."""
    if conn.dialect.name != "postgresql":
        raise ArchiveError("archiving needs PostgreSQL: SQLite keeps its readings in one table, not by month")
    month = _first_of_month(month)
    name = partition_name(month)
    if month not in archivable_months(conn, now.date(), after_months):
        live = month in _live_months(conn)
        why = (
            f"it is not {after_months} months old yet (the newest month that may be archived is "
            f"{_months_before(_first_of_month(now.date()), after_months + 1):%Y-%m})"
            if live
            else "it has no live partition (archived already, or never held readings)"
        )
        raise ArchiveError(f"{month:%Y-%m} cannot be archived: {why}")
    readings, digest = month_digest(conn, month)
    bytes_before = _size(conn, name)
    packs_before = _size(conn, "reading_packs")
    group = "gateway, sensor, quantity, coalesce(ts_corrected, ts) / :day * :day"
    aggregated = ", ".join(f"array_agg({c} ORDER BY coalesce(ts_corrected, ts), stream, seq)" for c in PACKED)
    packs = conn.execute(
        text(
            f"INSERT INTO reading_packs (gateway, sensor, quantity, day, month, t_first, t_last, count, "
            f"{', '.join(PACKED)}) "
            f"SELECT {group}, :month, min(coalesce(ts_corrected, ts)), max(coalesce(ts_corrected, ts)), "
            f"count(*), {aggregated} FROM {name} GROUP BY {group}"
        ),
        {"day": DAY_MS, "month": month},
    ).rowcount
    packed_count, packed_digest = month_digest(conn, month, packed=True)
    if (packed_count, packed_digest) != (readings, digest):
        raise ArchiveError(
            f"{month:%Y-%m} was not archived: its {readings} readings hash to {digest}, the packs' "
            f"{packed_count} to {packed_digest}"
        )
    bytes_after = _size(conn, "reading_packs") - packs_before
    conn.execute(text(f"ALTER TABLE readings DETACH PARTITION {name}"))
    conn.execute(text(f"DROP TABLE {name}"))
    done = Archived(month, name, readings, packs, digest, bytes_before, bytes_after)
    conn.execute(
        text(
            "INSERT INTO reading_archives (month, partition, readings, packs, sha256, sha256_packed, "
            "bytes_before, bytes_after, archived_at, archived_by) VALUES (:month, :partition, :readings, "
            ":packs, :sha256, :sha256, :bytes_before, :bytes_after, :at, :by)"
        ),
        {**asdict(done), "at": now, "by": actor.name},
    )
    append(
        conn, actor=actor, action="readings.archived", entity_type="readings_month",
        entity_id=f"{month:%Y-%m}", now=now,
        after={"readings": readings, "packs": packs, "sha256": digest, "partition": name,
               "bytes_before": bytes_before, "bytes_after": bytes_after},
    )  # fmt: skip
    return done


def archives(conn: Connection) -> list[Archived]:
    """Every archived month, oldest first."""
    rows = conn.execute(
        text(
            "SELECT month, partition, readings, packs, sha256, bytes_before, bytes_after "
            "FROM reading_archives ORDER BY month"
        )
    ).all()
    return [Archived(*row) for row in rows]
