"""Signing in, shared by the JSON route (``POST /auth/login``) and the login page (``POST /login``).

The password is checked first on a reading connection (argon2's fifth of a
second must not hold the writer), then one write transaction records the
outcome and, if it is a success, starts the session.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from coldgate.cloud.api.auth import SESSION_COOKIE, AuthSettings
from coldgate.cloud.api.writes import client_of, request_id_of, utc_now, writing
from coldgate.cloud.identity.sessions import StartedSession, start_session
from coldgate.cloud.identity.users import check_login, find_user, password_check

__all__ = ["set_session_cookie", "sign_in"]


def sign_in(request: Request, login: str, password: str) -> tuple[StartedSession, dict[str, Any]] | None:
    """The new session and the user, or None when refused (the refusal is audited and committed)."""
    settings: AuthSettings = request.app.state.auth
    with request.app.state.engine.connect() as reading:
        checked = password_check(reading, login, password)
    now = utc_now()
    with writing(request) as conn:
        verdict = check_login(
            conn, login, password, now=now, client=client_of(request), request_id=request_id_of(request),
            max_failures=settings.max_failed_logins, checked=checked,
        )  # fmt: skip
        if not verdict.ok or verdict.user_id is None:
            return None
        started = start_session(
            conn, verdict.user_id, now=now, limits=settings.sessions, client=client_of(request),
            request_id=request_id_of(request),
        )  # fmt: skip
        return started, find_user(conn, login)


def set_session_cookie(request: Request, response: Response, started: StartedSession) -> None:
    """HttpOnly, SameSite=Strict, Secure when the request came over TLS; gone at the absolute timeout."""
    settings: AuthSettings = request.app.state.auth
    response.set_cookie(
        SESSION_COOKIE, started.cookie, max_age=int(settings.sessions.absolute.total_seconds()), path="/",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
