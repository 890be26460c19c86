"""The KPIs' database edge: reads the records each KPI is derived from and hands them to ``kpis``.

Nothing here is stored: every call recomputes from the records (receiving notes and their accepted
discrepancies, QA cases and their steps, recall runs, placements, readings and their hourly summaries,
gaps, excursion alerts), so a KPI cannot drift from the evidence it claims to summarise.

Monitoring completeness reads the hourly summaries (``reading_hours``) first and only the hours they do
not settle reading by reading (``kpis.split_hours``): a steady month of one-a-minute readings is 720
summary rows per sensor, not 43,200 readings.  Hours are those of the gateway's own clock (as the
summaries are kept); readings are read by the corrected time where the cloud has one.

The trace completion time is the one figure not derived from records: it is measured here, by producing
the batch history of up to :data:`TRACE_SAMPLE` lots the site's documents moved most recently, and is
labelled with the moment it was measured.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from coldgate.cloud.catalog.locations import KEEPING, locations, locations_since
from coldgate.cloud.catalog.placements import placements
from coldgate.cloud.db.models import (
    Alert,
    DiscrepancyAcceptance,
    DocumentLine,
    DocumentVersion,
    GatewayEnrolment,
    QaCase,
    QaCaseStep,
    ReadingHour,
    Site,
)
from coldgate.cloud.db.selections import folded_gaps, readings_in
from coldgate.cloud.identity.users import NotFound, UserInputError, aware
from coldgate.cloud.reports import history_store, kpis, recall_store
from coldgate.cloud.reports.batch_history import Series
from coldgate.cloud.reports.spans import Span, clip, union

__all__ = ["TRACE_SAMPLE", "kpi_report"]

#: How many lots the trace completion time is measured on.
TRACE_SAMPLE = 5
#: The quantity that says a cold room is monitored.
QUANTITY = "temperature"
_GAP_LIMIT = 100_000


def _ms(moment: datetime.datetime) -> int:
    return int(aware(moment).timestamp() * 1000)


def _check_site(conn: Connection, site: str) -> None:
    """NotFound unless the site is known: reported, enrolled or in the catalog."""
    if conn.execute(select(Site.id).where(Site.id == site)).first() is not None:
        return
    if conn.execute(select(GatewayEnrolment.site).where(GatewayEnrolment.site == site).limit(1)).first():
        return
    if not locations(conn, site=site, retired=True):
        raise NotFound("site", f"no site {site!r}")


# ---------------------------------------------------------------- monitoring and excursions


def _sensor_stays(conn: Connection, site: str) -> list[tuple[str, str, str, int, int | None]]:
    """(gateway, sensor, location, from, to or None) of every sensor placement at the site."""
    return [
        (p["gateway"], p["device"], p["location"], p["valid_from"], p["valid_to"])
        for p in placements(conn)
        if p["device_kind"] == "sensor" and p["site"] == site and p["location"] is not None
    ]


def _ok_counts(conn: Connection, gateway: str, sensor: str, span: Span) -> dict[int, int]:
    h = ReadingHour
    rows = conn.execute(
        select(h.hour, h.ok_count).where(
            h.gateway == gateway,
            h.sensor == sensor,
            h.quantity == QUANTITY,
            h.hour >= span.start - kpis.HOUR_MS,
            h.hour < span.end + kpis.HOUR_MS,
        )
    )
    return {int(r.hour): int(r.ok_count) for r in rows}


def _series(conn: Connection, gateway: str, sensor: str, parts: Iterable[Span]) -> Series:
    """The sensor's ok readings over ``parts`` and the ten minutes before each, by corrected time."""
    times: set[int] = set()
    for part in union(Span(s.start - kpis.LOOK_BACK_MS, s.end) for s in parts):
        found = readings_in(gateway, sensor, part.start, part.end, QUANTITY)
        query = select(found.c.t).where(found.c.quality == "ok", found.c.value.is_not(None))
        times.update(int(t) for t in conn.execute(query).scalars())
    ordered = sorted(times)
    return Series(ordered, [0.0] * len(ordered))


def _gaps(conn: Connection, gateway: str, sensor: str, span: Span) -> list[Span]:
    """The sensor's own gaps and its gateway's over ``span`` (open ones to its end); a gateway gap
    judged "delayed" lost nothing and does not count."""
    found = []
    for g in conn.execute(folded_gaps(gateway, start=span.start, end=span.end, limit=_GAP_LIMIT)):
        if g.subject_type == "gateway" and g.verdict == "delayed":
            continue
        if (g.subject_type, g.subject) == ("sensor", sensor) or g.subject_type == "gateway":
            found.append(Span(int(g.start), int(g.end) if g.end is not None else span.end))
    return found


def _monitored(
    conn: Connection, stays: list[tuple[str, str, str, int, int | None]], period: Span
) -> dict[str, list[Span]]:
    """location -> the spans of ``period`` some sensor placed there monitored."""
    found: dict[str, list[Span]] = {}
    for gateway, sensor, location, start, end in stays:
        span = Span(max(start, period.start), min(end if end is not None else period.end, period.end))
        if span.end <= span.start:
            continue
        whole, read = kpis.split_hours(_ok_counts(conn, gateway, sensor, span), span)
        series = _series(conn, gateway, sensor, read)
        found.setdefault(location, []).extend(
            kpis.cover(whole, series, read, _gaps(conn, gateway, sensor, span), span)
        )
    return {loc: union(spans) for loc, spans in found.items()}


def _excursion_alerts(conn: Connection, gateways: set[str], period: Span) -> list[tuple[str, str, str, int]]:
    """(gateway, alert id, sensor, raised ms) of the sensors' excursion alerts raised in ``period``: an
    alert is raised at its first step."""
    if not gateways:
        return []
    a = Alert
    raised = func.min(a.ts)
    rows = conn.execute(
        select(a.gateway, a.alert_id, a.subject, a.rule, raised.label("raised"))
        .where(a.gateway.in_(sorted(gateways)), a.subject_type == "sensor")
        .group_by(a.gateway, a.alert_id, a.subject, a.rule)
    )
    return [
        (r.gateway, r.alert_id, r.subject, int(r.raised)) for r in rows
        if history_store.is_excursion_rule(r.rule) and period.start <= int(r.raised) < period.end
    ]  # fmt: skip


# ---------------------------------------------------------------- cases, recalls, receiving


def _cases(conn: Connection, site: str, period: Span) -> list[kpis.CaseTimes]:
    start = datetime.datetime.fromtimestamp(period.start / 1000, datetime.UTC)
    end = datetime.datetime.fromtimestamp(period.end / 1000, datetime.UTC)
    opened = {
        r.id: _ms(r.opened_at)
        for r in conn.execute(
            select(QaCase.id, QaCase.opened_at).where(
                QaCase.site == site, QaCase.opened_at >= start, QaCase.opened_at < end
            )
        )
    }
    steps: dict[str, list[tuple[str, int]]] = {}
    ids = sorted(opened)
    for chunk in range(0, len(ids), 900):
        query = (
            select(QaCaseStep.case_id, QaCaseStep.state, QaCaseStep.at)
            .where(QaCaseStep.case_id.in_(ids[chunk : chunk + 900]))
            .order_by(QaCaseStep.case_id, QaCaseStep.seq)
        )
        for s in conn.execute(query):
            steps.setdefault(s.case_id, []).append((s.state, _ms(s.at)))
    return [kpis.CaseTimes(case_id, at, steps.get(case_id, [])) for case_id, at in opened.items()]


def _recalls(conn: Connection, period: Span) -> list[tuple[int, int | None, int | None]]:
    """(opened ms, seconds to all notified, to all blocked) of the recalls opened in ``period``; recalls
    are of lots, not sites: every site's page shows the same."""
    found = []
    for recall in recall_store.list_recalls(conn, state="all", limit=1_000_000):
        at = _ms(recall["opened_at"])
        if period.start <= at < period.end:
            response = recall_store.recall_detail(conn, recall["id"])["response"]
            found.append((at, response["to_notified_s"], response["to_blocked_s"]))
    return found


def _receiving(conn: Connection, site: str, period: Span) -> list[tuple[int, bool]]:
    """(completed ms, had a discrepancy) of the site's receiving notes completed in ``period``.  A note
    is completed only once every discrepancy is resolved or accepted with a reason; so a note with an
    accepted discrepancy is one completed *with* a discrepancy, and one without any acceptance had none
    left at completion."""
    d = DocumentVersion
    completed = func.min(d.changed_at)
    rows = conn.execute(
        select(d.id, completed.label("at"))
        .where(d.site == site, d.kind == "receiving", d.state == "completed")
        .group_by(d.id)
    ).all()
    ids = [r.id for r in rows]
    accepted: set[str] = set()
    for chunk in range(0, len(ids), 900):
        accepted.update(
            conn.execute(
                select(DiscrepancyAcceptance.document).where(
                    DiscrepancyAcceptance.document.in_(ids[chunk : chunk + 900])
                )
            ).scalars()
        )
    return [(at, r.id in accepted) for r in rows if period.start <= (at := _ms(r.at)) < period.end]


# ---------------------------------------------------------------- trace completion


def _trace(conn: Connection, site: str, now: datetime.datetime) -> dict[str, Any]:
    """Time the batch history of the lots the site's newest documents name (up to TRACE_SAMPLE)."""
    d, line = DocumentVersion, DocumentLine
    rows = conn.execute(
        select(line.product, line.lot, func.max(d.changed_at).label("at"))
        .join(d, (d.id == line.document) & (d.version == line.version))
        .where(d.site == site, line.lot.is_not(None))
        .group_by(line.product, line.lot)
        .order_by(func.max(d.changed_at).desc(), line.product, line.lot)
        .limit(TRACE_SAMPLE)
    ).all()
    as_of = _ms(now)
    lots = []
    for r in rows:
        began = time.perf_counter()
        try:
            history_store.lot_history(conn, r.product, r.lot, as_of=as_of)
        except (NotFound, UserInputError):
            continue
        lots.append(
            {"product": r.product, "lot": r.lot, "ms": round((time.perf_counter() - began) * 1000, 1)}
        )
    taken = [x["ms"] for x in lots]
    return {
        "measured_at": aware(now).isoformat(), "lots": lots,
        "median_ms": kpis.durations(taken)["median_s"], "max_ms": max(taken) if taken else None,
    }  # fmt: skip


# ---------------------------------------------------------------- the report


def kpi_report(
    conn: Connection, site: str, first: str, last: str, *, now: datetime.datetime, trace: bool = True
) -> dict[str, Any]:
    """Every KPI of ``site`` for each month from ``first`` to ``last`` (``YYYY-MM``, included), up to
    ``now``.  UserInputError naming ``from`` or ``to`` for a bad period, NotFound for an unknown site."""
    try:
        months = kpis.months(first, last)
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise UserInputError(field, message) from None
    _check_site(conn, site)
    until = _ms(now)
    period = Span(months[0].start, months[-1].end)
    rooms = [x for x in locations(conn, site=site) if x["kind"] in KEEPING]
    # A location exists from its earliest record: its first catalog version, or a sensor placed there
    # earlier (a placement's validity may be entered backdated).  Its time before that is not counted.
    stays = _sensor_stays(conn, site)
    since = locations_since(conn, site)
    for _, _, where, valid_from, _ in stays:
        since[where] = min(since.get(where, valid_from), valid_from)
    monitored = _monitored(conn, stays, Span(period.start, min(period.end, until)))
    excursions = kpis.excursions_by_location(
        _excursion_alerts(conn, {s[0] for s in stays}, period), stays, months
    )
    cases = kpis.case_kpis(_cases(conn, site, period), months)
    recalls = kpis.recall_kpis(_recalls(conn, period), months)
    inbound = kpis.inbound_kpis(_receiving(conn, site, period), months)
    rows = []
    for month in months:
        window = Span(month.start, max(month.start, min(month.end, until)))
        places = []
        for room in rooms:
            entered = since.get(room["id"], window.start)
            existed = Span(min(max(window.start, entered), window.end), window.end)
            done = clip(monitored.get(room["id"], []), existed.start, existed.end)
            places.append({
                "location": room["id"], "name": room["name"], "kind": room["kind"],
                "monitoring": kpis.completeness(done, existed),
                "excursions": len(excursions.get(room["id"], {}).get(month.name, [])),
                "excursion_alerts": excursions.get(room["id"], {}).get(month.name, []),
            })  # fmt: skip
        all_window = sum(p["monitoring"]["window_s"] for p in places)
        all_done = sum(p["monitoring"]["monitored_s"] for p in places)
        rows.append({
            "month": month.name, "from": month.start, "to": month.end, "locations": places,
            "monitoring_percent": round(100 * all_done / all_window, 2) if all_window else None,
            "excursions": sum(p["excursions"] for p in places),
            "cases": cases[month.name], "recalls": recalls[month.name], "inbound": inbound[month.name],
        })  # fmt: skip
    return {
        "site": site, "from": first, "to": last, "computed_at": aware(now).isoformat(), "months": rows,
        "trace": _trace(conn, site, now) if trace else {"measured_at": aware(now).isoformat(), "lots": [],
                                                        "median_ms": None, "max_ms": None},
    }  # fmt: skip
