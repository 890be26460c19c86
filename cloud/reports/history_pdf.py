"""A batch history printed as the PDF an inspector accepts: the lot and product, the summary against the
product's limits and budget, a chart per room with the limit band, the unmonitored time hatched and the
time whose readings retention purged shaded apart (and named with its rule and hash), the
tables, the excursions with their QA cases and signatures, a sign-off block, and on every page a footer
with the content's hash (the JSON's ``report_sha256``) and the time it was printed.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from typing import Any

from coldgate.cloud import time_text
from coldgate.cloud.reports.batch_history import OURS, History, Segment, Series
from coldgate.cloud.reports.history_json import history_content
from coldgate.cloud.reports.pdf import footer_text, render_pdf, report_html
from coldgate.cloud.reports.svg_chart import Point, svg_chart

__all__ = ["CHART_POINTS", "chart_points", "chart_svgs", "duration", "history_html", "history_pdf", "when"]

#: The most points a chart line gets: a longer series is drawn as each bucket's lowest and highest
#: reading, so an excursion's peak is never averaged away.
CHART_POINTS = 1200


def chart_points(series: Series, start: int, end: int) -> list[Point]:
    """The readings of ``series`` in [start, end), thinned to at most about :data:`CHART_POINTS`."""
    points = [(t, v) for t, v in zip(series.times, series.values, strict=True) if start <= t < end]
    if len(points) <= CHART_POINTS:
        return list(points)
    width = max(1, (end - start) * 2 // CHART_POINTS)
    buckets: dict[int, list[tuple[int, float]]] = {}
    for t, v in points:
        buckets.setdefault((t - start) // width, []).append((t, v))
    thinned: list[Point] = []
    for bucket in buckets.values():
        low, high = min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1])
        thinned += sorted({low, high})
    return thinned


def _chart(history: History, segment: Segment) -> str:
    assert segment.start is not None
    end = history.as_of if segment.end is None else segment.end
    if end <= segment.start:
        return ""
    lines = {
        f"{r.gateway}/{r.sensor}": chart_points(history.series.get((r.gateway, r.sensor), Series((), ())),
                                                segment.start, end)
        for r in segment.sensors
    }  # fmt: skip
    unwatched: Sequence[tuple[int, int]] = [(u.start, u.end) for u in segment.unmonitored]
    return svg_chart(lines, start_ms=segment.start, end_ms=end, unit="°C", low=history.limits.low,
                     high=history.limits.high, unmonitored=unwatched, max_gap_ms=3 * 60_000,
                     title=f"{segment.location} ({segment.site})", height=220,
                     purged=[(p.start, p.end) for p in segment.purged])  # fmt: skip


def chart_svgs(history: History) -> dict[int, str]:
    """A chart per segment in our rooms, by the segment's index."""
    return {i: _chart(history, s) for i, s in enumerate(history.segments) if s.custody == OURS}


#: The batch history's durations, to the nearest minute (its figures are sums of fractional seconds).
duration = functools.partial(time_text.duration, nearest=True)


def when(iso_time: str | None) -> str | None:
    """An ISO 8601 UTC time as a report prints it: "2026-12-01 08:01" (seconds only when not zero)."""
    if iso_time is None:
        return None
    day, clock = iso_time.rstrip("Z").split("T")
    clock = clock.split(".")[0]
    return f"{day} {clock[:5] if clock.endswith(':00') else clock}"


def history_html(
    history: History, printed_at: datetime.datetime, content: dict[str, Any] | None = None
) -> str:
    """The report's HTML, from ``content`` (``history_content``'s, computed when not given)."""
    content = content or history_content(history)
    charts = chart_svgs(history)
    return report_html("report_batch_history.html", title=f"Batch history: {history.subject}",
                       heading=f"Batch history — {history.subject}", h=content, charts=charts,
                       printed=printed_at.strftime("%Y-%m-%d %H:%M:%S UTC"), duration=duration,
                       when=when)  # fmt: skip


def history_pdf(history: History, printed_at: datetime.datetime | None = None) -> bytes:
    """The PDF; ``printed_at`` defaults to now (only the footer's time depends on it)."""
    printed_at = printed_at or datetime.datetime.now(datetime.UTC)
    content = history_content(history)
    footer = footer_text(content["report_sha256"], printed_at, label="Coldgate batch history")
    return render_pdf(history_html(history, printed_at, content), footer=footer)
