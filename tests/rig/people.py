"""People for API tests: a user with given roles and an API token of theirs, made through the same
functions the CLI and API use (so each is audited like any other)."""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.identity.roles import ROLES
from coldgate.cloud.identity.tokens import create_user_token
from coldgate.cloud.identity.users import add_user

SETUP = Actor("test set-up (coldgate CLI)")
PASSWORD = "correct horse battery"
ALL_ROLES = tuple(ROLES)


def person(
    engine: Engine, login: str, roles: tuple[str, ...] = (), *, now: datetime.datetime | None = None
) -> tuple[str, str]:
    """Add ``login`` with ``roles`` and the password ``PASSWORD``; their user id and a fresh API token."""
    moment = now or datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        user_id = add_user(
            conn, login=login, printed_name=f"{login.title()} Tester", email=f"{login}@example.org",
            password=PASSWORD, roles=roles, by=SETUP, now=moment,
        )  # fmt: skip
        issued = create_user_token(conn, user_id, label="tests", days=30, by=SETUP, now=moment)
    return user_id, issued.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
