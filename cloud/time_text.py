"""Instants and durations as the cloud writes them in text, for every layer alike: the API's answers,
the reports (JSON, CSV, PDF) and the pages.

Pure and importing nothing of ours, so that the lowest modules may use it: the reports' pure halves
must not import ``cloud.api`` (they are judged without the web layer, and ``cloud.api`` imports them),
yet print the same instants the API answers.  Each of these was written out where it was first needed,
two and three times over, and a fix to one copy would have missed the others.
"""

from __future__ import annotations

import datetime

__all__ = ["duration", "iso_ms"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def iso_ms(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC to the millisecond (``2026-12-01T08:01:00.000Z``); exact for any ms (no
    float round trip); None for None."""
    if ms is None:
        return None
    moment = _EPOCH + datetime.timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(seconds: float | None, *, brief: bool = False, nearest: bool = False) -> str:
    """Seconds as people read a duration; "—" for None.

    Two forms, on purpose.  The reports print whole minutes in one fixed form, as a record is read and
    compared line by line: "0 min", "20 min", "3 h 05 min", "2 d 4 h"; under a minute but not nothing,
    the seconds ("40 s"), because a record saying "0 min" out of range beside one excursion contradicts
    itself to an inspector.  ``brief`` is the pages' lists,
    read at a glance, where a door left open 40 s must not read "0 min": to the second under a minute,
    zero parts left out, never below "0 s": "40 s", "12 min", "1 h", "1 h 05 min", "2 d", "3 d 04 h".
    Minutes are those elapsed, or the ``nearest`` one: the batch history's figures are sums of fractional
    seconds, where 1,199.9 s is 20 min."""
    if seconds is None:
        return "—"
    if brief:
        seconds = max(0, seconds)
        if seconds < 60:
            return f"{seconds} s"
    else:
        whole = round(seconds) if nearest else int(seconds)
        if 0 < whole < 60:
            return f"{whole} s"
    minutes = round(seconds / 60) if nearest else seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" if brief and not minutes else f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    if brief:
        return f"{days} d {hours:02d} h" if hours else f"{days} d"
    return f"{days} d {hours} h"
