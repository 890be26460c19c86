"""People, for admins: the same changes as ``coldgate cloud users``, through the same functions.

Each change is one transaction with its audit entry (``cloud/api/writes.py``);
nobody changes their own roles, users are disabled, never deleted.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from coldgate.cloud.api.auth import AuthSettings, signed_in
from coldgate.cloud.api.schemas_identity import NewUserBody, PasswordBody, RolesBody, UserEntry, UserList
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.identity import users
from coldgate.cloud.identity.principal import Principal

__all__ = ["router"]

router = APIRouter(tags=["users"])
Who = Annotated[Principal, Depends(signed_in)]
_404 = {404: {"description": "No such user."}}


@router.get("/users", response_model=UserList)
def list_users(request: Request) -> UserList:
    """Every user, disabled ones too, by login."""
    with request.app.state.engine.connect() as conn:
        return UserList(items=[UserEntry(**u) for u in users.list_users(conn)])


@router.post("/users", response_model=UserEntry, status_code=status.HTTP_201_CREATED)
def add_user(who: Who, body: NewUserBody, request: Request) -> UserEntry:
    """Add a user (active, unlocked); the password policy applies; a login is never reused."""
    settings: AuthSettings = request.app.state.auth
    with writing(request) as conn:
        users.add_user(
            conn, login=body.login, printed_name=body.printed_name, email=body.email, phone=body.phone,
            roles=body.roles, password=body.password, by=acting(request), now=utc_now(),
            min_length=settings.password_min_length,
        )  # fmt: skip
        return UserEntry(**users.find_user(conn, body.login))


@router.get("/users/{login}", response_model=UserEntry, responses=_404)
def get_user(login: str, request: Request) -> UserEntry:
    with request.app.state.engine.connect() as conn:
        return UserEntry(**users.find_user(conn, login))


@router.post("/users/{login}/disable", response_model=UserEntry, responses=_404)
def disable_user(who: Who, login: str, request: Request) -> UserEntry:
    """They can no longer sign in, and their sessions and tokens stop working; the login stays theirs."""
    with writing(request) as conn:
        users.disable_user(conn, login, by=acting(request), now=utc_now())
        return UserEntry(**users.find_user(conn, login))


@router.post("/users/{login}/unlock", response_model=UserEntry, responses=_404)
def unlock_user(who: Who, login: str, request: Request) -> UserEntry:
    """Unlock an account locked by failed sign-ins, and start its count again."""
    with writing(request) as conn:
        users.unlock_user(conn, login, by=acting(request), now=utc_now())
        return UserEntry(**users.find_user(conn, login))


@router.put("/users/{login}/roles", response_model=UserEntry, responses=_404)
def set_roles(who: Who, login: str, body: RolesBody, request: Request) -> UserEntry:
    """Replace a user's roles; refused for your own (separation of duties)."""
    with writing(request) as conn:
        users.set_roles(conn, login, body.roles, by=acting(request), now=utc_now())
        return UserEntry(**users.find_user(conn, login))


@router.post("/users/{login}/password", response_model=UserEntry, responses=_404)
def reset_password(who: Who, login: str, body: PasswordBody, request: Request) -> UserEntry:
    """Give a user a new password (the policy applies); a lock stays until unlocked."""
    settings: AuthSettings = request.app.state.auth
    with writing(request) as conn:
        users.reset_password(conn, login, body.password, by=acting(request), now=utc_now(),
                             min_length=settings.password_min_length)  # fmt: skip
        return UserEntry(**users.find_user(conn, login))
