"""Times in a site's zone and the sensor page's ranges (``cloud/web/times.py``, ``cloud/web/ranges.py``):
pure functions, including the days the clocks change."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.cloud.web.ranges import PRESETS, chart_span, form_value
from coldgate.cloud.web.times import RangeError, corrected, local_moment, local_time

UTC = datetime.UTC


def ms(*args: int) -> int:
    return int(datetime.datetime(*args, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("when", "zone", "shown"),
    [
        (ms(2026, 12, 6, 15, 5, 3), "Europe/Berlin", "2026-12-06 16:05:03 +01:00"),
        (ms(2026, 7, 6, 15, 5, 3), "Europe/Berlin", "2026-07-06 17:05:03 +02:00"),
        (ms(2026, 12, 6, 15, 5, 3), "America/New_York", "2026-12-06 10:05:03 -05:00"),
        (ms(2026, 12, 6, 15, 5, 3), "Asia/Kolkata", "2026-12-06 20:35:03 +05:30"),
        (ms(2026, 12, 6, 15, 5, 3), "UTC", "2026-12-06 15:05:03 +00:00"),
        (ms(2026, 12, 6, 15, 5, 3), None, "2026-12-06 15:05:03 +00:00"),
        (ms(2026, 12, 6, 15, 5, 3), "Not/AZone", "2026-12-06 15:05:03 +00:00"),  # never fails a page
        # Berlin's clocks go back at 01:00 UTC on 25 October 2026: 02:30 local happens twice.
        (ms(2026, 10, 25, 0, 30), "Europe/Berlin", "2026-10-25 02:30:00 +02:00"),
        (ms(2026, 10, 25, 1, 30), "Europe/Berlin", "2026-10-25 02:30:00 +01:00"),
        # ... and go forward at 01:00 UTC on 29 March 2026: 01:59:59 +01:00 is followed by 03:00 +02:00.
        (ms(2026, 3, 29, 0, 59, 59), "Europe/Berlin", "2026-03-29 01:59:59 +01:00"),
        (ms(2026, 3, 29, 1, 0, 0), "Europe/Berlin", "2026-03-29 03:00:00 +02:00"),
        (None, "Europe/Berlin", "—"),
        # A naive datetime (SQLite's) is UTC.
        (datetime.datetime(2026, 12, 6, 15, 5, 3), "Europe/Berlin", "2026-12-06 16:05:03 +01:00"),
    ],
)
def test_local_time(when: int | datetime.datetime | None, zone: str | None, shown: str) -> None:
    assert local_time(when, zone) == shown


def test_local_time_to_the_minute() -> None:
    assert local_time(ms(2026, 12, 6, 15, 5, 3), "Europe/Berlin", seconds=False) == "2026-12-06 16:05 +01:00"


def test_a_corrected_time_is_shown_corrected_with_its_mark_and_what_the_gateway_said() -> None:
    said, right = ms(2026, 1, 1, 0, 0, 5), ms(2026, 12, 6, 15, 5, 3)
    html = str(corrected(said, right, "Europe/Berlin"))
    assert "2026-12-06 16:05:03 +01:00" in html and '<sup class="mark">c</sup>' in html
    assert 'title="clock-corrected by the cloud; the gateway said 2026-01-01 01:00:05 +01:00"' in html
    assert str(corrected(right, None, "Europe/Berlin")) == "2026-12-06 16:05:03 +01:00"
    assert str(corrected(right, right, "Europe/Berlin")) == "2026-12-06 16:05:03 +01:00"  # no change, no mark


def test_a_wall_time_is_read_in_the_sites_zone() -> None:
    assert local_moment("2026-12-06T16:05", "Europe/Berlin", "from") == ms(2026, 12, 6, 15, 5)
    assert local_moment("2026-07-06T17:05:03", "Europe/Berlin", "from") == ms(2026, 7, 6, 15, 5, 3)
    assert local_moment("2026-10-25T02:30", "Europe/Berlin", "from") == ms(2026, 10, 25, 0, 30)  # the first
    with pytest.raises(RangeError, match=r"from: 2026-03-29 02:30 does not exist in Europe/Berlin"):
        local_moment("2026-03-29T02:30", "Europe/Berlin", "from")
    with pytest.raises(RangeError, match=r"to: 'yesterday' is not a date and time"):
        local_moment("yesterday", "Europe/Berlin", "to")
    with pytest.raises(RangeError, match="before 1970"):
        local_moment("1969-12-31T23:00", "UTC", "to")


NOW = ms(2026, 12, 6, 15, 5)


def test_presets_end_now_or_at_the_given_moment() -> None:
    assert chart_span("24h", None, None, "Europe/Berlin", now_ms=NOW) == (span := chart_span(
        "24h", None, None, "UTC", now_ms=NOW))  # fmt: skip
    assert (span.start_ms, span.end_ms, span.name) == (NOW - PRESETS["24h"], NOW, "24h")
    at = chart_span("7d", None, str(NOW - 1000), "UTC", now_ms=NOW)
    assert at.end_ms == NOW - 1000 and at.start_ms == NOW - 1000 - PRESETS["7d"]
    iso = chart_span("24h", None, "2026-12-06T15:05:00+00:00", "Europe/Berlin", now_ms=0)
    assert iso.end_ms == NOW


def test_a_custom_range_is_read_in_the_zone_and_checked() -> None:
    span = chart_span("custom", "2026-12-01T00:00", "2026-12-02T00:00", "Europe/Berlin", now_ms=NOW)
    assert (span.start_ms, span.end_ms, span.name) == (ms(2026, 11, 30, 23), ms(2026, 12, 1, 23), "custom")
    for start, end, message in [
        ("2026-12-02T00:00", "2026-12-01T00:00", "to: the end must be after the start"),
        ("2026-12-01T00:00", "2026-12-01T00:00", "to: the end must be after the start"),
        ("2024-01-01T00:00", "2026-01-01T00:00", "to: the range is 731 days; at most 366 days"),
        ("", "2026-12-01T00:00", "from: a custom range needs both"),
        ("2026-12-01T00:00", None, "to: a custom range needs both"),
        ("2026-13-01T00:00", "2026-12-01T00:00", "from: '2026-13-01T00:00' is not a date and time"),
    ]:
        with pytest.raises(RangeError, match=message):
            chart_span("custom", start, end, "Europe/Berlin", now_ms=NOW)
    with pytest.raises(RangeError, match="range: 'fortnight' is none of"):
        chart_span("fortnight", None, None, "UTC", now_ms=NOW)


def test_form_values_are_wall_times_in_the_zone() -> None:
    assert form_value(ms(2026, 11, 30, 23), "Europe/Berlin") == "2026-12-01T00:00"
    assert form_value(ms(2026, 11, 30, 23), "UTC") == "2026-11-30T23:00"


typed = (
    st.none()
    | st.text(max_size=30)
    | st.datetimes().map(lambda d: d.isoformat())
    | st.datetimes().map(lambda d: d.isoformat(timespec="minutes"))
    | st.integers(-1, 10**16).map(str)
)
zones = st.sampled_from(["Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "UTC", None, "Bad/Zone"])


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["24h", "7d", "custom", "1y"]) | st.text(max_size=8), start=typed, end=typed,
       zone=zones)  # fmt: skip
def test_whatever_is_typed_the_page_gets_a_span_or_a_message(
    name: str, start: str | None, end: str | None, zone: str | None
) -> None:
    try:
        span = chart_span(name, start, end, zone, now_ms=NOW)
    except RangeError as exc:
        assert str(exc).split(":", 1)[0] in ("from", "to", "range", "from and to")
        return
    assert 0 <= span.start_ms <= span.end_ms and (span.start_ms < span.end_ms or span.name != "custom")
    assert local_time(span.start_ms, zone) and form_value(span.end_ms, zone)


@given(st.integers(-(10**18), 10**18), st.sampled_from(["Europe/Berlin", "Asia/Kolkata", None]))
def test_local_time_never_fails_a_page(when: int, zone: str | None) -> None:
    assert local_time(when, zone)
