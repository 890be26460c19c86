"""Signing in and out, who am I, and a person's own API tokens.

Signing in checks the password (``cloud.identity.users.check_login``: every
failure counted and audited, the N-th in a row locks the account), then
starts a browser session: an HttpOnly, SameSite=Strict cookie, Secure when
the request came over TLS (directly, or through a proxy uvicorn trusts for
``X-Forwarded-Proto``).  The answer is the same 401 whether the login is
unknown, the password wrong or the account locked or disabled, so the door
does not tell a stranger which logins exist; the audit trail records which.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from coldgate.cloud.api.auth import SESSION_COOKIE, AuthSettings, signed_in
from coldgate.cloud.api.schemas_identity import (
    LoginBody,
    Me,
    NewToken,
    SessionInfo,
    TokenBody,
    TokenEntry,
    TokenList,
)
from coldgate.cloud.api.sign_in import set_session_cookie, sign_in
from coldgate.cloud.api.writes import acting, client_of, request_id_of, utc_now, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.sessions import end_session
from coldgate.cloud.identity.tokens import create_user_token, list_tokens, revoke_token
from coldgate.cloud.identity.users import iso

__all__ = ["REFUSED", "router"]

router = APIRouter(tags=["sign-in and tokens"])
Who = Annotated[Principal, Depends(signed_in)]
REFUSED = (
    "sign-in refused: wrong login or password, or the account is locked or disabled (an admin unlocks it)"
)


@router.post(
    "/auth/login",
    response_model=SessionInfo,
    responses={401: {"description": "Refused."}},
)
def login(body: LoginBody, request: Request, response: Response) -> SessionInfo:
    """Sign in with login and password: sets the session cookie and returns the CSRF token."""
    settings: AuthSettings = request.app.state.auth
    signed = sign_in(request, body.login, body.password)
    if signed is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=REFUSED)
    started, user = signed
    set_session_cookie(request, response, started)
    return SessionInfo(
        login=user["login"], printed_name=user["printed_name"], roles=user["roles"],
        csrf_token=started.csrf_token, expires_at=iso(started.expires_at) or "",
        idle_timeout_s=int(settings.sessions.idle.total_seconds()),
    )  # fmt: skip


@router.post(
    "/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses={400: {"description": "No session."}}
)
def logout(who: Who, request: Request, response: Response) -> None:
    """End this browser session (audited); a token is revoked instead (``DELETE /auth/tokens/{id}``)."""
    if who.via != "session":
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail="signed in with a token, not a session: revoke the token with DELETE /auth/tokens/{id}",
        )
    with writing(request) as conn:
        end_session(
            conn,
            request.cookies.get(SESSION_COOKIE, ""),
            now=utc_now(),
            client=client_of(request),
            request_id=request_id_of(request),
        )
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/auth/me", response_model=Me)
def me(who: Who) -> Me:
    """Who the API takes you for, with your roles and what they let you do."""
    return Me(
        via=who.via, user_id=who.user_id, login=who.login, name=who.name, roles=list(who.roles),
        permissions=sorted(who.permissions), token_id=who.token_id,
    )  # fmt: skip


@router.get("/auth/tokens", response_model=TokenList)
def my_tokens(who: Who, request: Request) -> TokenList:
    """Your API tokens, revoked and expired ones too, without their secrets."""
    with request.app.state.engine.connect() as conn:
        return TokenList(items=[TokenEntry(**t) for t in list_tokens(conn, user_id=who.user_id)])


@router.post("/auth/tokens", response_model=NewToken, status_code=status.HTTP_201_CREATED)
def new_token(who: Who, body: TokenBody, request: Request) -> NewToken:
    """A token acting as you, with your roles as they are when it is used; shown this once."""
    assert who.user_id is not None  # tokens.own is held by people only
    with writing(request) as conn:
        issued = create_user_token(conn, who.user_id, label=body.label, days=body.expires_in_days,
                                   by=acting(request), now=utc_now())  # fmt: skip
    return NewToken(id=issued.id, token=issued.token, expires_at=iso(issued.expires_at) or "")


@router.delete(
    "/auth/tokens/{token_id}", response_model=TokenEntry, responses={404: {"description": "Not yours."}}
)
def revoke_my_token(who: Who, token_id: str, request: Request) -> TokenEntry:
    """Revoke one of your tokens; it stops working at once."""
    with writing(request) as conn:
        revoked = revoke_token(conn, token_id, by=acting(request), now=utc_now(), owner=who.user_id)
        return TokenEntry(**revoked)
