"""The simulated LLRP reader against sllurp's real client over TCP on loopback.

The gateway reads dock portals through sllurp, so the simulator's reader is only useful
if sllurp's own client connects, configures and receives exactly the tag reads we put in,
and if its frames match what a real Impinj reader sent (the captured fixture).
"""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from coldgate.gateway.readers.llrp_source import TAG_CONTENT
from coldgate.simulator.llrp.messages import (
    HEADER_LEN,
    MessageType,
    StatusCode,
    TagRead,
    pack_message,
    pack_ro_access_report,
    split_messages,
    tag_reads,
    unpack_header,
    unpack_reports,
    unpack_status,
)
from coldgate.simulator.llrp.reader import (
    REPORTS_FILE,
    FixtureReplay,
    LlrpReader,
    LlrpReaderThread,
    TupleReads,
    fixture_path,
)

sllurp_llrp = pytest.importorskip("sllurp.llrp", reason="the LLRP tests need the [gateway] extra (sllurp)")
LLRPMessage = sllurp_llrp.LLRPMessage
LLRPReaderClient = sllurp_llrp.LLRPReaderClient
LLRPReaderConfig = sllurp_llrp.LLRPReaderConfig

pytestmark = pytest.mark.timeout(30)

REPO = Path(__file__).resolve().parents[1]


def _key(tag: dict) -> tuple:
    """A sllurp tag report reduced to what the reader put in it."""
    return (
        tag["EPC"].decode(),
        tag.get("AntennaID"),
        tag.get("PeakRSSI"),
        tag.get("FirstSeenTimestampUTC"),
        tag.get("LastSeenTimestampUTC"),
        tag.get("TagSeenCount"),
    )


def _expected(read: TagRead) -> tuple:
    return (
        read.epc_hex,
        read.antenna,
        read.peak_rssi,
        read.first_seen_us,
        read.last_seen_us,
        read.seen_count,
    )


class Client:
    """A sllurp LLRPReaderClient that collects tag reports and notices a lost connection."""

    def __init__(self, port: int, **config: object) -> None:
        settings = {
            "antennas": [1, 2],
            "tx_power": 0,
            "report_every_n_tags": 1,
            "tag_content_selector": TAG_CONTENT,  # what the gateway asks its readers for
            "start_inventory": True,
            "reconnect": False,
        } | config
        self.client = LLRPReaderClient("127.0.0.1", port, LLRPReaderConfig(settings), timeout=5.0)
        self.tags: list[dict] = []
        self.lock = threading.Lock()
        self.disconnected = threading.Event()
        self.client.add_tag_report_callback(self._on_tags)
        self.client.add_disconnected_callback(lambda _reader: self.disconnected.set())

    def _on_tags(self, _reader: object, tags: list[dict]) -> None:
        with self.lock:
            self.tags.extend(tags)

    def __enter__(self) -> Client:
        self.client.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.disconnected.is_set():
            self.client.disconnect()
        self.client.join(3)
        if self.client.is_alive():
            # sllurp's disconnect() sends DELETE_ACCESSSPEC before registering the callback for
            # its response, from the caller's thread; on loopback the response can win that race
            # and the polite stop never completes.  Not the reader's fault: cut the socket.
            self.client.hard_disconnect()
            self.client.join(3)
        assert not self.client.is_alive(), "sllurp client thread did not stop"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.tags) >= count:
                    return list(self.tags)
            time.sleep(0.01)
        raise AssertionError(f"got {len(self.tags)} tag reports, expected {count}")


def _generated_reads(n: int, start_ms: int = 1_760_000_000_000) -> list[tuple[int, int, str, float, int]]:
    """A pallet-like pass: 50 cases, each seen a few times on one of two antennas, RSSI in 0.1 dB."""
    return [
        (start_ms + 7 * i, 1 + i % 2, f"30340242201d8840{i % 50:08x}", -40.2 - i % 35, 1 + i % 5)
        for i in range(n)
    ]


@pytest.fixture
def fixture_reports():
    return unpack_reports(fixture_path(REPORTS_FILE).read_bytes())


# ------------------------------------------------------------------------------------ wire format


def test_fixture_unpacks_and_repacks_byte_for_byte(fixture_reports):
    data = fixture_path(REPORTS_FILE).read_bytes()
    assert len(fixture_reports) == 45
    assert all(len(report.tags) == 1 for report in fixture_reports)
    assert b"".join(pack_ro_access_report(report) for report in fixture_reports) == data
    # sllurp's decoder reads the same values as ours, message by message
    for message, report in zip(split_messages(data), fixture_reports, strict=True):
        decoded = LLRPMessage(msgbytes=message).msgdict["RO_ACCESS_REPORT"]
        assert [_key(tag) for tag in decoded["TagReportData"]] == [_expected(t) for t in report.tags]
        assert decoded["ID"] == report.message_id


def test_packed_reads_decode_in_sllurp():
    reads = _generated_reads(3)
    for message_id, (delay, message) in enumerate(TupleReads(reads), start=1):
        assert delay == 0
        decoded = LLRPMessage(msgbytes=message).msgdict["RO_ACCESS_REPORT"]
        assert decoded["ID"] == message_id
        ts_ms, antenna, epc, rssi, count = reads[message_id - 1]
        assert [_key(tag) for tag in decoded["TagReportData"]] == [
            (epc, antenna, round(rssi), ts_ms * 1000, ts_ms * 1000, count)
        ]


# ------------------------------------------------------------------------------------ with sllurp


def test_sllurp_receives_every_fixture_report(fixture_reports):
    with LlrpReaderThread(LlrpReader(FixtureReplay(), port=0)) as running:
        with Client(running.port, keepalive_interval=100) as client:
            tags = client.wait_for(45)
            # A few keepalives go by (and are answered), and no extra report arrives meanwhile.
            stats = running.reader.stats
            deadline = time.monotonic() + 10
            while not (stats.keepalives_sent >= 2 and stats.keepalive_acks >= 1):
                assert time.monotonic() < deadline, "no keepalive exchange"
                time.sleep(0.05)
            assert [_key(tag) for tag in client.tags] == [_expected(t) for t in tag_reads(fixture_reports)]
            assert client.client.llrp.state == sllurp_llrp.LLRPReaderState.STATE_INVENTORYING
        stats = running.reader.stats
    assert len(tags) == 45
    assert stats.reports_sent == 45 and stats.errors_sent == 0
    assert stats.keepalives_sent >= 2 and stats.keepalive_acks >= 1


def test_generated_reads_arrive_exactly():
    reads = _generated_reads(500)
    with LlrpReaderThread(LlrpReader(TupleReads(iter(reads)), port=0)) as running:
        with Client(running.port) as client:
            tags = client.wait_for(500)
            time.sleep(0.1)
            assert len(client.tags) == 500
    assert [_key(tag) for tag in tags] == [
        (epc, antenna, round(rssi), ts * 1000, ts * 1000, count) for ts, antenna, epc, rssi, count in reads
    ]


def test_paced_reads_follow_their_timestamps():
    reads = [(1_760_000_000_000 + 100 * i, 1, f"{i:024x}", -50, 1) for i in range(4)]
    with LlrpReaderThread(LlrpReader(TupleReads(reads, speed=1.0), port=0)) as running:
        with Client(running.port) as client:
            client.wait_for(1)
            started = time.monotonic()
            client.wait_for(4)
            # 300 ms of timestamps after the first read; this thread may notice the first late.
            assert time.monotonic() - started >= 0.2


def test_dropped_connection_resumes_without_loss_or_repeat():
    reads = _generated_reads(300)
    with LlrpReaderThread(LlrpReader(TupleReads(reads), port=0)) as running:
        running.drop_after(120)
        with Client(running.port) as first:
            assert first.disconnected.wait(10), "the client never saw the drop"
            received_first = list(first.tags)
        assert len(received_first) == 120
        with Client(running.port) as second:
            received_second = second.wait_for(180)
            time.sleep(0.1)
            assert len(second.tags) == 180
        assert running.reader.stats.dropped == 1 and running.reader.exhausted
    seen = Counter((tag["EPC"], tag["FirstSeenTimestampUTC"]) for tag in received_first + received_second)
    assert set(seen.values()) == {1}
    assert [_key(tag) for tag in received_first + received_second] == [
        (epc, antenna, round(rssi), ts * 1000, ts * 1000, count) for ts, antenna, epc, rssi, count in reads
    ]


def _read_message(sock: socket.socket) -> tuple[int, int, bytes]:
    header = b""
    while len(header) < HEADER_LEN:
        chunk = sock.recv(HEADER_LEN - len(header))
        if not chunk:
            raise ConnectionError("closed")
        header += chunk
    parsed = unpack_header(header)
    body = b""
    while len(body) < parsed.length - HEADER_LEN:
        body += sock.recv(parsed.length - HEADER_LEN - len(body))
    return parsed.type, parsed.message_id, body


def test_malformed_messages_get_error_message_and_server_keeps_serving(fixture_reports):
    with LlrpReaderThread(LlrpReader(FixtureReplay(), port=0)) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
            msg_type, _, _ = _read_message(sock)
            assert msg_type == MessageType.READER_EVENT_NOTIFICATION
            # unknown message type
            sock.sendall(pack_message(999, 41))
            msg_type, message_id, body = _read_message(sock)
            assert (msg_type, message_id) == (MessageType.ERROR_MESSAGE, 41)
            code, text = unpack_status(body)
            assert code == StatusCode.UNSUPPORTED_MESSAGE and "999" in text
            # a known message whose parameter overruns its body
            garbled = struct.pack("!HBHH", 0, 0, 0, 0) + struct.pack("!HH", 220, 40) + b"\x01"
            sock.sendall(pack_message(MessageType.GET_READER_CONFIG, 42, garbled))
            msg_type, message_id, body = _read_message(sock)
            assert (msg_type, message_id) == (MessageType.ERROR_MESSAGE, 42)
            code, text = unpack_status(body)
            assert code == StatusCode.PARAMETER_ERROR and "parameter type 220" in text
            # wrong version
            sock.sendall(pack_message(MessageType.KEEPALIVE_ACK, 43, version=2))
            assert _read_message(sock)[0] == MessageType.ERROR_MESSAGE
            # the connection is still good: it answers a proper request
            sock.sendall(pack_message(MessageType.ENABLE_ROSPEC, 44, struct.pack("!I", 9)))
            msg_type, message_id, body = _read_message(sock)
            assert (msg_type, message_id) == (MessageType.ENABLE_ROSPEC_RESPONSE, 44)
            assert unpack_status(body)[0] == StatusCode.A_INVALID
            decoded = LLRPMessage(msgbytes=pack_message(msg_type, message_id, body)).msgdict
            assert decoded["ENABLE_ROSPEC_RESPONSE"]["LLRPStatus"]["StatusCode"] == "A_Invalid"
            # a header whose length cannot be a message closes the connection
            sock.sendall(struct.pack("!HII", (1 << 10) | MessageType.KEEPALIVE_ACK, 4, 45))
            assert sock.recv(100) == b""
        with Client(running.port) as client:
            assert len(client.wait_for(45)) == 45
        assert running.reader.stats.errors_sent == 3


def test_second_concurrent_client_is_refused():
    with LlrpReaderThread(LlrpReader(port=0)) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as first:
            assert _read_message(first)[0] == MessageType.READER_EVENT_NOTIFICATION
            with socket.create_connection(("127.0.0.1", running.port), timeout=5) as second:
                msg_type, _, body = _read_message(second)
                event = LLRPMessage(msgbytes=pack_message(msg_type, 0, body)).msgdict
                notification = event["READER_EVENT_NOTIFICATION"]["ReaderEventNotificationData"]
                assert notification["ConnectionAttemptEvent"]["Status"].startswith("Failed (a Client")
                assert second.recv(100) == b""
            first.sendall(pack_message(MessageType.CLOSE_CONNECTION, 7))
            msg_type, message_id, body = _read_message(first)
            assert (msg_type, message_id) == (MessageType.CLOSE_CONNECTION_RESPONSE, 7)
            assert unpack_status(body)[0] == StatusCode.SUCCESS
            assert first.recv(100) == b""


def test_cli_serves_the_fixture():
    process = subprocess.Popen(
        [sys.executable, "-m", "coldgate", "sim", "llrp", "--port", "0", "--replay-fixture"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"serving llrp://127\.0\.0\.1:(\d+)", line)
        assert match, f"unexpected first line {line!r}; stderr: {process.stderr.read() if not line else ''}"
        with Client(int(match.group(1))) as client:
            assert len(client.wait_for(45)) == 45
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
