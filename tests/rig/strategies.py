"""Hypothesis strategies for every contract message, derived from the Structs.

Test-only (it imports hypothesis; nothing at runtime imports this module).
Strategies are read off the Struct definitions and their constraints, so a
field added to the contract is covered without touching the tests; the
cross-field rules that a Struct's ``__post_init__`` enforces are repaired by
a small fixer per class.  Gateway and cloud property tests reuse these too
(random batches for ingest de-duplication, random down-link documents).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from coldgate.contract.codec import MESSAGE_TYPES
from coldgate.contract.downlink import (
    BatchInfo,
    Command,
    CommandAction,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    TemperatureClass,
)
from coldgate.contract.evidence import Evidence, Limits
from coldgate.contract.ids import GTIN_PATTERN, MAX_SEQ, SSCC_PATTERN, gs1_check_digit_ok
from coldgate.contract.items import ITEM_TYPES, Gap, Movement, Quality, Reading, Scan
from coldgate.contract.units import TEMPERATURE_UNITS, UNITS_FOR, Unit
from coldgate.contract.uplink import Batch, Status, Topology

Fixer = Callable[[dict[str, Any]], dict[str, Any]]
_MAX_TEXT = 24
_MAX_COLLECTION = 3
_INT64 = (-(2**63), 2**63 - 1)


def gs1_keys(length: int) -> st.SearchStrategy[str]:
    """Digit strings of ``length`` with a valid GS1 check digit."""

    def finish(body: str) -> str:
        for digit in "0123456789":
            if gs1_check_digit_ok(body + digit):
                return body + digit
        raise AssertionError("unreachable")

    return st.text("0123456789", min_size=length - 1, max_size=length - 1).map(finish)


_SPECIAL_PATTERNS: dict[str, st.SearchStrategy[str]] = {
    GTIN_PATTERN: gs1_keys(14),
    SSCC_PATTERN: gs1_keys(18),
}
_FIELD_OVERRIDES: dict[tuple[type, str], st.SearchStrategy[Any]] = {
    (Scan, "raw"): st.text(st.characters(max_codepoint=0xFF), max_size=_MAX_TEXT),
}

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(*_INT64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=_MAX_TEXT),
    lambda inner: (
        st.lists(inner, max_size=_MAX_COLLECTION)
        | st.dictionaries(st.text(max_size=8), inner, max_size=_MAX_COLLECTION)
    ),
    max_leaves=8,
)


def _bound(low: int | None, gt: int | None, high: int | None, lt: int | None) -> tuple[int, int]:
    lo = low if low is not None else (gt + 1 if gt is not None else _INT64[0])
    hi = high if high is not None else (lt - 1 if lt is not None else _INT64[1])
    return lo, hi


def for_type(info: mi.Type, owner: type | None = None) -> st.SearchStrategy[Any]:
    """A strategy for one msgspec type description (``msgspec.inspect.type_info``)."""
    if isinstance(info, mi.Metadata):
        return for_type(info.type, owner)
    if isinstance(info, mi.StructType):
        return for_struct(info.cls)
    if isinstance(info, mi.IntType):
        return st.integers(*_bound(info.ge, info.gt, info.le, info.lt))
    if isinstance(info, mi.FloatType):
        return st.floats(allow_nan=False, allow_infinity=False, min_value=info.ge, max_value=info.le)
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.StrType):
        if info.pattern is not None:
            if info.pattern in _SPECIAL_PATTERNS:
                return _SPECIAL_PATTERNS[info.pattern]
            return st.from_regex(re.compile(info.pattern), fullmatch=True)
        high = min(info.max_length if info.max_length is not None else _MAX_TEXT, _MAX_TEXT)
        return st.text(min_size=info.min_length or 0, max_size=high)
    if isinstance(info, mi.UnionType):
        return st.one_of(*(for_type(t, owner) for t in info.types))
    if isinstance(info, mi.LiteralType):
        return st.sampled_from(info.values)
    if isinstance(info, mi.EnumType):
        return st.sampled_from(list(info.cls))
    if isinstance(info, mi.ListType):
        high = min(info.max_length if info.max_length is not None else 9, _MAX_COLLECTION)
        return st.lists(for_type(info.item_type, owner), min_size=info.min_length or 0, max_size=high)
    if isinstance(info, mi.DictType):
        keys, values = for_type(info.key_type, owner), for_type(info.value_type, owner)
        return st.dictionaries(keys, values, max_size=_MAX_COLLECTION)
    if isinstance(info, mi.DateType):
        return st.dates()
    if isinstance(info, mi.AnyType):
        return json_values
    raise TypeError(f"no strategy for {info!r}")


@cache
def for_struct(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    """Valid instances of ``cls``: every optional field sometimes left at its default."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in info.fields:
        strategy = _FIELD_OVERRIDES.get((cls, field.name))
        if strategy is None:
            strategy = for_type(field.type, cls)
        (required if field.required else optional)[field.name] = strategy
    fixer = FIXERS.get(cls, lambda kwargs: kwargs)
    kwargs = st.fixed_dictionaries(required, optional=optional)
    return kwargs.map(lambda values: cls(**fixer(dict(values))))


def items() -> st.SearchStrategy[Any]:
    return st.one_of(*(for_struct(t) for t in ITEM_TYPES))


def messages() -> st.SearchStrategy[Any]:
    return st.one_of(*(for_struct(t) for t in MESSAGE_TYPES.values()))


# Fixers: turn random field values into ones that pass the Struct's cross-field rules.


def _ordered(kwargs: dict[str, Any], low: str, high: str) -> dict[str, Any]:
    a, b = kwargs.get(low), kwargs.get(high)
    if a is not None and b is not None and a > b:
        kwargs[low], kwargs[high] = b, a
    return kwargs


def _fix_reading(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = sorted(UNITS_FOR[kwargs["quantity"]])
    if kwargs["unit"] not in allowed:
        kwargs["unit"] = allowed[list(Unit).index(kwargs["unit"]) % len(allowed)]
    if kwargs["value"] is None:
        kwargs["quality"] = Quality.ERROR
    if kwargs.get("quality", Quality.OK) is not Quality.OK and not kwargs.get("reason"):
        kwargs["reason"] = "stuck value"
    return kwargs


def _fix_temperature_class(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("unit", Unit.CEL) not in TEMPERATURE_UNITS:
        kwargs["unit"] = Unit.KEL
    return _ordered(kwargs, "low", "high")


def _fix_parts(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A document in parts: part <= parts (either may be left at its default, 1)."""
    part, parts = kwargs.get("part", 1), kwargs.get("parts", 1)
    if part > parts:
        kwargs["part"], kwargs["parts"] = parts, part
    return kwargs


def _fix_product(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A product has a gtin or an id; a unit of measure only with an HIBC code."""
    if kwargs.get("gtin") is None and kwargs.get("id") is None:
        kwargs["id"] = "P" + str(len(kwargs["name"]))
    if kwargs.get("hibc") is None:
        kwargs.pop("hibc_uom", None)
    return kwargs


def _fix_one_key(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Batches and recall entries name their product by exactly one of gtin and product id."""
    if kwargs.get("gtin") is not None:
        kwargs.pop("product", None)
    elif kwargs.get("product") is None:
        kwargs["product"] = "P1"
    return kwargs


def _fix_scan(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("expiry") is None:
        kwargs.pop("expiry_hour", None)
    if kwargs.get("hibc") is None:
        kwargs.pop("hibc_uom", None)
    return kwargs


def _fix_topology(kwargs: dict[str, Any]) -> dict[str, Any]:
    for name in ("zones", "sensors", "readers", "scanners"):
        kwargs[name] = list({entry.id: entry for entry in kwargs.get(name, [])}.values())
    return kwargs


def _unique_labels(products: list[Product]) -> list[Product]:
    """Products whose keys, HIBC codes and MA ids are unique, as the document's rule wants."""
    kept: list[Product] = []
    seen: set[object] = set()
    for product in products:
        labels = {("key", product.key)}
        if product.hibc is not None:
            labels.add(("hibc", (product.hibc, product.hibc_uom)))
        if product.ma is not None:
            labels.add(("ma", product.ma))
        if not labels & seen:
            kept.append(product)
            seen |= labels
    return kept


def _fix_master(kwargs: dict[str, Any]) -> dict[str, Any]:
    _fix_parts(kwargs)
    classes = list({c.name: c for c in kwargs.get("temperature_classes", [])}.values())
    products = _unique_labels(kwargs.get("products", [])) if classes else []
    kwargs["temperature_classes"] = classes
    kwargs["products"] = [
        msgspec.structs.replace(p, temperature_class=classes[i % len(classes)].name)
        for i, p in enumerate(products)
    ]
    kwargs["batches"] = list({(b.key, b.lot): b for b in kwargs.get("batches", [])}.values())
    return kwargs


def _fix_command(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("expires") is not None and kwargs["expires"] < kwargs["issued"]:
        kwargs["expires"] = kwargs["issued"]
    if kwargs["action"] is CommandAction.RESEND_FROM:
        kwargs["args"] = {**kwargs.get("args", {}), "seq": 1 + kwargs["issued"] % 1000}
    return kwargs


def _fix_batch(kwargs: dict[str, Any]) -> dict[str, Any]:
    batch_items = kwargs["items"]
    first = min(kwargs["first_seq"], MAX_SEQ - 3 * len(batch_items))
    seq, renumbered = first, []
    for item in batch_items:
        seq += item.seq % 3  # gaps of 0-2 (thinned items), also before the first item
        renumbered.append(msgspec.structs.replace(item, seq=seq))
        seq += 1
    kwargs.update(first_seq=first, last_seq=renumbered[-1].seq, items=renumbered)
    return kwargs


def _fix_status(kwargs: dict[str, Any]) -> dict[str, Any]:
    for name in ("sensors", "readers", "scanners"):
        kwargs[name] = list({entry.id: entry for entry in kwargs.get(name, [])}.values())
    return kwargs


FIXERS: dict[type, Fixer] = {
    Status: _fix_status,
    Reading: _fix_reading,
    Gap: lambda kwargs: _ordered(kwargs, "start", "end"),
    Movement: lambda kwargs: _ordered(kwargs, "first_seen", "last_seen"),
    Evidence: lambda kwargs: _ordered(kwargs, "start", "end"),
    Limits: lambda kwargs: _ordered(kwargs, "low", "high"),
    TemperatureClass: _fix_temperature_class,
    MasterData: _fix_master,
    Product: _fix_product,
    BatchInfo: _fix_one_key,
    RecallEntry: _fix_one_key,
    Scan: _fix_scan,
    Topology: _fix_topology,
    RecallList: _fix_parts,
    Command: _fix_command,
    Batch: _fix_batch,
}
