"""Selections of recorded items that the API's query layer and the reports share: one sensor's readings
by the time they are placed at, and the gaps folded from their reports.

They live below both (the API imports the reports' stores, which cannot import the API back): a report
and a page must place a reading and fold a gap the same way, so there is one selection of each.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    MetaData,
    Select,
    String,
    Table,
    Text,
    and_,
    case,
    func,
    or_,
    select,
    union_all,
)

from coldgate.cloud.db.models import Gap, GapVerdict, Gateway, Reading

__all__ = ["READING_COLUMNS", "folded_gaps", "readings_in"]

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
