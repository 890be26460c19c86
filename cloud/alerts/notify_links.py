"""Signed acknowledge links in notifications: who a link was sent to, checked without a database.

A message about a QA case carries ``{base_url}/dashboard/cases/{case_id}?ack={token}``.  The token says which
recipient (user id) it was sent to, at which escalation level, and until when it works, and carries an
HMAC-SHA256 over those and the case id under a secret only the cloud holds (``[notify]
link_secret_file``, or a key made once and kept in the database: ``notify_queue.link_secret``).  So the
case page can tell, from the link alone, that this person was sent this case, and refuse a link that was
altered, made for another case, or has expired.  The link does not sign anyone in: the page still asks
the person to sign in (or re-authenticate) before the acknowledgement is recorded; the token only says
whose link it was, for the audit trail and to catch a forwarded message.

Why stdlib ``hmac`` and not a JWT library: the token has four fields and one key; ``hmac.compare_digest``
and base64 are all it takes, and there is no algorithm field an attacker could choose.

Token layout (text, URL-safe): ``v1.{user_id}.{level}.{expires_epoch_s}.{mac}`` where ``mac`` is the
unpadded base64url of HMAC-SHA256(secret, ``"v1|" case_id "|" user_id "|" level "|" expires``).  Pure.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
from typing import Final, Literal, NamedTuple
from urllib.parse import quote

__all__ = ["LinkRefusal", "ack_link", "check_link", "make_token"]

VERSION: Final = "v1"
_USER: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_MAC: Final = re.compile(r"[A-Za-z0-9_-]{43}\Z")
#: Secrets shorter than this are refused: an HMAC key should be as long as its output.
MIN_SECRET_BYTES: Final = 32


class LinkRefusal(NamedTuple):
    """Why a link is not taken: ``malformed`` (not a token of ours), ``forged`` (the signature does not
    match this case, recipient, level and expiry), or ``expired``."""

    kind: Literal["malformed", "forged", "expired"]
    message: str


def _mac(secret: bytes, case_id: str, user_id: str, level: int, expires: int) -> str:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the link secret has {len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed")
    signed = f"{VERSION}|{case_id}|{user_id}|{level}|{expires}".encode()
    digest = hmac.new(secret, signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def make_token(secret: bytes, case_id: str, user_id: str, level: int, expires: datetime.datetime) -> str:
    """The ``ack`` token for ``user_id`` told of ``case_id`` at ``level``, working until ``expires``."""
    if not _USER.match(user_id):
        raise ValueError(f"user id {user_id!r}: letters, digits, '_' and '-' only")
    when = int(expires.timestamp())
    return f"{VERSION}.{user_id}.{level}.{when}.{_mac(secret, case_id, user_id, level, when)}"


def ack_link(base_url: str, case_id: str, token: str | None) -> str:
    """The case page's address, with the acknowledge token when there is one (a webhook's has none)."""
    page = f"{base_url.rstrip('/')}/dashboard/cases/{quote(case_id, safe='')}"
    return page if token is None else f"{page}?ack={token}"


def check_link(token: str, case_id: str, now: datetime.datetime, secret: bytes) -> str | LinkRefusal:
    """The user id the link for ``case_id`` was sent to, or why it is refused.  Constant-time comparison;
    the expiry is checked after the signature, so an altered expiry reads as forged."""
    parts = token.split(".") if len(token) <= 200 else []
    if len(parts) != 5 or parts[0] != VERSION:
        return LinkRefusal("malformed", "not an acknowledge link of this cloud")
    _, user_id, level_text, expires_text, mac = parts
    if not (_USER.match(user_id) and level_text.isdigit() and expires_text.isdigit() and _MAC.match(mac)):
        return LinkRefusal("malformed", "not an acknowledge link of this cloud")
    level, expires = int(level_text), int(expires_text)
    if not hmac.compare_digest(mac, _mac(secret, case_id, user_id, level, expires)):
        return LinkRefusal("forged", "the link was not made for this case by this cloud")
    if now.timestamp() >= expires:
        ended = datetime.datetime.fromtimestamp(expires, datetime.UTC).isoformat()
        return LinkRefusal("expired", f"the link expired at {ended}; open the case from the case list")
    return user_id
