"""A line chart as inline SVG text, for reports (PDF) and pages alike: pure, no I/O.

Why hand-written SVG and not matplotlib: a report needs one kind of chart (values over time against a
class's limits), which is one small pure function; matplotlib would add a heavy dependency (and its
fonts, caches and backends) to the cloud service for it.  SVG text renders the same in the browser and
in weasyprint, stays sharp when printed, is inline (a report loads nothing from outside itself, see
``pdf.py``) and is plain text a test can read.

What it draws, over the window ``[start_ms, end_ms)`` (times are epoch milliseconds, drawn in UTC):

* each series as a line; a ``None`` value, or two points further apart than ``max_gap_ms``, breaks the
  line there: no line is drawn across missing data, so a gap never looks like a steady reading;
* the class limits as a band: dashed lines at ``low`` and ``high``, the areas beyond them shaded red;
* ``unmonitored`` spans (gaps in monitoring, times with no sensor placed) shaded grey and hatched;
* ``purged`` spans (months whose readings retention purged) shaded violet, plain, and labelled inside:
  recorded once and let go by a rule, they must never be read as the hatched "not monitored";
* axis ticks: UTC dates (and times, for short windows) below, values with ``unit`` on the left.

A series should hold at most a few thousand points (say hourly figures for a month): pass summaries,
not a month of raw minutes.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["PALETTE", "Point", "svg_chart"]

#: (epoch ms, value or None: no value there).
Point = tuple[int, float | None]
#: Line colours, one per series in order (readable in print and for the common colour blindness).
PALETTE = ("#1f4e99", "#c05a00", "#2e7d32", "#6a1b9a", "#00838f", "#5d4037")

_HOUR = 3_600_000
_DAY = 24 * _HOUR
#: Tick steps on the time axis, smallest first; the first giving at most ``max_x_ticks`` ticks is used.
_TIME_STEPS = (
    60_000, 5 * 60_000, 15 * 60_000, 30 * 60_000, _HOUR, 2 * _HOUR, 3 * _HOUR, 6 * _HOUR, 12 * _HOUR,
    _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 28 * _DAY, 91 * _DAY, 365 * _DAY,
)  # fmt: skip
_FONT = 'font-family="DejaVu Sans, sans-serif"'


def _nice_step(span: float, ticks: int) -> float:
    """A step of 1, 2, 2.5 or 5 times a power of ten giving about ``ticks`` ticks over ``span``."""
    raw = span / max(ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power  # pragma: no cover - the loop ends at 10


def _value_range(values: list[float], low: float | None, high: float | None) -> tuple[float, float]:
    """The value axis: every value and both limits in view, with a margin."""
    shown = values + [v for v in (low, high) if v is not None]
    if not shown:
        return 0.0, 1.0
    bottom, top = min(shown), max(shown)
    if top - bottom < 1e-9:
        bottom, top = bottom - 1, top + 1
    pad = (top - bottom) * 0.08
    return bottom - pad, top + pad


def _number(value: float, step: float) -> str:
    decimals = 0 if step >= 1 else min(3, max(1, -math.floor(math.log10(step))))
    return f"{value:.{decimals}f}"


def _time_label(ms: int, step: int) -> str:
    when = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    if step >= _DAY:
        return when.strftime("%d %b")
    if when.hour == 0 and when.minute == 0:
        return when.strftime("%d %b")
    return when.strftime("%H:%M")


def _auto_gap(points: Sequence[Point]) -> int:
    """Five times the series' median step: a missing stretch longer than that is a break."""
    times = sorted(ts for ts, _ in points)
    steps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    return 5 * steps[len(steps) // 2] if steps else _DAY


def _runs(points: Sequence[Point], max_gap_ms: int) -> list[list[tuple[int, float]]]:
    """The series cut into unbroken runs: at a None, and where two points are more than ``max_gap_ms``
    apart."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    last_ts: int | None = None
    for ts, value in sorted(points, key=lambda p: p[0]):
        if value is None or not math.isfinite(value):
            if current:
                runs.append(current)
            current, last_ts = [], None
            continue
        if last_ts is not None and ts - last_ts > max_gap_ms and current:
            runs.append(current)
            current = []
        current.append((ts, float(value)))
        last_ts = ts
    if current:
        runs.append(current)
    return runs


def svg_chart(
    series: Mapping[str, Sequence[Point]],
    *,
    start_ms: int,
    end_ms: int,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    unmonitored: Sequence[tuple[int, int]] = (),
    max_gap_ms: int | None = None,
    purged: Sequence[tuple[int, int]] = (),
    title: str = "",
    width: int = 720,
    height: int = 260,
    max_x_ticks: int = 10,
) -> str:
    """An ``<svg>`` element (text) drawing ``series`` (label -> points) over ``[start_ms, end_ms)``.

    ``low``/``high``: the class limits (either may be None: no limit that side); ``unmonitored``:
    ``(from_ms, to_ms)`` spans shaded as not monitored; ``max_gap_ms``: two points further apart break
    the line (default: five times each series' median step); ``unit`` as people write it ("°C");
    ``purged``: spans whose readings retention purged, shaded apart from the unmonitored ones.
    Points outside the window are left out.  Deterministic: the same input, the same text.
    """
    if end_ms <= start_ms:
        raise ValueError(f"the chart's window is empty: end {end_ms} is not after start {start_ms}")
    left, right, top, bottom = 58, 12, 26 if (title or series) else 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    in_window = {label: [p for p in points if start_ms <= p[0] < end_ms] for label, points in series.items()}
    values = [v for points in in_window.values() for _, v in points if v is not None and math.isfinite(v)]
    v_min, v_max = _value_range(values, low, high)

    def x(ms: int) -> float:
        return left + (ms - start_ms) / (end_ms - start_ms) * plot_w

    def y(value: float) -> float:
        return top + (v_max - value) / (v_max - v_min) * plot_h

    # The hatch's id is the chart's own (from what it draws): several charts in one page or PDF must not
    # define one id twice, and the same chart must still give the same text.
    hatch = "hatch-" + hashlib.sha1(f"{title}|{start_ms}|{end_ms}|{sorted(series)}".encode()).hexdigest()[:10]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" class="report-chart">',
        f'<defs><pattern id="{hatch}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#9e9e9e" '
        'stroke-width="2"/></pattern></defs>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#ffffff" stroke="#555"/>',
    ]
    # Out-of-range areas, then the limit lines.
    for limit, edge, name in ((high, top, "high"), (low, top + plot_h, "low")):
        if limit is None:
            continue
        y_lim = min(max(y(limit), top), top + plot_h)
        y0, y1 = sorted((y_lim, edge))
        if y1 - y0 > 0.05:
            out.append(
                f'<rect x="{left}" y="{y0:.1f}" width="{plot_w}" height="{y1 - y0:.1f}" '
                'fill="#e53935" fill-opacity="0.10"/>'
            )
        out.append(
            f'<line x1="{left}" y1="{y_lim:.1f}" x2="{left + plot_w}" y2="{y_lim:.1f}" stroke="#c62828" '
            'stroke-width="1" stroke-dasharray="5,3"/>'
        )
        out.append(
            f'<text x="{left + plot_w - 3}" y="{y_lim - 3:.1f}" text-anchor="end" font-size="8" {_FONT} '
            f'fill="#c62828">{name} {escape(_number(limit, 0.1))} '
            f"{escape(unit)}</text>"
        )
    # Unmonitored spans.
    for span_from, span_to in unmonitored:
        a, b = max(span_from, start_ms), min(span_to, end_ms)
        if b <= a:
            continue
        out.append(
            f'<rect x="{x(a):.1f}" y="{top}" width="{max(x(b) - x(a), 0.8):.1f}" height="{plot_h}" '
            f'fill="url(#{hatch})" fill-opacity="0.6" stroke="#9e9e9e" stroke-width="0.5"/>'
        )
    # Purged spans: a plain band of their own, labelled where it is wide enough to hold the words.
    for span_from, span_to in purged:
        a, b = max(span_from, start_ms), min(span_to, end_ms)
        if b <= a:
            continue
        band = max(x(b) - x(a), 0.8)
        out.append(
            f'<rect x="{x(a):.1f}" y="{top}" width="{band:.1f}" height="{plot_h}" class="purged" '
            'fill="#7e57c2" fill-opacity="0.16" stroke="#7e57c2" stroke-width="0.5"/>'
        )
        if band >= 120:
            out.append(
                f'<text x="{x(a) + band / 2:.1f}" y="{top + 14}" text-anchor="middle" font-size="8" '
                f'{_FONT} fill="#4527a0">readings purged by retention</text>'
            )
    # Value ticks.
    step = _nice_step(v_max - v_min, 6)
    tick = math.ceil(v_min / step) * step
    while tick <= v_max + 1e-9:
        ty = y(tick)
        out.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="#e0e0e0"/>')
        out.append(
            f'<text x="{left - 4}" y="{ty + 3:.1f}" text-anchor="end" font-size="8" {_FONT}>'
            f"{escape(_number(tick, step))}</text>"
        )
        tick += step
    if unit:
        out.append(
            f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="8" {_FONT} text-anchor="middle" '
            f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">{escape(unit)}</text>'
        )
    # Time ticks, on whole steps in UTC.
    t_step = next((s for s in _TIME_STEPS if (end_ms - start_ms) / s <= max_x_ticks), _TIME_STEPS[-1])
    t = -(-start_ms // t_step) * t_step
    while t < end_ms:
        tx = x(t)
        out.append(f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{top + plot_h}" stroke="#eeeeee"/>')
        out.append(
            f'<text x="{tx:.1f}" y="{top + plot_h + 12}" text-anchor="middle" font-size="8" {_FONT}>'
            f"{escape(_time_label(t, t_step))}</text>"
        )
        t += t_step
    out.append(
        f'<text x="{left + plot_w}" y="{height - 4}" text-anchor="end" font-size="8" {_FONT} '
        'fill="#555">time (UTC)</text>'
    )
    # The series, broken at gaps.
    legend_x = left
    for index, (label, points) in enumerate(in_window.items()):
        colour = PALETTE[index % len(PALETTE)]
        for run in _runs(points, max_gap_ms if max_gap_ms is not None else _auto_gap(points)):
            if len(run) == 1:
                ts, value = run[0]
                out.append(f'<circle cx="{x(ts):.1f}" cy="{y(value):.1f}" r="1.5" fill="{colour}"/>')
                continue
            path = " ".join(
                f"{'M' if i == 0 else 'L'}{x(ts):.1f},{y(value):.1f}" for i, (ts, value) in enumerate(run)
            )
            out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
        out.append(
            f'<line x1="{legend_x}" y1="{top - 8}" x2="{legend_x + 14}" y2="{top - 8}" stroke="{colour}" '
            'stroke-width="2"/>'
        )
        out.append(f'<text x="{legend_x + 18}" y="{top - 5}" font-size="8" {_FONT}>{escape(label)}</text>')
        legend_x += 26 + 5 * len(label)
    if unmonitored:
        out.append(
            f'<rect x="{legend_x}" y="{top - 13}" width="14" height="8" fill="url(#{hatch})" '
            'stroke="#9e9e9e" stroke-width="0.5"/>'
        )
        out.append(f'<text x="{legend_x + 18}" y="{top - 5}" font-size="8" {_FONT}>not monitored</text>')
        legend_x += 90
    if purged:
        out.append(
            f'<rect x="{legend_x}" y="{top - 13}" width="14" height="8" fill="#7e57c2" fill-opacity="0.16" '
            'stroke="#7e57c2" stroke-width="0.5"/>'
        )
        out.append(f'<text x="{legend_x + 18}" y="{top - 5}" font-size="8" {_FONT}>purged (retention)</text>')
        legend_x += 100
    if title:
        out.append(
            f'<text x="{left + plot_w}" y="{top - 5}" text-anchor="end" font-size="9" font-weight="bold" '
            f"{_FONT}>{escape(title)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
