"""The gateway's local control socket: the CLI talks to the running gateway here.

Silencing the siren must work when the internet is down, so ``coldgate gateway
alarm silence`` does not go through the cloud: it connects to a Unix socket in
the gateway's data directory (mode 0660: root and the ``coldgate`` group only).
One JSON request per line, one JSON reply per line; a malformed request gets a
precise error and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024


class ControlRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    action: Literal["silence", "acknowledge", "status"]
    by: str = ""
    reason: str = ""


class ControlReply(msgspec.Struct, kw_only=True, omit_defaults=True):
    ok: bool
    error: str | None = None
    data: dict[str, Any] = {}


Handler = Callable[[ControlRequest], Awaitable[ControlReply]]


def socket_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / SOCKET_NAME


class ControlServer:
    """Serves ``handler`` on a Unix socket until ``close()``."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._closing = False
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a gateway that died
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_REQUEST)
        os.chmod(self.path, 0o660)

    async def close(self) -> None:
        """Stop listening and drop open connections: no request may reach a stopped gateway."""
        self._closing = True
        for writer in list(self._clients):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while line := await reader.readline():
                writer.write(msgspec.json.encode(await self._answer(line)) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as exc:
            log.warning("control socket: dropped a client: %s", exc)
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _answer(self, line: bytes) -> ControlReply:
        if self._closing:
            return ControlReply(ok=False, error="the gateway is stopping or reloading; try again")
        try:
            request = msgspec.json.decode(line, type=ControlRequest)
        except msgspec.DecodeError as exc:
            return ControlReply(ok=False, error=f"bad request: {exc}")
        try:
            return await self._handler(request)
        except Exception as exc:  # the socket outlives a handler bug; the log has the trace
            log.exception("control socket: %s failed", request.action)
            return ControlReply(ok=False, error=f"{request.action} failed: {type(exc).__name__}: {exc}")


def ask(path: Path, request: ControlRequest, timeout: float = 5.0) -> ControlReply:
    """Send one request to a running gateway (blocking: this is the CLI side)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionError(f"no gateway is running with control socket {path}: {exc}") from None
        sock.sendall(msgspec.json.encode(request) + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the gateway closed {path} without a reply")
            reply += chunk
    return msgspec.json.decode(reply, type=ControlReply)
