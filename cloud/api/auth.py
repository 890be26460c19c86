"""Who may call the API: bearer tokens, browser sessions, and each route's permission.

Three ways in, one ``Principal`` out (``cloud/identity/principal.py``):

- a person's or machine's API token (``cg_...``, in the database, hashed);
- a browser session cookie (``coldgate_session``), with a CSRF token for
  every request that changes something;
- a line of the old tokens file (``api.tokens_file``): read-only machine
  tokens, so set-ups made before people and roles existed keep working.

``authorize`` runs first on every route and applies the route's entry in
``cloud/api/access.py``.  Tokens and names are never logged, only the name
of whoever presented them.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from coldgate.cloud.api import access
from coldgate.cloud.api.writes import request_id_of
from coldgate.cloud.config import IdentityConfig
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.sessions import SessionLimits, resolve_session
from coldgate.cloud.identity.tokens import PREFIX as TOKEN_PREFIX
from coldgate.cloud.identity.tokens import TokenRefused, resolve_token
from coldgate.cloud.identity.users import MAX_FAILED_LOGINS, PASSWORD_MIN_LENGTH
from coldgate.configfile import ConfigError

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "MIN_TOKEN_LENGTH",
    "SESSION_COOKIE",
    "TOKENS_FILE_ROLES",
    "ApiTokens",
    "AuthSettings",
    "authorize",
    "bearer_scheme",
    "load_tokens",
    "signed_in",
]

log = logging.getLogger(__name__)

#: Shorter tokens can be guessed; ``openssl rand -hex 32`` gives 64 characters.
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: what fits in a header
SESSION_COOKIE = "coldgate_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
#: What a line of the old tokens file may do: read, as before people and roles existed.
TOKENS_FILE_ROLES = ("viewer",)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The ``[identity]`` settings the API applies: password policy, lockout, session timeouts."""

    password_min_length: int = PASSWORD_MIN_LENGTH
    max_failed_logins: int = MAX_FAILED_LOGINS
    sessions: SessionLimits = field(default_factory=SessionLimits)

    @classmethod
    def from_config(cls, identity: IdentityConfig) -> AuthSettings:
        return cls(
            password_min_length=identity.password_min_length,
            max_failed_logins=identity.max_failed_logins,
            sessions=SessionLimits(
                idle=datetime.timedelta(minutes=identity.session_idle_minutes),
                absolute=datetime.timedelta(hours=identity.session_absolute_hours),
            ),
        )


#: Declared as a security scheme so /docs offers an "Authorize" button and
#: clients generated from /openapi.json send the header.  ``auto_error`` is off
#: because the missing-token answer must be 401 with ``WWW-Authenticate``,
#: written once, below.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A person's or machine's API token (`cg_...`, from `POST /auth/tokens` or "
    "`coldgate cloud tokens`), or a line of the read-only API tokens file: `Authorization: Bearer <token>`.",
)


@dataclass(frozen=True, slots=True)
class ApiTokens:
    """The accepted tokens as (name, token) pairs, in file order."""

    entries: tuple[tuple[str, str], ...]

    def identify(self, presented: str) -> str | None:
        """The name owning ``presented``, or None.

        Every entry is compared, with ``hmac.compare_digest``, so the time taken
        does not tell how much of a token was right nor which entry matched.
        """
        candidate = presented.encode("utf-8", errors="replace")
        found: str | None = None
        for name, token in self.entries:
            if hmac.compare_digest(candidate, token.encode("ascii")) and found is None:
                found = name
        return found

    def __repr__(self) -> str:  # never print tokens, even in a traceback
        return f"ApiTokens(names={[name for name, _ in self.entries]!r})"


def load_tokens(path: str | os.PathLike[str]) -> ApiTokens:
    """Read ``name:token`` lines; blank lines and ``#`` comments are skipped.

    Raises ConfigError naming the file and line, since a service that starts
    with half its tokens (or none) fails in a way nobody notices until a
    client is locked out.
    """
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read API tokens: {exc.strerror or exc}", file=name) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("", "not UTF-8 text", file=name, line=line) from exc
    entries: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, line_text in enumerate(text.splitlines(), start=1):
        line = line_text.strip()
        if not line or line.startswith("#"):
            continue
        who, sep, token = line.partition(":")
        who, token = who.strip(), token.strip()
        if not sep:
            raise ConfigError("", 'expected "name:token", found no ":"', file=name, line=number)
        if not _NAME.fullmatch(who):
            raise ConfigError(
                "",
                "the name before ':' must be 1-64 of A-Z a-z 0-9 _ . @ -, starting with a letter or digit",
                file=name,
                line=number,
            )
        if not _TOKEN.fullmatch(token):
            raise ConfigError(
                "", f"the token of {who!r} is empty or has spaces or non-ASCII", file=name, line=number
            )
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                "",
                f"the token of {who!r} is {len(token)} characters; at least {MIN_TOKEN_LENGTH} are needed",
                file=name,
                line=number,
            )
        if token in seen:
            raise ConfigError(
                "", f"the token of {who!r} repeats the one on line {seen[token]}", file=name, line=number
            )
        seen[token] = number
        entries.append((who, token))
    if not entries:
        raise ConfigError("", 'no tokens: add a line "name:token"', file=name)
    return ApiTokens(tuple(entries))


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _unauthorized(request: Request, reason: str) -> HTTPException:
    log.warning("API request refused from %s: %s (%s %s)", _client(request), reason, request.method,
                request.url.path)  # fmt: skip
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=f"{reason}: send 'Authorization: Bearer <token>' or sign in (POST /auth/login)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _from_bearer(request: Request, presented: str) -> Principal:
    """A ``cg_`` token from the database, else a line of the old tokens file (read-only)."""
    now = datetime.datetime.now(datetime.UTC)
    if presented.startswith(TOKEN_PREFIX):
        with request.app.state.engine.connect() as conn:
            try:
                found = resolve_token(conn, presented, now)
            except TokenRefused as exc:
                raise _unauthorized(request, str(exc)) from None
        if found is None:
            raise _unauthorized(request, "unknown bearer token")
        return found
    tokens: ApiTokens = request.app.state.tokens
    name = tokens.identify(presented)
    if name is None:
        raise _unauthorized(request, "unknown bearer token")
    return Principal("tokens_file", None, f"tokens file {name}", None, TOKENS_FILE_ROLES)


def _from_cookie(request: Request, cookie: str) -> tuple[Principal, str]:
    """The session's principal and CSRF token; a timed-out session's end is committed before the 401."""
    settings: AuthSettings = request.app.state.auth
    now = datetime.datetime.now(datetime.UTC)
    with request.app.state.writer.begin() as conn:
        check = resolve_session(
            conn,
            cookie,
            now=now,
            limits=settings.sessions,
            client=_client(request),
            request_id=request_id_of(request),
        )
    if check.principal is None:
        raise _unauthorized(request, check.refused or "unknown session")
    return check.principal, check.csrf_token


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is not None:
        return _from_bearer(request, credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal, csrf = _from_cookie(request, cookie)
        request.state.csrf_token = csrf
        return principal
    raise _unauthorized(request, "no credentials")


async def _csrf_presented(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
) -> Principal | None:
    """Who is asking, if the route's entry in ``cloud/api/access.py`` lets them in; 401 or 403 if not.

    Runs before the route's own parameters are read, so the answer does not
    depend on whether what was asked for exists.  A request signed in by
    cookie that changes something must carry the session's CSRF token
    (header ``X-CSRF-Token`` or form field ``csrf_token``).  The database
    work runs in the thread pool, as a plain ``def`` dependency's would.
    """
    route = request.scope.get("route")
    need = access.required(request.method, route.path if route is not None else "")
    if need == access.PUBLIC:
        return None
    principal = await run_in_threadpool(_authenticate, request, credentials)
    request.state.principal = principal
    request.state.api_client = principal.login or principal.name
    if principal.via == "session" and request.method not in _SAFE:
        presented = await _csrf_presented(request)
        expected = request.state.csrf_token.encode()
        if presented is None or not hmac.compare_digest(presented.encode("utf-8", "replace"), expected):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"missing or wrong CSRF token: send the session's token as {CSRF_HEADER} "
                f"or form field {CSRF_FIELD}",
            )
    if need != access.SIGNED_IN and need not in principal.permissions:
        roles = ", ".join(principal.roles) or "none"
        detail = f"needs permission {need!r}, which your roles ({roles}) do not give"
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)
    return principal


def signed_in(request: Request) -> Principal:
    """The principal ``authorize`` let in (for routes that are not PUBLIC)."""
    return request.state.principal
