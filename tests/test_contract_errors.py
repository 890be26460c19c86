"""Bad payloads raise ContractError, nothing else, and the error names the field."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract import (
    MAX_PAYLOAD_BYTES,
    MESSAGE_TYPES,
    Batch,
    Command,
    ContractError,
    MasterData,
    Status,
    decode,
    decode_item,
    decode_topic,
    encode,
    examples,
    topics,
    validate,
)
from tests.rig.strategies import json_values

GOOD = {name: encode(msg) for name, msg in examples.MESSAGES.items()}
DOCS = {name: msgspec.json.decode(data) for name, data in GOOD.items()}


def reject(data: bytes | str, type_: type = Batch, topic: str | None = None) -> ContractError:
    """Decode and return the ContractError; any other outcome fails the test."""
    with pytest.raises(ContractError) as info:
        decode(data, type_, topic)
    return info.value


def mutated(name: str, change) -> bytes:
    doc = copy.deepcopy(DOCS[name])
    change(doc)
    return json.dumps(doc).encode()


def setter(path: str, value: Any):
    *parents, last = _tokens(path)

    def change(doc: Any) -> None:
        for token in parents:
            doc = doc[token]
        doc[last] = value

    return change


def deleter(path: str):
    *parents, last = _tokens(path)

    def change(doc: Any) -> None:
        for token in parents:
            doc = doc[token]
        del doc[last]

    return change


def _tokens(path: str) -> list[str | int]:
    return [int(i) if i else k for k, i in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path)]


# -- exact paths for the cases where the culprit is known --------------------------------

EXACT = [
    # (what, message, change, expected path, words in the reason)
    ("v=2", "batch", setter("$.v", 2), "$.v", "unsupported contract version 2 (this build speaks 1)"),
    ("v string", "batch", setter("$.v", "1"), "$.v", "unsupported contract version '1'"),
    ("v true", "ack", setter("$.v", True), "$.v", "unsupported"),
    ("v missing", "status", deleter("$.v"), "$.v", "missing required field"),
    ("seq as text", "batch", setter("$.items[0].seq", "x"), "$.items[0].seq", "Expected `int`"),
    ("seq zero", "batch", setter("$.items[0].seq", 0), "$.items[0].seq", ">= 1"),
    ("value as text", "batch", setter("$.items[1].value", "warm"), "$.items[1].value", "float"),
    ("field deleted", "batch", deleter("$.items[2].cause"), "$.items[2].cause", "missing"),
    ("unknown item field", "batch", setter("$.items[3].colour", "red"), "$.items[3].colour", "unknown"),
    ("unknown top field", "ack", setter("$.colour", "red"), "$.colour", "unknown field"),
    ("items a string", "batch", setter("$.items", "oops"), "$.items", "Expected `array`"),
    ("item a string", "batch", setter("$.items[4]", "oops"), "$.items[4]", "Expected `object`"),
    ("no items", "batch", setter("$.items", []), "$.items", "length >= 1"),
    ("unknown kind", "batch", setter("$.items[2].kind", "gasp"), "$.items[2].kind", "gasp"),
    ("kind missing", "batch", deleter("$.items[2].kind"), "$.items[2].kind", "missing"),
    ("seq repeated", "batch", setter("$.items[1].seq", 1041), "$.items[1].seq", "does not increase"),
    ("seq before range", "batch", setter("$.first_seq", 1042), "$.items[0].seq", "below first_seq"),
    ("last_seq wrong", "batch", setter("$.last_seq", 1048), "$.last_seq", "last item"),
    ("range reversed", "batch", setter("$.first_seq", 2000), "$.last_seq", "below first_seq"),
    ("null value ok", "batch", setter("$.items[1].quality", "ok"), "$.items[1].value", "null"),
    ("no reason", "batch", setter("$.items[0].quality", "suspect"), "$.items[0].reason", "required"),
    ("wrong unit", "batch", setter("$.items[0].unit", "P1"), "$.items[0].unit", "temperature"),
    ("gap backwards", "batch", setter("$.items[2].end", 1), "$.items[2].end", "before start"),
    (
        "limits reversed",
        "batch",
        setter("$.items[3].evidence.limits.low", 20.0),
        "$.items[3].evidence.limits.high",
        "below low",
    ),
    (
        "epc uppercase",
        "batch",
        setter("$.items[4].epc", "3074257BF7194E4000001A85"),
        "$.items[4].epc",
        "expected EPC hex",
    ),
    ("seen backwards", "batch", setter("$.items[4].last_seen", 0), "$.items[4].last_seen", "before"),
    ("gtin digit", "batch", setter("$.items[5].gtin", "80614141123459"), "$.items[5].gtin", "check"),
    ("raw not latin-1", "batch", setter("$.items[5].raw", "]d2€"), "$.items[5].raw", "latin-1"),
    ("bad date", "batch", setter("$.items[5].expiry", "2026-02-30"), "$.items[5].expiry", "date"),
    ("site with slash", "batch", setter("$.site", "a/b"), "$.site", "expected an id"),
    ("id with newline", "batch", setter("$.items[0].sensor", "t1\n"), "$.items[0].sensor", "expected an id"),
    ("huge number", "batch", setter("$.items[0].ts", 2**64), "$.items[0].ts", ""),
    ("nested data", "batch", setter("$.items[6].data.kind", {"a": 1}), "$.items[6].data.kind", ""),
    ("null in args", "command", setter("$.args.odd key", None), '$.args["odd key"]', ""),
    ("empty key", "command", setter("$.args", {"": 1}), "$.args", "key: "),
    (
        "unknown class",
        "master",
        setter("$.products[1].temperature_class", "frozen"),
        "$.products[1].temperature_class",
        "unknown temperature class",
    ),
    (
        "duplicate gtin",
        "master",
        setter("$.products[1].gtin", examples.GTIN),
        "$.products[1].gtin",
        "duplicate",
    ),
    (
        "class reversed",
        "master",
        setter("$.temperature_classes[0].low", 9.0),
        "$.temperature_classes[0].high",
        "below low",
    ),
    ("resend without seq", "command", setter("$.action", "resend_from"), "$.args.seq", "seq"),
    ("expires early", "command", setter("$.expires", 1), "$.expires", "before issued"),
    ("bad sensor id", "status", setter("$.sensors[1].id", "a/b"), "$.sensors[1].id", "expected an id"),
    ("sensor twice", "status", setter("$.sensors[1].id", "cr1-t01"), "$.sensors[1].id", "duplicate"),
    ("sensor state", "status", setter("$.sensors[1].online", "no"), "$.sensors[1].online", "bool"),
    ("ack seq text", "ack", setter("$.seq", "1"), "$.seq", "Expected `int`"),
    ("config not object", "config", setter("$.config", [1]), "$.config", "Expected `object`"),
]


@pytest.mark.parametrize(("what", "name", "change", "path", "words"), EXACT, ids=[c[0] for c in EXACT])
def test_error_names_the_field(what, name, change, path, words):
    error = reject(mutated(name, change), MESSAGE_TYPES[name])
    assert error.path == path, error
    assert words in error.reason
    assert str(error).startswith(f"{path}: ")


def test_newer_version_is_reported_before_its_unknown_fields():
    doc = copy.deepcopy(DOCS["batch"])
    doc.update(v=2, compression="zstd")
    doc["items"][0]["calibrated"] = True
    error = reject(json.dumps(doc).encode())
    assert (error.path, error.reason) == ("$.v", "unsupported contract version 2 (this build speaks 1)")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "truncated"),
        (b"not json", "malformed"),
        (b"[1, 2]", "Expected `object`"),
        (b'{"v": NaN}', "malformed"),
        (b"\xff\xfe{}", "malformed"),
        (b'{"\xff": 1}', "UTF-8"),
        (b'{"v": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", ""),
    ],
)
def test_garbage_is_a_contract_error_at_the_root(data, words):
    for type_ in MESSAGE_TYPES.values():
        error = reject(data, type_)
        assert error.path.startswith("$")
        assert words in error.reason


def test_invalid_utf8_names_the_string():
    bad = GOOD["batch"].replace(b"cr1-h01", b"cr1-h\xff1", 1)
    error = reject(bad)
    assert error.path == "$.items[1].sensor"
    offset = bad.index(b"\xff")
    assert error.reason == f"invalid UTF-8 at byte {offset}"


def test_lone_surrogate_in_str_payload_is_a_contract_error():
    error = reject('{"v": 1, "site": "\ud800"}')
    assert error.path == "$" and "surrogate" in error.reason


def test_batch_built_in_code_needs_items():
    with pytest.raises(ValueError, match="at least one item"):
        msgspec.structs.replace(examples.BATCH, items=[])


def test_deep_nesting_is_a_contract_error():
    deep = b"[" * 5000 + b"]" * 5000
    doc = b'{"v":1,"gateway":"g","version":1,"issued":0,"config":{"x":' + deep + b"}}"
    error = reject(doc, MESSAGE_TYPES["config"])
    assert (error.path, error.reason) == ("$", "nested too deeply")


def test_oversized_payload_is_refused_before_parsing():
    error = reject(b" " * (MAX_PAYLOAD_BYTES + 1))
    assert error.path == "$" and "exceeds" in error.reason


@pytest.mark.parametrize("name", sorted(GOOD))
def test_every_truncation_is_a_contract_error(name):
    data = GOOD[name]
    for cut in range(len(data)):
        reject(data[:cut], MESSAGE_TYPES[name])


@pytest.mark.parametrize("name", sorted(GOOD))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_flipped_bytes_decode_or_raise_contract_error(name, data):
    payload = bytearray(GOOD[name])
    for _ in range(data.draw(st.integers(1, 3))):
        payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    try:
        decode(bytes(payload), MESSAGE_TYPES[name])
    except ContractError as error:
        assert error.path.startswith("$")


# -- structural mutations: the error names a place that exists in the payload -------------


def _places(doc: Any, path: str = "$") -> list[tuple[str, Any]]:
    out = [(path, doc)]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _places(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            out += _places(value, f"{path}[{index}]")
    return out


def _resolve(doc: Any, path: str) -> Any:
    for token in _tokens(path):
        doc = doc[token]
    return doc


def _names_a_place(doc: Any, path: str) -> bool:
    """True when `path` leads into `doc`; its last step may be a missing field."""
    matches = list(re.finditer(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", path[1:]))
    tokens = [m.groups() for m in matches]
    node = doc
    for position, (key, index) in enumerate(tokens):
        last = position == len(tokens) - 1
        rest = path[1:][matches[position].start() + 1 :]
        if key and isinstance(node, dict) and key not in node and rest in node:
            return True  # the last key itself contains dots ("0.0"): the path's rest names it
        if index == "...":
            if not isinstance(node, dict):
                return False
            node = next(iter(node.values()), None)
        elif index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return last and isinstance(node, dict)
    return True


@pytest.mark.parametrize("name", sorted(GOOD))
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_structural_mutations_name_an_existing_field(name, data):
    doc = copy.deepcopy(DOCS[name])
    path, _ = data.draw(st.sampled_from(_places(doc)[1:]))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    *parents, last = _tokens(path)
    node = doc
    for token in parents:
        node = node[token]
    if action == "replace":
        node[last] = data.draw(json_values)
    elif action == "delete":
        del node[last]
    else:
        target = node[last]
        if not isinstance(target, dict):
            return
        target["zz_unknown"] = data.draw(json_values)
    try:
        decode(json.dumps(doc).encode(), MESSAGE_TYPES[name])
    except ContractError as error:
        assert _names_a_place(doc, error.path), (path, action, str(error))
        if action == "add" and isinstance(_resolve(DOCS[name], path), dict):
            assert error.path.startswith(path)


# -- topics and routing --------------------------------------------------------------------


def test_payload_gateway_must_match_topic():
    topic = topics.batch_topic(examples.SITE, "gw02")
    error = reject(GOOD["batch"], Batch, topic)
    assert (error.path, error.topic) == ("$.gateway", topic)


def test_payload_site_must_match_topic():
    topic = topics.status_topic("other-site", examples.GATEWAY)
    error = reject(GOOD["status"], Status, topic)
    assert error.path == "$.site"


def test_downlink_gateway_must_match_topic():
    error = reject(GOOD["command"], Command, topics.command_topic(examples.SITE, "gw02"))
    assert error.path == "$.gateway"


def test_message_type_must_fit_topic():
    error = reject(GOOD["batch"], Batch, topics.status_topic(examples.SITE, examples.GATEWAY))
    assert error.path == "$" and "status" in error.reason


@pytest.mark.parametrize("topic", ["other/v1/a/b/up/batch", "coldgate/v2/a/b/up/batch", "x"])
def test_foreign_topics_are_contract_errors(topic):
    with pytest.raises(ContractError) as info:
        decode_topic(topic, GOOD["batch"])
    assert info.value.topic == topic


def test_error_carries_topic():
    topic = topics.master_topic(examples.SITE, examples.GATEWAY)
    error = reject(b"{", MasterData, topic)
    assert error.topic == topic and str(error).startswith(topic)


def test_decode_item_and_validate_raise_contract_errors():
    with pytest.raises(ContractError) as info:
        decode_item(b'{"kind":"reading","seq":1}')
    assert info.value.path.startswith("$.")
    bad = msgspec.structs.replace(examples.READING, sensor="has space")
    with pytest.raises(ContractError) as info:
        validate(bad)
    assert info.value.path == "$.sensor"


def test_decode_refuses_non_message_types():
    with pytest.raises(TypeError):
        decode(b"{}", dict)  # type: ignore[type-var]


def test_validate_reports_a_lone_surrogate_as_a_contract_error() -> None:
    from coldgate.contract import validate
    from coldgate.contract.errors import ContractError
    from coldgate.contract.examples import ITEMS

    reading = next(item for item in ITEMS.values() if type(item).__name__ == "Reading")
    broken = msgspec.structs.replace(reading, quality="suspect", reason="bad \ud800 byte")
    with pytest.raises(ContractError, match="cannot be encoded as UTF-8"):
        validate(broken)
