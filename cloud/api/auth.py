"""Bearer-token authentication for the REST API.

Tokens come from a file (``api.tokens_file``) rather than the database, so
the API can be locked down before any user management exists and a token is
revoked by editing one line and restarting.  Each token has a name, so the
logs can say *who* asked without ever printing the token itself.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from coldgate.configfile import ConfigError

__all__ = ["MIN_TOKEN_LENGTH", "ApiTokens", "bearer_scheme", "load_tokens", "require_token"]

log = logging.getLogger(__name__)

#: Shorter tokens can be guessed; ``openssl rand -hex 32`` gives 64 characters.
MIN_TOKEN_LENGTH = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: what fits in a header

#: Declared as a security scheme so /docs offers an "Authorize" button and
#: clients generated from /openapi.json send the header.  ``auto_error`` is off
#: because the missing-token answer must be 401 with ``WWW-Authenticate``,
#: written once, below.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token from the API tokens file: `Authorization: Bearer <token>`.",
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


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
) -> str:
    """The caller's name; 401 unless a known bearer token was presented.

    The name is kept on ``request.state.api_client`` for access logs.
    """
    tokens: ApiTokens = request.app.state.tokens
    who = tokens.identify(credentials.credentials) if credentials is not None else None
    if who is None:
        client = request.client.host if request.client else "?"
        reason = "no bearer token" if credentials is None else "unknown bearer token"
        log.warning(
            "API request refused from %s: %s (%s %s)", client, reason, request.method, request.url.path
        )
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"{reason}: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.api_client = who
    return who
