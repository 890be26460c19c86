"""Delivering one queued notification through Apprise: e-mail over SMTP to ``[notify] smtp_host``, and any
Apprise URL in ``[notify] webhook_urls`` (``json://`` webhooks, chat, SMS gateways).

Why Apprise: one well-kept library speaks SMTP (STARTTLS, implicit TLS, login) and some hundred chat, SMS
and webhook services by URL, so a site adds Teams or an SMS gateway by configuration, not by code.

Each delivery is one plugin instance and one call in the calling thread (no Apprise thread pool, so the
queue knows exactly which notification each answer is for), with Apprise's warnings captured as the
attempt's error text.  An e-mail's Message-ID is the notification's own (``<id@domain-of-mail_from>``), the
same on every retry, so a message the server accepted but whose acceptance the queue failed to record is
recognisable as the same message by the receiving side; webhooks carry the id in the JSON body
(``notification``) and an ``X-Coldgate-Notification`` header.  Apprise 2.2 makes the Message-ID itself
(``email.utils.make_msgid`` in its e-mail plugin); :func:`_message_id` puts ours in its place for the call.

Apprise is imported at the first delivery, not with this module: the scheduler imports this module in every
cloud process, and Apprise brings requests, Markdown and YAML along.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Final
from urllib.parse import quote, urlencode

from coldgate.cloud.config import NotifyConfig

__all__ = ["Delivery", "Sender"]

log = logging.getLogger(__name__)

_MODES: Final = {"starttls": "starttls", "tls": "ssl", "none": "insecure"}
_WANTED_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("coldgate_message_id", default=None)


@functools.cache
def _apprise() -> ModuleType:
    """Apprise, with its e-mail plugin's Message-ID maker answering ours while :func:`_message_id` is on."""
    with warnings.catch_warnings():
        # apprise 2.2's PGP support imports imghdr (deprecated in Python 3.11, removed in 3.13).
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        import apprise
        from apprise.plugins.email import base as email_base
    theirs: Callable[..., str] = email_base.make_msgid

    def make_msgid(*args: Any, **kwargs: Any) -> str:
        wanted = _WANTED_ID.get()
        return wanted if wanted is not None else theirs(*args, **kwargs)

    email_base.make_msgid = make_msgid  # type: ignore[attr-defined]
    return apprise


@contextlib.contextmanager
def _message_id(value: str) -> Iterator[None]:
    token = _WANTED_ID.set(value)
    try:
        yield
    finally:
        _WANTED_ID.reset(token)


class Delivery:
    """What :meth:`Sender.send` needs of a queued notification (the row's columns)."""

    __slots__ = ("address", "body", "case_id", "channel", "id", "message_id", "recipient", "subject")

    def __init__(self, row: Any) -> None:
        self.id: str = row.id
        self.case_id: str = row.case_id
        self.channel: str = row.channel
        self.recipient: str = row.recipient
        self.address: str | None = row.address
        self.subject: str = row.subject
        self.body: str = row.body
        self.message_id: str = row.message_id


class Sender:
    """The configured channels; :meth:`send` returns None once the server accepted the message, else
    the error text (to be recorded, and retried later)."""

    def __init__(self, config: NotifyConfig) -> None:
        self._config = config
        self._password: str | None = None
        if config.smtp_password_file is not None:
            self._password = Path(config.smtp_password_file).read_text(encoding="utf-8").strip()

    @property
    def email_on(self) -> bool:
        return self._config.smtp_host is not None

    def _email_url(self, to: str) -> str:
        c = self._config
        auth = ""
        if c.smtp_login is not None:
            auth = quote(c.smtp_login, safe="")
            if self._password is not None:
                auth += ":" + quote(self._password, safe="")
            auth += "@"
        mode = _MODES[c.smtp_security]
        query = urlencode({"smtp": c.smtp_host, "from": c.mail_from, "to": to, "mode": mode, "format": "text",
                           "cto": "5", "rto": "15"})  # fmt: skip
        return f"mailto://{auth}{c.smtp_host}:{c.smtp_port}?{query}"

    def _webhook_url(self, index: int, delivery: Delivery) -> str:
        url = self._config.webhook_urls[index]
        extra = urlencode({"+X-Coldgate-Notification": delivery.id, ":notification": delivery.id,
                           ":case": delivery.case_id})  # fmt: skip
        return f"{url}{'&' if '?' in url else '?'}{extra}"

    def send(self, delivery: Delivery) -> str | None:
        if delivery.channel == "email":
            if self._config.smtp_host is None:
                return "e-mail is not configured ([notify] smtp_host is unset)"
            if not delivery.address:
                return "the recipient has no e-mail address"
            url = self._email_url(delivery.address)
        elif delivery.channel == "webhook":
            index = int(delivery.recipient.rsplit("-", 1)[-1])
            if index >= len(self._config.webhook_urls):
                return f"no webhook {delivery.recipient} in [notify] webhook_urls any more"
            url = self._webhook_url(index, delivery)
        else:
            return f"unknown channel {delivery.channel!r}"
        return self._notify(url, delivery)

    def _notify(self, url: str, delivery: Delivery) -> str | None:
        apprise = _apprise()
        with apprise.LogCapture(level=logging.WARNING) as captured:
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
            if plugin is None:
                return f"Apprise cannot use the {delivery.channel} URL (check [notify])"
            try:
                with _message_id(delivery.message_id):
                    ok = plugin.notify(body=delivery.body, title=delivery.subject)
            except Exception as error:  # a plugin's own bug must not stop the queue
                return f"{type(error).__name__}: {error}"[:2000]
            said = captured.getvalue().strip()  # type: ignore[union-attr]
        if ok:
            return None
        return (said or "the server did not accept the message")[:2000]
