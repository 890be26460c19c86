"""The API's SQL, written once for SQLite and PostgreSQL.

Everything here is SQLAlchemy Core over the models' tables, so JSON columns
come back as dicts on both dialects and reserved words (``end``) are quoted.
The readings table is the big one: every query on it is a range on the index
ix_readings_sensor_ts (gateway, sensor, ts), never a scan.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import aliased

from coldgate.cloud.api import schemas
from coldgate.cloud.db import reading_hours
from coldgate.cloud.db.models import (
    Alert,
    BatchRange,
    DeadLetter,
    DeadLetterReplay,
    Gateway,
    Reading,
    ReadingHour,
    Sensor,
    StreamCoverage,
)
from coldgate.cloud.db.selections import READING_COLUMNS, folded_gaps, purged_months, readings_in
from coldgate.cloud.reports.history_json import purged_month

__all__ = [
    "PAYLOAD_HEAD_BYTES",
    "alert_rules",
    "alerts",
    "dead_letters",
    "gaps",
    "gateway_exists",
    "gateways",
    "reading_rows",
    "reading_series",
    "sensor_exists",
    "sensors",
]

PAYLOAD_HEAD_BYTES = 200


# ---------------------------------------------------------------- gateways


def gateways(
    conn: Connection, gateway: str | None = None, site: str | None = None
) -> list[schemas.GatewayEntry]:
    """Gateways with their newest status unpacked and their acknowledged seq per stream."""
    query = select(Gateway).order_by(Gateway.site, Gateway.id)
    # Ranges committed but waiting for the stream to catch up: many of them, for long, means a
    # stream stuck on a missing seq (the gateway then keeps re-sending everything after it).
    pending = (
        select(
            BatchRange.gateway,
            BatchRange.stream,
            func.count().label("pending_ranges"),
            func.min(BatchRange.first_seq).label("next_pending_seq"),
        )
        .group_by(BatchRange.gateway, BatchRange.stream)
        .subquery()
    )
    cover = (
        select(StreamCoverage, pending.c.pending_ranges, pending.c.next_pending_seq)
        .outerjoin(
            pending,
            (pending.c.gateway == StreamCoverage.gateway) & (pending.c.stream == StreamCoverage.stream),
        )
        .order_by(StreamCoverage.gateway, StreamCoverage.stream)
    )
    if gateway is not None:
        query = query.where(Gateway.id == gateway)
        cover = cover.where(StreamCoverage.gateway == gateway)
    if site is not None:
        query = query.where(Gateway.site == site)
        cover = cover.where(StreamCoverage.site == site)
    rows = conn.execute(query).mappings().all()
    if not rows:
        return []
    streams: dict[str, list[schemas.StreamAck]] = {}
    for c in conn.execute(cover).mappings():
        streams.setdefault(c["gateway"], []).append(
            schemas.StreamAck(
                stream=c["stream"],
                covered=c["covered"],
                updated_at=schemas.utc(c["updated_at"]),
                adopted=c["adopted"],
                pending_ranges=c["pending_ranges"] or 0,
                next_pending_seq=c["next_pending_seq"],
            )
        )
    return [_gateway_entry(row, streams.get(row["id"], [])) for row in rows]


def _gateway_entry(row: Any, streams: list[schemas.StreamAck]) -> schemas.GatewayEntry:
    status: dict[str, Any] = row["last_status"] or {}
    clock = status.get("clock")
    alarm = status.get("alarm")
    has_backlog = "outbox_depth" in status or "oldest_unacked" in status
    return schemas.GatewayEntry(
        id=row["id"],
        site=row["site"],
        online=bool(row["online"]),
        state_since=schemas.utc(row["state_since"]),
        first_seen=schemas.utc(row["first_seen"]),
        last_seen=schemas.utc(row["last_seen"]),
        boot=row["boot"],
        status_ts=status.get("ts"),
        software=status.get("software"),
        heartbeat_s=status.get("heartbeat_s"),
        clock=schemas.Clock.model_validate(clock) if isinstance(clock, dict) else None,
        backlog=schemas.Backlog(
            outbox_depth=status.get("outbox_depth"), oldest_unacked=status.get("oldest_unacked")
        )
        if has_backlog
        else None,
        alarm=schemas.Alarm.model_validate(alarm) if isinstance(alarm, dict) else None,
        streams=streams,
    )


def gateway_exists(conn: Connection, gateway: str) -> bool:
    return conn.execute(select(literal(1)).where(Gateway.id == gateway)).first() is not None


# ---------------------------------------------------------------- sensors


#: The quantity a sensor's tile, chart and limits are about where it has readings of it (``sensors``).
TEMPERATURE = "temperature"
#: A sensor's newest reading is looked for among this recent stretch first (``sensors``).
RECENT_MS = 7 * 86_400_000


def sensors(
    conn: Connection, gateway: str | None, site: str | None, *, now_ms: int | None = None
) -> list[schemas.SensorEntry]:
    """Sensors with their newest reading, one index probe per sensor, never a scan of readings.

    "Newest" is ``ORDER BY ts DESC LIMIT 1`` on ix_readings_sensor_ts.  Of the
    readings at that ts, the temperature: a temperature/humidity logger's two
    values of one poll carry the poll's one stamp, the humidity with the later
    seq, and the tile, the chart and the limits of a cold room are about its
    temperature.  Any other tie on ts (a re-sent item on a new stream) goes to
    the highest (stream, seq), as in the alerts' step order.  PostgreSQL runs that per sensor as a LATERAL
    subquery.  SQLite has no LATERAL: it finds the newest ts with a correlated
    subquery and joins back on the same index, and the tie is settled here.

    On PostgreSQL the probe is first bounded to readings from ``now_ms`` (the wall clock if None) minus
    RECENT_MS on: ``ts`` is the partition key, so the probe visits the last month or two, where an
    unbounded one visits the index of every monthly partition (a Merge Append of them all, per sensor:
    ``bench.growth``'s overview grew with the years stored, not with the sensors).  A sensor with
    nothing that recent is probed again without the bound; a reading in the bound is newer than any
    outside it, so the answer is the same.
    """
    reading_cols = ("ts", "ts_corrected", "value", "unit", "quantity", "quality", "reason", "stream", "seq")
    base = select(Sensor.gateway, Gateway.site, Sensor.id, Sensor.zone, Sensor.calibration_due).join(
        Gateway, Gateway.id == Sensor.gateway
    )
    if gateway is not None:
        base = base.where(Sensor.gateway == gateway)
    if site is not None:
        base = base.where(Gateway.site == site)
    if conn.dialect.name == "postgresql":
        recent_from = (int(time.time() * 1000) if now_ms is None else now_ms) - RECENT_MS
        rows = list(conn.execute(_newest_per_sensor(base, reading_cols, recent_from)).mappings())
        silent = [(row["gateway"], row["id"]) for row in rows if row["ts"] is None]
        if silent:
            again = base.where(tuple_(Sensor.gateway, Sensor.id).in_(silent))
            older = {(r["gateway"], r["id"]): r for r in conn.execute(_newest_per_sensor(again, reading_cols))
                     .mappings()}  # fmt: skip
            rows = [older.get((row["gateway"], row["id"]), row) for row in rows]
        return _sensor_entries(rows, reading_cols)
    probe = aliased(Reading, name="probe")
    newest_ts = (
        select(probe.ts)
        .where(probe.gateway == Sensor.gateway, probe.sensor == Sensor.id)
        .order_by(probe.ts.desc())
        .limit(1)
        .correlate(Sensor)
        .scalar_subquery()
    )
    query = base.add_columns(*(getattr(Reading, name) for name in reading_cols)).outerjoin(
        Reading,
        and_(Reading.gateway == Sensor.gateway, Reading.sensor == Sensor.id, Reading.ts == newest_ts),
    )
    # Only sensor columns in ORDER BY: ordering by reading columns would tempt SQLite into the
    # primary key (gateway, stream, seq) to save a sort, reading every reading of the gateway.
    query = query.order_by(Sensor.gateway, Sensor.id)
    return _sensor_entries(conn.execute(query).mappings(), reading_cols)


def _newest_per_sensor(base: Any, reading_cols: tuple[str, ...], recent_from: int | None = None) -> Any:
    """PostgreSQL: ``base``'s sensors with their newest reading (from ``recent_from`` on, if given); of
    one poll's readings (the same ts), the temperature."""
    where = [Reading.gateway == Sensor.gateway, Reading.sensor == Sensor.id]
    if recent_from is not None:
        where.append(Reading.ts >= recent_from)
    not_temperature = case((Reading.quantity == TEMPERATURE, 0), else_=1)
    newest = (
        select(*(getattr(Reading, name) for name in reading_cols))
        .where(*where)
        .order_by(Reading.ts.desc(), not_temperature, Reading.stream.desc(), Reading.seq.desc())
        .limit(1)
        .lateral("newest")
    )
    return base.add_columns(*newest.c).outerjoin(newest, true()).order_by(Sensor.gateway, Sensor.id)


def _sensor_entries(rows: Iterable[Any], reading_cols: tuple[str, ...]) -> list[schemas.SensorEntry]:
    entries: dict[tuple[str, str], schemas.SensorEntry] = {}
    tie_keys: dict[tuple[str, str], tuple[bool, str, int]] = {}
    for row in rows:
        key = (row["gateway"], row["id"])
        last = None
        if row["ts"] is not None:
            rank = (row["quantity"] == TEMPERATURE, row["stream"], row["seq"])
            if key in tie_keys and tie_keys[key] >= rank:
                continue
            tie_keys[key] = rank
            last = schemas.LastReading(**{name: row[name] for name in reading_cols[:-2]})
        entries[key] = schemas.SensorEntry(
            gateway=row["gateway"],
            site=row["site"],
            id=row["id"],
            zone=row["zone"],
            calibration_due=row["calibration_due"],
            last_reading=last,
        )
    return list(entries.values())


def sensor_exists(conn: Connection, gateway: str, sensor: str) -> bool:
    """Registered in ``sensors``, or has readings (ingest may not have registered it yet)."""
    registered = select(literal(1)).where(Sensor.gateway == gateway, Sensor.id == sensor)
    if conn.execute(registered).first() is not None:
        return True
    measured = select(literal(1)).where(Reading.gateway == gateway, Reading.sensor == sensor).limit(1)
    return conn.execute(measured).first() is not None


# ---------------------------------------------------------------- readings


_READING_COLUMNS = READING_COLUMNS


#: One sensor's readings in a time range by the corrected time where there is one (``cloud/db/selections``).
_readings_in = readings_in


def reading_series(
    conn: Connection, gateway: str, sensor: str, start: int, end: int, max_points: int, quantity: str | None
) -> dict[str, Any]:
    """Raw points when at most ``max_points`` readings fall in [start, end), else time buckets.

    The count stops at ``max_points + 1`` so a year of readings is not counted
    just to learn that it is too many.  Bucket numbers are integer division in
    SQL, ``(ts - :start) / :width``, which truncates on PostgreSQL bigint and
    SQLite integer alike; only non-empty buckets come back.  Buckets an hour
    wide or wider come from the hourly summaries (:func:`hour_buckets`).

    ``purged``: the months in range whose readings retention purged (``selections.purged_months``, each
    as ``history_json.purged_month`` says it), so a chart or client shows them as purged rather than as
    an unexplained silence; raw readings of such a month are gone (its hourly summaries are derived
    data, still held, so hour buckets may still draw it).
    """
    probe = _readings_in(gateway, sensor, start, end, quantity, limit=max_points + 1)
    found = conn.execute(select(func.count()).select_from(probe)).scalar_one()
    gone = [purged_month(p) for p in purged_months(conn, start, end)]
    result: dict[str, Any] = {"gateway": gateway, "sensor": sensor, "from": start, "to": end, "purged": gone}
    if found <= max_points:
        r = _readings_in(gateway, sensor, start, end, quantity).c
        query = select(r.ts, r.ts_corrected, r.value, r.quality, r.reason).order_by(r.t, r.stream, r.seq)
        points = [schemas.RawPoint(**row) for row in conn.execute(query).mappings()]
        return {**result, "count": len(points), "mode": "raw", "bucket_ms": None, "points": points}
    width = -(-(end - start) // max_points)  # ceil without floats
    if width >= reading_hours.HOUR_MS:
        return {**result, **hour_buckets(conn, gateway, sensor, start, end, max_points, quantity)}
    return {**result, **reading_buckets(conn, gateway, sensor, start, end, max_points, quantity)}


def reading_buckets(
    conn: Connection, gateway: str, sensor: str, start: int, end: int, max_points: int, quantity: str | None
) -> dict[str, Any]:
    """At most ``max_points`` buckets of [start, end) computed from the readings themselves."""
    r = _readings_in(gateway, sensor, start, end, quantity).c
    width = -(-(end - start) // max_points)  # ceil without floats
    start_param = bindparam("bucket_from", start, type_=BigInteger)
    width_param = bindparam("bucket_width", width, type_=BigInteger)
    # A plain "/" operator: SQLAlchemy's own "/" would cast to NUMERIC (true division).
    bucket = (r.t - start_param).op("/", precedence=8, return_type=BigInteger())(width_param)
    bucket = bucket.label("bucket")
    ok = r.quality == "ok"
    ok_value = case((ok, r.value))
    query = (
        select(
            bucket,
            func.count().label("count"),
            func.min(ok_value).label("min"),
            func.max(ok_value).label("max"),
            func.avg(ok_value).label("avg"),
            func.sum(case((ok, 0), else_=1)).label("not_ok"),
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    buckets = [
        schemas.Bucket(
            start=start + int(row["bucket"]) * width,
            count=row["count"],
            min=row["min"],
            max=row["max"],
            avg=None if row["avg"] is None else float(row["avg"]),
            not_ok=int(row["not_ok"]),
        )
        for row in conn.execute(query).mappings()
    ]
    total = sum(b.count for b in buckets)
    return {"count": total, "mode": "buckets", "bucket_ms": width, "buckets": buckets}


def hour_buckets(
    conn: Connection, gateway: str, sensor: str, start: int, end: int, max_points: int, quantity: str | None
) -> dict[str, Any]:
    """Buckets of whole hours from the hourly summaries, when a bucket would span an hour or more.

    The range is widened to whole hours (``from`` and ``to`` say so), buckets
    are a whole number of hours wide, and their min, max and mean are those
    of the readings themselves; ``arrhenius`` makes the MKT exact too.
    """
    hour = reading_hours.HOUR_MS
    aligned_start, aligned_end = start // hour * hour, -(-end // hour) * hour
    hours = (aligned_end - aligned_start) // hour
    width = -(-hours // max_points) * hour
    h = ReadingHour
    bucket = (h.hour - bindparam("bucket_from", aligned_start, type_=BigInteger)).op(
        "/", precedence=8, return_type=BigInteger()
    )(bindparam("bucket_width", width, type_=BigInteger)).label("bucket")
    where = [h.gateway == gateway, h.sensor == sensor, h.hour >= aligned_start, h.hour < aligned_end]
    if quantity is not None:
        where.append(h.quantity == quantity)
    unknown_terms = func.sum(case((and_(h.ok_count > 0, h.arrhenius.is_(None)), 1), else_=0))
    query = (
        select(
            bucket, func.sum(h.count).label("count"), func.sum(h.ok_count).label("ok"),
            func.min(h.min).label("min"), func.max(h.max).label("max"), func.sum(h.sum).label("sum"),
            func.sum(h.arrhenius).label("arrhenius"), unknown_terms.label("unknown_terms"),
        )
        .where(*where).group_by(bucket).order_by(bucket)
    )  # fmt: skip
    buckets = [
        schemas.Bucket(
            start=aligned_start + int(row["bucket"]) * width,
            count=int(row["count"]),
            min=row["min"],
            max=row["max"],
            avg=float(row["sum"]) / int(row["ok"]) if row["ok"] else None,
            not_ok=int(row["count"]) - int(row["ok"]),
            arrhenius=None if row["unknown_terms"] or row["arrhenius"] is None else float(row["arrhenius"]),
        )
        for row in conn.execute(query).mappings()
    ]
    return {
        "from": aligned_start, "to": aligned_end, "count": sum(b.count for b in buckets), "mode": "buckets",
        "bucket_ms": width, "buckets": buckets,
    }  # fmt: skip


def reading_rows(
    conn: Connection, gateway: str, sensor: str, start: int, end: int, quantity: str | None
) -> Iterator[Any]:
    """Every reading with start <= time < end (``_readings_in``), in that order, streamed (a year is half
    a million rows)."""
    r = _readings_in(gateway, sensor, start, end, quantity).c
    query = select(r.ts, r.ts_corrected, r.quantity, r.value, r.unit, r.quality, r.reason).order_by(
        r.t, r.stream, r.seq
    )
    yield from conn.execution_options(yield_per=5000).execute(query)


# ---------------------------------------------------------------- gaps


def _site_gateways(site: str) -> Any:
    """The ids of ``site``'s gateways, as a subquery: gaps and alerts carry a gateway, not a site."""
    return select(Gateway.id).where(Gateway.site == site).scalar_subquery()


def gaps(
    conn: Connection,
    gateway: str | None = None,
    open_: bool | None = None,
    start: int | None = None,
    end: int | None = None,
    limit: int = 100,
    *,
    site: str | None = None,
) -> list[schemas.GapEntry]:
    """Gaps folded from their opening and closing reports, open ones first, then newest start first
    (``selections.folded_gaps`` says how)."""
    query = folded_gaps(gateway, open_, start, end, limit, site=site)
    return [
        schemas.GapEntry(**row, open=row["end"] is None)  # type: ignore[misc]
        for row in conn.execute(query).mappings()
    ]


# ---------------------------------------------------------------- alerts


def alerts(
    conn: Connection,
    gateway: str | None = None,
    only_open: bool = False,
    severity: str | None = None,
    limit: int = 100,
    *,
    site: str | None = None,
    rule: str | None = None,
    start: int | None = None,
    end: int | None = None,
    open_first: bool = False,
    about: tuple[str, str] | None = None,
) -> list[schemas.AlertEntry]:
    """One entry per alert: its latest step, its first step's ts and its step count.

    Steps are ordered by (ts, stream, seq): seq orders one stream, ts orders
    streams of the same gateway.  Window functions do the folding in one pass
    over the alerts table (far smaller than readings), on SQLite >= 3.25 and
    PostgreSQL alike.  Gateway, site and ``about`` (subject type, subject)
    narrow the steps before folding (an alert belongs to one gateway and is
    about one subject); severity and rule are the latest step's,
    and the window [start, end) keeps alerts whose [raised, cleared] overlaps
    it, an open one counting as still going.  ``open_first`` sorts open
    ones before the rest in SQL, so ``limit`` never cuts an alert still open
    (a door left open for weeks) in favour of recent closed ones.
    """
    alert_key = (Alert.gateway, Alert.alert_id)
    ranked = select(
        Alert.gateway,
        Alert.alert_id,
        Alert.ts,
        Alert.action,
        Alert.rule,
        Alert.subject_type,
        Alert.subject,
        Alert.severity,
        Alert.message,
        Alert.evidence,
        func.row_number()
        .over(partition_by=alert_key, order_by=(Alert.ts.desc(), Alert.stream.desc(), Alert.seq.desc()))
        .label("rank"),
        func.count().over(partition_by=alert_key).label("steps"),
        func.min(Alert.ts).over(partition_by=alert_key).label("raised_at"),
    )
    if gateway is not None:
        ranked = ranked.where(Alert.gateway == gateway)
    if site is not None:
        ranked = ranked.where(Alert.gateway.in_(_site_gateways(site)))
    if about is not None:
        ranked = ranked.where(Alert.subject_type == about[0], Alert.subject == about[1])
    latest = ranked.subquery()
    newest = (latest.c.raised_at.desc(), latest.c.gateway, latest.c.alert_id)
    still_open_first = case((latest.c.action == "cleared", 1), else_=0)
    query = (
        select(latest)
        .where(latest.c.rank == 1)
        .order_by(*((still_open_first, *newest) if open_first else newest))
        .limit(limit)
    )
    if only_open:
        query = query.where(latest.c.action != "cleared")
    if severity is not None:
        query = query.where(latest.c.severity == severity)
    if rule is not None:
        query = query.where(latest.c.rule == rule)
    if start is not None:
        query = query.where(or_(latest.c.action != "cleared", latest.c.ts >= start))
    if end is not None:
        query = query.where(latest.c.raised_at < end)
    return [
        schemas.AlertEntry(
            gateway=row["gateway"],
            alert_id=row["alert_id"],
            open=row["action"] != "cleared",
            last_action=row["action"],
            raised_at=row["raised_at"],
            updated_at=row["ts"],
            steps=row["steps"],
            rule=row["rule"],
            subject_type=row["subject_type"],
            subject=row["subject"],
            severity=row["severity"],
            message=row["message"],
            evidence=row["evidence"] or {},
        )
        for row in conn.execute(query).mappings()
    ]


def alert_rules(conn: Connection) -> list[str]:
    """Every rule an alert has been raised by, sorted: the alerts page offers them as its rule filter,
    so nobody has to know that a door left open is ``door.open``."""
    return list(conn.execute(select(Alert.rule).distinct().order_by(Alert.rule)).scalars())


# ---------------------------------------------------------------- dead letters


def dead_letters(conn: Connection, gateway: str | None, limit: int) -> list[schemas.DeadLetterEntry]:
    """Newest first; only the payload's size and head leave the database (payloads can be megabytes)."""
    head = func.substr(DeadLetter.payload, 1, PAYLOAD_HEAD_BYTES)
    query = (
        select(
            DeadLetter.id,
            DeadLetter.received_at,
            DeadLetter.topic,
            DeadLetter.gateway,
            DeadLetter.path,
            DeadLetter.reason,
            DeadLetter.repeats,
            DeadLetter.last_received_at,
            DeadLetter.batch,
            func.coalesce(
                DeadLetter.payload_size, cast(func.length(DeadLetter.payload), BigInteger)
            ).label("payload_size"),
            DeadLetter.payload_sha256,
            DeadLetter.truncated,
            head.label("head"),
        )
        .order_by(DeadLetter.id.desc())
        .limit(limit)
    )
    if gateway is not None:
        query = query.where(DeadLetter.gateway == gateway)
    rows = conn.execute(query).mappings().all()
    last: dict[int, schemas.DeadLetterReplayOut] = {}
    if rows:
        replays = (
            select(DeadLetterReplay)
            .where(DeadLetterReplay.dead_letter_id.in_([row["id"] for row in rows]))
            .order_by(DeadLetterReplay.id)
        )
        for replay in conn.execute(replays).all():
            last[replay.dead_letter_id] = schemas.DeadLetterReplayOut(
                replayed_at=schemas.utc(replay.replayed_at),
                by=replay.by,
                outcome=replay.outcome,
                new_items=replay.new_items,
                detail=replay.detail,
            )
    return [
        schemas.DeadLetterEntry(
            id=row["id"],
            received_at=schemas.utc(row["received_at"]),
            topic=row["topic"],
            gateway=row["gateway"],
            path=row["path"],
            reason=row["reason"],
            repeats=row["repeats"] or 0,
            last_received_at=schemas.utc(row["last_received_at"] or row["received_at"]),
            payload_size=row["payload_size"] or 0,
            payload_sha256=row["payload_sha256"],
            truncated=bool(row["truncated"]),
            payload_head=bytes(row["head"] or b"").decode("utf-8", errors="replace"),
            batch=row["batch"],
            last_replay=last.get(row["id"]),
        )
        for row in rows
    ]
