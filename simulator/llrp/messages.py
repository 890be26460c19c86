"""LLRP 1.0.1 binary messages: the few a reader sends, and just enough parsing of what a client sends.

sllurp can decode reader→client messages and encode client→reader ones, never the
reverse, so the simulated reader packs its own frames here.  Layout (LLRP 1.0.1 §15):

* message header, 10 bytes: 3 reserved bits, 3-bit version, 10-bit type, u32 length of
  the whole message, u32 message id;
* TLV parameter: 6 reserved bits + 10-bit type, u16 length (header included), payload;
* TV parameter: 1 bit set + 7-bit type, fixed-size payload known from the type alone.

Everything is big-endian.  Parsing errors raise :class:`LlrpDecodeError` naming what was
wrong and where, so the reader can put that text into the ``LLRPStatus`` it answers with.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum

LLRP_VERSION = 1
HEADER = struct.Struct("!HII")
HEADER_LEN = HEADER.size
# No LLRP message we accept is anywhere near this; a bigger length is a garbled header,
# and trusting it would make the reader buffer a stranger's megabytes.
MAX_MESSAGE_LEN = 1 << 20


class MessageType(IntEnum):
    """LLRP 1.0.1 message types (§16.1) the simulated reader sends or understands."""

    GET_READER_CAPABILITIES = 1
    GET_READER_CONFIG = 2
    SET_READER_CONFIG = 3
    CLOSE_CONNECTION_RESPONSE = 4
    GET_READER_CAPABILITIES_RESPONSE = 11
    GET_READER_CONFIG_RESPONSE = 12
    SET_READER_CONFIG_RESPONSE = 13
    CLOSE_CONNECTION = 14
    ADD_ROSPEC = 20
    DELETE_ROSPEC = 21
    START_ROSPEC = 22
    STOP_ROSPEC = 23
    ENABLE_ROSPEC = 24
    DISABLE_ROSPEC = 25
    GET_ROSPECS = 26
    ADD_ROSPEC_RESPONSE = 30
    DELETE_ROSPEC_RESPONSE = 31
    START_ROSPEC_RESPONSE = 32
    STOP_ROSPEC_RESPONSE = 33
    ENABLE_ROSPEC_RESPONSE = 34
    DISABLE_ROSPEC_RESPONSE = 35
    ADD_ACCESSSPEC = 40
    DELETE_ACCESSSPEC = 41
    ENABLE_ACCESSSPEC = 42
    DISABLE_ACCESSSPEC = 43
    ADD_ACCESSSPEC_RESPONSE = 50
    DELETE_ACCESSSPEC_RESPONSE = 51
    ENABLE_ACCESSSPEC_RESPONSE = 52
    DISABLE_ACCESSSPEC_RESPONSE = 53
    GET_REPORT = 60
    RO_ACCESS_REPORT = 61
    KEEPALIVE = 62
    READER_EVENT_NOTIFICATION = 63
    ENABLE_EVENTS_AND_REPORTS = 64
    KEEPALIVE_ACK = 72
    ERROR_MESSAGE = 100


class ParamType(IntEnum):
    """TLV parameter types (§16.2) used here."""

    UTC_TIMESTAMP = 128
    ROSPEC = 177
    RO_BOUNDARY_SPEC = 178
    ROSPEC_START_TRIGGER = 179
    IDENTIFICATION = 218
    KEEPALIVE_SPEC = 220
    TAG_REPORT_DATA = 240
    EPC_DATA = 241
    READER_EVENT_NOTIFICATION_DATA = 246
    CONNECTION_ATTEMPT_EVENT = 256
    LLRP_STATUS = 287


class TvType(IntEnum):
    """TV-encoded parameter types (§16.2.7.3) that can appear in a TagReportData."""

    ANTENNA_ID = 1
    FIRST_SEEN_UTC = 2
    FIRST_SEEN_UPTIME = 3
    LAST_SEEN_UTC = 4
    LAST_SEEN_UPTIME = 5
    PEAK_RSSI = 6
    CHANNEL_INDEX = 7
    TAG_SEEN_COUNT = 8
    ROSPEC_ID = 9
    INVENTORY_PARAMETER_SPEC_ID = 10
    C1G2_CRC = 11
    C1G2_PC = 12
    EPC_96 = 13
    SPEC_INDEX = 14
    CLIENT_REQUEST_OPSPEC_RESULT = 15
    ACCESSSPEC_ID = 16
    OPSPEC_ID = 17
    C1G2_SINGULATION_DETAILS = 18


# Payload size of each TV parameter: the type alone tells a parser how far to skip.
TV_SIZES: dict[int, int] = {
    TvType.ANTENNA_ID: 2,
    TvType.FIRST_SEEN_UTC: 8,
    TvType.FIRST_SEEN_UPTIME: 8,
    TvType.LAST_SEEN_UTC: 8,
    TvType.LAST_SEEN_UPTIME: 8,
    TvType.PEAK_RSSI: 1,
    TvType.CHANNEL_INDEX: 2,
    TvType.TAG_SEEN_COUNT: 2,
    TvType.ROSPEC_ID: 4,
    TvType.INVENTORY_PARAMETER_SPEC_ID: 2,
    TvType.C1G2_CRC: 2,
    TvType.C1G2_PC: 2,
    TvType.EPC_96: 12,
    TvType.SPEC_INDEX: 2,
    TvType.CLIENT_REQUEST_OPSPEC_RESULT: 2,
    TvType.ACCESSSPEC_ID: 4,
    TvType.OPSPEC_ID: 2,
    TvType.C1G2_SINGULATION_DETAILS: 4,
}


class StatusCode(IntEnum):
    """LLRPStatus codes (§16.2.8.1) the reader answers with."""

    SUCCESS = 0
    PARAMETER_ERROR = 100
    FIELD_ERROR = 101
    UNSUPPORTED_MESSAGE = 109
    UNSUPPORTED_VERSION = 110
    A_INVALID = 300


class ConnectionStatus(IntEnum):
    """ConnectionAttemptEvent status (§16.2.7.6.10)."""

    SUCCESS = 0
    FAILED_READER_CONNECTION_EXISTS = 1
    FAILED_CLIENT_CONNECTION_EXISTS = 2
    FAILED_OTHER = 3
    ANOTHER_CONNECTION_ATTEMPTED = 4


class LlrpDecodeError(ValueError):
    """A frame or parameter that does not follow the LLRP layout; the text says what and where."""


@dataclass(frozen=True, slots=True)
class Header:
    """The 10-byte header every LLRP message starts with."""

    version: int
    type: int
    length: int
    message_id: int


@dataclass(frozen=True, slots=True)
class Parameter:
    """One TLV or TV parameter: its type, its payload (header stripped) and where it sat."""

    type: int
    payload: bytes
    tv: bool
    offset: int


def unpack_header(data: bytes) -> Header:
    """Read a message header; raises if fewer than 10 bytes or the length cannot be a message."""
    if len(data) < HEADER_LEN:
        raise LlrpDecodeError(f"message header needs {HEADER_LEN} bytes, got {len(data)}")
    first, length, message_id = HEADER.unpack_from(data)
    header = Header((first >> 10) & 0x7, first & 0x3FF, length, message_id)
    if not HEADER_LEN <= length <= MAX_MESSAGE_LEN:
        raise LlrpDecodeError(
            f"message type {header.type} id {message_id}: length field {length} is outside "
            f"{HEADER_LEN}..{MAX_MESSAGE_LEN}"
        )
    return header


def pack_message(msg_type: int, message_id: int, body: bytes = b"", version: int = LLRP_VERSION) -> bytes:
    """Frame ``body`` as one LLRP message."""
    return (
        HEADER.pack(((version & 0x7) << 10) | (msg_type & 0x3FF), HEADER_LEN + len(body), message_id) + body
    )


def rewrite_message_id(message: bytes, message_id: int) -> bytes:
    """The same message with another id: a response must carry its request's id."""
    return message[:6] + struct.pack("!I", message_id) + message[HEADER_LEN:]


def split_messages(data: bytes) -> list[bytes]:
    """Cut a capture of back-to-back messages into single messages, checking every length."""
    messages: list[bytes] = []
    offset = 0
    while offset < len(data):
        header = unpack_header(data[offset:])
        if offset + header.length > len(data):
            raise LlrpDecodeError(
                f"message at byte {offset} claims {header.length} bytes, only {len(data) - offset} left"
            )
        messages.append(data[offset : offset + header.length])
        offset += header.length
    return messages


def pack_tlv(param_type: int, payload: bytes = b"") -> bytes:
    """One TLV parameter (length covers its 4-byte header too)."""
    return struct.pack("!HH", param_type & 0x3FF, 4 + len(payload)) + payload


def pack_tv(param_type: int, payload: bytes) -> bytes:
    """One TV parameter; the payload size is fixed by the type."""
    if len(payload) != TV_SIZES[param_type]:
        raise ValueError(f"TV type {param_type} takes {TV_SIZES[param_type]} bytes, got {len(payload)}")
    return bytes([0x80 | param_type]) + payload


def iter_parameters(data: bytes, base_offset: int = 0) -> Iterator[Parameter]:
    """Walk a run of TV/TLV parameters, refusing any that overrun or cannot be sized."""
    offset = 0
    while offset < len(data):
        where = base_offset + offset
        if data[offset] & 0x80:
            tv_type = data[offset] & 0x7F
            size = TV_SIZES.get(tv_type)
            if size is None:
                raise LlrpDecodeError(f"unknown TV parameter type {tv_type} at byte {where}")
            if offset + 1 + size > len(data):
                raise LlrpDecodeError(f"TV parameter type {tv_type} at byte {where} is cut short")
            yield Parameter(tv_type, data[offset + 1 : offset + 1 + size], True, where)
            offset += 1 + size
            continue
        if offset + 4 > len(data):
            raise LlrpDecodeError(
                f"{len(data) - offset} stray bytes at byte {where}, too few for a parameter"
            )
        type_field, length = struct.unpack_from("!HH", data, offset)
        param_type = type_field & 0x3FF
        if length < 4 or offset + length > len(data):
            raise LlrpDecodeError(
                f"parameter type {param_type} at byte {where}: length {length} does not fit "
                f"the {len(data) - offset} bytes left"
            )
        yield Parameter(param_type, data[offset + 4 : offset + length], False, where)
        offset += length


def find_parameter(data: bytes, param_type: int) -> Parameter | None:
    """The first TLV parameter of ``param_type`` among ``data``'s parameters (one level deep)."""
    for parameter in iter_parameters(data):
        if not parameter.tv and parameter.type == param_type:
            return parameter
    return None


def pack_status(code: int = StatusCode.SUCCESS, description: str = "") -> bytes:
    """An LLRPStatus parameter; a non-empty description tells the client what went wrong."""
    text = description.encode("utf-8")
    return pack_tlv(ParamType.LLRP_STATUS, struct.pack("!HH", code, len(text)) + text)


def unpack_status(data: bytes) -> tuple[int, str]:
    """Code and description of the LLRPStatus among a message body's parameters."""
    parameter = find_parameter(data, ParamType.LLRP_STATUS)
    if parameter is None:
        raise LlrpDecodeError("no LLRPStatus parameter")
    code, length = struct.unpack_from("!HH", parameter.payload)
    return code, parameter.payload[4 : 4 + length].decode("utf-8", "replace")


def connection_event(status: int, timestamp_us: int, message_id: int = 0) -> bytes:
    """READER_EVENT_NOTIFICATION with a ConnectionAttemptEvent: sllurp waits for Success first."""
    data = pack_tlv(ParamType.UTC_TIMESTAMP, struct.pack("!Q", timestamp_us)) + pack_tlv(
        ParamType.CONNECTION_ATTEMPT_EVENT, struct.pack("!H", status)
    )
    body = pack_tlv(ParamType.READER_EVENT_NOTIFICATION_DATA, data)
    return pack_message(MessageType.READER_EVENT_NOTIFICATION, message_id, body)


@dataclass(frozen=True, slots=True)
class TagRead:
    """One TagReportData: what a client's tag report callback gets, one tag, one antenna.

    Optional fields are ``None`` when the reader left them out (the captured Impinj reports
    carry no LastSeenTimestampUTC); packing omits them, so a capture repacks byte for byte.
    """

    epc: bytes
    antenna: int | None = None
    peak_rssi: int | None = None
    first_seen_us: int | None = None
    last_seen_us: int | None = None
    seen_count: int | None = None
    rospec_id: int | None = None

    @property
    def epc_hex(self) -> str:
        """The EPC as sllurp reports it (lowercase hex)."""
        return self.epc.hex()


@dataclass(frozen=True, slots=True)
class RoAccessReport:
    """One RO_ACCESS_REPORT message: its id and its tag reads, in order."""

    message_id: int
    tags: tuple[TagRead, ...]
    version: int = LLRP_VERSION


def pack_tag_report_data(tag: TagRead) -> bytes:
    """A TagReportData parameter, sub-parameters in the order §16.2.7.3 lists them."""
    if len(tag.epc) == 12:
        data = pack_tv(TvType.EPC_96, tag.epc)
    else:  # any other EPC length goes in an EPCData parameter (bit count first)
        data = pack_tlv(ParamType.EPC_DATA, struct.pack("!H", len(tag.epc) * 8) + tag.epc)
    if tag.rospec_id is not None:
        data += pack_tv(TvType.ROSPEC_ID, struct.pack("!I", tag.rospec_id))
    if tag.antenna is not None:
        data += pack_tv(TvType.ANTENNA_ID, struct.pack("!H", tag.antenna))
    if tag.peak_rssi is not None:
        data += pack_tv(TvType.PEAK_RSSI, struct.pack("!b", tag.peak_rssi))
    if tag.first_seen_us is not None:
        data += pack_tv(TvType.FIRST_SEEN_UTC, struct.pack("!Q", tag.first_seen_us))
    if tag.last_seen_us is not None:
        data += pack_tv(TvType.LAST_SEEN_UTC, struct.pack("!Q", tag.last_seen_us))
    if tag.seen_count is not None:
        data += pack_tv(TvType.TAG_SEEN_COUNT, struct.pack("!H", tag.seen_count))
    return pack_tlv(ParamType.TAG_REPORT_DATA, data)


def pack_ro_access_report(report: RoAccessReport) -> bytes:
    """An RO_ACCESS_REPORT message carrying one TagReportData per read."""
    body = b"".join(pack_tag_report_data(tag) for tag in report.tags)
    return pack_message(MessageType.RO_ACCESS_REPORT, report.message_id, body, report.version)


def unpack_tag_report_data(data: bytes, base_offset: int = 0) -> TagRead:
    """A TagReportData payload back into a :class:`TagRead` (fields this reader never sets are skipped)."""
    fields: dict[str, int | bytes] = {}
    for parameter in iter_parameters(data, base_offset):
        payload = parameter.payload
        if parameter.tv:
            if parameter.type == TvType.EPC_96:
                fields["epc"] = payload
            elif parameter.type == TvType.ANTENNA_ID:
                fields["antenna"] = struct.unpack("!H", payload)[0]
            elif parameter.type == TvType.PEAK_RSSI:
                fields["peak_rssi"] = struct.unpack("!b", payload)[0]
            elif parameter.type == TvType.FIRST_SEEN_UTC:
                fields["first_seen_us"] = struct.unpack("!Q", payload)[0]
            elif parameter.type == TvType.LAST_SEEN_UTC:
                fields["last_seen_us"] = struct.unpack("!Q", payload)[0]
            elif parameter.type == TvType.TAG_SEEN_COUNT:
                fields["seen_count"] = struct.unpack("!H", payload)[0]
            elif parameter.type == TvType.ROSPEC_ID:
                fields["rospec_id"] = struct.unpack("!I", payload)[0]
        elif parameter.type == ParamType.EPC_DATA:
            if len(payload) < 2:
                raise LlrpDecodeError(f"EPCData at byte {parameter.offset} has no bit count")
            bits = struct.unpack_from("!H", payload)[0]
            fields["epc"] = payload[2 : 2 + (bits + 7) // 8]
    if "epc" not in fields:
        raise LlrpDecodeError(f"TagReportData at byte {base_offset} carries no EPC")
    return TagRead(**fields)  # type: ignore[arg-type]


def unpack_ro_access_report(message: bytes) -> RoAccessReport:
    """An RO_ACCESS_REPORT message into its id and tag reads."""
    header = unpack_header(message)
    if header.type != MessageType.RO_ACCESS_REPORT:
        raise LlrpDecodeError(f"message type {header.type} is not RO_ACCESS_REPORT")
    if header.length != len(message):
        raise LlrpDecodeError(f"RO_ACCESS_REPORT says {header.length} bytes, got {len(message)}")
    tags = [
        unpack_tag_report_data(parameter.payload, parameter.offset + 4)
        for parameter in iter_parameters(message[HEADER_LEN:], HEADER_LEN)
        if not parameter.tv and parameter.type == ParamType.TAG_REPORT_DATA
    ]
    return RoAccessReport(header.message_id, tuple(tags), header.version)


def unpack_reports(data: bytes) -> list[RoAccessReport]:
    """Every RO_ACCESS_REPORT in a capture of back-to-back messages."""
    return [unpack_ro_access_report(message) for message in split_messages(data)]


def tag_reads(reports: Sequence[RoAccessReport]) -> list[TagRead]:
    """All tag reads of ``reports``, flattened in order."""
    return [tag for report in reports for tag in report.tags]
