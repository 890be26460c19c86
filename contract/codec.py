"""Bytes in, typed message out, or a ``ContractError`` that names the field.

Both ends see untrusted bytes (a broker relays anything a client publishes),
so decoding must never fail with anything but ``ContractError``, and the
error must say where: ingest dead-letters the payload with that path, the
gateway reports it in its status.  Decoders are built once per type because
constructing them is the slow part on a Raspberry Pi.

msgspec checks field constraints (patterns, ranges) only when decoding, not
when a Struct is constructed; ``validate`` closes that gap for messages built
from outside data, so one bad item is refused where it is made instead of
poisoning a whole batch at the cloud.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec

from coldgate.contract.diagnose import field_error, utf8_error
from coldgate.contract.downlink import Ack, Command, ConfigUpdate, MasterData, RecallList
from coldgate.contract.errors import ContractError
from coldgate.contract.items import ITEM_TYPES, Item
from coldgate.contract.topics import ACK, BATCH, COMMAND, CONFIG, MASTER, RECALL, STATUS, TopicInfo
from coldgate.contract.topics import parse_topic as _parse_topic
from coldgate.contract.uplink import Batch, Status
from coldgate.contract.version import CONTRACT_VERSION

Message = Batch | Status | Ack | ConfigUpdate | MasterData | RecallList | Command
M = TypeVar("M", bound=msgspec.Struct)

#: The message type each topic carries, keyed by topic name.
MESSAGE_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    BATCH.name: Batch,
    STATUS.name: Status,
    ACK.name: Ack,
    CONFIG.name: ConfigUpdate,
    MASTER.name: MasterData,
    RECALL.name: RecallList,
    COMMAND.name: Command,
}
TOPIC_NAMES: Final[dict[type[msgspec.Struct], str]] = {t: n for n, t in MESSAGE_TYPES.items()}

#: Refuse larger payloads before parsing: a full batch of 10 000 items is ~3 MB.
MAX_PAYLOAD_BYTES: Final = 16 * 1024 * 1024

Buffer = bytes | bytearray | memoryview | str


class _Versioned(msgspec.Struct):
    v: Any = None


_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: Final[dict[Any, msgspec.json.Decoder[Any]]] = {
    t: msgspec.json.Decoder(t) for t in (*MESSAGE_TYPES.values(), Item)
}
_VERSION_PROBE: Final = msgspec.json.Decoder(_Versioned)


def encode(msg: msgspec.Struct) -> bytes:
    """JSON bytes of any contract message or item."""
    return _ENCODER.encode(msg)


def _version_error(data: Buffer, topic: str | None) -> ContractError | None:
    """Name the version when a payload fails because it speaks another one."""
    try:
        version = _VERSION_PROBE.decode(data).v
    except (msgspec.MsgspecError, RecursionError, UnicodeError):
        return None
    if version is None or (type(version) is int and version == CONTRACT_VERSION):
        return None
    reason = f"unsupported contract version {version!r} (this build speaks {CONTRACT_VERSION})"
    return ContractError("$.v", reason, topic)


def _decode(data: Buffer, type_: Any, topic: str | None, versioned: bool) -> Any:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError("$", f"payload of {len(data)} bytes exceeds {MAX_PAYLOAD_BYTES}", topic)
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError as exc:
            raise ContractError("$", f"lone surrogate at character {exc.start}", topic) from None
    try:
        return _DECODERS[type_].decode(data)
    except msgspec.ValidationError as exc:
        error = (_version_error(data, topic) if versioned else None) or field_error(exc, bytes(data), topic)
    except msgspec.DecodeError as exc:
        # msgspec < 0.23 raised UnicodeDecodeError for a string that is not UTF-8; 0.23
        # raises DecodeError without a path.  Either way the contract names the string.
        invalid_utf8 = "UTF-8" in str(exc)
        error = utf8_error(bytes(data), topic) if invalid_utf8 else ContractError.from_msgspec(exc, topic)
    except RecursionError:
        error = ContractError("$", "nested too deeply", topic)
    except UnicodeDecodeError:
        error = utf8_error(bytes(data), topic)
    raise error


def _check_route(msg: msgspec.Struct, info: TopicInfo, topic: str) -> None:
    for field in ("site", "gateway"):
        value = getattr(msg, field, None)
        expected = getattr(info, field)
        if value is not None and value != expected:
            reason = f"{field} {value!r} does not match the topic's {field} {expected!r}"
            raise ContractError(f"$.{field}", reason, topic)


def decode(data: Buffer, type_: type[M], topic: str | None = None) -> M:
    """Decode one message of ``type_``; with ``topic``, also check it belongs there.

    Raises ``ContractError`` (and nothing else) for any payload that does not
    follow the contract; ``.path`` names the field, ``.topic`` the topic.
    """
    if type_ not in TOPIC_NAMES:
        raise TypeError(f"{type_!r} is not a contract message type")
    if topic is not None:
        info = _parse_topic(topic)
        if MESSAGE_TYPES[info.name] is not type_:
            raise ContractError("$", f"topic carries {info.name}, not {type_.__name__}", topic)
    msg: M = _decode(data, type_, topic, versioned=True)
    if topic is not None:
        _check_route(msg, info, topic)
    return msg


def decode_topic(topic: str, data: Buffer) -> tuple[TopicInfo, Message]:
    """Decode whatever ``topic`` carries: the one entry point ingest needs."""
    info = _parse_topic(topic)
    msg: Message = decode(data, MESSAGE_TYPES[info.name], topic)  # type: ignore[assignment]
    return info, msg


def decode_item(data: Buffer) -> Item:
    """Decode one item on its own (as the outbox stores them)."""
    return _decode(data, Item, None, versioned=False)  # type: ignore[no-any-return]


def validate(msg: M) -> M:
    """Check every constraint of a message or item built in code; raise ``ContractError``."""
    try:
        data = encode(msg)
    except UnicodeEncodeError as exc:  # a lone surrogate in some string
        raise ContractError("$", f"a string cannot be encoded as UTF-8: {exc.reason}") from None
    if isinstance(msg, ITEM_TYPES):
        return decode_item(data)  # type: ignore[return-value]
    return decode(data, type(msg))


def decode_batch(data: Buffer, topic: str | None = None) -> Batch:
    return decode(data, Batch, topic)


def decode_status(data: Buffer, topic: str | None = None) -> Status:
    return decode(data, Status, topic)


def decode_ack(data: Buffer, topic: str | None = None) -> Ack:
    return decode(data, Ack, topic)


def decode_config(data: Buffer, topic: str | None = None) -> ConfigUpdate:
    return decode(data, ConfigUpdate, topic)


def decode_master(data: Buffer, topic: str | None = None) -> MasterData:
    return decode(data, MasterData, topic)


def decode_recall(data: Buffer, topic: str | None = None) -> RecallList:
    return decode(data, RecallList, topic)


def decode_command(data: Buffer, topic: str | None = None) -> Command:
    return decode(data, Command, topic)
