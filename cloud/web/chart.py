"""What the sensor chart draws, as the JSON the page hands to uPlot: pure, no I/O.

uPlot takes columns (x in seconds, then one array per series); the envelope
is two series (min, max) with a band between them and the mean as a line,
so a five-minute spike inside a year still shows as a spike of the max
series.  Raw points give all three the same value.  Gaps and excursions are
intervals the page's script shades (grey, red) and labels; a null put in
the middle of each gap breaks the lines there.  Alerts are marks at their
raising (severity, message); the limits, when known (``applied_limits``), are
drawn as the alarm and pre-alarm bands.

A gateway gap the cloud judged "delayed" (``gap_verdicts``: the gateway ran
throughout and its backlog arrived whole) was no interruption of monitoring,
only of its delivery: it is drawn apart (``delayed``, a hatched outline) and
breaks no line, because the readings inside it are all there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coldgate.cloud.api.applied_limits import KnownLimits, LimitsSegment
from coldgate.cloud.api.schemas import AlertEntry, GapEntry

__all__ = ["DELAYED_LABEL", "chart_data"]

#: What a delayed gap's band says on the chart and in its legend.
DELAYED_LABEL = "delayed, nothing missing"


def _delayed(gap: GapEntry) -> bool:
    return gap.verdict == "delayed"


def chart_data(
    series: dict[str, Any],
    gaps: list[GapEntry],
    alerts: list[AlertEntry],
    *,
    now_ms: int,
    limits: Sequence[LimitsSegment] = (),
) -> dict[str, Any]:
    """``{"x", "min", "max", "mean", "gaps", "delayed", "excursions", "alerts", "limits", "moves",
    "corrected"}``; times in seconds for uPlot.  ``gaps`` are the interruptions of monitoring,
    ``delayed`` the gateway gaps judged delayed, nothing missing (no break in the lines).  ``alerts``
    are ``[time, severity, message]`` at each raising; ``limits`` one
    ``{"from", "to", "low", "high", "pre_low", "pre_high", "source"}`` per stretch with known limits (a
    sensor that moved is judged by each room's class in turn), ``moves`` ``[time, label]`` where the
    limits' source changes inside the range; ``corrected`` counts raw points drawn at a time the cloud
    corrected.

    An excursion runs from its evidence's start (when the gateway says when the
    temperature left its limits) or its raising, to its last step if closed,
    else to now.
    """
    corrected = 0
    if series["mode"] == "raw":
        points = list(series["points"])
        corrected = sum(1 for p in points if p.ts_corrected is not None and p.ts_corrected != p.ts)
        x = [(p.ts_corrected or p.ts) / 1000 for p in points]
        values = [p.value if p.quality == "ok" else None for p in points]
        low = high = mean = values
    else:
        buckets = series["buckets"]
        x = [b.start / 1000 for b in buckets]
        low, high, mean = [b.min for b in buckets], [b.max for b in buckets], [b.avg for b in buckets]
    # A null inside each gap breaks the lines there: nothing was measured, so nothing is drawn across.
    delayed = [g for g in gaps if _delayed(g)]
    gaps = [g for g in gaps if not _delayed(g)]
    for gap in gaps:
        middle = (gap.start + (gap.end if gap.end is not None else now_ms)) / 2000
        at = next((i for i, t in enumerate(x) if t > middle), len(x))
        if 0 < at < len(x):
            x = [*x[:at], middle, *x[at:]]
            low, high, mean = ([*v[:at], None, *v[at:]] for v in (low, high, mean))
    shaded_gaps = [
        [g.start / 1000, (g.end if g.end is not None else now_ms) / 1000, f"{g.subject}: {g.cause}"]
        for g in gaps
    ]
    delayed_bands = [
        [g.start / 1000, (g.end or g.start) / 1000, f"{g.subject}: {DELAYED_LABEL}"] for g in delayed
    ]
    excursions = []
    marks = []
    for alert in alerts:
        started = alert.evidence.get("start") if isinstance(alert.evidence, dict) else None
        begin = started if isinstance(started, int) else alert.raised_at
        finish = alert.updated_at if not alert.open else now_ms
        if alert.severity == "critical":
            excursions.append([begin / 1000, finish / 1000, alert.message])
        marks.append([alert.raised_at / 1000, alert.severity, alert.message])
    return {
        "x": x, "min": low, "max": high, "mean": mean, "gaps": shaded_gaps, "delayed": delayed_bands,
        "excursions": excursions,
        "alerts": marks, "from": series["from"] / 1000, "to": series["to"] / 1000, "corrected": corrected,
        "limits": [_band(seg.start, seg.end, seg.limits) for seg in limits if seg.limits is not None],
        "moves": [[seg.start / 1000, limits_source(seg.limits)] for seg in list(limits)[1:]],
    }  # fmt: skip


def _band(start: int, end: int, limits: KnownLimits) -> dict[str, Any]:
    return {
        "from": start / 1000, "to": end / 1000, "low": limits.low, "high": limits.high,
        "pre_low": limits.pre_low, "pre_high": limits.pre_high, "source": limits_source(limits),
    }  # fmt: skip


def limits_source(limits: KnownLimits | None) -> str:
    """Where limits come from, in a few words for the chart and its page."""
    if limits is None:
        return "limits not known"
    if limits.temperature_class is not None:
        return f"class {limits.temperature_class} of {limits.location_name or limits.location}"
    return f"as gateway {limits.gateway} applied them in alert {limits.alert_id}"
