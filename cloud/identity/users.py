"""People: add, disable, unlock, give roles, reset a password, and the login check.

Every change, every failed login and every lock appends its audit entry
(``cloud.audit.log.append``) in the caller's transaction, so the change and
its record land together or not at all.  The entry's ``before``/``after`` are
the user's fields and roles without the password hash.

Users are never deleted and a login is never reused: a disabled user keeps
theirs (and the database refuses DELETE, migration 0008).  Input is checked
here, before anything touches the database, and refused with a
:class:`UserInputError` naming the field, so hostile text (NUL, control
characters, unpaired surrogates, kilobytes of it) never reaches a driver that
would answer with a crash.

``check_login`` returns its verdict instead of raising: a failure must be
*committed* (the count, the lock, their audit entries), and an exception would
roll the caller's transaction back with it.
"""

from __future__ import annotations

import datetime
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pwdlib import PasswordHash
from sqlalchemy import Connection, delete, insert, select, update

from coldgate.cloud.audit.log import Actor, append
from coldgate.cloud.db.models import User, UserRole
from coldgate.cloud.identity.roles import ROLES

__all__ = [
    "MAX_FAILED_LOGINS",
    "MAX_PASSWORD_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "Forbidden",
    "LoginResult",
    "NotFound",
    "PasswordCheck",
    "UserInputError",
    "add_user",
    "aware",
    "check_login",
    "check_login_name",
    "check_password",
    "checked_text",
    "disable_user",
    "find_user",
    "iso",
    "list_users",
    "password_check",
    "reset_password",
    "set_roles",
    "unlock_user",
]

#: The password policy's default minimum length (``[identity] password_min_length`` sets a site's own).
PASSWORD_MIN_LENGTH = 12
#: Longer passwords are refused: hashing megabytes on every login attempt is a denial of service.
MAX_PASSWORD_LENGTH = 1024
#: Failed logins in a row after which the account locks until an admin unlocks it.
MAX_FAILED_LOGINS = 5

_LOGIN = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,31}")
_MAX_NAME = 200
_MAX_EMAIL = 254
_ENTITY = "user"

_hasher = PasswordHash.recommended()
#: Verified against when the login is unknown, so an unknown login costs what a wrong password does.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class UserInputError(ValueError):
    """A value refused before anything was written; ``field`` names it, the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(UserInputError):
    """The user (or token) named does not exist: a 404 to an API caller, not a 422."""


class Forbidden(UserInputError):
    """The person may not do this to this record (a permission the record's state asks for, beyond the
    route's own): a 403 to an API caller."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The login check's verdict: ``user_id`` is set only when ``ok``.

    ``reason`` is for the audit trail and the operator, not for the person
    at the door (who learns only that it failed): "ok", "unknown",
    "malformed", "wrong password", "locked" or "disabled".
    """

    ok: bool
    reason: str
    user_id: str | None = None
    #: True when this attempt locked the account.
    locked_now: bool = False


# --- checking input -------------------------------------------------------------------------------


#: C0 and C1 control characters and the Unicode line and paragraph separators (one regex search: a
#: 100,000-row catalog import checks every cell with it).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def checked_text(field: str, value: object, *, max_len: int) -> str:
    """``value`` if it is text of at most ``max_len`` characters, valid UTF-8, without control
    characters; a UserInputError naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise UserInputError(field, "must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserInputError(field, "is not valid UTF-8") from None
    if len(value) > max_len:
        raise UserInputError(field, f"is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise UserInputError(field, "must not contain control characters (NUL, newline, ...)")
    return value


def check_login_name(login: object) -> str:
    """The login as stored (lower-case); refused unless 1-64 of a-z 0-9 . _ @ - starting with a-z 0-9."""
    text = checked_text("login", login, max_len=64).strip().lower()
    if not _LOGIN.fullmatch(text):
        raise UserInputError("login", "must be 1-64 of a-z 0-9 . _ @ - and start with a letter or digit")
    return text


def _check_name(name: object) -> str:
    text = checked_text("printed_name", name, max_len=_MAX_NAME).strip()
    if not text:
        raise UserInputError("printed_name", "must not be empty (it is printed in signatures)")
    return text


def _check_email(email: object) -> str:
    text = checked_text("email", email, max_len=_MAX_EMAIL).strip()
    if not _EMAIL.fullmatch(text):
        raise UserInputError("email", "is not an e-mail address (name@domain.tld)")
    return text


def _check_phone(phone: object) -> str | None:
    if phone is None:
        return None
    text = checked_text("phone", phone, max_len=32).strip()
    if not text:
        return None
    if not _PHONE.fullmatch(text):
        raise UserInputError(
            "phone", "must be 3-32 of digits, spaces and + ( ) . / - (starting with + or a digit)"
        )
    return text


def check_password(password: object, min_length: int = PASSWORD_MIN_LENGTH) -> str:
    """The password if the policy allows it: ``min_length`` to 1024 characters, valid UTF-8, no NUL."""
    if not isinstance(password, str):
        raise UserInputError("password", "must be text")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise UserInputError("password", "is not valid UTF-8") from None
    if "\x00" in password:
        raise UserInputError("password", "must not contain NUL")
    if len(password) < min_length:
        raise UserInputError("password", f"is {len(password)} characters; at least {min_length} are needed")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserInputError("password", f"is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def _check_roles(roles: Iterable[object]) -> list[str]:
    out: set[str] = set()
    for role in roles:
        if not isinstance(role, str) or role not in ROLES:
            shown = checked_text("roles", role, max_len=64) if isinstance(role, str) else role
            raise UserInputError("roles", f"{shown!r} is not a role (one of {', '.join(ROLES)})")
        out.add(role)
    return sorted(out)


# --- reading ---------------------------------------------------------------------------------------


def aware(moment: datetime.datetime) -> datetime.datetime:
    """``moment`` with its zone: SQLite hands stored times back naive, in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else aware(moment).astimezone(datetime.UTC).isoformat()


def _roles_of(conn: Connection, user_id: str) -> list[str]:
    return sorted(conn.execute(select(UserRole.role).where(UserRole.user_id == user_id)).scalars())


def _public(row: Any, roles: list[str]) -> dict[str, Any]:
    """The user as the audit trail and listings see them: every field but the password hash."""
    return {
        "id": row.id,
        "login": row.login,
        "printed_name": row.printed_name,
        "email": row.email,
        "phone": row.phone,
        "active": bool(row.active),
        "locked": bool(row.locked),
        "failed_logins": int(row.failed_logins),
        "created_at": iso(row.created_at),
        "disabled_at": iso(row.disabled_at),
        "password_changed_at": iso(row.password_changed_at),
        "roles": roles,
    }


def find_user(conn: Connection, login: str) -> dict[str, Any]:
    """The user with ``login`` (without the hash); a UserInputError naming ``login`` if none."""
    name = check_login_name(login)
    row = conn.execute(select(User).where(User.login == name)).first()
    if row is None:
        raise NotFound("login", f"no user {name!r}")
    return _public(row, _roles_of(conn, row.id))


def list_users(conn: Connection) -> list[dict[str, Any]]:
    """Every user, disabled ones too, by login."""
    rows = conn.execute(select(User).order_by(User.login)).all()
    roles: dict[str, list[str]] = {}
    for user_id, role in conn.execute(select(UserRole.user_id, UserRole.role).order_by(UserRole.role)):
        roles.setdefault(user_id, []).append(role)
    return [_public(row, roles.get(row.id, [])) for row in rows]


def _row(conn: Connection, login: str) -> Any:
    name = check_login_name(login)
    if conn.dialect.name == "postgresql":
        row = conn.execute(select(User).where(User.login == name).with_for_update()).first()
    else:
        row = conn.execute(select(User).where(User.login == name)).first()
    if row is None:
        raise NotFound("login", f"no user {name!r}")
    return row


# --- changing --------------------------------------------------------------------------------------


def add_user(
    conn: Connection,
    *,
    login: str,
    printed_name: str,
    email: str,
    password: str,
    by: Actor,
    now: datetime.datetime,
    phone: str | None = None,
    roles: Iterable[str] = (),
    min_length: int = PASSWORD_MIN_LENGTH,
) -> str:
    """Add a user (active, unlocked) and audit it; their new id.  A taken login is refused, also
    one a disabled user holds: logins are never reused."""
    name = check_login_name(login)
    values = {
        "login": name,
        "printed_name": _check_name(printed_name),
        "email": _check_email(email),
        "phone": _check_phone(phone),
    }
    secret = check_password(password, min_length)
    held = _check_roles(roles)
    if conn.execute(select(User.id).where(User.login == name)).first() is not None:
        raise UserInputError("login", f"{name!r} is taken (logins are never reused, also a disabled user's)")
    user_id = f"u-{secrets.token_hex(6)}"
    conn.execute(
        insert(User).values(
            id=user_id,
            **values,
            password_hash=_hasher.hash(secret),
            active=True,
            locked=False,
            failed_logins=0,
            created_at=now,
            disabled_at=None,
            password_changed_at=now,
        )
    )
    if held:
        conn.execute(insert(UserRole), [{"user_id": user_id, "role": role} for role in held])
    after = _public(conn.execute(select(User).where(User.id == user_id)).one(), held)
    append(conn, actor=by, action="user.add", entity_type=_ENTITY, entity_id=user_id, now=now, after=after)
    return user_id


def _change(
    conn: Connection,
    row: Any,
    values: dict[str, Any],
    *,
    by: Actor,
    action: str,
    now: datetime.datetime,
    reason: str | None = None,
) -> dict[str, Any]:
    """Update ``row`` with ``values`` and audit before/after in the same transaction; the after."""
    roles = _roles_of(conn, row.id)
    before = _public(row, roles)
    conn.execute(update(User).where(User.id == row.id).values(**values))
    after = _public(conn.execute(select(User).where(User.id == row.id)).one(), roles)
    append(
        conn, actor=by, action=action, entity_type=_ENTITY, entity_id=row.id, now=now,
        before=before, after=after, reason=reason,
    )  # fmt: skip
    return after


def disable_user(conn: Connection, login: str, *, by: Actor, now: datetime.datetime) -> None:
    """Disable a user: they can no longer log in; their login stays theirs."""
    row = _row(conn, login)
    if not row.active:
        raise UserInputError("login", f"{row.login!r} is already disabled")
    _change(conn, row, {"active": False, "disabled_at": now}, by=by, action="user.disable", now=now)


def unlock_user(conn: Connection, login: str, *, by: Actor, now: datetime.datetime) -> None:
    """Unlock a user locked by failed logins, and start their count again."""
    row = _row(conn, login)
    if not row.locked:
        raise UserInputError("login", f"{row.login!r} is not locked")
    _change(conn, row, {"locked": False, "failed_logins": 0}, by=by, action="user.unlock", now=now)


def reset_password(
    conn: Connection, login: str, password: str, *, by: Actor, now: datetime.datetime,
    min_length: int = PASSWORD_MIN_LENGTH,
) -> None:  # fmt: skip
    """Give a user a new password (the policy applies); a lock stays until an admin unlocks it."""
    secret = check_password(password, min_length)
    row = _row(conn, login)
    _change(
        conn, row, {"password_hash": _hasher.hash(secret), "password_changed_at": now},
        by=by, action="user.reset_password", now=now,
    )  # fmt: skip


def set_roles(
    conn: Connection, login: str, roles: Iterable[str], *, by: Actor, now: datetime.datetime
) -> None:
    """Replace a user's roles.  Nobody changes their own (``by.id`` is the user's id): refused."""
    held = _check_roles(roles)
    row = _row(conn, login)
    if by.id is not None and by.id == row.id:
        raise UserInputError("login", "nobody changes their own roles (separation of duties)")
    before_roles = _roles_of(conn, row.id)
    if held == before_roles:
        raise UserInputError("roles", f"{row.login!r} already has exactly these roles")
    conn.execute(delete(UserRole).where(UserRole.user_id == row.id))
    if held:
        conn.execute(insert(UserRole), [{"user_id": row.id, "role": role} for role in held])
    append(
        conn, actor=by, action="user.roles", entity_type=_ENTITY, entity_id=row.id, now=now,
        before=_public(row, before_roles), after=_public(row, held),
    )  # fmt: skip


def _entity_for(login: object) -> str:
    """A refused login as the audit trail may keep it: printable ASCII, at most 128 characters."""
    shown = login if isinstance(login, str) else repr(login)
    return ascii(shown)[1:-1][:128] or "(empty)"


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The slow half of a sign-in, done before the write transaction (``password_check``): whether
    ``password`` fits the hash that was stored when it was checked, and its rehash if the hasher's
    parameters have moved on."""

    password_hash: str | None
    verified: bool
    new_hash: str | None = None


def _usable(password: object) -> bool:
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_LENGTH or "\x00" in password:
        return False
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def password_check(conn: Connection, login: object, password: object) -> PasswordCheck:
    """Check ``password`` against ``login``'s stored hash, reading only.

    argon2 takes a fifth of a second on purpose.  Done in ``check_login``'s
    write transaction it would hold SQLite's only write lock (and the user's
    row on PostgreSQL) that long per attempt, so anyone typing passwords
    could stall ingest; done here first, on a reading connection, the write
    transaction only records the outcome.  An unknown login costs the same
    as a wrong password.
    """
    good = _usable(password)
    try:
        name = check_login_name(login)
    except UserInputError:
        return PasswordCheck(None, False)
    stored = conn.execute(select(User.password_hash).where(User.login == name)).scalar_one_or_none()
    if stored is None or not good:
        if good:
            _hasher.verify(password, _DUMMY_HASH)
        return PasswordCheck(stored, False)
    verified, new_hash = _hasher.verify_and_update(password, stored)
    return PasswordCheck(stored, verified, new_hash)


def check_login(
    conn: Connection, login: str, password: str, *, now: datetime.datetime, client: str | None = None,
    request_id: str | None = None, max_failures: int = MAX_FAILED_LOGINS,
    checked: PasswordCheck | None = None, purpose: Literal["login", "signature"] = "login",
) -> LoginResult:  # fmt: skip
    """Whether ``login`` may log in with ``password``; every outcome is audited in ``conn``.

    ``purpose="signature"``: the same check re-authenticating a signer (21 CFR 11.200): a wrong
    password counts towards the same lock, and the entries say ``user.signature_failed`` and
    ``user.signature_refused``; a success writes no entry of its own (the signature's entry says it).

    A wrong password counts a failure; the ``max_failures``-th in a row locks
    the account.  A locked or disabled user is refused even with the right
    password.  Commit the transaction whatever the verdict.  ``client`` and
    ``request_id`` (where the attempt came from) go into every entry.
    ``checked`` is ``password_check``'s verdict, made before this transaction;
    it counts only if the stored hash is still the one it was checked against
    (else the password is checked again here).
    """
    where = {"client": client, "request_id": request_id}
    try:
        name = check_login_name(login)
    except UserInputError:
        append(
            conn, actor=Actor(_entity_for(login), **where), action=f"user.{purpose}_failed",
            entity_type="login", entity_id=_entity_for(login), now=now, reason="malformed",
        )  # fmt: skip
        return LoginResult(False, "malformed")
    row = conn.execute(
        select(User).where(User.login == name).with_for_update()
        if conn.dialect.name == "postgresql"
        else select(User).where(User.login == name)
    ).first()
    if row is None:
        if checked is None and _usable(password):
            _hasher.verify(password, _DUMMY_HASH)
        append(
            conn, actor=Actor(name, **where), action=f"user.{purpose}_failed", entity_type="login",
            entity_id=name, now=now, reason="unknown",
        )  # fmt: skip
        return LoginResult(False, "unknown")
    actor = Actor(row.printed_name, row.id, **where)
    if checked is None or checked.password_hash != row.password_hash:
        checked = PasswordCheck(
            row.password_hash,
            *(_hasher.verify_and_update(password, row.password_hash) if _usable(password) else (False, None)),
        )
    verified, new_hash = checked.verified, checked.new_hash
    refused = "disabled" if not row.active else "locked" if row.locked else None
    if refused is not None:
        append(
            conn, actor=actor, action=f"user.{purpose}_refused", entity_type=_ENTITY, entity_id=row.id,
            now=now, reason=refused,
        )  # fmt: skip
        return LoginResult(False, refused)
    if not verified:
        failures = row.failed_logins + 1
        lock = failures >= max_failures
        values: dict[str, Any] = {"failed_logins": failures, **({"locked": True} if lock else {})}
        _change(
            conn, row, values, by=actor, action=f"user.{purpose}_failed", now=now, reason="wrong password"
        )
        if lock:
            append(
                conn, actor=actor, action="user.lock", entity_type=_ENTITY, entity_id=row.id, now=now,
                reason=f"{failures} failed logins in a row",
            )  # fmt: skip
        return LoginResult(False, "wrong password", locked_now=lock)
    if new_hash is not None or row.failed_logins:
        values = {"failed_logins": 0, **({"password_hash": new_hash} if new_hash is not None else {})}
        conn.execute(update(User).where(User.id == row.id).values(**values))
    if purpose == "login":
        append(conn, actor=actor, action="user.login", entity_type=_ENTITY, entity_id=row.id, now=now)
    return LoginResult(True, "ok", user_id=row.id)
