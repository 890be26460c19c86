"""Times as people at a site read them, and back: pure, no I/O.

Every instant is stored as UTC epoch ms; a page shows it in the zone of the
site its row belongs to, with the UTC offset written out
(``2026-12-06 16:05:03 +01:00``), so a printout read in another zone, or an
hour that happens twice when the clocks go back, is still unambiguous.
A time the cloud corrected (an unsynchronised gateway clock rebuilt from a
synchronised anchor, ``cloud/ingest/clock_correction.py``) is shown corrected,
with a mark whose title says what the gateway had said.

``local_moment`` reads the custom range form's ``datetime-local`` values
(which carry no zone) in the site's zone, refusing a wall time the zone skips
(the hour the clocks go forward) with a message saying so.
"""

from __future__ import annotations

import datetime
import functools
import zoneinfo

from markupsafe import Markup, escape

__all__ = ["RangeError", "corrected", "local_moment", "local_time", "zone_named"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
#: The mark after a clock-corrected time, and what it says (also in each page's legend).
CORRECTED_MARK = "c"


class RangeError(ValueError):
    """A range the page cannot show: the message says which field and why, for the page."""


@functools.lru_cache(maxsize=256)
def zone_named(name: str | None) -> datetime.tzinfo:
    """The zone called ``name``; UTC for none, or for a name the tz database does not know (a stored
    value is checked when set, but the pages must never fail over one)."""
    if not name:
        return datetime.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        return datetime.UTC


def _offset(moment: datetime.datetime) -> str:
    """``+01:00``, ``-03:30``, ``+00:00`` (``%z`` has no colon before Python 3.12's ``%:z``)."""
    delta = moment.utcoffset() or datetime.timedelta(0)
    sign = "-" if delta < datetime.timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local_time(when: int | str | datetime.datetime | None, zone: str | None, *, seconds: bool = True) -> str:
    """Epoch ms (or an aware datetime, or one in ISO 8601 as the API's records give it; a naive one is UTC,
    as SQLite hands them back) as wall time in ``zone`` with its offset; "—" for None."""
    if when is None:
        return "—"
    try:
        if isinstance(when, str):
            when = datetime.datetime.fromisoformat(when)
        if isinstance(when, datetime.datetime):
            moment = when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)
        else:
            moment = _EPOCH + datetime.timedelta(milliseconds=when)
        local = moment.astimezone(zone_named(zone))
    except (OverflowError, ValueError, TypeError):  # past year 9999: say what it is rather than fail the page
        return f"{when} (not a time)"
    shown = f"{local:%Y-%m-%d %H:%M:%S}" if seconds else f"{local:%Y-%m-%d %H:%M}"
    return f"{shown} {_offset(local)}"


def corrected(ts: int | None, ts_corrected: int | None, zone: str | None) -> Markup:
    """The time to show for an edge item: the corrected one with its mark if the cloud corrected it
    (and it differs), else the gateway's; HTML-safe."""
    if ts_corrected is None or ts_corrected == ts:
        return escape(local_time(ts, zone))
    said = local_time(ts, zone)
    title = f"clock-corrected by the cloud; the gateway said {said}"
    return Markup('<span class="corrected" title="{}">{}<sup class="mark">{}</sup></span>').format(
        title, local_time(ts_corrected, zone), CORRECTED_MARK
    )


def local_moment(text: str, zone: str | None, field: str) -> int:
    """A ``datetime-local`` value (``2026-12-06T16:05``, seconds optional) read in ``zone``, as epoch
    ms; a RangeError naming ``field`` for anything else, or for a wall time the zone skips."""
    raw = text.strip()
    try:
        naive = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise RangeError(f"{field}: {raw[:40]!r} is not a date and time like 2026-12-06T16:05") from None
    if naive.tzinfo is not None:
        raise RangeError(f"{field}: give a wall time without an offset; it is read in the site's zone")
    if naive.year < 1970:
        raise RangeError(f"{field}: {raw[:40]!r} is before 1970")
    tz = zone_named(zone)
    moment = naive.replace(tzinfo=tz)
    try:
        there_and_back = moment.astimezone(datetime.UTC).astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        raise RangeError(f"{field}: {raw[:40]!r} is past the year 9999") from None
    if there_and_back != naive:
        raise RangeError(f"{field}: {naive:%Y-%m-%d %H:%M} does not exist in {zone or 'UTC'} "
                         "(the clocks go forward then)")  # fmt: skip
    return (moment - _EPOCH) // datetime.timedelta(milliseconds=1)
