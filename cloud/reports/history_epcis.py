"""A batch history's rooms as the EPCIS export takes them (``epcis_export.SegmentSensors``).  Pure.

The history computes each room's figures once (``batch_history``); the EPCIS document carries the same
min, max and mean per sensor and quantity, so an EPCIS reader and the PDF's reader see one set of
numbers.  Temperatures are °C (the store converts loggers set to °F or K); humidity is relative, in
percent (UN/CEFACT P1).  A sensor left with no reading because retention purged them says so (the month,
the date, the rule and the archive's full hash), rather than the bare "no readings" of a gap.
"""

from __future__ import annotations

from coldgate.cloud.reports.batch_history import OURS, History, SensorReport
from coldgate.cloud.reports.epcis_export import SegmentSensors, SensorFigures
from coldgate.cloud.reports.spans import Span

__all__ = ["epcis_segments"]


def epcis_segments(history: History) -> list[SegmentSensors]:
    """Each of our rooms' segments with its sensors' figures, as the EPCIS export takes them."""
    found = []
    for s in history.segments:
        if s.custody != OURS or s.site is None or s.location is None or s.start is None:
            continue
        figures = []
        for r in s.sensors:
            device = f"{r.gateway}/{r.sensor}"
            t = r.temperature
            note = _purged_note(history, s.purged, r)
            figures.append(SensorFigures(device, "temperature", t.count, t.min, t.max, t.mean, "CEL", note))
            if r.humidity is not None:
                h = r.humidity
                figures.append(SensorFigures(device, "humidity", h.count, h.min, h.max, h.mean, "P1", note))
        found.append(SegmentSensors(s.site, s.location, s.start, s.end, tuple(figures)))
    return found


def _purged_note(history: History, purged: tuple[Span, ...], report: SensorReport) -> str | None:
    """What the purges that took readings of this sensor's watched time say (None: none did)."""
    w = report.watched
    lo, hi = w.start, w.end
    touched = [p for p in history.purged
               if any(x.start < min(p.end, hi) and x.end > max(p.start, lo) for x in purged)]  # fmt: skip
    if not touched:
        return None
    return "; ".join(
        f"readings of {p.label} purged by retention on {p.purged_at:%Y-%m-%d} ({p.rule}), archive SHA-256 "
        f"{p.sha256}"
        for p in touched
    )
