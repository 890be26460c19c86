"""API tokens: made for a person (carrying that person's roles) or a machine (carrying its own),
shown once, kept as a SHA-256, expiring, revocable, never deleted.

A token reads ``cg_<id>_<secret>``: the id finds the row, the secret is
checked against its hash in constant time.  256 random bits need no slow
hash (argon2 guards guessable passwords, not random keys), so checking a
token costs one indexed read, not tens of milliseconds per request.

Machine tokens are for integrations (an ERP reading alerts, a monitoring
probe); they may hold only roles that decide nothing about goods or people
(``MACHINE_ROLES``): a decision needs a person who signs.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.models import ApiToken, User, UserRole
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.users import NotFound, UserInputError, aware, check_login_name, checked_text, iso

__all__ = [
    "MACHINE_ROLES",
    "MAX_TOKEN_DAYS",
    "IssuedToken",
    "TokenRefused",
    "create_machine_token",
    "create_user_token",
    "list_tokens",
    "resolve_token",
    "revoke_token",
    "user_id_of",
]

#: What a machine token may hold: reading, and the dock's own actions; nothing that decides.
MACHINE_ROLES = frozenset({"viewer", "dock_operator"})
#: The longest life a token can be given; a token that never expires is a password nobody changes.
MAX_TOKEN_DAYS = 366
PREFIX = "cg_"
_SHAPE = re.compile(r"cg_(t-[0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_MACHINE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ENTITY = "api_token"


class TokenRefused(Exception):
    """A well-formed token that does not let its holder in; the message says why (the holder holds
    the secret, so telling them it expired leaks nothing)."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: ``token`` is the only time the secret exists outside the caller."""

    id: str
    token: str
    expires_at: datetime.datetime


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _label(label: object) -> str:
    text = checked_text("label", label, max_len=200).strip()
    if not text:
        raise UserInputError("label", "must not be empty (say what the token is for)")
    return text


def _lifetime(days: object) -> datetime.timedelta:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise UserInputError("expires_in_days", f"must be a whole number of days from 1 to {MAX_TOKEN_DAYS}")
    return datetime.timedelta(days=days)


def _issue(conn: Connection, values: dict[str, Any], *, by: Actor, now: datetime.datetime,
           days: int) -> IssuedToken:  # fmt: skip
    token_id = f"t-{secrets.token_hex(6)}"
    secret = secrets.token_urlsafe(32)
    expires = now + _lifetime(days)
    row = {
        "id": token_id, "secret_sha256": _digest(secret), "created_at": now, "created_by": by.name,
        "expires_at": expires, "revoked_at": None, "revoked_by": None, **values,
    }  # fmt: skip
    conn.execute(insert(ApiToken).values(row))
    after = {k: v for k, v in row.items() if k != "secret_sha256"}
    after.update(created_at=iso(now), expires_at=iso(expires))
    entity = values.get("user_id") or values.get("machine")
    append(conn, actor=by, action="token.create", entity_type=_ENTITY, entity_id=token_id, now=now,
           after=after, reason=f"for {entity}")  # fmt: skip
    return IssuedToken(token_id, f"{PREFIX}{token_id}_{secret}", expires)


def create_user_token(
    conn: Connection, user_id: str, *, label: str, days: int, by: Actor, now: datetime.datetime
) -> IssuedToken:
    """A token acting for ``user_id`` with whatever roles they hold when it is used."""
    values = {"user_id": user_id, "machine": None, "roles": None, "label": _label(label)}
    return _issue(conn, values, by=by, now=now, days=days)


def create_machine_token(
    conn: Connection, machine: str, roles: list[str], *, label: str, days: int, by: Actor,
    now: datetime.datetime,
) -> IssuedToken:  # fmt: skip
    """A token for an integration named ``machine``, holding ``roles`` (only ``MACHINE_ROLES``)."""
    name = checked_text("machine", machine, max_len=64).strip().lower()
    if not _MACHINE.fullmatch(name):
        raise UserInputError("machine", "must be 1-64 of a-z 0-9 . _ - and start with a letter or digit")
    if not roles:
        raise UserInputError("roles", f"give at least one of {', '.join(sorted(MACHINE_ROLES))}")
    for role in roles:
        if role not in MACHINE_ROLES:
            shown = role if isinstance(role, str) else repr(role)
            raise UserInputError(
                "roles", f"{checked_text('roles', shown, max_len=64)!r}: a machine may hold only "
                f"{', '.join(sorted(MACHINE_ROLES))} (decisions need a person who signs)",
            )  # fmt: skip
    values = {"user_id": None, "machine": name, "roles": ",".join(sorted(set(roles))), "label": _label(label)}
    return _issue(conn, values, by=by, now=now, days=days)


def _public(row: Any, login: str | None = None) -> dict[str, Any]:
    return {
        "id": row.id, "user_id": row.user_id, "login": login, "machine": row.machine,
        "roles": row.roles.split(",") if row.roles else None, "label": row.label,
        "created_at": iso(row.created_at), "created_by": row.created_by, "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at), "revoked_by": row.revoked_by,
    }  # fmt: skip


def list_tokens(
    conn: Connection, *, user_id: str | None = None, all_tokens: bool = False
) -> list[dict[str, Any]]:
    """Tokens without their secrets, newest first: ``user_id``'s, or every token with ``all_tokens``."""
    query = select(ApiToken, User.login).outerjoin(User, User.id == ApiToken.user_id)
    if not all_tokens:
        query = query.where(ApiToken.user_id == user_id)
    rows = conn.execute(query.order_by(ApiToken.created_at.desc(), ApiToken.id)).all()
    return [_public(row, row.login) for row in rows]


def revoke_token(
    conn: Connection, token_id: str, *, by: Actor, now: datetime.datetime, owner: str | None = None
) -> dict[str, Any]:
    """Revoke a token (``owner``: only if it is that user's; anyone else's is NotFound, like a token
    that does not exist, so nobody learns the ids of others' tokens)."""
    if not isinstance(token_id, str) or not re.fullmatch(r"t-[0-9a-f]{12}", token_id):
        raise UserInputError("token_id", "is not a token id (t- and 12 hex digits)")
    query = select(ApiToken).where(ApiToken.id == token_id)
    if owner is not None:
        query = query.where(ApiToken.user_id == owner)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound("token_id", f"no token {token_id!r}")
    if row.revoked_at is not None:
        raise UserInputError("token_id", f"{token_id} was already revoked at {iso(row.revoked_at)}")
    before = _public(row)
    conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=now, revoked_by=by.name))
    after = {**before, "revoked_at": iso(now), "revoked_by": by.name}
    append(conn, actor=by, action="token.revoke", entity_type=_ENTITY, entity_id=token_id, now=now,
           before=before, after=after)  # fmt: skip
    return after


def resolve_token(conn: Connection, presented: str, now: datetime.datetime) -> Principal | None:
    """The principal a ``cg_`` token stands for; None if it is no such token (wrong shape, unknown
    id, wrong secret: all alike); TokenRefused if it is a real one that may not be used now."""
    match = _SHAPE.fullmatch(presented)
    if match is None:
        return None
    token_id, secret = match.groups()
    row = conn.execute(select(ApiToken).where(ApiToken.id == token_id)).first()
    if row is None or not hmac.compare_digest(_digest(secret), row.secret_sha256):
        return None
    if row.revoked_at is not None:
        raise TokenRefused(f"token {token_id} was revoked at {iso(row.revoked_at)}")
    if aware(row.expires_at) <= now:
        raise TokenRefused(f"token {token_id} expired at {iso(row.expires_at)}")
    if row.user_id is None:
        roles = tuple(row.roles.split(",")) if row.roles else ()
        return Principal("machine", None, f"machine {row.machine}", None, roles, token_id)
    user = conn.execute(select(User).where(User.id == row.user_id)).one()
    if not user.active:
        raise TokenRefused(f"token {token_id}: its user {user.login!r} is disabled")
    if user.locked:
        raise TokenRefused(f"token {token_id}: its user {user.login!r} is locked (an admin unlocks)")
    roles = tuple(sorted(conn.execute(select(UserRole.role).where(UserRole.user_id == user.id)).scalars()))
    return Principal("token", user.id, user.printed_name, user.login, roles, token_id)


def user_id_of(conn: Connection, login: str) -> str:
    """The id of the user with ``login``; UserInputError naming ``login`` if none."""
    name = check_login_name(login)
    found = conn.execute(select(User.id).where(User.login == name)).scalar_one_or_none()
    if found is None:
        raise NotFound("login", f"no user {name!r}")
    return found
