"""The periodic GSP reports' database edge: what each report reads, printing it, and storing the file.

Three reports (issue 17): the monthly temperature and humidity record of a location, the excursion log
of a period, the calibration status of every sensor.  The arithmetic is pure and lives apart
(``monthly_record``, ``excursion_log``, ``calibration_status``); this module queries, renders (PDF
through ``pdf.render_pdf``, or CSV) and stores.

Every report generated is stored as the file it was (``stored_reports``, append-only): what was asked,
when, by whom, the bytes, their content type and their SHA-256.  An inspector is handed the very file
of that day; regenerating adds a row and never replaces one.  Storing is a write, so it is audited in
the same transaction (``report.generate``), by the person who asked or by the scheduler (the system).

The PDF's footer carries the SHA-256 of the report's content (canonical JSON of its figures), the stored
row the SHA-256 of the file itself: a file cannot carry its own hash, and the content hash stays the
same when the same figures are printed again.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import rfc8785
from sqlalchemy import Connection, Engine, Table, insert, or_, select

from coldgate.cloud.audit.log import SYSTEM, Actor, append
from coldgate.cloud.catalog.locations import KEEPING, locations
from coldgate.cloud.catalog.placements import calibrations, current_locations, placements
from coldgate.cloud.catalog.temperature_classes import classes
from coldgate.cloud.db.models import (
    Alert,
    Gateway,
    GatewayEnrolment,
    QaCaseAlert,
    QaCaseStep,
    Reading,
    ReadingHour,
    Sensor,
    Site,
)
from coldgate.cloud.db.models import StoredReport as _StoredReport
from coldgate.cloud.db.selections import folded_gaps, purged_months, readings_in
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.reports import calibration_status, excursion_log, monthly_record
from coldgate.cloud.reports.history_json import purged_month
from coldgate.cloud.reports.monthly_record import Figures, Piece
from coldgate.cloud.reports.pdf import PDF, content_sha256, footer_text, render_pdf, report_html
from coldgate.cloud.reports.svg_chart import svg_chart
from coldgate.cloud.time_text import duration

__all__ = [
    "CSV",
    "FORMATS",
    "KINDS",
    "calibration_report",
    "excursion_report",
    "generate_calibration",
    "generate_excursions",
    "generate_monthly",
    "list_reports",
    "monthly_report",
    "report_file",
    "report_meta",
    "store_monthly_due",
    "store_report",
]

CSV = "text/csv; charset=utf-8"
FORMATS = {"pdf": PDF, "csv": CSV}
KINDS = ("monthly_record", "excursion_log", "calibration_status")
#: What the reports say about their times.
TIME_BASIS = (
    "Times are UTC. Where a gateway's clock was corrected by the cloud (a gateway that started without "
    "synchronised time), the corrected time is used; the recorded time is kept unchanged in the readings."
)
#: Units as people write them; the contract's codes otherwise.
UNITS = {"CEL": "°C", "P1": "% RH", "FAH": "°F", "KEL": "K"}
_DEFAULT_UNIT = {"temperature": "CEL", "humidity": "P1"}
_stored: Table = _StoredReport.__table__  # type: ignore[assignment]


# ---------------------------------------------------------------- shared look-ups


def _site(conn: Connection, site: str) -> dict[str, Any]:
    """The site: a row of ``sites`` (made when its first gateway reports), or a site that has gateways
    enrolled or locations in the catalog but has not reported yet."""
    row = conn.execute(select(Site.id, Site.name).where(Site.id == site)).first()
    if row is not None:
        return {"id": row.id, "name": row.name or row.id}
    e = GatewayEnrolment
    enrolled = conn.execute(select(e.site).where(e.site == site).limit(1)).first()
    if enrolled is None and not locations(conn, site=site, retired=True):
        raise NotFound("site", f"no site {site!r}")
    return {"id": site, "name": site}


def _location(conn: Connection, site: str, location: str) -> dict[str, Any]:
    found = next((x for x in locations(conn, site=site, retired=True) if x["id"] == location), None)
    if found is None:
        raise NotFound("location", f"no location {location!r} at site {site!r}")
    return found


def _limits(conn: Connection, class_name: str | None) -> dict[str, tuple[float | None, float | None]]:
    """The class's alarm limits per quantity (the class in force now: a change of class during the
    month is in the catalog's history)."""
    spec = next((c["spec"] for c in classes(conn, retired=True) if c["name"] == class_name), None) or {}
    return {
        "temperature": (spec.get("low"), spec.get("high")),
        "humidity": (spec.get("humidity_low"), spec.get("humidity_high")),
    }


def _stays(
    conn: Connection, site: str, location: str | None, start: int, end: int
) -> list[tuple[str, str, int, int, str]]:
    """(gateway, sensor, from, to, location) of each sensor placement at ``location`` (every location of
    the site when None) overlapping ``[start, end)``, clipped to it."""
    found = []
    for p in placements(conn):
        if p["device_kind"] != "sensor" or p["site"] != site or p["location"] is None:
            continue
        if location is not None and p["location"] != location:
            continue
        a, b = max(p["valid_from"], start), min(p["valid_to"] if p["valid_to"] is not None else end, end)
        if a < b:
            found.append((p["gateway"], p["device"], a, b, p["location"]))
    return found


def _pieces(conn: Connection, gateway: str, sensor: str, start: int, end: int) -> list[Piece]:
    """One sensor's data over ``[start, end)``: whole hours from the hourly summaries, the edges from
    the readings (``selections.readings_in``: the corrected time where there is one, as the hours)."""
    name = f"{gateway}/{sensor}"
    edges, whole = monthly_record.split_hours(start, end)
    pieces = []
    if whole is not None:
        h = ReadingHour
        rows = conn.execute(
            select(h.quantity, h.hour, h.count, h.ok_count, h.min, h.max, h.sum).where(
                h.gateway == gateway, h.sensor == sensor, h.hour >= whole[0], h.hour < whole[1]
            )
        )
        pieces += [
            Piece(
                r.quantity,
                int(r.hour),
                Figures(int(r.count), int(r.ok_count), r.min, r.max, float(r.sum)),
                name,
            )
            for r in rows
        ]
    for a, b in edges:
        r = readings_in(gateway, sensor, a, b, None).c
        for row in conn.execute(select(r.t.label("at"), r.quantity, r.value, r.quality)):  # Row.t: a method
            pieces.append(Piece(row.quantity, int(row.at), Figures.of_reading(row.value, row.quality), name))
    return pieces


def _units(conn: Connection, stays: Iterable[tuple[str, str, int, int, str]]) -> dict[str, str]:
    """The unit each quantity was recorded in at these sensors (the first reading found says it)."""
    found: dict[str, str] = {}
    for gateway, sensor, *_ in stays:
        for quantity in monthly_record.QUANTITIES:
            if quantity in found:
                continue
            unit = conn.execute(
                select(Reading.unit)
                .where(Reading.gateway == gateway, Reading.sensor == sensor, Reading.quantity == quantity)
                .limit(1)
            ).scalar()
            if unit is not None:
                found[quantity] = str(unit)
    return {q: found.get(q, _DEFAULT_UNIT[q]) for q in monthly_record.QUANTITIES}


def _cases(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(gateway, alert_id) -> the case holding the alert: its id, state, and disposition if closed."""
    if not keys:
        return {}
    alert_ids = sorted({alert_id for _, alert_id in keys})
    folded = conn.execute(
        select(QaCaseAlert.gateway, QaCaseAlert.alert_id, QaCaseAlert.case_id).where(
            QaCaseAlert.alert_id.in_(alert_ids)
        )
    ).all()
    held = {(r.gateway, r.alert_id): r.case_id for r in folded if (r.gateway, r.alert_id) in keys}
    newest: dict[str, Any] = {}
    if held:
        steps = conn.execute(
            select(QaCaseStep.case_id, QaCaseStep.state, QaCaseStep.disposition)
            .where(QaCaseStep.case_id.in_(sorted(set(held.values()))))
            .order_by(QaCaseStep.case_id, QaCaseStep.seq)
        )
        newest = {s.case_id: s for s in steps}  # the highest seq of each wins
    return {
        key: {
            "case_id": case_id,
            "state": newest[case_id].state if case_id in newest else None,
            "disposition": newest[case_id].disposition if case_id in newest else None,
        }
        for key, case_id in held.items()
    }


def _sensor_alerts(conn: Connection, gateway: str) -> list[dict[str, Any]]:
    """The gateway's excursion alerts on sensors, each folded from its steps as ``queries.alerts`` folds
    them (raised at its first step's time; its latest step says whether it is open and its evidence).
    Read here rather than through the API's query layer, which the API's routes (and so this module)
    sit under."""
    a = Alert
    rule_is = or_(*(a.rule.like(f"{prefix}%") for prefix in excursion_log.EXCURSION_RULE_PREFIXES))
    steps = conn.execute(
        select(
            a.alert_id, a.ts, a.action, a.rule, a.subject_type, a.subject, a.severity, a.message, a.evidence
        )
        .where(a.gateway == gateway, a.subject_type == "sensor", rule_is)
        .order_by(a.alert_id, a.ts, a.stream, a.seq)
    )
    folded: dict[str, dict[str, Any]] = {}
    for step in steps:
        first = folded.get(step.alert_id)
        folded[step.alert_id] = {
            "gateway": gateway, "alert_id": step.alert_id, "open": step.action != "cleared",
            "raised_at": first["raised_at"] if first else int(step.ts), "updated_at": int(step.ts),
            "rule": step.rule, "subject_type": step.subject_type, "subject": step.subject,
            "severity": step.severity, "message": step.message, "evidence": step.evidence or {},
        }  # fmt: skip
    return list(folded.values())


def _gap_entries(conn: Connection, gateway: str, start: int, end: int) -> list[Any]:
    """The gateway's gaps overlapping ``[start, end)``, folded from their opening and closing reports
    with the cloud's verdict on a gateway gap (``selections.folded_gaps``, as the gaps page folds them),
    oldest first."""
    rows = conn.execute(folded_gaps(gateway, start=start, end=end, limit=100_000)).mappings()
    return sorted((SimpleNamespace(**row) for row in rows), key=lambda g: (g.start, g.subject))


def _excursions(
    conn: Connection, stays: list[tuple[str, str, int, int, str]], start: int, end: int
) -> list[excursion_log.ExcursionRow]:
    where: dict[tuple[str, str], list[tuple[int, int | None, str]]] = {}
    for gateway, sensor, a, b, location in stays:
        where.setdefault((gateway, sensor), []).append((a, b, location))
    alerts = []
    for gateway in sorted({s[0] for s in stays}):
        alerts += _sensor_alerts(conn, gateway)
    cases = _cases(conn, {(a["gateway"], a["alert_id"]) for a in alerts})
    return excursion_log.excursion_rows(alerts, where, cases, start=start, end=end)


def _gaps(
    conn: Connection, stays: list[tuple[str, str, int, int, str]], start: int, end: int
) -> list[dict[str, Any]]:
    """The gaps in monitoring that touched these sensors while placed: their own, and their gateway's."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for gateway in sorted({s[0] for s in stays}):
        for gap in _gap_entries(conn, gateway, start, end):
            for g, sensor, a, b, location in stays:
                if g != gateway or (gap.subject_type == "sensor" and gap.subject != sensor):
                    continue
                if gap.subject_type not in ("sensor", "gateway"):
                    continue
                if gap.start >= b or (gap.end is not None and gap.end <= a):
                    continue
                key = (gap.gateway, gap.subject_type, gap.subject, gap.start, location)
                rows[key] = {
                    "location": location, "gateway": gap.gateway, "subject_type": gap.subject_type,
                    "subject": gap.subject, "cause": gap.cause, "start": gap.start, "end": gap.end,
                    "duration_s": ((gap.end if gap.end is not None else end) - gap.start) // 1000,
                    "verdict": gap.verdict, "detail": gap.detail, "sensor": sensor, "stay": (a, b),
                }  # fmt: skip
    return sorted(rows.values(), key=lambda g: (g["start"], g["gateway"], g["subject"]))


def _unmonitored(
    start: int, end: int, stays: list[tuple[str, str, int, int, str]], gaps: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """When no sensor at the location was monitoring: no placement, or every placed one in a gap (a gap
    judged "delayed" lost nothing and does not count)."""
    monitored: list[tuple[int, int]] = []
    for gateway, sensor, a, b, _ in stays:
        holes = [
            (g["start"], g["end"] if g["end"] is not None else end) for g in gaps
            if g["gateway"] == gateway and g["sensor"] == sensor and g["stay"] == (a, b)
            and g["verdict"] != "delayed"
        ]  # fmt: skip
        monitored += monthly_record.uncovered(a, b, holes)
    return monthly_record.uncovered(start, end, monitored)


def _ms(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1000)


# ---------------------------------------------------------------- the monthly record


def monthly_report(
    conn: Connection, site: str, location: str, month: str, *, now: datetime.datetime
) -> tuple[dict[str, Any], list[Piece]]:
    """The monthly record of ``location`` for ``month`` (``YYYY-MM``) as a JSON-ready dict (what the PDF
    and CSV print and the content hash covers), and the pieces its chart is drawn from.

    ``purged_months``: the month's purge record when retention purged its readings
    (``selections.purged_months``): the daily figures then come from the hourly summaries the purge
    leaves, the raw readings behind them are gone, and the record says so, with the rule and the hash."""
    try:
        start, end = monthly_record.month_window(month)
    except ValueError as exc:
        raise UserInputError("month", str(exc)) from None
    site_row = _site(conn, site)
    place = _location(conn, site, location)
    limits = _limits(conn, place["temperature_class"])
    stays = _stays(conn, site, location, start, end)
    pieces = [p for g, s, a, b, _ in stays for p in _pieces(conn, g, s, a, b)]
    units = _units(conn, stays)
    days = monthly_record.daily_table(start, end, pieces, limits)
    gaps = _gaps(conn, stays, start, end)
    until = min(end, max(start, _ms(now)))
    unmonitored = _unmonitored(start, until, stays, gaps)
    excursions = _excursions(conn, stays, start, end)
    summary = {}
    for quantity in monthly_record.QUANTITIES:
        total = sum((d.figures for d in days if d.quantity == quantity), Figures())
        summary[quantity] = {
            "unit": units[quantity], "min": total.min, "max": total.max, "mean": total.mean,
            "readings": total.count, "ok_readings": total.ok_count,
            "days_outside": sum(1 for d in days if d.quantity == quantity and d.outside),
            "days_without_readings": sum(1 for d in days if d.quantity == quantity and not d.figures.count),
            "excursions": sum(1 for e in excursions if e.rule.startswith(f"{quantity}.")),
        }  # fmt: skip
    record = {
        "kind": "monthly_record", "site": site, "site_name": site_row["name"], "location": location,
        "location_name": place["name"], "location_kind": place["kind"],
        "temperature_class": place["temperature_class"],
        "limits": {q: list(v) for q, v in limits.items()}, "month": month, "from": start, "to": end,
        "time_basis": TIME_BASIS,
        "sensors": [{"gateway": g, "sensor": s, "from": a, "to": b} for g, s, a, b, _ in stays],
        "summary": summary,
        "days": [
            {"day": d.day.isoformat(), "quantity": d.quantity, "unit": units[d.quantity],
             "min": d.figures.min, "max": d.figures.max, "mean": d.mean, "count": d.figures.count,
             "ok_count": d.figures.ok_count, "sensors": d.sensors, "low": d.limits[0], "high": d.limits[1],
             "outside": d.outside}
            for d in days
        ],
        "excursions": [e.as_dict() for e in excursions],
        "gaps": [{k: v for k, v in g.items() if k not in ("stay",)} for g in gaps],
        "unmonitored": [list(span) for span in unmonitored],
        "unmonitored_s": sum(b - a for a, b in unmonitored) // 1000,
        "purged_months": [purged_month(p) for p in purged_months(conn, start, end)],
    }  # fmt: skip
    return record, pieces


def _utc(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _num(value: float | None, decimals: int = 1) -> str:
    return "—" if value is None else f"{value:.{decimals}f}"


def _limits_text(limits: list[float | None], unit: str | None) -> str:
    """ "2.0 to 8.0 °C", "not above 65.0 % RH", "not below 2.0 °C", or "no limits"."""
    low, high = limits
    label = UNITS.get(unit or "", unit or "")
    if low is not None and high is not None:
        return f"{low:.1f} to {high:.1f} {label}"
    if high is not None:
        return f"not above {high:.1f} {label}"
    return f"not below {low:.1f} {label}" if low is not None else "no limits"


_HELPERS = {
    "utc": _utc, "duration": duration, "num": _num, "unit": lambda c: UNITS.get(c or "", c or ""),
    "limits": _limits_text,
}  # fmt: skip


def monthly_pdf(record: dict[str, Any], pieces: list[Piece], generated_at: datetime.datetime) -> bytes:
    """The monthly record printed: header, summary, daily table, charts, excursions, gaps, sign-off."""
    charts = []
    for quantity in monthly_record.QUANTITIES:
        series = monthly_record.hourly_series(pieces, quantity)
        if not series["mean"] and quantity != "temperature":
            continue  # no humidity sensor at the location: no empty chart
        low, high = record["limits"][quantity]
        unit = UNITS.get(record["summary"][quantity]["unit"], record["summary"][quantity]["unit"])
        charts.append(svg_chart(
            {"hourly max": series["max"], "hourly mean": series["mean"], "hourly min": series["min"]},
            start_ms=record["from"], end_ms=record["to"], unit=unit, low=low, high=high,
            unmonitored=[tuple(s) for s in record["unmonitored"]], max_gap_ms=2 * 3_600_000,
            title=f"{quantity.capitalize()} ({unit})", height=250,
        ))  # fmt: skip
    digest = content_sha256(record)
    html = report_html(
        "report_monthly.html", title=f"Monthly record {record['location']} {record['month']}",
        heading=f"Monthly temperature and humidity record — {record['month']}", r=record, charts=charts,
        generated_at=generated_at, digest=digest, **_HELPERS,
    )  # fmt: skip
    return render_pdf(html, footer=footer_text(digest, generated_at))


# ---------------------------------------------------------------- the excursion log


def _day_ms(day: datetime.date) -> int:
    return _ms(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC))


def excursion_report(
    conn: Connection, site: str, location: str | None, first: datetime.date, last: datetime.date
) -> dict[str, Any]:
    """Every excursion at ``location`` (every location of ``site`` when None) from day ``first`` to day
    ``last`` inclusive (UTC)."""
    if last < first:
        raise UserInputError("end", f"the period ends ({last}) before it starts ({first})")
    if (last - first).days > 366:
        raise UserInputError("end", "a period is at most a year and a day: ask for less")
    site_row = _site(conn, site)
    place = _location(conn, site, location) if location is not None else None
    start, end = _day_ms(first), _day_ms(last + datetime.timedelta(days=1))
    stays = _stays(conn, site, location, start, end)
    rows = _excursions(conn, stays, start, end)
    return {
        "kind": "excursion_log", "site": site, "site_name": site_row["name"], "location": location,
        "location_name": place["name"] if place else None, "start": first.isoformat(),
        "end": last.isoformat(),
        "from": start, "to": end, "time_basis": TIME_BASIS, "sensors": len({(s[0], s[1]) for s in stays}),
        "excursions": [r.as_dict() for r in rows],
    }  # fmt: skip


def excursion_pdf(record: dict[str, Any], generated_at: datetime.datetime) -> bytes:
    digest = content_sha256(record)
    where = record["location"] or f"all locations of {record['site']}"
    html = report_html(
        "report_excursions.html", title=f"Excursion log {where} {record['start']} to {record['end']}",
        heading=f"Excursion log — {record['start']} to {record['end']}", r=record, generated_at=generated_at,
        digest=digest, **_HELPERS,
    )  # fmt: skip
    return render_pdf(html, footer=footer_text(digest, generated_at))


# ---------------------------------------------------------------- the calibration status


def calibration_report(conn: Connection, site: str | None, today: datetime.date) -> dict[str, Any]:
    """Every sensor (of ``site``'s gateways when given) with its location now, last certificate and
    status on ``today``."""
    site_row = _site(conn, site) if site is not None else None
    query = select(Sensor.gateway, Sensor.id).join(Gateway, Gateway.id == Sensor.gateway)
    if site is not None:
        query = query.where(Gateway.site == site)
    sensors = {(r.gateway, r.id) for r in conn.execute(query)}
    every = placements(conn)
    sensors |= {(p["gateway"], p["device"]) for p in every
                if p["device_kind"] == "sensor" and (site is None or p["site"] == site)}  # fmt: skip
    located = current_locations(conn, "sensor", _day_ms(today + datetime.timedelta(days=1)) - 1)
    gateways = {g for g, _ in sensors}
    certificates = [c for c in calibrations(conn) if c["gateway"] in gateways]
    rows = calibration_status.calibration_rows(sensors, located, certificates, today)
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("overdue", "no certificate", "due", "ok")}
    return {
        "kind": "calibration_status", "site": site, "site_name": site_row["name"] if site_row else None,
        "as_of": today.isoformat(), "due_within_days": calibration_status.DUE_SOON_DAYS, "counts": counts,
        "sensors": [r.as_dict() for r in rows],
    }  # fmt: skip


def calibration_pdf(record: dict[str, Any], generated_at: datetime.datetime) -> bytes:
    digest = content_sha256(record)
    html = report_html(
        "report_calibration.html", title=f"Calibration status {record['site'] or 'all sites'}",
        heading=f"Calibration status — {record['as_of']}", r=record, generated_at=generated_at, digest=digest,
        **_HELPERS,
    )  # fmt: skip
    return render_pdf(html, footer=footer_text(digest, generated_at))


# ---------------------------------------------------------------- storing


def _parameters(parameters: dict[str, Any]) -> str:
    return rfc8785.dumps(parameters).decode()


def _meta(row: Any) -> dict[str, Any]:
    import json

    return {
        "id": row.id, "kind": row.kind, "site": row.site, "location": row.location,
        "parameters": json.loads(row.parameters), "title": row.title, "filename": row.filename,
        "content_type": row.content_type, "size": row.size, "sha256": row.sha256,
        "generated_at": row.generated_at, "generated_by": row.generated_by,
    }  # fmt: skip


def store_report(
    conn: Connection,
    *,
    kind: str,
    parameters: dict[str, Any],
    title: str,
    filename: str,
    content_type: str,
    body: bytes,
    by: Actor,
    now: datetime.datetime,
    site: str | None = None,
    location: str | None = None,
    report_id: str | None = None,
) -> dict[str, Any]:
    """Keep one generated file and audit it (``report.generate``) in ``conn``'s transaction; its meta.
    ``report_id``: made up (``RPT-<date>-<random>``) unless a test names it."""
    if kind not in KINDS:
        raise UserInputError("kind", f"{kind!r} is not a report kind ({', '.join(KINDS)})")
    report_id = report_id or f"RPT-{now:%Y%m%d}-{secrets.token_hex(5)}"
    row = {
        "id": report_id, "kind": kind, "site": site, "location": location,
        "parameters": _parameters(parameters), "title": title, "filename": filename,
        "content_type": content_type, "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
        "body": body, "generated_at": now, "generated_by": by.name, "generated_by_id": by.id,
    }  # fmt: skip
    conn.execute(insert(_stored).values(**row))
    after = {k: row[k] for k in ("kind", "site", "location", "title", "filename", "content_type", "size",
                                 "sha256")}  # fmt: skip
    after["parameters"] = parameters
    append(conn, actor=by, action="report.generate", entity_type="report", entity_id=report_id, now=now,
           after=after)  # fmt: skip
    return report_meta(conn, report_id)


_META = [c for c in _stored.c if c.name != "body"]


def report_meta(conn: Connection, report_id: str) -> dict[str, Any]:
    row = conn.execute(select(*_META).where(_stored.c.id == report_id)).first()
    if row is None:
        raise NotFound("report_id", f"no stored report {report_id!r}")
    return _meta(row)


def report_file(conn: Connection, report_id: str) -> tuple[dict[str, Any], bytes]:
    """The stored report's meta and its bytes, exactly as generated."""
    row = conn.execute(select(_stored).where(_stored.c.id == report_id)).first()
    if row is None:
        raise NotFound("report_id", f"no stored report {report_id!r}")
    return _meta(row), bytes(row.body)


def list_reports(
    conn: Connection,
    *,
    kind: str | None = None,
    site: str | None = None,
    location: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Stored reports, newest first (without their bytes)."""
    query = select(*_META).order_by(_stored.c.generated_at.desc(), _stored.c.id.desc()).limit(limit)
    for column, value in (("kind", kind), ("site", site), ("location", location)):
        if value is not None:
            query = query.where(_stored.c[column] == value)
    return [_meta(row) for row in conn.execute(query)]


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserInputError("format", f"{fmt!r} is not a format of the reports ({', '.join(FORMATS)})")
    return fmt


def _stamp(now: datetime.datetime) -> datetime.datetime:
    """The generation time as printed in the file: whole seconds.  The stored row keeps the exact time,
    so two files generated within one second are still listed newest first."""
    return now.astimezone(datetime.UTC).replace(microsecond=0)


def generate_monthly(
    conn: Connection, site: str, location: str, month: str, fmt: str, *, by: Actor, now: datetime.datetime
) -> dict[str, Any]:
    """Compute, print and store the monthly record of ``location`` for ``month`` as ``fmt``."""
    _check_format(fmt)
    at, now = now, _stamp(now)
    record, pieces = monthly_report(conn, site, location, month, now=now)
    if fmt == "pdf":
        body = monthly_pdf(record, pieces, now)
    else:
        header = {**record, "generated_at": now.isoformat(), "content_sha256": content_sha256(record)}
        body = monthly_record.monthly_csv(header).encode()
    return store_report(
        conn, kind="monthly_record",
        parameters={"site": site, "location": location, "month": month, "format": fmt},
        title=f"Monthly temperature and humidity record, {record['location_name']} ({location}), {month}",
        filename=f"monthly-record_{site}_{location}_{month}.{fmt}", content_type=FORMATS[fmt], body=body,
        by=by, now=at, site=site, location=location,
    )  # fmt: skip


def generate_excursions(
    conn: Connection,
    site: str,
    location: str | None,
    first: datetime.date,
    last: datetime.date,
    fmt: str,
    *,
    by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:
    _check_format(fmt)
    at, now = now, _stamp(now)
    record = excursion_report(conn, site, location, first, last)
    if fmt == "pdf":
        body = excursion_pdf(record, now)
    else:
        rows = [excursion_log.ExcursionRow(**r) for r in record["excursions"]]
        body = excursion_log.excursion_csv(rows).encode()
    where = location or "all-locations"
    return store_report(
        conn, kind="excursion_log",
        parameters={"site": site, "location": location, "start": first.isoformat(), "end": last.isoformat(),
                    "format": fmt},
        title=f"Excursion log, {location or 'all locations'} of {site}, {first} to {last}",
        filename=f"excursion-log_{site}_{where}_{first}_{last}.{fmt}", content_type=FORMATS[fmt], body=body,
        by=by, now=at, site=site, location=location,
    )  # fmt: skip


def generate_calibration(
    conn: Connection, site: str | None, today: datetime.date | None, fmt: str, *, by: Actor,
    now: datetime.datetime,
) -> dict[str, Any]:  # fmt: skip
    _check_format(fmt)
    at, now = now, _stamp(now)
    today = today or now.date()
    record = calibration_report(conn, site, today)
    if fmt == "pdf":
        body = calibration_pdf(record, now)
    else:
        rows = [calibration_status.CalibrationRow(**r) for r in record["sensors"]]
        body = calibration_status.calibration_csv(rows, today).encode()
    return store_report(
        conn, kind="calibration_status",
        parameters={"site": site, "as_of": today.isoformat(), "format": fmt},
        title=f"Calibration status, {site or 'all sites'}, {today}",
        filename=f"calibration-status_{site or 'all-sites'}_{today}.{fmt}", content_type=FORMATS[fmt],
        body=body, by=by, now=at, site=site,
    )  # fmt: skip


# ---------------------------------------------------------------- the schedule


def previous_month(now: datetime.datetime) -> str:
    first = now.astimezone(datetime.UTC).date().replace(day=1)
    return (first - datetime.timedelta(days=1)).strftime("%Y-%m")


def store_monthly_due(engine: Engine, now: datetime.datetime) -> list[str]:
    """The scheduler's job: the monthly record (PDF and CSV) of every storage location for the previous
    month, each only if not stored yet (a restart or a second run the same day adds nothing); the ids
    stored.  One transaction per file, so one location's failure leaves the others stored."""
    month = previous_month(now)
    with engine.connect() as conn:
        wanted = [(x["site"], x["id"]) for x in locations(conn) if x["kind"] in KEEPING]
    made = []
    for site, location in wanted:
        for fmt in FORMATS:
            parameters = _parameters({"site": site, "location": location, "month": month, "format": fmt})
            with engine.begin() as conn:
                held = conn.execute(
                    select(_stored.c.id).where(
                        _stored.c.kind == "monthly_record", _stored.c.site == site,
                        _stored.c.location == location, _stored.c.parameters == parameters,
                    ).limit(1)
                ).first()  # fmt: skip
                if held is None:
                    made.append(generate_monthly(conn, site, location, month, fmt, by=SYSTEM, now=now)["id"])
    return made
