"""``gateway.systemd_notify`` against a real unix datagram socket, as systemd binds it."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coldgate.gateway.systemd_notify import Notifier, socket_address, watchdog_period_s


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2)
    with sock:
        yield str(tmp_path / "notify"), sock


def test_each_state_is_one_datagram_of_key_value_lines(path_socket: tuple[str, socket.socket]) -> None:
    address, sock = path_socket
    notifier = Notifier(address)
    assert notifier.enabled
    assert notifier.ready("polling 1 sensors on 1 lines, outbox 0 unacked")
    assert sock.recv(4096) == b"READY=1\nSTATUS=polling 1 sensors on 1 lines, outbox 0 unacked"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("outbox 3 unacked")
    assert sock.recv(4096) == b"STATUS=outbox 3 unacked"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_an_abstract_socket_name_starts_with_an_at_sign() -> None:
    name = f"coldgate-test-{uuid.uuid4().hex}"
    assert socket_address(f"@{name}") == b"\0" + name.encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        assert Notifier(f"@{name}").watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_notify_socket_every_call_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.ready("x") and not notifier.watchdog() and not notifier.stopping()


def test_notify_socket_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, path_socket: tuple[str, socket.socket]
) -> None:
    address, sock = path_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert Notifier().ready()
    assert sock.recv(4096) == b"READY=1"


def test_a_socket_gone_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens"))
    assert not notifier.watchdog()
    assert not notifier.watchdog()
    assert [r.levelname for r in caplog.records if "cannot notify systemd" in r.message] == ["WARNING"]


def test_the_watchdog_period_is_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_period_s({}) is None
    assert watchdog_period_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_period_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0
    # Inherited by a child from a parent systemd watches: not ours to pet.
    assert watchdog_period_s({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_period_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_period_s({"WATCHDOG_USEC": "soon"}) is None


def test_a_systemd_that_does_not_read_never_blocks_the_sender(path_socket: tuple[str, socket.socket]) -> None:
    """A unix datagram socket blocks its sender once the receiver's queue is full (10 by default):
    the gateway's event loop must not stall behind a busy systemd; the surplus is dropped."""
    address, sock = path_socket
    notifier = Notifier(address)
    started = time.monotonic()
    sent = [notifier.watchdog() for _ in range(500)]
    assert time.monotonic() - started < 1.0
    assert sent[0] and not sent[-1]
    sock.setblocking(False)
    assert sock.recv(4096) == b"WATCHDOG=1"
