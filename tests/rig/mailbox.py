"""A local SMTP server (aiosmtpd) that keeps what it accepts, and a local HTTP receiver for JSON webhooks:
the real peers the notification tests and the bench send to.

The mailbox can be stopped and started again on the same port (a mail server down for a while), and
notes when each message was accepted (``monotonic``), which the bench measures against.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.rig.ports import free_port

__all__ = ["Accepted", "Mailbox", "WebhookReceiver"]


@dataclass(frozen=True)
class Accepted:
    """One message as the server accepted it: envelope recipients, the parsed message, when (monotonic)."""

    to: tuple[str, ...]
    message: EmailMessage
    at: float

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        return body.get_content() if body is not None else ""


@dataclass
class _Handler:
    messages: list[Accepted] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.arrived:
            self.messages.append(Accepted(tuple(envelope.rcpt_tos), parsed, time.monotonic()))  # type: ignore[arg-type]
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class Mailbox:
    """``with Mailbox() as box``: an SMTP server on 127.0.0.1:``box.port`` (no TLS, no login)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._handler = _Handler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Mailbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[Accepted]:
        with self._handler.lock:
            return list(self._handler.messages)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Accepted]:
        """The messages once at least ``count`` arrived (or whatever arrived by ``timeout``)."""
        with self._handler.arrived:
            self._handler.arrived.wait_for(lambda: len(self._handler.messages) >= count, timeout)
            return list(self._handler.messages)


class WebhookReceiver:
    """``with WebhookReceiver() as hook``: an HTTP server on 127.0.0.1 keeping each POSTed JSON body with
    its headers; ``hook.url`` is its address as an Apprise ``json://`` URL."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((dict(self.headers.items()), json.loads(self.rfile.read(length) or b"null")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/coldgate"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
