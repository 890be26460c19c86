"""Re-authenticating a person who signs (21 CFR 11.200), for every signed route: a QA case's closing
and cancelling, a recall's closing, a master-data change's approval and a dock discrepancy's acceptance.

The password is checked first on a reading connection (argon2's fifth of a second must not hold the
writer, as at sign-in), then :func:`reauthenticate` records the outcome in the route's write
transaction through the login check itself, so a wrong password counts towards the account lock and is
audited like a failed login.  A refusal is *returned*: the route commits the failure's count and audit
entry, and only then answers with it.  :func:`signed_write` is that sequence once, for every signed
route and the pages' forms that share them (each used to spell it out, and a fix to one would have
missed the others).

Who must give what: through a browser session, the first signature of the session asks login and
password, later ones the password (§11.200(a)(1)(i)-(ii)); through a person's API token, both every
time; a machine signs nothing.  The login given must be the signed-in person's: a signature is theirs
alone (§11.100), so nobody signs for a colleague from the colleague's screen.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, TypeVar, overload

from fastapi import Request
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from coldgate.cloud.api.auth import SESSION_COOKIE, AuthSettings
from coldgate.cloud.api.writes import client_of, request_id_of, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.sessions import session_key
from coldgate.cloud.identity.signatures import SignedBy, signed_in_session
from coldgate.cloud.identity.users import (
    Forbidden,
    PasswordCheck,
    UserInputError,
    check_login,
    check_login_name,
    password_check,
)  # fmt: skip

__all__ = ["SignatureBody", "SignatureOut", "precheck", "reauthenticate", "signed_write"]

T = TypeVar("T")


class SignatureBody(BaseModel):
    """The signer's credentials, given again for this signature and never kept."""

    password: str = Field(max_length=1024, description="Your password, asked at every signature.")
    login: str | None = Field(
        default=None, max_length=64,
        description="Your login: needed at your first signature in a browser session, and always through "
        "an API token.",
    )  # fmt: skip


class SignatureOut(BaseModel):
    """A signature given, as every signed record answers it (``identity.signatures``), checked against
    the record as it stands: one model for the cases, the approvals and the acceptances alike."""

    id: str
    meaning: str = Field(description="What the signature means: approved, cancelled, accepted.")
    reason: str | None
    signer_id: str
    signer_login: str
    signer_name: str = Field(description="The signer's printed name.")
    signed_at: datetime.datetime
    content_sha256: str = Field(description="SHA-256 of the canonical JSON of what was signed.")
    matches: bool = Field(description="Whether the signed record still holds exactly what was signed.")


def precheck(request: Request, body: SignatureBody) -> PasswordCheck | None:
    """The slow half: the password against the signed-in person's stored hash, reading only (None for
    a caller who is no person: :func:`reauthenticate` refuses them)."""
    principal: Principal = request.state.principal
    if principal.login is None:
        return None
    with request.app.state.engine.connect() as reading:
        return password_check(reading, principal.login, body.password)


def reauthenticate(
    request: Request, conn: Connection, body: SignatureBody, checked: PasswordCheck | None,
    now: datetime.datetime,
) -> SignedBy | UserInputError:  # fmt: skip
    """The signer, re-authenticated in ``conn`` (a failure counted and audited there), or why not."""
    principal: Principal = request.state.principal
    if principal.user_id is None or principal.login is None:
        return Forbidden("signature", "only a person signs: a machine's token cannot give a signature")
    session = None
    if principal.via == "session":
        session = session_key(request.cookies.get(SESSION_COOKIE, ""))
    login_asked = session is None or not signed_in_session(conn, session, principal.user_id)
    if body.login is None:
        if login_asked:
            where = "your first signature in this session" if session else "a signature through an API token"
            return UserInputError("signature.login", f"{where} asks your login as well as your password")
    elif check_login_name(body.login) != principal.login:
        return Forbidden(
            "signature.login",
            f"you are signed in as {principal.login}: a signature is given by the person signed in, "
            "nobody else",
        )
    settings: AuthSettings = request.app.state.auth
    verdict = check_login(
        conn, principal.login, body.password, now=now, client=client_of(request),
        request_id=request_id_of(request), max_failures=settings.max_failed_logins, checked=checked,
        purpose="signature",
    )  # fmt: skip
    if not verdict.ok:
        why = {
            "wrong password": "the password is wrong",
            "locked": "your account is locked (an admin unlocks it)",
            "disabled": "your account is disabled",
        }.get(verdict.reason, verdict.reason)
        locked = "; that was the last attempt allowed: your account is now locked" * verdict.locked_now
        return Forbidden("signature.password", f"signature refused: {why}{locked}")
    return SignedBy(principal.user_id, principal.login, principal.name, session)


@overload
def signed_write(
    request: Request, signature: SignatureBody, now: datetime.datetime,
    write: Callable[[Connection, SignedBy], T],
    refused: Callable[[Connection, UserInputError], object] | None = None,
) -> T: ...  # fmt: skip


@overload
def signed_write(
    request: Request, signature: SignatureBody | None, now: datetime.datetime,
    write: Callable[[Connection, SignedBy | None], T],
    refused: Callable[[Connection, UserInputError], object] | None = None,
) -> T: ...  # fmt: skip


def signed_write(
    request: Request, signature: SignatureBody | None, now: datetime.datetime,
    write: Callable[[Connection, Any], T],
    refused: Callable[[Connection, UserInputError], object] | None = None,
) -> T:  # fmt: skip
    """``write(conn, signer)``'s answer, signed: the password checked first on a reading connection, then
    the signer re-authenticated in the write transaction and ``write`` run there with them (``signer``
    None when no ``signature`` was given: the write decides whether it needed one).  A refused signature's
    count and audit entry are committed before it is raised, and nothing is written; any refusal, the
    signature's or the write's, is then given to ``refused`` (when given) in a transaction of its own, to
    audit who tried what, and raised."""
    checked = precheck(request, signature) if signature is not None else None
    try:
        failed: UserInputError | None = None
        with writing(request) as conn:
            signer: SignedBy | None = None
            if signature is not None:
                found = reauthenticate(request, conn, signature, checked, now)
                failed, signer = (found, None) if isinstance(found, UserInputError) else (None, found)
            if failed is None:
                done = write(conn, signer)
        if failed is not None:  # its count and audit entry are committed; the write is refused
            raise failed
    except UserInputError as refusal:
        if refused is not None:
            with writing(request) as conn:
                refused(conn, refusal)
        raise
    return done
