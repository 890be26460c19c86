"""Temperature classes pushed by the cloud, as the gateway judges zones by them (issue 14).

The cloud owns the temperature classes (``cloud.catalog.temperature_classes``)
and sends them in every master data version; the gateway's ``[[temperature_classes]]``
are what it starts with and what it falls back to.  A pushed class is read
with the same converter and checks as a class in ``gateway.toml``
(``convert_document`` into ``gateway.config.TemperatureClass``, then
``check_temperature_class``), so a class the gateway applies from the cloud is
one it would have accepted from its file, and a bad one is refused with the
key to fix, in the master data's terms: ``temperature_classes[2].rules.hysteresis``.

Pure: no I/O, no clock; the down-link decides whether a version is taken, the
service restarts the rules with the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from msgspec import structs

from coldgate.configfile import ConfigError, convert_document
from coldgate.contract.downlink import MasterData
from coldgate.contract.downlink import TemperatureClass as PushedClass
from coldgate.contract.units import Unit
from coldgate.gateway.config import GatewayConfig, TemperatureClass
from coldgate.gateway.config_checks import check_temperature_class, validate_gateway_config

__all__ = ["class_changes", "effective_config", "pushed_classes"]

#: A class's own fields in the contract; everything else about it is a rule.
_OWN_FIELDS = ("name", "low", "high")
#: Decimals kept of a limit converted to °C: 35.6 °F is 2 °C, not 2.0000000000000004 °C.
_DECIMALS = 6


def _to_celsius(value: float, unit: Unit) -> float:
    if unit == Unit.FAH:
        return round((value - 32.0) * 5.0 / 9.0, _DECIMALS)
    if unit == Unit.KEL:
        return round(value - 273.15, _DECIMALS)
    return value


def _rekey(exc: ConfigError, at: str, pushed: PushedClass, source: str) -> ConfigError:
    """The error keyed as the master data has it: the class's own fields at ``at``, the rest under
    ``at.rules``; a limit converted from °F or K says what was sent."""
    key = exc.key.removeprefix(f"{at}.") if exc.key.startswith(f"{at}.") else exc.key
    field = key.split(".", 1)[0].split("[", 1)[0]
    message = exc.message
    if field in ("low", "high") and pushed.unit != Unit.CEL:
        message = f"{message} (converted to °C from {getattr(pushed, field):g} {pushed.unit})"
    where = f"{at}.{key}" if field in _OWN_FIELDS or not key else f"{at}.rules.{key}"
    return ConfigError(where.rstrip("."), message, file=source)


def pushed_class(pushed: PushedClass, at: str, source: str = "master data") -> TemperatureClass:
    """One pushed class as the gateway's ``TemperatureClass``, checked like one in ``gateway.toml``.

    Limits in °F or K are converted to °C, not refused: the contract allows the
    units, the conversion is exact, and refusing would throw away a whole master
    data version (its products and lots too) for a unit the gateway can read.
    The ``rules`` are the gateway's own keys, so they are in the gateway's own
    units whatever ``unit`` says (°C, and °C differences for ``pre_alarm_margin``,
    ``hysteresis``, ``rate_max_c_per_min``): the contract defines them as
    ``[[temperature_classes]]`` keys, and converting a difference as if it were a
    temperature would be wrong.
    """
    for field in _OWN_FIELDS:
        if field in pushed.rules:
            raise ConfigError(
                f"{at}.rules.{field}",
                f"the class's {field} is its own field of the class, not one of its rules",
                file=source,
            )
    document: dict[str, Any] = {
        **pushed.rules,
        "name": pushed.name,
        "low": _to_celsius(pushed.low, pushed.unit),
        "high": _to_celsius(pushed.high, pushed.unit),
    }
    try:
        tclass = convert_document(document, TemperatureClass, source)
        check_temperature_class(tclass, at)
    except ConfigError as exc:
        raise _rekey(exc, at, pushed, source) from None
    return tclass


def pushed_classes(master: MasterData, source: str = "master data") -> tuple[TemperatureClass, ...]:
    """Every class of ``master`` as the gateway reads it; ConfigError for the first one it cannot take,
    keyed as in the master data (``temperature_classes[2].rules.hysteresis``)."""
    return tuple(
        pushed_class(pushed, f"temperature_classes[{i}]", source)
        for i, pushed in enumerate(master.temperature_classes)
    )


def effective_config(
    config: GatewayConfig, classes: Sequence[TemperatureClass], source: str = "master data"
) -> GatewayConfig:
    """The configuration the gateway runs with: ``config`` with the pushed ``classes`` laid over it.

    A pushed class replaces the configuration's class of the same name (in its
    place) and a new one is added after them: pushed wins, because the cloud
    owns the classes and QA changes them there, audited, for every gateway at
    once.  A class only the configuration has stays, so a zone set up on site
    before the cloud knew its class keeps being judged.  The result goes through
    the gateway's full checks again (every zone must still find its class), so
    what the rules run with is always a configuration the loader would accept.
    """
    pushed = {tclass.name: tclass for tclass in classes}
    merged = [pushed.pop(tclass.name, tclass) for tclass in config.temperature_classes]
    merged += [tclass for tclass in classes if tclass.name in pushed]
    result = structs.replace(config, temperature_classes=tuple(merged))
    try:
        validate_gateway_config(result)
    except ConfigError as exc:
        raise (exc if exc.file else exc.in_file(source)) from None
    return result


def _limits(tclass: TemperatureClass) -> str:
    return f"{tclass.low:g}..{tclass.high:g} °C"


def _rules(tclass: TemperatureClass) -> dict[str, Any]:
    fields = msgspec.to_builtins(tclass)
    for field in _OWN_FIELDS:
        fields.pop(field)
    return fields


def class_changes(before: Iterable[TemperatureClass], after: Iterable[TemperatureClass]) -> list[str]:
    """What changed between two sets of classes, a line per class, for the log an auditor reads
    (``2-8C: 2..8 °C -> 2..6 °C, alarm_delay_s 2 -> 0``)."""
    old = {tclass.name: tclass for tclass in before}
    new = {tclass.name: tclass for tclass in after}
    lines: list[str] = []
    for name, tclass in new.items():
        was = old.get(name)
        if was is None:
            lines.append(f"{name}: new, {_limits(tclass)}")
            continue
        if was == tclass:
            continue
        changes = [] if _limits(was) == _limits(tclass) else [f"{_limits(was)} -> {_limits(tclass)}"]
        was_rules = _rules(was)
        changes += [
            f"{key} {was_rules[key]} -> {value}"
            for key, value in _rules(tclass).items()
            if value != was_rules[key]
        ]
        lines.append(f"{name}: {', '.join(changes)}")
    lines += [f"{name}: gone (was {_limits(was)})" for name, was in old.items() if name not in new]
    return lines
