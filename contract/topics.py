"""Every MQTT topic name, built and parsed in one place.

The topic carries the routing facts (contract version, site, gateway,
direction, message) so that a broker ACL can pin each gateway to its own
subtree, and so that ingest works on MQTT 3.1.1 brokers (amqtt) without MQTT 5
properties.  The payload repeats site and gateway; decoders check both agree.

A down-link document too large for one message (master data, recall list) is
published in parts, each retained on a topic of its own: part 1 on the
document's topic, part k >= 2 one level below it (``.../down/recall/2``), so
the gateway's subscription and ACL (``down/#``) cover every part.

Gateway ids are unique across the whole broker, not just within a site: the
gateway id is also the MQTT client id, and the ACL below matches on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from coldgate.contract.downlink import MAX_PARTS
from coldgate.contract.errors import ContractError
from coldgate.contract.ids import is_id
from coldgate.contract.version import CONTRACT_VERSION

PREFIX: Final = f"coldgate/v{CONTRACT_VERSION}"
QOS: Final = 1


class LinkDirection(StrEnum):
    UP = "up"  # gateway -> cloud
    DOWN = "down"  # cloud -> gateway


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    direction: LinkDirection
    retained: bool
    publisher: str
    purpose: str
    #: Comes in parts: part k >= 2 on ``{topic}/{k}`` (added 2026-12-06).
    in_parts: bool = False


BATCH: Final = TopicSpec("batch", LinkDirection.UP, False, "gateway", "items from the outbox")
STATUS: Final = TopicSpec(
    "status", LinkDirection.UP, True, "gateway (will: broker)", "birth, heartbeat, last will"
)
ACK: Final = TopicSpec("ack", LinkDirection.DOWN, False, "cloud ingest", "end-to-end acknowledgement")
CONFIG: Final = TopicSpec("config", LinkDirection.DOWN, True, "cloud", "gateway configuration")
MASTER: Final = TopicSpec(
    "master", LinkDirection.DOWN, True, "cloud", "temperature classes, products, batch expiry", True
)
RECALL: Final = TopicSpec("recall", LinkDirection.DOWN, True, "cloud", "recall/quarantine list", True)
COMMAND: Final = TopicSpec("command", LinkDirection.DOWN, False, "cloud", "operator commands")

#: Every topic, keyed by name (the last topic level).
TOPICS: Final[dict[str, TopicSpec]] = {
    spec.name: spec for spec in (BATCH, STATUS, ACK, CONFIG, MASTER, RECALL, COMMAND)
}

#: What cloud ingest subscribes to (every site, every gateway, every up-link topic).
INGEST_FILTER: Final = f"{PREFIX}/+/+/up/#"

#: Mosquitto ACL (``acl_file``) lines for gateways; ``%u`` is the login's username = gateway id.
#: Pinned to the credential, never to ``%c``: a client chooses its client id itself.
MOSQUITTO_GATEWAY_ACL: Final = f"pattern write {PREFIX}/+/%u/up/#\npattern read {PREFIX}/+/%u/down/#\n"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    site: str
    gateway: str
    direction: LinkDirection
    name: str
    #: The part of a document in parts the topic carries (1: the document's own topic).
    part: int = 1

    @property
    def spec(self) -> TopicSpec:
        return TOPICS[self.name]


def _check_id(value: str, what: str) -> None:
    if not is_id(value):
        raise ContractError("$", f"{what} {value!r} is not a valid id (A-Z a-z 0-9 _ . -, 1-64)")


def topic(site: str, gateway: str, name: str, part: int = 1) -> str:
    """The topic of message ``name`` (a key of ``TOPICS``) for one gateway; of its ``part`` for a
    document in parts (part 1 is the document's own topic)."""
    _check_id(site, "site")
    _check_id(gateway, "gateway")
    spec = TOPICS.get(name)
    if spec is None:
        raise ContractError("$", f"no topic named {name!r}")
    base = f"{PREFIX}/{site}/{gateway}/{spec.direction}/{spec.name}"
    if part == 1:
        return base
    if not spec.in_parts or type(part) is not int or not 2 <= part <= MAX_PARTS:
        raise ContractError("$", f"{name} has no part {part!r}")
    return f"{base}/{part}"


def batch_topic(site: str, gateway: str) -> str:
    return topic(site, gateway, BATCH.name)


def status_topic(site: str, gateway: str) -> str:
    return topic(site, gateway, STATUS.name)


def ack_topic(site: str, gateway: str) -> str:
    return topic(site, gateway, ACK.name)


def config_topic(site: str, gateway: str) -> str:
    return topic(site, gateway, CONFIG.name)


def master_topic(site: str, gateway: str, part: int = 1) -> str:
    return topic(site, gateway, MASTER.name, part)


def recall_topic(site: str, gateway: str, part: int = 1) -> str:
    return topic(site, gateway, RECALL.name, part)


def command_topic(site: str, gateway: str) -> str:
    return topic(site, gateway, COMMAND.name)


def gateway_filter(site: str, gateway: str) -> str:
    """What a gateway subscribes to: everything down-link for itself."""
    _check_id(site, "site")
    _check_id(gateway, "gateway")
    return f"{PREFIX}/{site}/{gateway}/{LinkDirection.DOWN}/#"


def shared_ingest_filter(group: str) -> str:
    """``$share/{group}/coldgate/v1/+/+/up/#``: N ingest workers split the load."""
    _check_id(group, "share group")
    return f"$share/{group}/{INGEST_FILTER}"


def parse_topic(topic: str) -> TopicInfo:
    """Split a Coldgate topic; any other topic raises ``ContractError``."""
    levels = topic.split("/")
    if len(levels) not in (6, 7) or f"{levels[0]}/{levels[1]}" != PREFIX:
        raise ContractError("$", f"not a {PREFIX} topic: {topic!r}", topic)
    site, gateway, direction, name = levels[2:6]
    spec = TOPICS.get(name)
    if not is_id(site) or not is_id(gateway) or spec is None or spec.direction != direction:
        raise ContractError("$", f"not a {PREFIX} topic: {topic!r}", topic)
    part = 1
    if len(levels) == 7:
        number = levels[6]
        # Part 1 has no topic of its own; no sign, no leading zero: one topic per part.
        if not spec.in_parts or not number.isascii() or not number.isdigit() or number[0] == "0":
            raise ContractError("$", f"not a {PREFIX} topic: {topic!r}", topic)
        part = int(number) if len(number) <= 4 else MAX_PARTS + 1
        if not 2 <= part <= MAX_PARTS:
            raise ContractError("$", f"not a {PREFIX} topic: {topic!r}", topic)
    return TopicInfo(site=site, gateway=gateway, direction=spec.direction, name=name, part=part)
