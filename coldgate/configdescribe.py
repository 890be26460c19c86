"""Words for config errors: where a key is, what was expected there, what was found.

msgspec says ``Expected `int` <= 247 - at `$.sensors[2].unit```; a technician
editing a TOML file on a Pi needs ``sensors[2].unit: expected an integer
1..247, got 300``.  The *expected* half comes from walking the config's own type
(``msgspec.inspect.type_info``) along the error path, so every constraint
declared with ``msgspec.Meta`` is described without a table of messages to keep
in sync; the *found* half comes from the raw document, rendered as it would be
written in TOML.  Nothing here knows about gateways or clouds, so plugin configs
get the same messages for free.

A ``Meta(extra={"expected": "..."})`` on a type replaces the generated words
(for patterns, whose regex means little to a reader); ``extra={"unit": "seconds"}``
names the unit of a number.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import msgspec
import msgspec.inspect as mi


class _Missing:
    """The value at a path that does not exist in the document."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: msgspec writes ``[...]`` for "some value of this dict"; the loader resolves it.
ANY_KEY = "[...]"

Segment = str | int

_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|(\[\.\.\.\])")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_SHOWN = 60
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/@\s]*@")


def parse_path(path: str) -> list[Segment] | None:
    """``$.sensors[2].unit`` -> ``["sensors", 2, "unit"]``; None if not a msgspec path."""
    if not path.startswith("$"):
        return None
    segments: list[Segment] = []
    pos = 1
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if match is None:
            return None
        name, index, any_key = match.groups()
        segments.append(name if name is not None else ANY_KEY if any_key else int(index))
        pos = match.end()
    return segments


def format_key(segments: Sequence[Segment]) -> str:
    """Render a path the way it is found in TOML: ``sensors[2].unit``, ``tags."a b"``."""
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg == ANY_KEY:
            out += ".*"
        else:
            name = seg if _BARE_KEY.match(seg) else json.dumps(seg, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def lookup(doc: Any, segments: Sequence[Segment]) -> Any:
    """The raw value at ``segments``, or MISSING."""
    value = doc
    for seg in segments:
        if isinstance(seg, int):
            if not isinstance(value, list | tuple) or not 0 <= seg < len(value):
                return MISSING
            value = value[seg]
        else:
            if not isinstance(value, dict) or seg not in value:
                return MISSING
            value = value[seg]
    return value


def render_value(value: Any) -> str:
    """A found value as a TOML author would recognise it."""
    if value is MISSING:
        return "nothing (the key is missing)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1***@", value)  # never echo a password into a log
        if len(value) > _MAX_SHOWN:
            return json.dumps(value[:_MAX_SHOWN], ensure_ascii=False)[:-1] + '…"'
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        if not value:
            return "an empty array"
        if all(isinstance(item, dict) for item in value):
            return "an array of tables"
        return "an array"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return repr(value)


# ---------------------------------------------------------------- type walking


def _unwrap(node: mi.Type) -> mi.Type:
    while isinstance(node, mi.Metadata):
        node = node.type
    return node


def _tag_literal(structs: Sequence[mi.StructType]) -> mi.LiteralType:
    return mi.LiteralType(values=tuple(s.tag for s in structs))


def _enter_table(node: mi.Type, value: Any) -> mi.Type | None:
    """The table type to look a key up in: a Struct, or the union member the tag selects."""
    node = _unwrap(node)
    if isinstance(node, mi.UnionType):
        tables = [_unwrap(t) for t in node.types]
        tables = [t for t in tables if isinstance(t, mi.StructType | mi.DictType)]
        if len(tables) == 1:
            return tables[0]
        tagged = [t for t in tables if isinstance(t, mi.StructType) and t.tag_field]
        if tagged and isinstance(value, dict):
            tag = value.get(tagged[0].tag_field, MISSING)
            chosen = [t for t in tagged if t.tag == tag]
            return chosen[0] if chosen else None
        return None
    return node if isinstance(node, mi.StructType | mi.DictType) else None


def _tagged_union_at(node: mi.Type, key: str) -> mi.LiteralType | None:
    """The possible tag values when ``key`` is the tag of a tagged union at ``node``."""
    node = _unwrap(node)
    structs = [node] if isinstance(node, mi.StructType) else []
    if isinstance(node, mi.UnionType):
        structs = [t for t in map(_unwrap, node.types) if isinstance(t, mi.StructType)]
    tagged = [s for s in structs if s.tag_field == key]
    return _tag_literal(tagged) if tagged else None


def _child(node: mi.Type, seg: Segment, value: Any) -> mi.Type | None:
    """The type of ``value[seg]`` given that ``value`` has type ``node``."""
    if isinstance(seg, int):
        node = _unwrap(node)
        if isinstance(node, mi.UnionType):
            arrays = [t for t in map(_unwrap, node.types) if hasattr(t, "item_type")]
            node = arrays[0] if len(arrays) == 1 else node
        if isinstance(node, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
            return node.item_type
        if isinstance(node, mi.TupleType) and seg < len(node.item_types):
            return node.item_types[seg]
        return None
    tag = _tagged_union_at(node, seg)
    if tag is not None:
        return tag
    table = _enter_table(node, value)
    if isinstance(table, mi.DictType):
        return table.value_type
    if isinstance(table, mi.StructType):
        for field in table.fields:
            if field.encode_name == seg:
                return field.type
    return None


def type_at(root_type: Any, segments: Sequence[Segment], doc: Any) -> mi.Type | None:
    """The declared type at ``segments`` of ``doc``, following union tags in the document.

    None when the path leaves the declared type (an unknown key, or a union
    whose tag in the document matches no member).
    """
    node: mi.Type | None = mi.type_info(root_type)
    value = doc
    for seg in segments:
        if node is None:
            return None
        node = _child(node, seg, value)
        value = lookup(value, [seg]) if value is not MISSING else MISSING
    return node


def table_at(root_type: Any, segments: Sequence[Segment], doc: Any) -> mi.StructType | None:
    """The Struct a table at ``segments`` is read into, if any (for listing its keys)."""
    node = type_at(root_type, segments, doc)
    if node is None:
        return None
    table = _enter_table(node, lookup(doc, segments))
    return table if isinstance(table, mi.StructType) else None


# ---------------------------------------------------------------- describing


def _num(x: float) -> str:
    return format(x, "g") if isinstance(x, float) else str(x)


def _bounds(node: mi.IntType | mi.FloatType, integer: bool) -> str:
    ge, le, gt, lt = node.ge, node.le, node.gt, node.lt
    if integer:  # an integer > 0 is an integer >= 1: say the simpler thing
        ge = gt + 1 if gt is not None else ge
        le = lt - 1 if lt is not None else le
        gt = lt = None
    low = f">= {_num(ge)}" if ge is not None else f"> {_num(gt)}" if gt is not None else None
    high = f"<= {_num(le)}" if le is not None else f"< {_num(lt)}" if lt is not None else None
    if ge is not None and le is not None:
        text = f" {_num(ge)}..{_num(le)}"
    elif low and high:
        text = f" {low} and {high}"
    else:
        text = f" {low or high}" if (low or high) else ""
    if node.multiple_of is not None:
        text += f" that is a multiple of {_num(node.multiple_of)}"
    return text


def _literal(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    return render_value(value)


def _one_of(values: Sequence[Any]) -> str:
    shown = ", ".join(_literal(v) for v in values)
    return shown if len(values) == 1 else f"one of {shown}"


def _length(node: Any, noun: str) -> str:
    low, high = node.min_length, node.max_length
    things = "characters" if noun == "a string" else "items"
    if low is not None and high is not None:
        return f"{noun} of {low}..{high} {things}"
    if low == 1:
        return f"a non-empty {noun.removeprefix('an ').removeprefix('a ')}"
    if low is not None:
        return f"{noun} of at least {low} {things}"
    if high is not None:
        return f"{noun} of at most {high} {things}"
    return noun


_PLURALS = {
    mi.StrType: "strings",
    mi.IntType: "integers",
    mi.FloatType: "numbers",
    mi.BoolType: "booleans",
    mi.StructType: "tables",
    mi.DictType: "tables",
}


def _plural(node: mi.Type) -> str | None:
    if isinstance(node, mi.Metadata) and "expected" in (node.extra or {}):
        return None
    inner = _unwrap(node)
    if isinstance(inner, mi.UnionType):
        tables = [t for t in map(_unwrap, inner.types) if isinstance(t, mi.StructType)]
        return "tables" if tables and len(tables) == len(inner.types) else None
    word = _PLURALS.get(type(inner))
    if word is None:
        return None
    if isinstance(inner, mi.StrType) and (inner.pattern or inner.min_length or inner.max_length):
        simple = inner.min_length == 1 and inner.pattern is None and inner.max_length is None
        return "non-empty strings" if simple else None
    if isinstance(inner, mi.IntType | mi.FloatType):
        return word + _bounds(inner, isinstance(inner, mi.IntType))
    return word


def describe(node: mi.Type | None, unit: str | None = None) -> str:
    """Say in words what a value of type ``node`` looks like in a TOML file."""
    if node is None:
        return "no value here"
    if isinstance(node, mi.Metadata):
        extra = node.extra or {}
        if "expected" in extra:
            return str(extra["expected"])
        return describe(node.type, extra.get("unit", unit))
    if isinstance(node, mi.IntType):
        noun = f"a whole number of {unit}" if unit else "an integer"
        return noun + _bounds(node, integer=True)
    if isinstance(node, mi.FloatType):
        noun = f"a number of {unit}" if unit else "a number"
        return noun + _bounds(node, integer=False)
    if isinstance(node, mi.StrType):
        if node.pattern is not None:
            return f"a string matching {node.pattern}"
        return _length(node, "a string")
    if isinstance(node, mi.BoolType):
        return "true or false"
    if isinstance(node, mi.LiteralType):
        return _one_of(node.values)
    if isinstance(node, mi.EnumType):
        return _one_of(list(node.cls))
    if isinstance(node, mi.StructType | mi.DictType | mi.TypedDictType | mi.DataclassType):
        return "a table"
    if isinstance(node, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        plural = _plural(node.item_type)
        noun = f"an array of {plural}" if plural else "an array"
        text = _length(node, noun)
        return text if plural else f"{text} whose items are each {describe(node.item_type)}"
    if isinstance(node, mi.TupleType):
        return f"an array of {len(node.item_types)} items"
    if isinstance(node, mi.UnionType):
        members = [t for t in node.types if not isinstance(_unwrap(t), mi.NoneType)]
        if members and all(isinstance(_unwrap(t), mi.StructType) for t in members):
            return "a table"
        words = list(dict.fromkeys(describe(t, unit) for t in members))
        return " or ".join(words) if words else "nothing"
    if isinstance(node, mi.NoneType):
        return "nothing"
    if isinstance(node, mi.DateTimeType):
        return "a date-time like 2024-05-27T07:32:00Z"
    if isinstance(node, mi.DateType):
        return "a date like 2024-05-27"
    if isinstance(node, mi.TimeType):
        return "a time of day like 07:32:00"
    if isinstance(node, mi.AnyType):
        return "any value"
    return f"a value of type {type(node).__name__.removesuffix('Type').lower()}"


def expected_at(root_type: Any, segments: Sequence[Segment], doc: Any) -> str:
    """What belongs at ``segments``, in words (see ``describe``)."""
    return describe(type_at(root_type, segments, doc))


def first_failing_key(
    root_type: Any, doc: Any, dict_path: Sequence[Segment], rest: Sequence[Segment]
) -> str | None:
    """Which key of the table at ``dict_path`` holds the bad value msgspec calls ``[...]``.

    msgspec does not say which entry of a dict failed, so each entry is tried
    alone (in a copy of the document) until the same error reappears.
    """
    table = lookup(doc, dict_path)
    if not isinstance(table, dict):
        return None
    want = "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in dict_path)
    want += "[...]" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in rest)
    for key, value in table.items():
        trial = _replace(doc, dict_path, {key: value})
        try:
            msgspec.convert(trial, type=root_type, str_keys=True)
        except msgspec.ValidationError as exc:
            if f"`{want}`" in str(exc):
                return key
    return None


def _replace(doc: Any, segments: Sequence[Segment], new: Any) -> Any:
    if not segments:
        return new
    head, rest = segments[0], segments[1:]
    if isinstance(doc, dict):
        copy = dict(doc)
        copy[head] = _replace(doc[head], rest, new)
        return copy
    copy_list = list(doc)
    copy_list[head] = _replace(doc[head], rest, new)  # type: ignore[index]
    return copy_list
