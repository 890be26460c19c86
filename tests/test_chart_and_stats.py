"""The sensor chart's data (``cloud/web/chart.py``), the range's statistics
(``cloud/api/series_stats.py``) and where sign-in may send the browser back to: pure functions."""

from __future__ import annotations

import pytest

from coldgate.cloud.api.schemas import Bucket, GapEntry, RawPoint
from coldgate.cloud.api.series_stats import series_stats
from coldgate.cloud.web.chart import chart_data
from coldgate.gateway.rules.mkt import mkt

T0 = 1_795_000_000_000


def raw(*values: float | None) -> dict:
    points = [
        RawPoint(ts=T0 + i * 60_000, ts_corrected=None, value=v, quality="ok" if v is not None else "error",
                 reason=None)
        for i, v in enumerate(values)
    ]  # fmt: skip
    return {"mode": "raw", "points": points, "from": T0, "to": T0 + len(values) * 60_000}


def test_raw_statistics_are_exact_and_mkt_is_the_gateways() -> None:
    stats = series_stats(raw(2, 2, 5, 8, None, 8, 8, 8), temperature=True)
    assert (stats.count, stats.min, stats.max, stats.exact) == (7, 2, 8, True)
    assert stats.mean == pytest.approx(41 / 7)
    assert stats.mkt == pytest.approx(mkt([2, 2, 5, 8, 8, 8, 8]))
    assert series_stats(raw(50, 60), temperature=False).mkt is None  # no MKT of humidity


def test_bucket_statistics_keep_the_spike_and_weigh_by_ok_readings() -> None:
    buckets = [
        Bucket(start=T0, count=60, min=4.0, max=5.0, avg=4.5, not_ok=0),
        Bucket(start=T0 + 3_600_000, count=60, min=4.1, max=12.5, avg=5.0, not_ok=30),  # a 5-minute spike
    ]
    stats = series_stats(
        {"mode": "buckets", "buckets": buckets, "from": T0, "to": T0 + 7_200_000}, temperature=True
    )
    assert (stats.min, stats.max, stats.exact, stats.count) == (4.0, 12.5, False, 90)
    assert stats.mean == pytest.approx((60 * 4.5 + 30 * 5.0) / 90)


def test_the_chart_breaks_its_lines_inside_a_gap_and_shades_it() -> None:
    series = raw(4.0, 4.1, 4.2, 4.3)
    gap = GapEntry(gateway="gw01", subject_type="sensor", subject="cr1-t01", cause="sensor_offline",
                   start=T0 + 60_000, end=T0 + 120_000, open=False, detail="", reports=2)  # fmt: skip
    data = chart_data(series, [gap], [], now_ms=T0 + 300_000)
    assert data["x"][2] == (T0 + 90_000) / 1000 and data["mean"][2] is None and data["max"][2] is None
    assert len(data["x"]) == 5 and data["gaps"] == [[(T0 + 60_000) / 1000, (T0 + 120_000) / 1000,
                                                      "cr1-t01: sensor_offline"]]  # fmt: skip
    error = chart_data(raw(4.0, None), [], [], now_ms=T0)
    assert error["mean"] == [4.0, None]  # an error reading is no value


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/", "/"),
        ("/dashboard/alerts?state=all", "/dashboard/alerts?state=all"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("evil.example", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/" + "a" * 600, "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_on_this_site(asked: str, kept: str) -> None:
    from coldgate.cloud.web.pages import safe_next

    assert safe_next(asked) == kept


def test_the_chart_marks_alerts_and_carries_the_limits_and_corrected_points() -> None:
    from coldgate.cloud.api.applied_limits import KnownLimits, LimitsSegment
    from coldgate.cloud.api.schemas import AlertEntry

    series = raw(4.0, 9.0, 4.2)
    series["points"][1] = series["points"][1].model_copy(update={"ts_corrected": T0 + 61_000})
    alert = AlertEntry(gateway="gw01", alert_id="a1", open=False, last_action="cleared",
                       raised_at=T0 + 60_000, updated_at=T0 + 120_000, steps=2, rule="temperature",
                       subject_type="sensor", subject="cr1-t01", severity="warning",
                       message="Cold room 1 above 7.0 °C", evidence={})  # fmt: skip
    limits = KnownLimits(low=2.0, high=8.0, pre_low=3.0, pre_high=7.0, delay_s=None, unit="CEL",
                         gateway="gw01", alert_id="a1", raised_at=T0, ts=T0)  # fmt: skip
    data = chart_data(series, [], [alert], now_ms=T0 + 300_000,
                      limits=[LimitsSegment(T0, T0 + 300_000, limits)])  # fmt: skip
    assert data["alerts"] == [[(T0 + 60_000) / 1000, "warning", "Cold room 1 above 7.0 °C"]]
    assert data["excursions"] == []  # a warning is marked, not shaded as an excursion
    assert data["limits"] == [{"from": T0 / 1000, "to": (T0 + 300_000) / 1000, "low": 2.0, "high": 8.0,
                               "pre_low": 3.0, "pre_high": 7.0,
                               "source": "as gateway gw01 applied them in alert a1"}]  # fmt: skip
    assert data["moves"] == []
    assert data["corrected"] == 1 and data["x"][1] == (T0 + 61_000) / 1000
    assert chart_data(series, [], [], now_ms=T0)["limits"] == []


def test_a_sensor_that_moved_gets_each_rooms_limits_and_a_mark_where_it_moved() -> None:
    from coldgate.cloud.api.applied_limits import Stay, class_limits, limit_segments

    fridge = class_limits("2-8C", {"low": 2.0, "high": 8.0, "pre_alarm_margin": 0.5}, location="cr1",
                          location_name="Cold room 1")  # fmt: skip
    frozen = {"low": -30.0, "high": -15.0, "pre_alarm_margin": 2.0, "alarm_on": "high"}
    freezer = class_limits("frozen", frozen, location="fz1", location_name="Freezer 1")
    stays = [Stay(T0 - 3_600_000, T0 + 100_000, fridge), Stay(T0 + 100_000, None, freezer)]
    segments = limit_segments(stays, None, T0, T0 + 300_000)
    data = chart_data(raw(4.0, 5.0, -20.0), [], [], now_ms=T0 + 300_000, limits=segments)
    drawn = [(b["from"], b["to"], b["low"], b["high"], b["pre_high"]) for b in data["limits"]]
    assert drawn == [
        (T0 / 1000, (T0 + 100_000) / 1000, 2.0, 8.0, 7.5),
        ((T0 + 100_000) / 1000, (T0 + 300_000) / 1000, None, -15.0, -17.0),  # alarms on the high side only
    ]
    assert data["moves"] == [[(T0 + 100_000) / 1000, "class frozen of Freezer 1"]]


def test_a_gateway_gap_judged_delayed_is_outlined_apart_and_breaks_no_line() -> None:
    """The gateway ran throughout and its backlog arrived: the readings inside are all there, so no null
    is put in; the band goes to ``delayed`` (labelled so), not to the grey "not monitored" ``gaps``."""
    from coldgate.cloud.web.chart import DELAYED_LABEL

    series = raw(4.0, 4.1, 4.2, 4.3)
    unheard = GapEntry(gateway="gw01", subject_type="gateway", subject="gw01", cause="gateway_offline",
                       start=T0 + 60_000, end=T0 + 120_000, open=False, detail="", reports=2,
                       verdict="delayed", verdict_detail="delayed, nothing missing: ...")  # fmt: skip
    data = chart_data(series, [unheard], [], now_ms=T0 + 300_000)
    assert data["gaps"] == [] and len(data["x"]) == 4 and None not in data["mean"]
    assert data["delayed"] == [[(T0 + 60_000) / 1000, (T0 + 120_000) / 1000, f"gw01: {DELAYED_LABEL}"]]
    # Judged not monitored (or not judged yet): a grey break as before.
    for verdict in ("not_monitored", None):
        data = chart_data(series, [unheard.model_copy(update={"verdict": verdict})], [], now_ms=T0 + 300_000)
        assert data["delayed"] == [] and len(data["gaps"]) == 1 and data["mean"][2] is None
