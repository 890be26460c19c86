"""The committed JSON Schemas and docs/contract.md match the code, and agree with it."""

from __future__ import annotations

import json

import jsonschema
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract import MESSAGE_TYPES, encode, examples, schema
from tests.rig.strategies import for_struct
from tools import contract_docs as docs

VALIDATORS = {
    name: jsonschema.Draft202012Validator(
        json.loads((schema.SCHEMA_DIR / f"{name}.json").read_text("utf-8")),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for name in MESSAGE_TYPES
}


def test_committed_schemas_match_the_code():
    stale = schema.drift()
    assert not stale, f"run `python -m coldgate.contract.schema --write`: {stale}"


def test_schema_check_command_agrees():
    assert schema.main(["--check"]) == 0


def test_committed_doc_matches_the_code():
    assert docs.DOC_PATH.read_text("utf-8") == docs.render(), "run `python -m tools.contract_docs --write`"
    assert docs.main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_schemas_are_valid_json_schema(name):
    jsonschema.Draft202012Validator.check_schema(VALIDATORS[name].schema)


@pytest.mark.parametrize("name", sorted(examples.MESSAGES))
def test_examples_validate_against_their_schema(name):
    VALIDATORS[name].validate(msgspec.json.decode(encode(examples.MESSAGES[name])))


def test_last_will_validates():
    VALIDATORS["status"].validate(msgspec.json.decode(encode(examples.STATUS_WILL)))


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_generated_messages_validate_against_their_schema(name, data):
    msg = data.draw(for_struct(MESSAGE_TYPES[name]))
    VALIDATORS[name].validate(msgspec.json.decode(encode(msg)))


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("batch", {"v": 2}),
        ("batch", {"colour": "red"}),
        ("batch", {"site": "a/b"}),
        ("batch", {"items": []}),
        ("ack", {"seq": 0}),
        ("status", {"state": "asleep"}),
    ],
)
def test_schemas_reject_what_the_decoder_rejects(name, change):
    doc = {**msgspec.json.decode(encode(examples.MESSAGES[name])), **change}
    assert not VALIDATORS[name].is_valid(doc)


def test_item_kinds_are_in_the_batch_schema():
    defs = VALIDATORS["batch"].schema["$defs"]
    assert {"Reading", "Gap", "Alert", "Movement", "Scan", "Event"} <= defs.keys()
    assert set(defs["Batch"]["properties"]["items"]["items"]["discriminator"]["mapping"]) == set(
        examples.ITEMS
    )


def test_doc_shows_every_message_and_item():
    text = docs.DOC_PATH.read_text("utf-8")
    for type_ in (*MESSAGE_TYPES.values(), *(type(i) for i in examples.ITEMS.values())):
        assert f"### {type_.__name__}\n" in text
