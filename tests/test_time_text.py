"""``cloud/time_text.py``: the instants and durations every layer writes in text, in each of their forms
(the reports' fixed one, the lists' brief one), so that moving a caller onto them changes no text."""

from __future__ import annotations

import pytest

from coldgate.cloud.time_text import duration, iso_ms

MIN, HOUR, DAY = 60, 3600, 86_400


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, None), (0, "1970-01-01T00:00:00.000Z"), (1_796_000_000_001, "2026-11-30T00:53:20.001Z"),
     (-1, "1969-12-31T23:59:59.999Z")],
)  # fmt: skip
def test_epoch_ms_as_iso_text_to_the_millisecond(ms: int | None, text: str | None) -> None:
    assert iso_ms(ms) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0 min"), (59, "59 s"), (60, "1 min"), (20 * MIN, "20 min"), (HOUR, "1 h 00 min"),
     (3 * HOUR + 5 * MIN + 59, "3 h 05 min"), (47 * HOUR + 59 * MIN, "47 h 59 min"), (2 * DAY, "2 d 0 h"),
     (2 * DAY + 4 * HOUR, "2 d 4 h")],
)  # fmt: skip
def test_a_reports_durations_are_whole_minutes_or_seconds_under_one(seconds: int | None, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0.4, "0 min"), (29.9, "30 s"), (59.6, "1 min"), (90.1, "2 min"), (1199.9, "20 min"),
     (3 * HOUR + 5 * MIN + 31, "3 h 06 min"), (2 * DAY + 4 * HOUR + 29 * MIN, "2 d 4 h")],
)  # fmt: skip
def test_the_batch_historys_durations_are_to_the_nearest_minute(seconds: float | None, text: str) -> None:
    assert duration(seconds, nearest=True) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-1, "0 s"), (0, "0 s"), (40, "40 s"), (MIN, "1 min"), (HOUR, "1 h"),
     (HOUR + 5 * MIN + 59, "1 h 05 min"), (2 * DAY, "2 d"), (3 * DAY + 4 * HOUR, "3 d 04 h")],
)  # fmt: skip
def test_a_lists_durations_are_brief(seconds: int, text: str) -> None:
    assert duration(seconds, brief=True) == text
