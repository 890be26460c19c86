"""Browser sessions: signing in gives a cookie; idle and absolute timeouts end it; signing out ends
it; every start and end is audited.

The cookie is 256 random bits and only its SHA-256 is stored, so a copy of
the database signs nobody in.  Each session has its own CSRF token, which
every form post and every unsafe request made with the cookie must echo
(``cloud/api/auth.py`` checks it): SameSite=Strict already keeps other sites'
requests from carrying the cookie, the token also covers older browsers and
a same-site page gone wrong.

``last_seen_at`` is written at most once per ``TOUCH_EVERY`` so a page that
polls every few seconds does not turn each read into a write.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.models import BrowserSession, User, UserRole
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.users import aware, iso

__all__ = [
    "TOUCH_EVERY",
    "SessionCheck",
    "SessionLimits",
    "StartedSession",
    "end_session",
    "resolve_session",
    "session_key",
    "start_session",
]

TOUCH_EVERY = datetime.timedelta(seconds=30)
_ENTITY = "session"


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """What a cookie is worth: a live session's principal and CSRF token, or why it is refused.

    Returned, not raised: a session found timed out is *ended* (and audited)
    by the check, and that must be committed even though the request fails.
    """

    principal: Principal | None = None
    csrf_token: str = ""
    refused: str | None = None


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Idle: signed out after this long without a request.  Absolute: signed out this long after
    signing in, however busy (``[identity] session_idle_minutes``, ``session_absolute_hours``)."""

    idle: datetime.timedelta = datetime.timedelta(minutes=15)
    absolute: datetime.timedelta = datetime.timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class StartedSession:
    cookie: str
    csrf_token: str
    expires_at: datetime.datetime


def session_key(cookie: str) -> str:
    """The stored key of the session behind ``cookie`` (its SHA-256): what a signature given in it
    records, never the cookie itself."""
    return hashlib.sha256(cookie.encode("utf-8", errors="replace")).hexdigest()



def start_session(
    conn: Connection, user_id: str, *, now: datetime.datetime, limits: SessionLimits,
    client: str | None = None, request_id: str | None = None,
) -> StartedSession:  # fmt: skip
    """A new session for ``user_id`` (whose login was just checked), audited as ``session.start``."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + limits.absolute
    digest = session_key(cookie)
    conn.execute(
        insert(BrowserSession).values(
            cookie_sha256=digest, user_id=user_id, csrf_token=csrf, created_at=now, last_seen_at=now,
            expires_at=expires, client=client, ended_at=None, ended_reason=None,
        )
    )  # fmt: skip
    user = conn.execute(select(User.printed_name).where(User.id == user_id)).scalar_one()
    append(conn, actor=Actor(user, user_id, request_id, client), action="session.start", entity_type=_ENTITY,
           entity_id=digest[:16], now=now, after={"expires_at": iso(expires)})  # fmt: skip
    return StartedSession(cookie, csrf, expires)


def _end(conn: Connection, row: Any, *, actor: Actor, now: datetime.datetime, reason: str) -> None:
    conn.execute(
        update(BrowserSession)
        .where(BrowserSession.cookie_sha256 == row.cookie_sha256, BrowserSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
    )
    action = "user.logout" if reason == "logout" else "session.end"
    append(conn, actor=actor, action=action, entity_type=_ENTITY, entity_id=row.cookie_sha256[:16], now=now,
           reason=reason)  # fmt: skip


def resolve_session(
    conn: Connection, cookie: str, *, now: datetime.datetime, limits: SessionLimits,
    client: str | None = None, request_id: str | None = None,
) -> SessionCheck:  # fmt: skip
    """The live session behind ``cookie``, or why not: unknown, ended before, or ending now (idle or
    absolute timeout, user disabled or locked: recorded and audited in ``conn``; commit it)."""
    key = session_key(cookie)
    row = conn.execute(select(BrowserSession).where(BrowserSession.cookie_sha256 == key)).first()
    if row is None:
        return SessionCheck(refused="unknown session: sign in again")
    if row.ended_at is not None:
        return SessionCheck(refused=f"signed out ({row.ended_reason}) at {iso(row.ended_at)}: sign in again")
    user = conn.execute(select(User).where(User.id == row.user_id)).one()
    actor = Actor(user.printed_name, user.id, request_id, client)
    ended = (
        "user disabled" if not user.active
        else "user locked" if user.locked
        else "absolute timeout" if aware(row.expires_at) <= now
        else "idle timeout" if now - aware(row.last_seen_at) >= limits.idle
        else None
    )  # fmt: skip
    if ended is not None:
        _end(conn, row, actor=actor, now=now, reason=ended)
        return SessionCheck(refused=f"signed out ({ended}): sign in again")
    if now - aware(row.last_seen_at) >= TOUCH_EVERY:
        conn.execute(
            update(BrowserSession)
            .where(BrowserSession.cookie_sha256 == row.cookie_sha256)
            .values(last_seen_at=now)
        )
    roles = tuple(sorted(conn.execute(select(UserRole.role).where(UserRole.user_id == user.id)).scalars()))
    return SessionCheck(Principal("session", user.id, user.printed_name, user.login, roles), row.csrf_token)


def end_session(
    conn: Connection, cookie: str, *, now: datetime.datetime, client: str | None = None,
    request_id: str | None = None,
) -> bool:  # fmt: skip
    """Sign out: end the session behind ``cookie`` (audited as ``user.logout``); False if none was live."""
    key = session_key(cookie)
    row = conn.execute(select(BrowserSession).where(BrowserSession.cookie_sha256 == key)).first()
    if row is None or row.ended_at is not None:
        return False
    user = conn.execute(select(User.printed_name).where(User.id == row.user_id)).scalar_one()
    _end(conn, row, actor=Actor(user, row.user_id, request_id, client), now=now, reason="logout")
    return True
