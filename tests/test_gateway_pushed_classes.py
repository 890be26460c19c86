"""Temperature classes pushed by the cloud in master data (issue 14): read and checked exactly like the
classes of ``gateway.toml``, laid over the configuration's (pushed wins, configuration-only classes
stay), and a master data version whose classes the gateway cannot take rejected as a whole while the
version in force stays and the status says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coldgate.configfile import ConfigError
from coldgate.contract.codec import encode
from coldgate.contract.downlink import MasterData, Product
from coldgate.contract.downlink import TemperatureClass as PushedClass
from coldgate.contract.items import EventType
from coldgate.contract.topics import config_topic, master_topic, topic
from coldgate.gateway.config import GatewayConfig, TemperatureClass
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.pushed_classes import class_changes, effective_config, pushed_classes
from tests.rig.downlink_gateway import Gateway
from tests.rig.uplink import GATEWAY, SITE

MASTER = master_topic(SITE, GATEWAY)
CONFIG = config_topic(SITE, GATEWAY)
SOURCE = f"mqtt:{MASTER}"


def site_document(**classes: dict[str, Any]) -> dict[str, Any]:
    """A gateway with a cold room (2-8C) and a dispatch area (15-25C), both classes in its file."""
    tclasses = {
        "2-8C": {"low": 2.0, "high": 8.0, "alarm_delay_s": 2.0},
        "15-25C": {"low": 15.0, "high": 25.0},
    }
    tclasses.update(classes)
    return {
        "gateway": {"id": GATEWAY, "site": SITE, "data_dir": "/var/lib/coldgate"},
        "zones": [
            {"id": "cold-room", "temperature_class": "2-8C"},
            {"id": "dispatch", "temperature_class": "15-25C"},
        ],
        "temperature_classes": [{"name": name, **fields} for name, fields in tclasses.items()],
    }


def site_config(**classes: dict[str, Any]) -> GatewayConfig:
    return gateway_config_from_document(site_document(**classes), "gateway.toml")


def master(version: int, *classes: PushedClass, **fields: Any) -> MasterData:
    products = [Product(id="INS-PEN", name="Insulin pen", temperature_class=c.name) for c in classes[:1]]
    return MasterData(
        v=1, gateway=GATEWAY, version=version, issued=1765000000000, temperature_classes=list(classes),
        products=products, **fields,
    )  # fmt: skip


def cls(name: str = "2-8C", low: float = 2.0, high: float = 8.0, **rules: Any) -> PushedClass:
    return PushedClass(name=name, low=low, high=high, rules=rules)


def refusal(*classes: PushedClass) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        pushed_classes(master(1, *classes), SOURCE)
    return caught.value


# -- reading a pushed class ---------------------------------------------------------------------------


def test_a_pushed_class_takes_its_rules_and_an_empty_rules_means_the_gateways_defaults():
    rules = {
        "pre_alarm_margin": 1.0, "alarm_delay_s": 600, "hysteresis": 0.5, "humidity_low": 30,
        "humidity_high": 70, "mkt_window_s": 7200, "alarm_on": "high", "excursion_budget_s": 3600,
        "rate_max_c_per_min": 0.5, "humidity_hysteresis": 3,
    }  # fmt: skip
    ambient, cold = pushed_classes(master(1, cls("15-25C", 15, 25), cls(**rules)), SOURCE)
    assert ambient == TemperatureClass(name="15-25C", low=15.0, high=25.0)
    assert cold == TemperatureClass(name="2-8C", low=2.0, high=8.0, **rules)
    assert cold.alarm_delay_s == 600.0 and cold.alarm_on == "high" and cold.effective_mkt_window_s == 7200


def test_rules_with_every_key_as_the_clouds_catalog_stores_them_are_taken():
    """The cloud's catalog keeps a class's whole spec with the defaults filled in (nulls included)."""
    spec = msgspec.to_builtins(TemperatureClass(name="2-8C", low=2, high=8, alarm_delay_s=900))
    rules = {k: v for k, v in spec.items() if k not in ("name", "low", "high")}
    assert rules["humidity_low"] is None
    (cold,) = pushed_classes(master(1, cls(**rules)), SOURCE)
    assert cold == TemperatureClass(name="2-8C", low=2, high=8, alarm_delay_s=900)


@pytest.mark.parametrize(
    ("rules", "key", "says"),
    [
        ({"hysteresis": 3.5}, "temperature_classes[1].rules.hysteresis", "a hysteresis below 3"),
        ({"pre_alarm_margin": 3}, "temperature_classes[1].rules.pre_alarm_margin", "a margin below 3"),
        ({"hysteresis": "small"}, "temperature_classes[1].rules.hysteresis", 'got "small"'),
        ({"alarm_delay_s": -1}, "temperature_classes[1].rules.alarm_delay_s", "got -1"),
        ({"mkt_window_s": 60}, "temperature_classes[1].rules.mkt_window_s", "got 60"),
        ({"alarm_on": "sometimes"}, "temperature_classes[1].rules.alarm_on", 'got "sometimes"'),
        ({"humidity_low": 60, "humidity_high": 40}, "temperature_classes[1].rules.humidity_high", "above"),
        ({"excursion_budget_s": 86400}, "temperature_classes[1].rules.excursion_budget_s", "less than"),
        ({"hysterisis": 0.5}, "temperature_classes[1].rules.hysterisis", "did you mean `hysteresis`?"),
        ({"setpoint": 5}, "temperature_classes[1].rules.setpoint", "unknown key"),
        ({"high": 6}, "temperature_classes[1].rules.high", "its own field"),
        ({"name": "2-8C"}, "temperature_classes[1].rules.name", "its own field"),
    ],
)
def test_a_bad_rule_is_refused_naming_its_key_in_the_master_data(rules: dict[str, Any], key: str, says: str):
    error = refusal(cls("15-25C", 15, 25), PushedClass(name="2-8C", low=2.0, high=8.0, rules=rules))
    assert error.key == key
    assert error.file == SOURCE
    assert says in error.message, error.message
    assert str(error).startswith(f"{SOURCE}: {key}: ")


def test_limits_the_gateway_refuses_are_named_as_the_classs_own_fields():
    error = refusal(cls(low=2, high=2))
    assert error.key == "temperature_classes[0].high"
    assert error.message == "expected a temperature above low = 2.0, got 2.0"
    assert refusal(cls(low=-150, high=8)).key == "temperature_classes[0].low"


def test_limits_in_fahrenheit_or_kelvin_are_converted_to_celsius_and_rules_stay_the_gateways():
    fahrenheit = PushedClass(name="2-8C", low=35.6, high=46.4, unit="FAH", rules={"hysteresis": 0.5})
    kelvin = PushedClass(name="deep", low=173.15, high=253.15, unit="KEL")
    received = msgspec.convert(msgspec.to_builtins(master(1, fahrenheit, kelvin)), MasterData)
    cold, deep = pushed_classes(received, SOURCE)
    assert (cold.low, cold.high, cold.hysteresis) == (2.0, 8.0, 0.5)
    assert (deep.low, deep.high) == (-100.0, -20.0)


def test_a_limit_out_of_range_once_converted_says_what_was_sent():
    hot = msgspec.convert({"name": "hot", "low": 250, "high": 300, "unit": "FAH"}, PushedClass)
    error = refusal(hot)
    assert error.key == "temperature_classes[0].low"
    assert error.message.endswith("got 121.111111 (converted to °C from 250 FAH)"), error.message


# -- laying them over the configuration -------------------------------------------------------------


def test_pushed_classes_replace_the_configurations_in_place_add_new_ones_and_keep_the_others():
    config = site_config()
    pushed = pushed_classes(master(1, cls(high=6, alarm_delay_s=0), cls("freezer", -25, -15)), SOURCE)
    effective = effective_config(config, pushed, SOURCE)
    assert [c.name for c in effective.temperature_classes] == ["2-8C", "15-25C", "freezer"]
    assert effective.get_temperature_class("2-8C") == TemperatureClass(name="2-8C", low=2.0, high=6.0)
    assert effective.get_temperature_class("15-25C") == config.get_temperature_class("15-25C")
    # Every zone still finds its class; nothing but the classes changed.
    assert [effective.get_temperature_class(z.temperature_class).name for z in effective.zones] == [
        "2-8C", "15-25C",
    ]  # fmt: skip
    assert msgspec.structs.replace(effective, temperature_classes=config.temperature_classes) == config


def test_no_pushed_classes_leave_the_configuration_as_it_is():
    config = site_config()
    assert effective_config(config, (), SOURCE) == config


def test_the_result_goes_through_the_gateways_full_checks_again():
    """A class that bypassed ``pushed_classes`` is still refused: what the rules run with is always a
    configuration the loader accepts."""
    unchecked = TemperatureClass(name="2-8C", low=2.0, high=8.0, hysteresis=5.0)
    with pytest.raises(ConfigError) as caught:
        effective_config(site_config(), [unchecked], SOURCE)
    assert caught.value.key == "temperature_classes[0].hysteresis"
    assert caught.value.file == SOURCE


def test_class_changes_name_the_class_and_its_old_and_new_limits():
    before = site_config().temperature_classes
    after = effective_config(
        site_config(), pushed_classes(master(1, cls(high=6), cls("x", 0, 30)))
    ).temperature_classes
    assert class_changes(before, after) == [
        "2-8C: 2..8 °C -> 2..6 °C, alarm_delay_s 2.0 -> 0.0",
        "x: new, 0..30 °C",
    ]
    assert class_changes(after, before) == [
        "2-8C: 2..6 °C -> 2..8 °C, alarm_delay_s 0.0 -> 2.0",
        "x: gone (was 0..30 °C)",
    ]
    assert class_changes(before, before) == []


# -- at the down-link -------------------------------------------------------------------------------------


def test_master_data_in_force_carries_the_configuration_with_its_classes(tmp_path: Path):
    gw = Gateway(tmp_path, configuration=site_config())
    gw.deliver(MASTER, encode(master(1, cls(high=6))))
    document = gw.downlink.current("master")
    assert document is not None and document.config is not None
    assert document.config.get_temperature_class("2-8C").high == 6.0
    assert [c.name for c in document.classes] == ["2-8C"]
    assert gw.events() == [(EventType.MASTER_APPLIED, 1)]


def test_master_data_with_a_bad_rule_is_rejected_whole_and_the_old_version_stays(tmp_path: Path):
    gw = Gateway(tmp_path, configuration=site_config())
    gw.deliver(MASTER, encode(master(1, cls(high=6))))
    gw.deliver(MASTER, encode(master(2, cls("15-25C", 15, 25), cls(hysteresis=4))))
    assert gw.downlink.versions.master == 1
    assert gw.applied == [("master", 1)]
    assert gw.events() == [(EventType.MASTER_APPLIED, 1), (EventType.MASTER_REJECTED, 2)]
    (error,) = gw.downlink.errors.recent()
    assert error.kind == "master_rejected"
    assert error.message == (
        f"master version 2: {SOURCE}: temperature_classes[1].rules.hysteresis: expected a hysteresis below 3 "
        "(half of the 2..8 band, or an alarm could never clear), got 4.0"
    )
    rejected = [i for i in gw.items if getattr(i, "event", None) is EventType.MASTER_REJECTED]
    assert rejected[0].detail.endswith("; keeping version 1")  # type: ignore[attr-defined]
    assert json.loads(gw.downlink.path("master").read_bytes())["version"] == 1
    current = gw.downlink.current("master")
    assert current is not None and current.config is not None
    assert current.config.get_temperature_class("2-8C").high == 6.0


def test_a_bad_class_is_rejected_also_without_a_configuration_to_lay_it_over(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(MASTER, encode(master(1, cls(bogus=1))))
    assert gw.downlink.current("master") is None
    (error,) = gw.downlink.errors.recent()
    assert "temperature_classes[0].rules.bogus: unknown key" in error.message


def test_a_broken_part_of_master_data_leaves_the_old_version_in_force_and_the_status_says_why(tmp_path: Path):
    """Issue 14's done-when for master data in parts: every part is a valid message, the class in part
    2 is one the gateway cannot take, so the version they make is rejected as a whole."""
    gw = Gateway(tmp_path, configuration=site_config())
    gw.deliver(MASTER, encode(master(1, cls(high=6))))
    one = master(2, cls(high=7), part=1, parts=2)
    two = msgspec.structs.replace(
        one, part=2, temperature_classes=[cls("15-25C", 15, 25, alarm_on="never")], products=[]
    )
    gw.deliver(topic(SITE, GATEWAY, "master", 2), encode(two))
    gw.deliver(topic(SITE, GATEWAY, "master", 1), encode(one))
    assert gw.downlink.versions.master == 1
    assert gw.events() == [(EventType.MASTER_APPLIED, 1), (EventType.MASTER_REJECTED, 2)]
    (error,) = gw.downlink.errors.recent()
    assert error.message.startswith(f"master version 2: {SOURCE}: temperature_classes[1].rules.alarm_on: ")
    current = gw.downlink.current("master")
    assert current is not None and current.config is not None
    assert current.config.get_temperature_class("2-8C").high == 6.0


def test_a_later_configuration_version_keeps_the_pushed_classes_laid_over_it(tmp_path: Path):
    gw = Gateway(tmp_path, configuration=site_config())
    gw.deliver(MASTER, encode(master(1, cls(high=6))))
    pushed = site_document(**{"2-8C": {"low": 2.0, "high": 8.0, "alarm_delay_s": 300}})
    gw.deliver(
        CONFIG, json.dumps({"v": 1, "gateway": GATEWAY, "version": 1, "issued": 0, "config": pushed}).encode()
    )
    document = gw.downlink.current("config")
    assert document is not None and document.config is not None and document.configured is not None
    assert document.configured.get_temperature_class("2-8C").high == 8.0
    assert document.config.get_temperature_class("2-8C") == TemperatureClass(name="2-8C", low=2, high=6)
    # The next master data is laid over the configuration version, not over the file's.
    gw.deliver(MASTER, encode(master(2, cls("15-25C", 15, 30))))
    current = gw.downlink.current("master")
    assert current is not None and current.config is not None
    assert current.config.get_temperature_class("2-8C").alarm_delay_s == 300
    assert current.config.get_temperature_class("15-25C").high == 30


def test_after_a_reboot_the_cached_master_data_brings_its_classes_back(tmp_path: Path):
    Gateway(tmp_path, configuration=site_config()).deliver(MASTER, encode(master(1, cls(high=6))))
    rebooted = Gateway(tmp_path, configuration=site_config())
    assert rebooted.downlink.load().master == 1
    (document,) = rebooted.documents
    assert document.config is not None and document.config.get_temperature_class("2-8C").high == 6.0
