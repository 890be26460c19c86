"""Free loopback ports and waiting for a peer to listen.

Every peer in the rig gets its own port so tests never collide with the
machine's own services (Mosquitto on 1883, PostgreSQL on 5432) or each other.
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
from pathlib import Path

_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``, outside the kernel's ephemeral range.

    Several peers (Mosquitto, PostgreSQL, VictoriaMetrics) are stopped and
    started again on the same port while clients keep reconnecting.  A port
    from the ephemeral range (what ``bind(0)`` gives) can meanwhile be taken
    as the local end of any outgoing connection, and the restart then fails;
    a port below the range is never handed out that way.  Ports are not
    repeated within a session, so two peers asked for in a row never get the
    same one before either binds it.
    """
    low, _ = _ephemeral_range()
    first = max(1024, low - 12000)
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(first, low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # crowded machine: any free port
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last_error = exc
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s: {last_error}")


def wait_port_closed(host: str, port: int, timeout: float = 15.0) -> None:
    """Block until ``host:port`` refuses connections (a stopped peer has let go)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} still accepts connections after {timeout}s")


def end_server(
    proc: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout: float, host: str, port: int
) -> None:
    """Stop a server process with ``sig`` (SIGKILL after ``timeout``), then wait until its port is free,
    so a restart on the same port does not race the old socket."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    wait_port_closed(host, port)
