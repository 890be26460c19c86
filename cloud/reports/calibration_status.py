"""The calibration status report: every sensor, where it is placed, its last certificate, how accurate,
when due next, and whether that is fine, due within 30 days, or overdue.  Pure, no I/O
(``periodic_store.py`` hands in the sensors, placements and certificates).

A sensor without a certificate is listed as such ("no certificate"), never left out: an inspector
asks for the instruments that were not calibrated first.  The last certificate is the one with the
latest calibration date (as ``sensors.calibration_due`` is kept).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DUE_SOON_DAYS", "CalibrationRow", "calibration_csv", "calibration_rows", "status_of"]

#: A certificate falling due within this many days is "due": time to book the calibration.
DUE_SOON_DAYS = 30


def status_of(next_due: datetime.date | None, today: datetime.date) -> str:
    """``"overdue"`` (due before today), ``"due"`` (within ``DUE_SOON_DAYS``), ``"ok"``, or
    ``"no certificate"``."""
    if next_due is None:
        return "no certificate"
    if next_due < today:
        return "overdue"
    return "due" if next_due <= today + datetime.timedelta(days=DUE_SOON_DAYS) else "ok"


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    gateway: str
    sensor: str
    location: str | None
    certificate: str | None
    calibrated_on: str | None
    accuracy: str | None
    next_due: str | None
    days_left: int | None
    status: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_rows(
    sensors: Iterable[tuple[str, str]],
    located: Mapping[tuple[str, str], str | None],
    certificates: Iterable[Mapping[str, Any]],
    today: datetime.date,
) -> list[CalibrationRow]:
    """One row per (gateway, sensor), by status (overdue first) then gateway and sensor.

    ``located``: where each sensor is placed now; ``certificates``: ``placements.calibrations`` dicts.
    """
    last: dict[tuple[str, str], Mapping[str, Any]] = {}
    for c in certificates:
        key = (c["gateway"], c["sensor"])
        if key not in last or (c["calibrated_on"], c["certificate"]) > (
            last[key]["calibrated_on"], last[key]["certificate"]):  # fmt: skip
            last[key] = c
    rows = []
    for key in sorted(set(sensors) | set(last)):
        c = last.get(key)
        due = datetime.date.fromisoformat(c["next_due"]) if c else None
        rows.append(CalibrationRow(
            gateway=key[0], sensor=key[1], location=located.get(key),
            certificate=c["certificate"] if c else None, calibrated_on=c["calibrated_on"] if c else None,
            accuracy=c["accuracy"] if c else None, next_due=c["next_due"] if c else None,
            days_left=(due - today).days if due else None, status=status_of(due, today),
        ))  # fmt: skip
    order = {"overdue": 0, "no certificate": 1, "due": 2, "ok": 3}
    return sorted(rows, key=lambda r: (order[r.status], r.gateway, r.sensor))


def calibration_csv(rows: Iterable[CalibrationRow], today: datetime.date) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["# as_of", today.isoformat()])
    writer.writerow(["gateway", "sensor", "location", "certificate", "calibrated_on", "accuracy", "next_due",
                     "days_left", "status"])  # fmt: skip
    for r in rows:
        writer.writerow([r.gateway, r.sensor, r.location or "", r.certificate or "", r.calibrated_on or "",
                         r.accuracy or "", r.next_due or "", "" if r.days_left is None else r.days_left,
                         r.status])  # fmt: skip
    return out.getvalue()
