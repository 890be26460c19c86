"""Which stretch of time the sensor page shows: a preset ending now (or at a given moment), or a custom
range typed into the page's form in the site's zone; pure, no I/O.

The form's ``datetime-local`` inputs carry no zone, so they are read in the
site's (``times.local_moment``); links made by the cloud carry epoch ms, and
an ISO time with an offset is taken as it says.  Anything the page cannot show
is a :class:`~coldgate.cloud.web.times.RangeError` whose message names the
field and says why, shown on the page above the default range, never a 500.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from coldgate.cloud.api.routes import MAX_RANGE_MS
from coldgate.cloud.web.times import RangeError, local_moment, zone_named
from coldgate.contract.ids import MAX_EPOCH_MS

__all__ = ["PRESETS", "Span", "chart_span", "form_value"]

#: The chart's range presets.
PRESETS = {"24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000, "1y": 365 * 86_400_000}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_INTEGER = re.compile(r"\d{1,15}")


@dataclass(frozen=True, slots=True)
class Span:
    start_ms: int
    end_ms: int
    #: A preset's name, or "custom".
    name: str


def _moment(text: str, zone: str | None, field: str) -> int:
    ms = _read(text, zone, field)
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise RangeError(f"{field}: {text.strip()[:40]!r} is outside the times the cloud keeps (1970 on)")
    return ms


def _read(text: str, zone: str | None, field: str) -> int:
    raw = text.strip()
    if _INTEGER.fullmatch(raw):
        return int(raw)
    try:
        given = datetime.datetime.fromisoformat(raw)
    except ValueError:
        given = None
    if given is not None and given.tzinfo is not None:
        return (given - _EPOCH) // datetime.timedelta(milliseconds=1)
    return local_moment(raw, zone, field)


def chart_span(
    name: str, start: str | None, end: str | None, zone: str | None, *, now_ms: int
) -> Span:
    """The range to show: ``name`` is a preset (``end`` optional: now) or "custom" (both ``start`` and
    ``end``, ``end`` after ``start``, at most ``MAX_RANGE_MS`` apart)."""
    if name in PRESETS:
        end_ms = _moment(end, zone, "to") if end else now_ms
        return Span(max(0, end_ms - PRESETS[name]), end_ms, name)
    if name != "custom":
        raise RangeError(f"range: {name[:20]!r} is none of {', '.join(PRESETS)} or custom")
    if not start or not end:
        missing = " and ".join(f for f, v in (("from", start), ("to", end)) if not v)
        raise RangeError(f"{missing}: a custom range needs both a start and an end")
    start_ms, end_ms = _moment(start, zone, "from"), _moment(end, zone, "to")
    if end_ms <= start_ms:
        raise RangeError("to: the end must be after the start")
    if end_ms - start_ms > MAX_RANGE_MS:
        days = (end_ms - start_ms) / 86_400_000
        raise RangeError(f"to: the range is {days:.0f} days; at most {MAX_RANGE_MS // 86_400_000} days")
    return Span(start_ms, end_ms, "custom")


def form_value(ms: int, zone: str | None) -> str:
    """``ms`` as a ``datetime-local`` input's value in ``zone`` (to the minute)."""
    moment = (_EPOCH + datetime.timedelta(milliseconds=ms)).astimezone(zone_named(zone))
    return f"{moment:%Y-%m-%dT%H:%M}"
