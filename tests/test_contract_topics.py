"""Topic names are built, parsed and filtered in one place, and only valid ids get in."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract import (
    MESSAGE_TYPES,
    ContractError,
    TopicInfo,
    decode_topic,
    encode,
    examples,
    parse_topic,
    topics,
)
from coldgate.contract.ids import ID_PATTERN

ids = st.from_regex(re.compile(ID_PATTERN), fullmatch=True)

BUILDERS = {
    "batch": topics.batch_topic,
    "status": topics.status_topic,
    "ack": topics.ack_topic,
    "config": topics.config_topic,
    "master": topics.master_topic,
    "recall": topics.recall_topic,
    "command": topics.command_topic,
}


def test_topic_names():
    assert topics.batch_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/up/batch"
    assert topics.status_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/up/status"
    assert topics.ack_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/ack"
    assert topics.config_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/config"
    assert topics.master_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/master"
    assert topics.recall_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/recall"
    assert topics.command_topic("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/command"


def test_every_topic_has_a_builder_and_a_message_type():
    assert BUILDERS.keys() == topics.TOPICS.keys() == MESSAGE_TYPES.keys()


def test_retained_topics():
    retained = {name for name, spec in topics.TOPICS.items() if spec.retained}
    assert retained == {"status", "config", "master", "recall"}
    assert topics.QOS == 1


def test_filters():
    assert topics.INGEST_FILTER == "coldgate/v1/+/+/up/#"
    assert topics.shared_ingest_filter("ingest") == "$share/ingest/coldgate/v1/+/+/up/#"
    assert topics.gateway_filter("ams-dc1", "gw01") == "coldgate/v1/ams-dc1/gw01/down/#"
    assert topics.MOSQUITTO_GATEWAY_ACL.splitlines() == [
        "pattern write coldgate/v1/+/%u/up/#",
        "pattern read coldgate/v1/+/%u/down/#",
    ]


@settings(max_examples=100, deadline=None)
@given(site=ids, gateway=ids, name=st.sampled_from(sorted(BUILDERS)))
def test_parse_inverts_build(site, gateway, name):
    topic = BUILDERS[name](site, gateway)
    info = parse_topic(topic)
    assert info == TopicInfo(site, gateway, topics.TOPICS[name].direction, name)
    assert _matches(topics.INGEST_FILTER, topic) == (info.direction == "up")
    assert _matches(topics.gateway_filter(site, gateway), topic) == (info.direction == "down")


def _matches(filter_: str, topic: str) -> bool:
    """MQTT topic filter matching (+ one level, # the rest)."""
    levels, parts = filter_.split("/"), topic.split("/")
    for i, level in enumerate(levels):
        if level == "#":
            return True
        if i >= len(parts) or (level != "+" and level != parts[i]):
            return False
    return len(levels) == len(parts)


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "a+b", "a#", "$sys", "-lead", "with space", "é", "x" * 65, "gw\n", ".", "a\x00"],
)
def test_builders_refuse_ids_that_would_break_topics(bad):
    with pytest.raises(ContractError):
        topics.batch_topic(bad, "gw01")
    with pytest.raises(ContractError):
        topics.command_topic("ams-dc1", bad)
    with pytest.raises(ContractError):
        topics.gateway_filter("ams-dc1", bad)
    with pytest.raises(ContractError):
        topics.shared_ingest_filter(bad)


def test_unknown_topic_name_is_refused():
    with pytest.raises(ContractError):
        topics.topic("ams-dc1", "gw01", "telemetry")


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "coldgate/v1",
        "coldgate/v2/ams-dc1/gw01/up/batch",
        "other/v1/ams-dc1/gw01/up/batch",
        "coldgate/v1/ams-dc1/gw01/up/ack",
        "coldgate/v1/ams-dc1/gw01/down/batch",
        "coldgate/v1/ams-dc1/gw01/up/telemetry",
        "coldgate/v1/ams-dc1/gw01/up/batch/extra",
        "coldgate/v1/ams-dc1//up/batch",
        "coldgate/v1/+/gw01/up/batch",
        "coldgate/v1/ams-dc1/gw01/up/#",
        "/coldgate/v1/ams-dc1/gw01/up/batch",
        "$share/g/coldgate/v1/ams-dc1/gw01/up/batch",
    ],
)
def test_foreign_topics_are_refused(topic):
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.topic == topic and info.value.path == "$"


@pytest.mark.parametrize("name", sorted(examples.MESSAGES))
def test_decode_topic_picks_the_message_type(name):
    topic = BUILDERS[name](examples.SITE, examples.GATEWAY)
    info, msg = decode_topic(topic, encode(examples.MESSAGES[name]))
    assert type(msg) is MESSAGE_TYPES[name]
    assert info.spec.retained == topics.TOPICS[name].retained


def test_the_shipped_broker_acl_grants_gateways_what_the_contract_says() -> None:
    from pathlib import Path

    from coldgate.contract.topics import MOSQUITTO_GATEWAY_ACL

    acl = (Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "coldgate.acl").read_text()
    rules = [line for line in acl.splitlines() if line.startswith("pattern ")]
    assert rules == MOSQUITTO_GATEWAY_ACL.strip().splitlines()
