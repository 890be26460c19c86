"""Property: any single mistake made to a valid config is reported as a ConfigError at that key.

Starting from the annotated examples, hypothesis replaces a value at a random
key path with a value of another TOML type, deletes a random required key, or
adds an unknown key.  The loader must raise ConfigError (never KeyError,
TypeError, a msgspec error...) and its key must name the place of the mutation
or a table containing it (a table replaced wholesale is reported at the table).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldgate.cloud.config import CloudConfig, cloud_config_from_document
from coldgate.configdescribe import Segment, format_key, lookup, table_at
from coldgate.configfile import ConfigError
from coldgate.gateway.config import GatewayConfig
from coldgate.gateway.config_load import gateway_config_from_document

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"

Loader = Callable[[Any, str], Any]
TARGETS: dict[str, tuple[type, Loader]] = {
    "gateway-cold-room.toml": (GatewayConfig, gateway_config_from_document),
    "gateway-minimal.toml": (GatewayConfig, gateway_config_from_document),
    "cloud-postgres.toml": (CloudConfig, cloud_config_from_document),
}
DOCS = {name: tomllib.loads((EXAMPLES / name).read_text(encoding="utf-8")) for name in TARGETS}


def _paths(value: Any, prefix: tuple[Segment, ...] = ()) -> list[tuple[Segment, ...]]:
    out: list[tuple[Segment, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.append((*prefix, index))
            out.extend(_paths(item, (*prefix, index)))
    return out


def _is_required(root: type, doc: Any, path: tuple[Segment, ...]) -> bool:
    if not isinstance(path[-1], str):
        return False
    table = table_at(root, list(path[:-1]), doc)
    assert table is not None, path
    if table.tag_field == path[-1]:
        return True
    field = next(f for f in table.fields if f.encode_name == path[-1])
    return field.required


def _category(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return "datetime"


_SCALARS = st.one_of(st.integers(), st.floats(), st.text(max_size=8), st.booleans())
WRONG_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "number": st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)),
    "string": st.text(max_size=20),
    "table": st.dictionaries(st.text(max_size=6), _SCALARS, max_size=3),
    "array": st.lists(_SCALARS, max_size=3),
    "datetime": st.datetimes(timezones=st.just(dt.UTC)),
}


def _set(doc: Any, path: tuple[Segment, ...], value: Any) -> None:
    parent = lookup(doc, list(path[:-1]))
    parent[path[-1]] = value


def _compatible(reported: str, mutated: str) -> bool:
    def under(a: str, b: str) -> bool:
        return a == b or a.startswith(b + ".") or a.startswith(b + "[")

    return under(reported, mutated) or under(mutated, reported)


def _expect_error_at(name: str, doc: Any, path: tuple[Segment, ...]) -> ConfigError:
    _, loader = TARGETS[name]
    with pytest.raises(ConfigError) as info:
        loader(doc, name)
    err = info.value
    assert err.file == name
    assert str(err).startswith(f"{name}: ")
    assert _compatible(err.key, format_key(path)), (err.key, format_key(path), str(err))
    return err


@st.composite
def replacements(draw: st.DrawFn) -> tuple[str, Any, tuple[Segment, ...]]:
    name = draw(st.sampled_from(sorted(TARGETS)))
    doc = copy.deepcopy(DOCS[name])
    path = draw(st.sampled_from(_paths(doc)))
    original = _category(lookup(doc, list(path)))
    category = draw(st.sampled_from(sorted(set(WRONG_VALUES) - {original})))
    _set(doc, path, draw(WRONG_VALUES[category]))
    return name, doc, path


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(replacements())
def test_wrong_type_anywhere_is_reported_there(case: tuple[str, Any, tuple[Segment, ...]]) -> None:
    name, doc, path = case
    _expect_error_at(name, doc, path)


REQUIRED = [
    (name, path)
    for name, (root, _) in TARGETS.items()
    for path in _paths(DOCS[name])
    if _is_required(root, DOCS[name], path)
]


def test_there_are_required_keys_to_delete() -> None:
    # Guards the next test against silently testing nothing.
    assert len(REQUIRED) > 30


@pytest.mark.parametrize(("name", "path"), REQUIRED, ids=[f"{n}:{format_key(p)}" for n, p in REQUIRED])
def test_deleting_a_required_key_is_reported_there(name: str, path: tuple[Segment, ...]) -> None:
    doc = copy.deepcopy(DOCS[name])
    del lookup(doc, list(path[:-1]))[path[-1]]
    err = _expect_error_at(name, doc, path)
    assert err.key == format_key(path)
    assert err.found == "nothing (the key is missing)"


@st.composite
def unknown_keys(draw: st.DrawFn) -> tuple[str, Any, tuple[Segment, ...]]:
    name = draw(st.sampled_from(sorted(TARGETS)))
    root, _ = TARGETS[name]
    doc = copy.deepcopy(DOCS[name])
    tables = [p for p in [(), *_paths(doc)] if isinstance(lookup(doc, list(p)), dict)]
    path = draw(st.sampled_from(tables))
    struct = table_at(root, list(path), doc)
    assert isinstance(struct, mi.StructType)
    known = {f.encode_name for f in struct.fields} | {struct.tag_field}
    key = draw(st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(lambda k: k not in known))
    lookup(doc, list(path))[key] = draw(_SCALARS)
    return name, doc, (*path, key)


@settings(max_examples=200, deadline=None)
@given(unknown_keys())
def test_unknown_key_is_reported_exactly(case: tuple[str, Any, tuple[Segment, ...]]) -> None:
    name, doc, path = case
    err = _expect_error_at(name, doc, path)
    assert err.key == format_key(path)
    assert err.message.startswith("unknown key")


def test_json_document_converts_like_toml() -> None:
    # Config pushed down from the cloud arrives as JSON: same result, same checks.
    doc = DOCS["gateway-cold-room.toml"]
    from_json = gateway_config_from_document(json.loads(json.dumps(doc)), "mqtt:cfg")
    assert from_json == gateway_config_from_document(doc, "gateway.toml")


def test_json_document_errors_name_the_source() -> None:
    doc = json.loads('{"gateway": {"id": "pi-01", "site": null}, "sensors": [{"source": "modbus"}]}')
    with pytest.raises(ConfigError) as info:
        gateway_config_from_document(doc, "mqtt:coldgate/v1/dock-1/pi-01/config")
    assert str(info.value) == (
        "mqtt:coldgate/v1/dock-1/pi-01/config: gateway.site: expected an id of 1 to 64 letters, "
        'digits, "_", "." or "-", starting with a letter or digit, got null'
    )


def test_json_semantic_error_names_the_source() -> None:
    doc = json.loads(json.dumps(DOCS["gateway-minimal.toml"]))
    doc["sensors"][0]["line"] = "bus-z"
    with pytest.raises(ConfigError) as info:
        gateway_config_from_document(doc, "mqtt:cfg")
    assert str(info.value) == (
        'mqtt:cfg: sensors[0].line: no [[modbus_lines]] entry has id "bus-z" (known: "bus-a")'
    )
