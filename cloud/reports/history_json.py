"""A batch history as the JSON the API answers, the CSV a spreadsheet opens and the content the PDF's
hash covers.  Pure.

One form for all three, so the PDF's footer hash can be recomputed by anyone holding the JSON: the hash
is SHA-256 of the RFC 8785 canonical JSON of the content (``pdf.content_sha256``), which holds every
figure and the moment the history was computed up to (``as_of``), and not the moment it was printed.
Durations are seconds, temperatures °C, times ISO 8601 UTC beside epoch ms, as the rest of the API.

Time whose readings retention purged is its own entry (``purged_months`` with each month's record;
``purged``/``purged_s`` per segment and in the totals), never folded into ``unmonitored``: an inspector
must be able to tell a month let go by a rule, with its hash on record, from time nobody watched.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from coldgate.cloud.db.selections import PurgedMonth
from coldgate.cloud.reports.batch_history import OURS, Excursion, Figures, History, Segment, SensorReport
from coldgate.cloud.reports.pdf import content_sha256
from coldgate.cloud.reports.spans import Span
from coldgate.cloud.time_text import iso_ms

__all__ = ["CSV_COLUMNS", "history_content", "history_csv"]


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def _round(value: float | None, places: int = 3) -> float | None:
    return None if value is None else round(value, places)


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "readings": f.count, "min": _round(f.min), "max": _round(f.max), "mean": _round(f.mean),
        "mkt": _round(f.mkt), "above_s": _seconds(f.above_ms), "below_s": _seconds(f.below_ms),
    }  # fmt: skip


def _span(s: Span) -> dict[str, Any]:
    return {"start": iso_ms(s.start), "start_ms": s.start, "end": iso_ms(s.end), "end_ms": s.end}


def _sensor(r: SensorReport) -> dict[str, Any]:
    return {
        "gateway": r.gateway, "sensor": r.sensor, "watched": _span(r.watched),
        "temperature": _figures(r.temperature),
        "humidity": None if r.humidity is None else _figures(r.humidity),
        "gaps": [_span(g) for g in r.gaps], "clock_corrected_readings": r.corrected,
    }  # fmt: skip


def _excursion(x: Excursion) -> dict[str, Any]:
    return {
        "gateway": x.gateway, "alert_id": x.alert_id, "sensor": x.sensor, "rule": x.rule,
        "severity": x.severity, "start": iso_ms(x.start), "start_ms": x.start, "end": iso_ms(x.end),
        "end_ms": x.end, "peak": x.peak, "message": x.message, "case_id": x.case_id,
        "case_state": x.case_state, "disposition": x.disposition, "signatures": list(x.signatures),
    }  # fmt: skip


def purged_month(p: PurgedMonth) -> dict[str, Any]:
    """A purged month as the JSON says it (the sensor series' answer uses it too)."""
    return {
        "month": p.label, "start": iso_ms(p.start), "start_ms": p.start, "end": iso_ms(p.end),
        "end_ms": p.end, "scope": p.scope, "readings": p.readings, "sha256": p.sha256, "rule": p.rule,
        "purge_from": p.purge_from.isoformat(), "purged_at": iso_ms(int(p.purged_at.timestamp() * 1000)),
        "purged_by": p.purged_by, "note": p.note(),
    }  # fmt: skip


def _segment(s: Segment) -> dict[str, Any]:
    found: dict[str, Any] = {
        "custody": s.custody, "site": s.site, "location": s.location, "party": s.party,
        "start": iso_ms(s.start), "start_ms": s.start, "end": iso_ms(s.end), "end_ms": s.end,
        "pallets": s.pallets, "cases": s.cases, "quantity": s.quantity, "documents": list(s.documents),
        "references": list(s.references),
    }  # fmt: skip
    found.update(dict.fromkeys(("temperature", "sensors", "unmonitored_s", "unmonitored", "excursions",
                                "purged_s", "purged")))  # fmt: skip
    if s.custody == OURS:  # outside our custody nothing of ours watched: the figures are null, not zero
        found.update({
            "temperature": _figures(s.temperature), "sensors": [_sensor(r) for r in s.sensors],
            "unmonitored_s": _seconds(s.unmonitored_ms), "unmonitored": [_span(u) for u in s.unmonitored],
            "excursions": [_excursion(x) for x in s.excursions],
            "purged_s": _seconds(s.purged_ms), "purged": [_span(p) for p in s.purged],
        })  # fmt: skip
    return found


def history_content(history: History) -> dict[str, Any]:
    """The history as JSON, with ``report_sha256`` over everything else in it."""
    t, limits = history.totals, history.limits
    content: dict[str, Any] = {
        "subject": history.subject, "product": history.product, "gtin": history.gtin, "lot": history.lot,
        "status": history.status, "expiry": history.expiry,
        "limits": {"temperature_class": limits.temperature_class, "low": limits.low, "high": limits.high,
                   "humidity_low": limits.humidity_low, "humidity_high": limits.humidity_high},
        "as_of": iso_ms(history.as_of), "as_of_ms": history.as_of,
        "custody_recorded": bool(history.segments),
        "totals": {
            "readings": t.readings, "mkt": _round(t.mkt), "min": _round(t.min), "max": _round(t.max),
            "out_of_range_s": _seconds(t.out_of_range_ms),
            "budget_s": None if t.budget_ms is None else _seconds(t.budget_ms),
            "budget_exceeded": t.budget_exceeded, "excursions": t.excursions,
            "unmonitored_s": _seconds(t.unmonitored_ms), "in_custody_s": _seconds(t.in_custody_ms),
            "first_in": iso_ms(t.first_in), "first_in_ms": t.first_in, "last_out": iso_ms(t.last_out),
            "last_out_ms": t.last_out, "purged_s": _seconds(t.purged_ms),
        },
        "purged_months": [purged_month(p) for p in history.purged],
        "segments": [_segment(s) for s in history.segments],
        "clock_corrected_readings": history.corrected_readings,
        "notes": [*history.notes, *([] if history.segments else [_empty_note(history)])],
    }  # fmt: skip
    content["report_sha256"] = content_sha256(content)
    return content


def _empty_note(history: History) -> str:
    return (f"No custody is recorded for {history.subject}: none of it was received, moved or dispatched "
            "through our sites, so there is no history to report.")  # fmt: skip


#: One row per segment and sensor (a segment nobody watched: one row without a sensor), then the totals.
#: ``purged_months``: the months purged by retention a row's time touches (the totals row: each month's
#: note, with the date, the rule and the archive's hash), so a spreadsheet never shows them as silence.
CSV_COLUMNS = (
    "custody", "site", "location", "party", "start", "end", "pallets", "cases", "quantity", "documents",
    "gateway", "sensor", "readings", "min_c", "max_c", "mean_c", "mkt_c", "above_s", "below_s",
    "unmonitored_s", "excursions", "cases_holding", "purged_s", "purged_months",
)  # fmt: skip


def history_csv(history: History) -> str:
    """The history as CSV (RFC 4180, a header row; the subject is in the file name the API gives)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in history.segments:
        place = [s.custody, s.site or "", s.location or "", s.party or "", iso_ms(s.start) or "",
                 iso_ms(s.end) or "", s.pallets, s.cases, s.quantity, " ".join(s.documents)]  # fmt: skip
        excursions = " ".join(x.alert_id for x in s.excursions)
        cases = " ".join(sorted({x.case_id for x in s.excursions if x.case_id}))
        unmonitored = _seconds(s.unmonitored_ms) if s.custody == OURS else ""
        months = " ".join(p.label for p in history.purged if any(x.start < p.end and x.end > p.start
                                                                  for x in s.purged))  # fmt: skip
        purged = [_seconds(s.purged_ms) if s.custody == OURS else "", months]
        if not s.sensors:
            blank = [""] * 9
            writer.writerow([*place, *blank, unmonitored, excursions, cases, *purged])
        for r in s.sensors:
            f = r.temperature
            figures = [f.count, _blank(f.min), _blank(f.max), _blank(f.mean), _blank(f.mkt),
                       _seconds(f.above_ms), _seconds(f.below_ms)]  # fmt: skip
            writer.writerow([*place, r.gateway, r.sensor, *figures, unmonitored, excursions, cases, *purged])
    t = history.totals
    span = ["totals", "", "", "", iso_ms(t.first_in) or "", iso_ms(t.last_out) or "", "", "", "", "", "", ""]
    figures = [t.readings, _blank(t.min), _blank(t.max), "", _blank(t.mkt), _seconds(t.out_of_range_ms), ""]
    notes = " ".join(p.note() for p in history.purged)
    gone = [_seconds(t.purged_ms), notes]
    writer.writerow([*span, *figures, _seconds(t.unmonitored_ms), t.excursions, "", *gone])
    return out.getvalue()


def _blank(value: float | None) -> Any:
    return "" if value is None else round(value, 3)
