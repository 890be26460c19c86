"""What the alerts and gaps pages need beside the query layer: the time filter typed in the site's zone,
how long a row lasted (``time_text.duration``'s brief form), and the link from a row to its sensor's
chart at that time; pure, no I/O.

The filter's ``datetime-local`` inputs are read as the sensor page reads its custom range
(``ranges``): epoch ms as the cloud's own links carry them, an ISO time with an offset as it says,
and a wall time in the page's zone (``times.local_moment``, which refuses the hour the clocks skip).
Unlike a chart's range, either end may be left empty and there is no longest window: a list is
bounded by its limit, and "every alert since Monday" is a fair question.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from coldgate.cloud.api.queries_sites import ZoneBook
from coldgate.cloud.api.routes import MAX_RANGE_MS
from coldgate.cloud.api.schemas import AlertEntry, GapEntry
from coldgate.cloud.time_text import duration
from coldgate.cloud.web.times import RangeError, local_moment
from coldgate.contract.ids import MAX_EPOCH_MS

__all__ = [
    "CHART_MARGIN_MS",
    "AlertRow",
    "GapRow",
    "alert_rows",
    "alert_span",
    "gap_rows",
    "list_zone",
    "span_link",
    "typed_moment",
    "typed_window",
]

#: Least time shown before a start and after an end on a chart link: the readings leading up to an
#: excursion and back into range are what a reviewer looks at first.
CHART_MARGIN_MS = 15 * 60_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_INTEGER = re.compile(r"\d{1,15}")


def typed_moment(text: str, zone: str | None, field: str) -> int:
    """One end of the time filter as epoch ms; a RangeError naming ``field`` if it is not a time."""
    raw = text.strip()
    if _INTEGER.fullmatch(raw):
        ms = int(raw)
    else:
        try:
            given: datetime.datetime | None = datetime.datetime.fromisoformat(raw)
        except ValueError:
            given = None
        if given is not None and given.tzinfo is not None:
            ms = (given - _EPOCH) // datetime.timedelta(milliseconds=1)
        else:
            ms = local_moment(raw, zone, field)
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise RangeError(f"{field}: {raw[:40]!r} is outside the times the cloud keeps (1970 on)")
    return ms


def typed_window(start: str | None, end: str | None, zone: str | None) -> tuple[int | None, int | None]:
    """The filter's (from, to) in epoch ms, None where left empty; ``to`` must be after ``from``."""
    start_ms = typed_moment(start, zone, "from") if start and start.strip() else None
    end_ms = typed_moment(end, zone, "to") if end and end.strip() else None
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise RangeError("to: the end must be after the start")
    return start_ms, end_ms


def list_zone(zones: ZoneBook, site: str | None, gateway: str | None) -> str:
    """The zone a list's times are typed and shown in: the chosen site's, else the chosen gateway's,
    else the one all sites share, else UTC (each row still shows its own site's time)."""
    if site:
        return zones.of_site(site)
    if gateway:
        return zones.of_gateway(gateway)
    shared = set(zones.site_zones.values())
    return shared.pop() if len(shared) == 1 else zones.of_site(None)


def lasting(start_ms: int, end_ms: int | None, now_ms: int) -> str:
    """How long something lasted, or "still open, 3 h so far" while it has no end."""
    if end_ms is None:
        return f"still open, {duration((now_ms - start_ms) // 1000, brief=True)} so far"
    return duration((end_ms - start_ms) // 1000, brief=True)


def span_link(gateway: str, sensor: str, start_ms: int, end_ms: int) -> str:
    """The sensor page's custom range (``range=custom``, epoch ms, as ``ranges.chart_span`` reads them)
    around [start_ms, end_ms]: a margin each side of a tenth of the span, at least ``CHART_MARGIN_MS``;
    past the longest range a chart may show, the end and the time before it are kept."""
    end_ms = max(end_ms, start_ms)
    margin = max(CHART_MARGIN_MS, (end_ms - start_ms) // 10)
    upper = min(end_ms + margin, MAX_EPOCH_MS)
    lower = max(0, start_ms - margin, upper - MAX_RANGE_MS)
    query = {"gateway": gateway, "sensor": sensor, "range": "custom", "from": lower, "to": upper}
    return "/dashboard/sensor?" + urlencode(query)


def _epoch(value: Any) -> int | None:
    """An evidence time, if it is one (evidence is the gateway's JSON: the page must not trust it)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_EPOCH_MS
    return value if ok else None


def alert_span(alert: AlertEntry, now_ms: int) -> tuple[int, int]:
    """From the evidence's start (the excursion began before the rule's delay raised it) or the raising,
    to the evidence's end or the clearing, or now while open."""
    evidence: Mapping[str, Any] = alert.evidence if isinstance(alert.evidence, Mapping) else {}
    began = _epoch(evidence.get("start"))
    start = min(alert.raised_at, began) if began is not None else alert.raised_at
    if alert.open:
        return start, max(now_ms, alert.updated_at)
    ended = _epoch(evidence.get("end"))
    return start, max(alert.updated_at, ended or 0)


def alert_chart_link(alert: AlertEntry, now_ms: int) -> str | None:
    """The chart at the alert's time, for an alert about a sensor; None for any other subject."""
    if alert.subject_type != "sensor":
        return None
    return span_link(alert.gateway, alert.subject, *alert_span(alert, now_ms))


def gap_chart_link(gap: GapEntry, now_ms: int) -> str | None:
    """The chart across the gap (until now while open), for a gap in a sensor's monitoring."""
    if gap.subject_type != "sensor":
        return None
    return span_link(gap.gateway, gap.subject, gap.start, gap.end if gap.end is not None else now_ms)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert as its page row shows it: how long it has lasted and where its chart is."""

    alert: AlertEntry
    lasted: str
    chart: str | None


@dataclass(frozen=True, slots=True)
class GapRow:
    gap: GapEntry
    lasted: str
    chart: str | None


def alert_rows(alerts: list[AlertEntry], now_ms: int) -> list[AlertRow]:
    rows = []
    for alert in alerts:
        end = None if alert.open else alert.updated_at
        rows.append(AlertRow(alert, lasting(alert.raised_at, end, now_ms), alert_chart_link(alert, now_ms)))
    return rows


def gap_rows(gaps: list[GapEntry], now_ms: int) -> list[GapRow]:
    return [GapRow(g, lasting(g.start, g.end, now_ms), gap_chart_link(g, now_ms)) for g in gaps]
