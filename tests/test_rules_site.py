"""SiteRules, the app's entry point, on the annotated example configuration.

From config to parameters (``params_from_config``), and the things the app
relies on: which sensors are judged, the verdict it records, alert ids that
pass the contract, status (MKT, in excursion) and resuming from a snapshot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from coldgate.contract.codec import validate
from coldgate.contract.ids import is_id
from coldgate.contract.items import AlertAction, Quality, Severity
from coldgate.contract.units import Quantity
from coldgate.gateway.config_load import load_gateway_config
from coldgate.gateway.rules.alerts import alert_id, fmt_duration
from coldgate.gateway.rules.engine import SensorState, annotate
from coldgate.gateway.rules.params import LimitParams, params_from_config
from coldgate.gateway.rules.site import SiteRules
from coldgate.gateway.rules.timebase import Mark
from tests.rig.items import reading

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
COLD_ROOM = load_gateway_config(EXAMPLES / "gateway-cold-room.toml")
MINIMAL = load_gateway_config(EXAMPLES / "gateway-minimal.toml")
T0_MS = 1_700_000_000_000


def at(t_s: float, boot: str = "b0070001") -> dict[str, Any]:
    """The stamp of a reading ``t_s`` seconds after the case's start (wall and monotonic)."""
    return {"seq": 0, "ts": T0_MS + round(t_s * 1000), "mono": round(t_s * 1000), "boot": boot}


def test_params_of_a_cold_room_sensor_come_from_its_class_and_zone() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    sp = rules.params("cr1-back", "temperature")
    assert sp is not None and sp.limits is not None and sp.recording is not None and sp.mkt is not None
    assert (sp.limits.low, sp.limits.high, sp.limits.delay_s, sp.limits.hysteresis) == (2.0, 8.0, 600, 0.3)
    assert sp.limits.pre_alarm_margin == 0.5
    assert sp.recording.record_s == 1800 and sp.recording.refresh_s == 60
    assert sp.mkt.window_s == 86_400 and sp.mkt.dh_r_k == 10_000  # a cold class: MKT per day
    assert sp.budget is None and sp.rate is None  # off unless the class asks for them
    assert sp.range is not None and (sp.range.low, sp.range.high) == (-40, 125)
    assert sp.stuck is not None


def test_humidity_is_judged_where_the_class_has_humidity_limits() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    annex = rules.params("annex-t1", "humidity")
    assert annex is not None and annex.limits is not None
    assert (annex.limits.low, annex.limits.high, annex.limits.hysteresis) == (30, 65, 2.0)
    assert annex.interval_s == 300
    fridge = rules.params("pharm-fridge", "humidity")
    assert fridge is not None and fridge.limits is None and fridge.range is not None


def test_sensors_without_a_zone_get_only_the_fault_rules() -> None:
    for rules, sensor in (
        (SiteRules.from_config(MINIMAL), "room-t1"),
        (SiteRules.from_config(COLD_ROOM), "nope"),
    ):
        sp = rules.params(sensor, "temperature")
        assert sp is not None and sp.range is not None and sp.stuck is not None
        assert (sp.limits, sp.budget, sp.rate, sp.mkt, sp.recording) == (None, None, None, None, None)


def test_other_quantities_pass_through() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    door = reading(1.0, sensor="cr1-door", quantity=Quantity.DOOR, **at(0))
    verdict = rules.judge(door)
    assert verdict.reading is door and verdict.alerts == () and verdict.record


def test_a_point_of_a_multi_point_sensor_is_judged_by_its_sensor_zone() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    sp = rules.params("frz1-probes.air", "temperature")
    assert sp is not None and sp.limits is not None
    assert (sp.limits.low, sp.limits.high, sp.interval_s) == (-25.0, -15.0, 30)
    for i in range(40):  # the product probe is fine, the air probe warms up
        rules.judge(reading(-20.0, sensor="frz1-probes.product", **at(i * 30)))
        rules.judge(reading(-20.0 if i < 5 else -12.0, sensor="frz1-probes.air", **at(i * 30)))
    assert rules.in_excursion("frz1-probes") and rules.in_excursion("frz1-probes.air")
    assert not rules.in_excursion("frz1-probes.product") and not rules.in_excursion("frz1")


def test_freezer_class_alarming_only_on_high() -> None:
    tclass = msgspec.structs.replace(COLD_ROOM.get_temperature_class("frozen-25..-15C"), alarm_on="high")
    sp = params_from_config(tclass, COLD_ROOM.get_zone("freezer-1"), Quantity.TEMPERATURE, 30)
    assert sp is not None and sp.limits == LimitParams(
        low=None, high=-15.0, pre_alarm_margin=1.0, hysteresis=0.5, delay_s=900
    )


def test_budget_and_rate_follow_the_class() -> None:
    tclass = msgspec.structs.replace(
        COLD_ROOM.get_temperature_class("2-8C"), excursion_budget_s=3600, rate_max_c_per_min=0.5
    )
    sp = params_from_config(tclass, COLD_ROOM.get_zone("cold-room-1"), "temperature", 60)
    assert sp is not None and sp.budget is not None and sp.rate is not None
    assert (sp.budget.budget_s, sp.budget.window_s, sp.rate.max_per_min, sp.rate.window_s) == (
        3600,
        86400,
        0.5,
        600,
    )


def test_an_excursion_end_to_end_with_status_and_a_restart() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    alerts = []
    for i in range(5):
        alerts += rules.judge(reading(5.0, sensor="cr1-back", **at(i * 60))).alerts
    assert not rules.in_excursion("cr1-back")
    for i in range(5, 20):
        alerts += rules.judge(reading(11.2, sensor="cr1-back", **at(i * 60))).alerts
    assert rules.in_excursion("cr1-back") and not rules.in_excursion("cr1-door")
    (raised,) = alerts
    assert (raised.action, raised.rule, raised.severity) == (
        AlertAction.RAISED,
        "temperature.high",
        Severity.CRITICAL,
    )
    assert raised.message == "cr1-back above 8.0 °C for 10 min, peak 11.2 °C"
    assert raised.evidence.start == T0_MS + 300_000 and raised.evidence.limits is not None
    assert raised.ts == T0_MS + 900_000 and raised.seq == 0
    validate(msgspec.structs.replace(raised, seq=1))
    mkt_now = rules.mkt("cr1-back")
    assert mkt_now is not None and 5.0 < mkt_now < 11.2

    # The gateway restarts and resumes from the persisted state: same alert, cleared.
    saved = msgspec.json.encode(rules.snapshot())
    again = SiteRules.from_config(COLD_ROOM, msgspec.json.decode(saved, type=dict[str, SensorState]))
    cleared = again.judge(reading(5.0, sensor="cr1-back", **at(1200, "b0070002"))).alerts
    assert [a.action for a in cleared] == [AlertAction.CLEARED]
    assert cleared[0].alert_id == raised.alert_id
    assert not again.in_excursion("cr1-back")


def test_out_of_range_reading_is_recorded_suspect_and_not_judged() -> None:
    rules = SiteRules.from_config(COLD_ROOM)
    rules.judge(reading(5.0, sensor="cr1-back", **at(0)))
    verdict = rules.judge(reading(3276.7, sensor="cr1-back", **at(60)))
    assert verdict.record and verdict.reading.value == 3276.7
    assert verdict.reading.quality is Quality.SUSPECT
    assert verdict.reading.reason == "outside the sensor's range -40..125 °C"
    assert [a.rule for a in verdict.alerts] == ["sensor.range"]
    assert not rules.in_excursion("cr1-back")


def test_annotation_keeps_the_source_reason() -> None:
    source = reading(5.0, sensor="cr1-back", quality=Quality.SUSPECT, **at(0))
    assert annotate(source, ["stuck"]).reason == "no answer; stuck"
    error = reading(None, sensor="cr1-back", **at(0))
    assert annotate(error, ["stuck"]) is error
    long = annotate(source, ["x" * 300])
    assert long.reason is not None and len(long.reason) == 200 and long.reason.endswith("…")
    validate(msgspec.structs.replace(long, seq=1))


def test_alert_ids_fit_the_contract_even_for_the_longest_sensor_id() -> None:
    key = Mark(ts=T0_MS, boot="b0070001", mono=1)
    long_id = "s" * 64
    ident = alert_id(long_id, "temperature", "temperature.pre_high", key)
    assert is_id(ident) and len(ident) <= 64
    assert ident != alert_id("s" * 63 + "t", "temperature", "temperature.pre_high", key)
    assert alert_id("t1", "temperature", "sensor.stuck", key) != alert_id(
        "t1", "humidity", "sensor.stuck", key
    )
    later = Mark(ts=T0_MS, boot="b0070002", mono=1)  # same wall time after a reboot: a new alert
    assert alert_id("t1", "temperature", "temperature.high", key) != alert_id(
        "t1", "temperature", "temperature.high", later
    )


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (45_000, "45 s"),
        (119_000, "119 s"),
        (1_860_000, "31 min"),
        (7_380_000, "2 h 03 min"),
        (86_400_000, "24 h"),
    ],
)
def test_durations_read_well(ms: int, text: str) -> None:
    assert fmt_duration(ms) == text


def test_mkt_window_defaults_to_a_day_when_cold_and_a_month_at_room_temperature() -> None:
    from coldgate.gateway.config import TemperatureClass

    assert TemperatureClass(name="2-8C", low=2, high=8).effective_mkt_window_s == 86_400
    assert TemperatureClass(name="frozen", low=-40, high=-20).effective_mkt_window_s == 86_400
    assert TemperatureClass(name="15-25C", low=15, high=25).effective_mkt_window_s == 2_592_000
    assert TemperatureClass(name="x", low=15, high=25, mkt_window_s=7200).effective_mkt_window_s == 7200
