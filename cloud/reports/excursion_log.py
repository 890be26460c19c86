"""The excursion log of a period: every excursion of the sensors placed at the locations asked for,
with its start, end, peak, duration, and the QA case that holds it with the case's disposition.  Pure,
no I/O: ``periodic_store.py`` hands in the alerts (folded to one entry each, ``queries.alerts``), where
each sensor was placed, and the cases.

An excursion is an alert of a limit crossed on a sensor (``temperature.high``, ``temperature.low``,
``humidity.high``...; ``case_opening.is_limit_crossing``, as the batch history counts them): not a
pre-alarm, which warns before anything happened to the goods, nor a spent budget.  Its
start is when the gateway says the value left its limits (the evidence's ``start``), else when the
alert was raised; its end the evidence's ``end``, else the clearing step's time; an alert still open has
no end and its duration runs to the end of the period (said so: "ongoing").
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from coldgate.cloud.alerts.case_opening import is_limit_crossing

__all__ = ["EXCURSION_RULE_PREFIXES", "ExcursionRow", "excursion_csv", "excursion_rows", "is_excursion"]

#: The two monitored quantities whose rules' alerts may be excursions (the database's first filter).
EXCURSION_RULE_PREFIXES = ("temperature.", "humidity.")


def is_excursion(rule: str) -> bool:
    return rule.startswith(EXCURSION_RULE_PREFIXES) and is_limit_crossing(rule)


@dataclass(frozen=True, slots=True)
class ExcursionRow:
    """One excursion as the log prints it (times epoch ms, UTC; ``end`` None while ongoing)."""

    location: str
    gateway: str
    sensor: str
    alert_id: str
    rule: str
    severity: str
    start: int
    end: int | None
    duration_s: int
    peak: float | None
    unit: str
    message: str
    case_id: str | None
    case_state: str | None
    disposition: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _peak(evidence: Mapping[str, Any], rule: str) -> float | None:
    if evidence.get("peak") is not None:
        return float(evidence["peak"])
    side = "min" if rule.endswith("low") else "max"
    return float(evidence[side]) if evidence.get(side) is not None else None


def excursion_rows(
    alerts: Iterable[Mapping[str, Any]],
    where: Mapping[tuple[str, str], Iterable[tuple[int, int | None, str]]],
    cases: Mapping[tuple[str, str], Mapping[str, Any]],
    *,
    start: int,
    end: int,
) -> list[ExcursionRow]:
    """The excursions among ``alerts`` (``AlertEntry`` dicts) overlapping ``[start, end)`` whose sensor
    was placed at a location when it was raised, oldest first.

    ``where``: (gateway, sensor) -> (valid_from, valid_to or None, location) placements; ``cases``:
    (gateway, alert_id) -> ``{"case_id", "state", "disposition"}``.
    """
    rows = []
    for alert in alerts:
        if alert["subject_type"] != "sensor" or not is_excursion(alert["rule"]):
            continue
        evidence = alert.get("evidence") or {}
        began = int(evidence.get("start") or alert["raised_at"])
        closed = not alert["open"]
        finished = evidence.get("end")
        ended = int(finished) if finished is not None else (int(alert["updated_at"]) if closed else None)
        if began >= end or (ended is not None and ended < start):
            continue
        # Where the sensor was when the excursion was raised, or at the period's start for one raised
        # before it (placements come clipped to the period).
        when = max(alert["raised_at"], start)
        placed = [
            location for a, b, location in where.get((alert["gateway"], alert["subject"]), ())
            if a <= when and (b is None or when < b)
        ]  # fmt: skip
        if not placed:
            continue
        case = cases.get((alert["gateway"], alert["alert_id"]), {})
        rows.append(ExcursionRow(
            location=placed[-1], gateway=alert["gateway"], sensor=alert["subject"],
            alert_id=alert["alert_id"], rule=alert["rule"], severity=alert["severity"], start=began,
            end=ended, duration_s=max(0, ((ended if ended is not None else end) - began) // 1000),
            peak=_peak(evidence, alert["rule"]), unit=str(evidence.get("unit") or ""),
            message=alert["message"],
            case_id=case.get("case_id"), case_state=case.get("state"), disposition=case.get("disposition"),
        ))  # fmt: skip
    return sorted(rows, key=lambda r: (r.start, r.location, r.sensor, r.alert_id))


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def excursion_csv(rows: Iterable[ExcursionRow]) -> str:
    """The log as CSV (RFC 4180), times ISO 8601 UTC, an ongoing excursion's end empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["location", "gateway", "sensor", "rule", "severity", "start", "end", "duration_s",
                     "peak", "unit", "case_id", "case_state", "disposition", "alert_id",
                     "message"])  # fmt: skip
    for r in rows:
        writer.writerow([r.location, r.gateway, r.sensor, r.rule, r.severity, _iso(r.start), _iso(r.end),
                         r.duration_s, "" if r.peak is None else f"{r.peak:.2f}", r.unit, r.case_id or "",
                         r.case_state or "", r.disposition or "", r.alert_id, r.message])  # fmt: skip
    return out.getvalue()
