"""Selections of recorded items that the API's query layer and the reports share: one sensor's readings
by the time they are placed at, the gaps folded from their reports, and the months whose readings were
purged by retention (so a report over such a month says so rather than showing an unexplained silence).

They live below both (the API imports the reports' stores, which cannot import the API back): a report
and a page must place a reading and fold a gap the same way, so there is one selection of each.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Double,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    case,
    false,
    func,
    or_,
    select,
    union_all,
)

from coldgate.cloud.db.models import Gap, GapVerdict, Gateway, Reading, ReadingPurge

__all__ = [
    "READING_COLUMNS",
    "PurgedMonth",
    "folded_gaps",
    "purged_months",
    "purges_overlapping",
    "readings_in",
]

#: The columns of a reading the series, buckets and CSV read (``readings_in`` adds its time ``t``).
READING_COLUMNS = ("ts", "ts_corrected", "stream", "seq", "quantity", "value", "unit", "quality", "reason")


def readings_in(
    gateway: str, sensor: str, start: int, end: int, quantity: str | None, limit: int | None = None
) -> Any:
    """One sensor's readings with start <= time < end, as a subquery with a column ``t`` beside the
    readings' own: the clock-corrected time where the cloud has one (a Pi that booted without NTP
    stamps 1970 until it syncs), else the gateway's ``ts``.

    Two halves put together (UNION ALL), not one range over ``coalesce`` nor an OR: each half is an
    index range, the gateway's time over ``ix_readings_sensor_ts`` for the (nearly all) uncorrected
    readings, the corrected time over the partial index of corrected ones, and each can stop at
    ``limit``.  An OR made PostgreSQL build a bitmap of a whole year's rows just to learn there were
    more than a chart's points (``bench.dashboard``: the one-year chart ten times slower).
    """
    halves = []
    for time_column, which in (
        (Reading.ts, Reading.ts_corrected.is_(None)),
        (Reading.ts_corrected, Reading.ts_corrected.is_not(None)),
    ):
        where = [Reading.gateway == gateway, Reading.sensor == sensor, which]
        where += [time_column >= start, time_column < end]
        if quantity is not None:
            where.append(Reading.quantity == quantity)
        half = select(*(getattr(Reading, c) for c in READING_COLUMNS), time_column.label("t")).where(*where)
        if limit is not None:
            half = select(*half.order_by(time_column).limit(limit).subquery().c)
        halves.append(half)
    halves.append(_archived_in(gateway, sensor, start, end, quantity, limit))
    return union_all(*halves).subquery("in_range")


#: Archived months' readings, unpacked by a view (migration 0031; ``cloud/db/archive.py``), with the bounds
#: of the pack each came from.  Not in the models' metadata: a view, never created from it.
ARCHIVED_READINGS = Table(
    "archived_readings", MetaData(),
    Column("gateway", String), Column("sensor", String), Column("quantity", String),
    Column("t_first", BigInteger), Column("t_last", BigInteger), Column("ts", BigInteger),
    Column("ts_corrected", BigInteger), Column("stream", String), Column("seq", BigInteger),
    Column("value", Double), Column("unit", String), Column("quality", String), Column("reason", Text),
)  # fmt: skip


def _archived_in(
    gateway: str, sensor: str, start: int, end: int, quantity: str | None, limit: int | None
) -> Select[Any]:
    """The third part: archived readings in range, found by their packs' bounds (an index range) and
    then by each one's own time.  Empty until a month is archived, and always on SQLite."""
    packs = ARCHIVED_READINGS.c
    t = func.coalesce(packs.ts_corrected, packs.ts)
    where = [packs.gateway == gateway, packs.sensor == sensor, packs.t_last >= start, packs.t_first < end]
    where += [t >= start, t < end]
    if quantity is not None:
        where.append(packs.quantity == quantity)
    part = select(*(packs[c] for c in READING_COLUMNS), t.label("t")).where(*where)
    if limit is not None:
        part = select(*part.order_by(t).limit(limit).subquery().c)
    return part


@dataclass(frozen=True, slots=True)
class PurgedMonth:
    """A calendar month (UTC) whose readings retention purged (``reading_purges``, ``cloud/db/purge.py``):
    its span in epoch ms [start, end), and the record that says what went, why, when and by whom.

    A report shows it as its own kind of time, never as a monitoring gap: the readings were recorded and
    kept for their whole term, then let go by a rule, and the archive's SHA-256 of them is still on record.
    ``scope`` "all" means every site's readings of the month went, so it concerns every sensor."""

    month: datetime.date
    start: int
    end: int
    scope: str
    readings: int
    sha256: str
    rule: str
    purge_from: datetime.date
    purged_at: datetime.datetime
    purged_by: str

    @property
    def label(self) -> str:
        """The month as people write it: "2026-12"."""
        return f"{self.month:%Y-%m}"

    def note(self) -> str:
        """The sentence a report prints for it: what went, when, by which rule, and the hash to check."""
        return (
            f"Readings of {self.label} were purged by retention on {self.purged_at:%Y-%m-%d} "
            f"({self.rule}; archive SHA-256 {self.sha256[:12]}…, {self.readings} readings): this time is "
            "shown as purged, not as a monitoring gap, and no figure here includes those readings."
        )


def _month_ms(day: datetime.date) -> int:
    return int(datetime.datetime(day.year, day.month, 1, tzinfo=datetime.UTC).timestamp() * 1000)


#: The epoch ms a date can hold (years 1 to 9999): an open range's far ends are clamped to them.
_FIRST_MS = int(datetime.datetime(1, 1, 1, tzinfo=datetime.UTC).timestamp() * 1000)
_LAST_MS = int(datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC).timestamp() * 1000)


def _month_of(ms: int) -> datetime.date:
    ms = min(max(ms, _FIRST_MS), _LAST_MS)
    return (
        (datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=ms))
        .date()
        .replace(day=1)
    )


def _next_month(day: datetime.date) -> datetime.date:
    return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def purges_overlapping(start: int, end: int) -> Select[Any]:
    """The purge records of the months that overlap [start, end) epoch ms, oldest month first.

    Compared by the month's first day, a plain date on both dialects (computed here, not in SQL: SQLite
    has no date arithmetic that PostgreSQL shares).  On SQLite the table exists (migration 0032) and stays
    empty: SQLite archives nothing, so it purges nothing."""
    p = ReadingPurge
    columns = (p.month, p.scope, p.readings, p.sha256, p.rule, p.purge_from, p.purged_at, p.purged_by)
    query = select(*columns).order_by(p.month, p.scope)
    if end <= start:
        return query.where(false())
    return query.where(p.month >= _month_of(start), p.month <= _month_of(end - 1))


def purged_months(conn: Connection, start: int, end: int) -> list[PurgedMonth]:
    """:func:`purges_overlapping` read into :class:`PurgedMonth` records (each month's whole span, which
    may reach outside [start, end): the caller clips it to what it shows)."""
    found = []
    for row in conn.execute(purges_overlapping(start, end)):
        span = _month_ms(row.month), _month_ms(_next_month(row.month))
        found.append(PurgedMonth(row.month, *span, row.scope, row.readings, row.sha256, row.rule,
                                 row.purge_from, row.purged_at, row.purged_by))  # fmt: skip
    return found


def folded_gaps(
    gateway: str | None = None,
    open_: bool | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 100,
    *,
    site: str | None = None,
) -> Select[Any]:
    """Gaps folded from their opening and closing reports: open ones first, then newest start first.

    A gap is reported open (``end`` null) and again once closed, with the same
    (gateway, subject, start); both rows stay stored, and re-sends add more.
    Grouping on the gap's identity and taking the largest ``end`` folds them.
    A window keeps gaps whose [start, end or now) overlaps [start, end).
    Open ones sort first in SQL, so ``limit`` never cuts an open gap in favour
    of an old closed one (monitoring that is still interrupted is the news).
    A cloud "gateway unheard" gap carries its verdict (``gap_verdicts``, a record
    of its own keyed by the gap's gateway, stream and start), joined here so the
    gap rows stay untouched; at most one verdict matches a row, so ``reports``
    still counts the gap's own rows.
    """
    end_col = func.max(Gap.end)
    detail = func.coalesce(func.max(case((Gap.end.is_not(None), Gap.detail))), func.max(Gap.detail))
    keys = (Gap.gateway, Gap.subject_type, Gap.subject, Gap.start, Gap.cause)
    still_open_first = case((end_col.is_(None), 0), else_=1)
    v = GapVerdict
    judged = and_(v.gateway == Gap.gateway, v.gap_stream == Gap.stream, v.gap_start == Gap.start)
    verdict = (func.max(v.verdict).label("verdict"), func.max(v.detail).label("verdict_detail"))
    query = (
        select(*keys, end_col.label("end"), detail.label("detail"), func.count().label("reports"), *verdict)
        .select_from(Gap)
        .outerjoin(v, judged)
        .group_by(*keys)
        .order_by(still_open_first, Gap.start.desc(), Gap.gateway, Gap.subject)
        .limit(limit)
    )
    if gateway is not None:
        query = query.where(Gap.gateway == gateway)
    if site is not None:
        query = query.where(Gap.gateway.in_(select(Gateway.id).where(Gateway.site == site).scalar_subquery()))
    if start is not None:
        query = query.having(or_(end_col.is_(None), end_col > start))
    if end is not None:
        query = query.where(Gap.start < end)
    if open_ is True:
        query = query.having(end_col.is_(None))
    elif open_ is False:
        query = query.having(end_col.is_not(None))
    return query
