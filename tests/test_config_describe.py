"""The generic parts of the loader: describing any declared type, rendering any found value.

Plugin configs will bring types the gateway and cloud roots do not use
(dicts, enums, unions, bounds of every kind); these tests pin the words for
them on small throwaway roots.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import pickle
from typing import Annotated, Literal

import msgspec
import pytest
from msgspec import Meta

from coldgate.configdescribe import MISSING, describe, format_key, parse_path, render_value
from coldgate.configfile import ConfigBlock, ConfigError, convert_document


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(ConfigBlock, kw_only=True):
    level: Annotated[int, Meta(gt=0, lt=10)] = 1


class Root(ConfigBlock, kw_only=True):
    count: Annotated[int, Meta(ge=0)] = 0
    ratio: Annotated[float, Meta(gt=0, le=1)] = 0.5
    name: Annotated[str, Meta(min_length=1, max_length=8)] = "x"
    code: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] = "ABC"
    color: Color = Color.RED
    mode: Literal["a", "b"] = "a"
    either: int | str = 0
    limits: dict[str, Annotated[int, Meta(le=100)]] = msgspec.field(default_factory=dict)
    ports: tuple[Annotated[int, Meta(ge=1, le=65535)], ...] = ()
    inners: tuple[Inner, ...] = ()
    pair: tuple[int, str] = (0, "")
    every: Annotated[float, Meta(ge=1, extra={"unit": "seconds"})] = 1.0
    when: dt.date | None = None


def _error(doc: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        convert_document(doc, Root, "plugin.toml")
    return info.value


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"count": -1}, "count: expected an integer >= 0, got -1"),
        ({"ratio": 0}, "ratio: expected a number > 0 and <= 1, got 0"),
        ({"name": ""}, 'name: expected a string of 1..8 characters, got ""'),
        ({"code": "abc"}, 'code: expected a string matching ^[A-Z]{3}$, got "abc"'),
        ({"color": "green"}, 'color: expected one of "red", "blue", got "green"'),
        ({"mode": "c"}, 'mode: expected one of "a", "b", got "c"'),
        ({"either": 1.5}, "either: expected an integer or a string, got 1.5"),
        ({"limits": {"a": 1, "b": 200}}, "limits.b: expected an integer <= 100, got 200"),
        ({"limits": {"a b": "x"}}, 'limits."a b": expected an integer <= 100, got "x"'),
        ({"ports": [80, 0]}, "ports[1]: expected an integer 1..65535, got 0"),
        ({"ports": "80"}, 'ports: expected an array of integers 1..65535, got "80"'),
        ({"inners": [{"level": 10}]}, "inners[0].level: expected an integer 1..9, got 10"),
        ({"inners": [{"levle": 2}]}, "inners[0].levle: unknown key; did you mean `level`?"),
        ({"inners": [{"zzz": 2}]}, "inners[0].zzz: unknown key; valid keys here: level"),
        ({"inners": {"level": 2}}, "inners: expected an array of tables, got a table"),
        ({"pair": [1]}, "pair: expected an array of 2 items, got an array"),
        ({"every": 0.5}, "every: expected a number of seconds >= 1, got 0.5"),
        ({"every": -math.inf}, "every: expected a number of seconds >= 1, got -inf"),
        ({"when": 20240101}, "when: expected a date like 2024-05-27, got 20240101"),
        ({"cuont": 1}, "cuont: unknown key; did you mean `count`?"),
    ],
)
def test_messages(doc: dict[str, object], message: str) -> None:
    assert str(_error(doc)) == f"plugin.toml: {message}"


def test_document_that_is_not_a_table() -> None:
    assert str(_error([1, 2])) == "plugin.toml: expected a table, got an array"


def test_valid_document_converts() -> None:
    config = convert_document({"limits": {"a": 5}, "ports": [502]}, Root, "plugin.toml")
    assert config.limits == {"a": 5} and config.ports == (502,)


def test_validator_error_gets_the_source_name() -> None:
    def validate(config: Root) -> None:
        raise ConfigError("count", "too many")

    with pytest.raises(ConfigError) as info:
        convert_document({}, Root, "pushed.json", validate=validate)
    assert str(info.value) == "pushed.json: count: too many"


def test_complete_runs_before_validate() -> None:
    seen: list[int] = []
    convert_document(
        {},
        Root,
        "x",
        complete=lambda c: msgspec.structs.replace(c, count=7),
        validate=lambda c: seen.append(c.count),
    )
    assert seen == [7]


def test_config_error_survives_pickling() -> None:
    err = ConfigError("a.b", expected="an integer", found='"x"', file="f.toml")
    copy = pickle.loads(pickle.dumps(err))
    assert (str(copy), copy.key, copy.expected, copy.found) == (str(err), "a.b", "an integer", '"x"')


def test_config_error_needs_words() -> None:
    with pytest.raises(TypeError):
        ConfigError("a")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (MISSING, "nothing (the key is missing)"),
        (True, "true"),
        (3, "3"),
        (2.5, "2.5"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        ('say "hi"', '"say \\"hi\\""'),
        ({}, "a table"),
        ([], "an empty array"),
        ([{}], "an array of tables"),
        ([1], "an array"),
        (dt.date(2024, 5, 27), "2024-05-27"),
        (None, "null"),
    ],
)
def test_render_value(value: object, shown: str) -> None:
    assert render_value(value) == shown


def test_paths_round_trip() -> None:
    assert parse_path("$.sensors[2].unit") == ["sensors", 2, "unit"]
    assert format_key(["sensors", 2, "unit"]) == "sensors[2].unit"
    assert format_key(["tags", "dock door"]) == 'tags."dock door"'
    assert parse_path("key in $.x") is None


def test_describe_none_means_nowhere() -> None:
    assert describe(None) == "no value here"
