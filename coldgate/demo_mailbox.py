"""The demo's mailbox: a local SMTP server (aiosmtpd) that the cloud's QA notifications are sent to, so a
newcomer sees the e-mail QA would get (who, the subject, the acknowledge link) without a mail server.

Every message is kept as an ``.eml`` file in the demo's folder (open it in any mail program) and
announced on the screen as a ``MAIL`` line.  It accepts any recipient and asks no login: it listens on
127.0.0.1 only, on a free port the demo gives the cloud's ``[notify] smtp_port``.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from pathlib import Path
from typing import Any

__all__ = ["DemoMailbox"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoMailbox:
    """``start()``, then ``take()`` the screen's lines for what arrived since; ``stop()`` at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self._lines: list[str] = []
        self._count = 0
        self._lock = threading.Lock()
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook: keep the message, note it for the screen."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        link = next((w for w in text.split() if "?ack=" in w), "")
        with self._lock:
            self._count += 1
            path = self.folder / f"mail-{self._count:04d}.eml"
            path.write_bytes(envelope.content)
            to = ", ".join(envelope.rcpt_tos)
            self._lines.append(f"  MAIL  to {to}: {message['Subject']}")
            if link:
                self._lines.append(f"        acknowledge link: {link}")
        return "250 Message accepted for delivery"

    def start(self) -> DemoMailbox:
        from aiosmtpd.controller import Controller

        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def take(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
