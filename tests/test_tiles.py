"""The overview's tile states (``cloud/api/tiles.py``): the most urgent that holds, and since when."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from coldgate.cloud.api.schemas import AlertEntry, GapEntry, GatewayEntry, LastReading, SensorEntry
from coldgate.cloud.api.tiles import STATES, tile

NOW = 1_795_000_000_000
STALE = 600_000
SINCE = datetime.datetime(2026, 11, 18, 8, 0, tzinfo=datetime.UTC)


def sensor(*, last_ts: int | None = NOW - 30_000, due: datetime.date | None = None) -> SensorEntry:
    last = (
        None
        if last_ts is None
        else LastReading(
            ts=last_ts,
            ts_corrected=None,
            value=4.5,
            unit="CEL",
            quantity="temperature",
            quality="ok",
            reason=None,
        )
    )
    return SensorEntry(
        gateway="gw01", site="site1", id="cr1-t01", zone=None, calibration_due=due, last_reading=last
    )


def gateway(online: bool = True) -> GatewayEntry:
    return GatewayEntry(
        id="gw01",
        site="site1",
        online=online,
        state_since=SINCE,
        first_seen=SINCE,
        last_seen=SINCE,
        boot=None,
        status_ts=None,
        software=None,
        heartbeat_s=None,
        clock=None,
        backlog=None,
        alarm=None,
        streams=[],
    )


def alert(severity: str = "critical", *, open_: bool = True, raised: int = NOW - 60_000) -> AlertEntry:
    return AlertEntry(
        gateway="gw01",
        alert_id="a1",
        open=open_,
        last_action="raised" if open_ else "cleared",
        raised_at=raised,
        updated_at=raised,
        steps=1,
        rule="temperature.high",
        subject_type="sensor",
        subject="cr1-t01",
        severity=severity,
        message="above 8.0 °C",
        evidence={},
    )


def gap(*, open_: bool = True) -> GapEntry:
    return GapEntry(
        gateway="gw01",
        subject_type="sensor",
        subject="cr1-t01",
        cause="sensor_offline",
        start=NOW - 120_000,
        end=None if open_ else NOW - 1000,
        open=open_,
        detail="no answer",
        reports=1,
    )


def state(**kwargs: Any) -> tuple[str, int | None]:
    found = tile(
        kwargs.pop("sensor", sensor()),
        kwargs.pop("gateway", gateway()),
        kwargs.pop("alerts", []),
        kwargs.pop("gaps", []),
        now_ms=NOW,
        stale_after_ms=STALE,
    )
    return found.state, found.since_ms


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, ("in range", None)),
        ({"gateway": gateway(online=False), "alerts": [alert()], "gaps": [gap()]}, ("gateway offline", None)),
        ({"alerts": [alert()], "gaps": [gap()]}, ("offline", NOW - 120_000)),
        ({"alerts": [alert("warning"), alert(raised=NOW - 5000)]}, ("excursion", NOW - 5000)),
        ({"alerts": [alert("warning")]}, ("pre-alarm", NOW - 60_000)),
        ({"alerts": [alert("info")]}, ("in range", None)),
        ({"alerts": [alert(open_=False)], "gaps": [gap(open_=False)]}, ("in range", None)),
        ({"sensor": sensor(last_ts=None)}, ("no data", None)),
        ({"sensor": sensor(last_ts=NOW - STALE - 1)}, ("stale", NOW - STALE - 1)),
        ({"sensor": sensor(last_ts=NOW - STALE)}, ("in range", None)),
        ({"sensor": sensor(due=datetime.date(2026, 11, 17))}, ("calibration overdue", None)),
        ({"sensor": sensor(due=datetime.date(2026, 11, 18))}, ("in range", None)),
    ],
)
def test_the_most_urgent_state_holds(given: dict[str, Any], expected: tuple[str, int | None]) -> None:
    got, since = state(**dict(given))
    if expected[0] == "gateway offline":
        assert (got, since) == ("gateway offline", int(SINCE.timestamp() * 1000))
    else:
        assert (got, since) == expected
    assert got in STATES


def test_a_tile_shows_the_limits_known_and_the_gateways_time_of_a_corrected_reading() -> None:
    from coldgate.cloud.api.applied_limits import KnownLimits

    limits = KnownLimits(low=2.0, high=8.0, pre_low=3.0, pre_high=7.0, delay_s=600, unit="CEL",
                         gateway="gw01", alert_id="a1", raised_at=NOW - 60_000, ts=NOW - 60_000)  # fmt: skip
    plain = tile(sensor(), gateway(), [], [], now_ms=NOW, stale_after_ms=STALE)
    assert (plain.low, plain.high, plain.limits_alert, plain.reported_ts) == (None, None, None, None)
    known = tile(sensor(), gateway(), [], [], now_ms=NOW, stale_after_ms=STALE, limits=limits)
    assert (known.low, known.high, known.pre_low, known.pre_high) == (2.0, 8.0, 3.0, 7.0)
    assert known.limits_alert == "a1"
    assert known.state == "in range"  # shown, not judged: the gateway judges
    entry = sensor()
    assert entry.last_reading is not None
    moved = entry.model_copy(update={"last_reading": entry.last_reading.model_copy(
        update={"ts_corrected": NOW - 10_000})})  # fmt: skip
    shown = tile(moved, gateway(), [], [], now_ms=NOW, stale_after_ms=STALE)
    assert (shown.last_ts, shown.reported_ts) == (NOW - 10_000, NOW - 30_000)


def test_an_offline_alert_from_the_edge_makes_the_tile_offline_not_an_excursion() -> None:
    """The gateway raises ``source.offline`` (critical for a cold room) before the gap closes: the tile
    says offline, with the alert's message, not "excursion"."""
    silent = alert("critical").model_copy(update={"rule": "source.offline", "message": "cr1-t01 silent"})
    t = tile(sensor(), gateway(), [silent], [], now_ms=NOW, stale_after_ms=STALE)
    assert (t.state, t.since_ms, t.why) == ("offline", NOW - 60_000, "cr1-t01 silent")
    # A real excursion beside it is less urgent than not knowing the temperature at all.
    both = tile(sensor(), gateway(), [alert("critical"), silent], [], now_ms=NOW, stale_after_ms=STALE)
    assert both.state == "offline"


def test_a_calibration_alert_is_the_calibration_state_not_a_pre_alarm() -> None:
    overdue = alert("warning").model_copy(update={"rule": "calibration.due", "message": "overdue"})
    t = tile(sensor(), gateway(), [overdue], [], now_ms=NOW, stale_after_ms=STALE)
    assert (t.state, t.why) == ("calibration overdue", "overdue")
    soon = overdue.model_copy(update={"severity": "info", "message": "calibration due in 20 days"})
    assert tile(sensor(), gateway(), [soon], [], now_ms=NOW, stale_after_ms=STALE).state == "in range"
    # The temperature comes first: a pre-alarm beside it is the tile's state.
    both = tile(sensor(), gateway(), [overdue, alert("warning")], [], now_ms=NOW, stale_after_ms=STALE)
    assert both.state == "pre-alarm"
