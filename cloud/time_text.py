"""Instants and durations as the cloud writes them in text, for every layer alike: the API's answers,
the reports (JSON, CSV, PDF) and the pages.

Pure and importing nothing of ours, so that the lowest modules may use it: the reports' pure halves
must not import ``cloud.api`` (they are judged without the web layer, and ``cloud.api`` imports them),
yet print the same instants the API answers.  Each of these was written out where it was first needed,
two and three times over, and a fix to one copy would have missed the others.
"""

from __future__ import annotations

import datetime

__all__ = ["iso_ms"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def iso_ms(ms: int | None) -> str | None:
    """Epoch ms as ISO 8601 UTC to the millisecond (``2026-12-01T08:01:00.000Z``); exact for any ms (no
    float round trip); None for None."""
    if ms is None:
        return None
    moment = _EPOCH + datetime.timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
