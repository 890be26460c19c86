"""Reads what a batch history joins (``batch_history.py``): the custody chain, the receiving notes'
suppliers, the product's class and budget, the placements of sensors at the places the units stayed,
their readings, gaps and excursions, and the QA cases that hold those.

Readings are read once per sensor over the union of what it watched (each of its quantities, the ok
ones with a value), by the clock-corrected time where the cloud has one (``selections.readings_in``, the
same selection the charts use), so the report and the sensor page never place a reading differently.
The months retention purged over the custody's time are read beside them (``selections.purged_months``,
the same selection the sensor series uses), so a purged month is reported as purged, never as a gap; and
which hours of them each sensor had readings in, from the hourly summaries the purge leaves behind, so a
silence without a gap on record is not passed off as purged readings.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, case, or_, select

from coldgate.cloud.alerts.case_opening import is_limit_crossing as is_excursion_rule
from coldgate.cloud.alerts.case_steps import latest_steps
from coldgate.cloud.catalog import placements as catalog_placements
from coldgate.cloud.catalog import products as catalog_products
from coldgate.cloud.catalog import temperature_classes
from coldgate.cloud.db.models import Alert, DocumentLine, ESignature, QaCaseAlert, ReadingHour
from coldgate.cloud.db.reading_hours import HOUR_MS, TO_CELSIUS
from coldgate.cloud.db.selections import PurgedMonth, folded_gaps, purged_months, readings_in
from coldgate.cloud.documents import custody_store
from coldgate.cloud.documents.collector import collector_paused
from coldgate.cloud.documents.custody_store import LotCustody, Stay
from coldgate.cloud.identity.users import NotFound
from coldgate.cloud.reports.batch_history import (
    EMPTY,
    MAX_HOLD_MS,
    Excursion,
    History,
    Limits,
    Series,
    Watch,
    history,
)
from coldgate.cloud.reports.spans import Span, clip, union

__all__ = ["is_excursion_rule", "lot_history", "lot_history_with_custody", "unit_history"]


_alerts: Table = Alert.__table__  # type: ignore[assignment]
_folded: Table = QaCaseAlert.__table__  # type: ignore[assignment]
_signatures: Table = ESignature.__table__  # type: ignore[assignment]
_lines: Table = DocumentLine.__table__  # type: ignore[assignment]


def lot_history(conn: Connection, product: str, lot: str, *, as_of: int) -> History:
    """The history of every unit of a lot.  ``product``: a GTIN or a catalog product id.  NotFound and
    UserInputError as ``custody_store.lot_custody`` raises them (unknown product or lot; malformed GTIN,
    naming the check digit)."""
    return lot_history_with_custody(conn, product, lot, as_of=as_of)[1]


def lot_history_with_custody(
    conn: Connection, product: str, lot: str, *, as_of: int
) -> tuple[LotCustody, History]:
    """:func:`lot_history` and the custody chain it was made from (what the EPCIS export needs too).

    The cyclic garbage collector is paused for both (``custody_store`` pauses it for the chain alone):
    a lot's 30,000 stays stay alive throughout, every full collection that the 140,000 fetched rows set
    off walked them all again (a quarter of the history's time, measured), and each pause ends with one
    collection of what was made in it, so one pause rather than two saves walking the stays once more."""
    with collector_paused():
        custody = custody_store.lot_custody(conn, product, lot)
        subject = f"lot {custody.lot} of {custody.gtin or custody.product}"
        return custody, _history(conn, subject, custody.product, custody.gtin, custody.lot, custody.status,
                                 custody.expiry, custody.stays, as_of)  # fmt: skip


def unit_history(conn: Connection, unit_id: str, *, as_of: int) -> History:
    """The history of one pallet or serialised case (``unit_id`` as ``custody_store.unit_custody``
    takes it).  The garbage collector is paused throughout, as for a lot."""
    with collector_paused():
        return _unit_history(conn, unit_id, as_of)


def _unit_history(conn: Connection, unit_id: str, as_of: int) -> History:
    custody = custody_store.unit_custody(conn, unit_id)
    product, lot = custody.unit.product, custody.unit.lot
    if product is None and custody.unit.sscc is not None:
        product, lot = _pallet_contents(conn, custody.unit.sscc, custody.stays)
    if product is None:
        raise NotFound("unit_id", f"no product is known for {unit_id!r}: no label or document names one")
    gtin, status, expiry = custody.gtin, custody.status, None
    if lot is not None:
        try:
            lot_record = custody_store.lot_custody(conn, product, lot)
            gtin, status, expiry = lot_record.gtin, lot_record.status, lot_record.expiry
        except NotFound:
            pass
    return _history(conn, f"{'pallet' if custody.unit.sscc else 'case'} {unit_id}", product, gtin, lot,
                    status, expiry, custody.stays, as_of)  # fmt: skip


def _pallet_contents(conn: Connection, sscc: str, stays: Sequence[Stay]) -> tuple[str | None, str | None]:
    """The product and lot a pallet carries, from a line of the documents it moved on that lists it
    (a pallet's label names neither): the first such line, by document and line."""
    documents = sorted({e.document for s in stays for e in (s.began_by, s.ended_by) if e and e.document})
    if not documents:
        return None, None
    c = _lines.c
    query = (
        select(c.product, c.lot, c.ssccs)
        .where(c.document.in_(documents))
        .order_by(c.document, c.version.desc())
    )
    for line in conn.execute(query):
        if sscc in (line.ssccs or ()):
            return line.product, line.lot
    return None, None


def _history(
    conn: Connection, subject: str, product: str, gtin: str | None, lot: str | None, status: str | None,
    expiry: Any, stays: Sequence[Stay], as_of: int,
) -> History:  # fmt: skip
    record = catalog_products.product(conn, product)
    limits = _limits(conn, record["temperature_class"])
    suppliers = _suppliers(conn, {s.began_by.document for s in stays if s.began_by.what == "receipt"})
    places = {(s.site, s.location) for s in stays if s.location is not None}
    watches = _watches(conn, places)
    spans = _watched_spans(stays, watches, as_of)
    temperature: dict[tuple[str, str], Series] = {}
    humidity: dict[tuple[str, str], Series] = {}
    corrected: dict[tuple[str, str], int] = {}
    for key, covered in spans.items():
        by_quantity = _series(conn, key, covered)
        temperature[key], fixed = by_quantity["temperature"]
        humidity[key], more = by_quantity["humidity"]
        corrected[key] = fixed + more
    gaps = _gaps(conn, spans, as_of)
    excursions = _excursions(conn, spans, as_of)
    watched = [span for covered in spans.values() for span in covered]
    purged = []
    if watched:  # only where a sensor watched some of it: elsewhere a purge took nothing of its record
        purged = purged_months(conn, min(s.start for s in watched), max(s.end for s in watched))
    cover = _purged_cover(conn, spans, purged) if purged else None
    return history(
        subject=subject, product=product, gtin=gtin, lot=lot, status=status,
        expiry=None if expiry is None else str(expiry), stays=stays, suppliers=suppliers, watches=watches,
        temperature=temperature, humidity=humidity, gaps=gaps, excursions=excursions, limits=limits,
        budget_s=record.get("tor_budget_s"), as_of=as_of, corrected=corrected, purged=purged,
        purged_cover=cover,
    )  # fmt: skip


def _purged_cover(
    conn: Connection, spans: dict[tuple[str, str], list[Span]], purged: Sequence[PurgedMonth]
) -> dict[tuple[str, str], list[Span]]:
    """Per sensor: the whole hours of the purged months it watched in which it had ok readings, by its
    hourly summaries (``reading_hours``: derived data, which the purge leaves).  Hour by hour, so an
    hour with a reading counts whole (an edge of a silence may be called purged by up to an hour).

    A sensor with no summary at all in a purged month it watched gets the whole month: a month's
    silence with no gap on record is all but unknown, while summaries rebuilt from the readings after
    the purge would have none, and a purge must then still not read as a gap."""
    h = ReadingHour
    found: dict[tuple[str, str], list[Span]] = {}
    for (gateway, sensor), covered in spans.items():
        mine: list[Span] = []
        for month in purged:
            inside = clip(covered, month.start, month.end)
            if not inside:
                continue
            # The whole month asked, not only the time watched: a sensor silent while the goods were
            # there but summarised elsewhere in the month has its silence kept as a silence.
            lo, hi = month.start, month.end
            query = (
                select(h.hour).distinct()
                .where(h.gateway == gateway, h.sensor == sensor, h.quantity.in_(_QUANTITIES), h.ok_count > 0,
                       h.hour >= lo, h.hour < hi)
            )  # fmt: skip
            hours = [Span(t, t + HOUR_MS) for t in conn.execute(query).scalars()]
            mine += union(hours) if hours else [Span(month.start, month.end)]
        found[(gateway, sensor)] = union(mine)
    return found


def _limits(conn: Connection, name: str | None) -> Limits:
    if name is None:
        return Limits(None, None, None)
    known = temperature_classes.classes(conn, retired=True)
    spec = next((c["spec"] for c in known if c["name"] == name), None)
    if spec is None:
        return Limits(name, None, None)
    get = spec.get
    return Limits(name, get("low"), get("high"), get("humidity_low"), get("humidity_high"))


def _suppliers(conn: Connection, documents: set[str | None]) -> dict[str, str | None]:
    found = custody_store._documents(conn, {d for d in documents if d is not None})
    return {key: document.party for key, (document, _) in found.items()}


def _watches(conn: Connection, places: set[tuple[str, str | None]]) -> dict[tuple[str, str], list[Watch]]:
    """Per (site, location): the sensor placements there, each until the device's next placement."""
    found: dict[tuple[str, str], list[Watch]] = {}
    for p in catalog_placements.placements(conn):
        if p["device_kind"] != "sensor" or p["location"] is None or (p["site"], p["location"]) not in places:
            continue
        found.setdefault((p["site"], p["location"]), []).append(
            Watch(p["gateway"], p["device"], p["valid_from"], p["valid_to"])
        )
    return found


def _watched_spans(
    stays: Iterable[Stay], watches: dict[tuple[str, str], list[Watch]], as_of: int
) -> dict[tuple[str, str], list[Span]]:
    """Per (gateway, sensor): the times it watched a place while some unit stayed there (the stays of a
    place united first: a lot of 10,000 cases has some 30,000 stays, and a room a few sensors)."""
    held: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for stay in stays:
        if stay.location is not None:
            held.setdefault((stay.site, stay.location), []).append(
                (stay.start, as_of if stay.end is None else stay.end)
            )
    found: dict[tuple[str, str], list[Span]] = {}
    for place, spans in held.items():
        occupied = union(spans)
        for w in watches.get(place, ()):
            placed = clip(occupied, w.start, as_of if w.end is None else w.end)
            found.setdefault((w.gateway, w.sensor), []).extend(placed)
    # A sensor placed there only while none of the units was (before they came, after they left) watched
    # nothing of them: it is no part of their history.
    return {key: watched for key, spans in found.items() if (watched := union(spans))}


#: The most stay spans of one sensor whose readings are picked in SQL (an OR of ranges); beyond it the
#: rows of the whole window are fetched and picked by bisection, as before (a lot whose units came and
#: went at times far apart can leave hundreds of spans, and the query is kept short).
_SPANS_IN_SQL = 32


#: The quantities a history reports, each a series of its own.
_QUANTITIES = ("temperature", "humidity")


def _series(
    conn: Connection, key: tuple[str, str], covered: list[Span]
) -> dict[str, tuple[Series, int]]:
    """Per quantity (:data:`_QUANTITIES`): the ok readings of one sensor over ``covered`` (plus the first
    one after each span, which ends the last reading's hold), and how many carry a corrected time.

    One query for both quantities: they share the sensor's index range and heap pages, so the server
    visits them once (a room's sensor reads both every minute; two queries read each page twice).
    Fetched as plain rows (:func:`_fetch`) and turned into columns in C (``zip``), so no Python step runs
    per row.  The spans are picked in SQL when there are few; a temperature is converted only where its
    logger is set to °F or K (``TO_CELSIUS``, the same arithmetic as before, value for value)."""
    found = dict.fromkeys(_QUANTITIES, (EMPTY, 0))
    if not covered:
        return found
    gateway, sensor = key
    # From a hold earlier: the reading before a stay began stands into it (``batch_history.figures``).
    inside = [(s.start - MAX_HOLD_MS, s.end) for s in covered]
    r = readings_in(gateway, sensor, inside[0][0], covered[-1].end, None).c
    where = [r.quantity.in_(_QUANTITIES), r.quality == "ok", r.value.is_not(None)]
    in_sql = len(inside) <= _SPANS_IN_SQL
    if in_sql and len(inside) > 1:
        where.append(or_(*(and_(r.t >= lo, r.t < hi) for lo, hi in inside)))
    # Lean columns (a fifth of the fetch): which quantity as a flag, and the unit only where it is not °C.
    columns = (r.quantity == "temperature", r.t, r.value, case((r.unit != "CEL", r.unit)),
               r.ts_corrected.is_not(None))  # fmt: skip
    # Unsorted: sorting a room's 34,000 rows by (quantity, t, stream, seq), through the text columns'
    # collation, took PostgreSQL longer than finding them (and spilled to disk).  The rows come nearly in
    # time order, which Python's sort finishes in one pass; readings sharing a time are put in the order
    # they had (stream, seq, by the database's collation) by asking the database for that quantity so.
    rows = _fetch(conn, select(*columns).where(*where))
    if not in_sql:
        starts = [lo for lo, _ in inside]
        rows = [row for row in rows if _inside(inside, starts, row[1])]
    # Split in C (compress, filterfalse) and sorted by a C key: no Python step per row.
    split = (("temperature", itertools.compress(rows, map(_FLAG, rows))),
             ("humidity", itertools.filterfalse(_FLAG, rows)))  # fmt: skip
    for quantity, picked in split:
        mine = sorted(picked, key=_TIME)
        if not mine:
            continue
        if any(map(operator.eq, map(_TIME, mine), map(_TIME, itertools.islice(mine, 1, None)))):
            ordered = select(*columns).where(*where, r.quantity == quantity).order_by(r.t, r.stream, r.seq)
            mine = _fetch(conn, ordered)
            if not in_sql:
                mine = [row for row in mine if _inside(inside, starts, row[1])]
        _, times, values, units, corrected = zip(*mine, strict=True)
        if quantity == "temperature" and units.count(None) != len(units):
            # A logger set to °F or K is judged in °C like the others; a unit we cannot place against a
            # limit in °C drops its reading.
            each = zip(times, values, units, corrected, strict=True)
            kept = [(t, v if u is None else TO_CELSIUS[u](v), c) for t, v, u, c in each
                    if u is None or u in TO_CELSIUS]  # fmt: skip
            if not kept:
                continue
            times, values, corrected = zip(*kept, strict=True)
        found[quantity] = (Series(times, values), len(corrected) - corrected.count(False))
    return found


def _fetch(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as the driver's plain tuples (SQLAlchemy's row objects cost 10x).  On
    PostgreSQL in binary: the server sends doubles and integers as they are stored rather than printing
    each as text for the driver to parse back (a quarter of the fetch of a room's 34,000 readings;
    the same values, bit for bit, as the text form's shortest exact digits)."""
    if conn.dialect.name != "postgresql":
        return conn.execute(query).cursor.fetchall()
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        return cursor.fetchall()


_FLAG = operator.itemgetter(0)
_TIME = operator.itemgetter(1)


def _inside(spans: Sequence[tuple[int, int]], starts: Sequence[int], t: int) -> bool:
    """Whether ``t`` lies in one of ``spans`` (sorted by start, ends rising; ``starts`` their starts)."""
    at = bisect.bisect_right(starts, t) - 1
    return at >= 0 and t < spans[at][1]


def _gaps(
    conn: Connection, spans: dict[tuple[str, str], list[Span]], as_of: int
) -> dict[tuple[str, str], list[Span]]:
    """Per sensor: its own gaps and its gateway's (restart, shed data, unheard unless judged delayed)."""
    found: dict[tuple[str, str], list[Span]] = {}
    by_gateway: dict[str, list[str]] = {}
    for gateway, sensor in spans:
        by_gateway.setdefault(gateway, []).append(sensor)
    for gateway, sensors in by_gateway.items():
        lo = min(spans[(gateway, s)][0].start for s in sensors)
        hi = max(spans[(gateway, s)][-1].end for s in sensors)
        for gap in conn.execute(folded_gaps(gateway, start=lo, end=hi, limit=100_000)):
            if gap.verdict == "delayed":
                continue
            span = Span(gap.start, as_of if gap.end is None else gap.end)
            if gap.subject_type == "sensor":
                targets = [gap.subject] if gap.subject in sensors else []
            elif gap.subject_type in ("gateway", "outbox"):
                targets = sensors
            else:
                targets = []
            for sensor in targets:
                found.setdefault((gateway, sensor), []).append(span)
    return found


def _excursions(conn: Connection, spans: dict[tuple[str, str], list[Span]], as_of: int) -> list[Excursion]:
    """The excursion alerts of the sensors, folded by alert id, overlapping what each watched, with the
    case that holds each, its state, disposition and signatures."""
    if not spans:
        return []
    a = _alerts.c
    by_gateway: dict[str, set[str]] = {}
    for gateway, sensor in spans:
        by_gateway.setdefault(gateway, set()).add(sensor)
    steps: dict[tuple[str, str], list[Any]] = {}
    for gateway, sensors in by_gateway.items():
        rows = conn.execute(
            select(a.gateway, a.alert_id, a.subject, a.rule, a.severity, a.action, a.ts, a.message,
                   a.evidence)
            .where(a.gateway == gateway, a.subject_type == "sensor", a.subject.in_(sorted(sensors)))
            .order_by(a.ts, a.seq)
        )  # fmt: skip
        for row in rows:
            if not is_excursion_rule(row.rule):
                continue
            steps.setdefault((row.gateway, row.alert_id), []).append(row)
    folded: list[Excursion] = []
    for (gateway, alert_id), rows in steps.items():
        first = rows[0]
        evidence = [r.evidence or {} for r in rows]
        start = evidence[0].get("start") or first.ts
        cleared = [r for r in rows if r.action == "cleared"]
        end = None
        if cleared:
            end = (cleared[-1].evidence or {}).get("end") or cleared[-1].ts
        peaks = [e.get("peak") for e in evidence if e.get("peak") is not None]
        high = first.rule.endswith(".high")
        peak = (max(peaks) if high else min(peaks)) if peaks else None
        worst = max(rows, key=lambda r: {"info": 0, "warning": 1, "critical": 2}.get(r.severity, 0)).severity
        watched = spans[(gateway, first.subject)]
        if not any(start < s.end and (as_of if end is None else end) > s.start for s in watched):
            continue
        folded.append(Excursion(gateway, alert_id, first.subject, first.rule, worst, start, end, peak,
                                first.message))  # fmt: skip
    return _with_cases(conn, folded)


def _with_cases(conn: Connection, excursions: list[Excursion]) -> list[Excursion]:
    if not excursions:
        return []
    f = _folded.c
    keys = {(x.gateway, x.alert_id) for x in excursions}
    cases: dict[tuple[str, str], str] = {}
    for gateway in {g for g, _ in keys}:
        ids = sorted(i for g, i in keys if g == gateway)
        for row in conn.execute(
            select(f.gateway, f.alert_id, f.case_id).where(f.gateway == gateway, f.alert_id.in_(ids))
        ):
            cases[(row.gateway, row.alert_id)] = row.case_id
    case_ids = sorted(set(cases.values()))
    states: dict[str, tuple[str, str | None]] = {}
    signed: dict[str, list[str]] = {}
    if case_ids:
        latest = latest_steps().subquery()
        for row in conn.execute(select(latest.c.case_id, latest.c.state, latest.c.disposition)
                                .where(latest.c.case_id.in_(case_ids))):  # fmt: skip
            states[row.case_id] = (row.state, row.disposition)
        s = _signatures.c
        for row in conn.execute(
            select(s.record_id, s.signer_name, s.meaning, s.signed_at)
            .where(s.record_type == "qa_case", s.record_id.in_(case_ids))
            .order_by(s.signed_at)
        ):
            stamp = row.signed_at.strftime("%Y-%m-%d %H:%M UTC")
            signed.setdefault(row.record_id, []).append(f"{row.signer_name} ({row.meaning}, {stamp})")
    found = []
    for x in excursions:
        case_id = cases.get((x.gateway, x.alert_id))
        state, disposition = states.get(case_id or "", (None, None))
        found.append(Excursion(x.gateway, x.alert_id, x.sensor, x.rule, x.severity, x.start, x.end, x.peak,
                               x.message, case_id, state, disposition,
                               tuple(signed.get(case_id or "", ()))))  # fmt: skip
    return sorted(found, key=lambda x: (x.start, x.gateway, x.alert_id))
