"""A batch history's rooms as the EPCIS export takes them (``epcis_export.SegmentSensors``).  Pure.

The history computes each room's figures once (``batch_history``); the EPCIS document carries the same
min, max and mean per sensor and quantity, so an EPCIS reader and the PDF's reader see one set of
numbers.  Temperatures are °C (the store converts loggers set to °F or K); humidity is relative, in
percent (UN/CEFACT P1).
"""

from __future__ import annotations

from coldgate.cloud.reports.batch_history import OURS, History
from coldgate.cloud.reports.epcis_export import SegmentSensors, SensorFigures

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
            figures.append(SensorFigures(device, "temperature", t.count, t.min, t.max, t.mean, "CEL"))
            if r.humidity is not None:
                h = r.humidity
                figures.append(SensorFigures(device, "humidity", h.count, h.min, h.max, h.mean, "P1"))
        found.append(SegmentSensors(s.site, s.location, s.start, s.end, tuple(figures)))
    return found
