"""What the sign-in, token and user endpoints take and return.

Request bodies are lenient in type only as far as JSON goes: lengths are
bounded here (so megabytes never reach argon2 or the database) and the
content is judged by ``cloud/identity`` (``UserInputError`` names the field),
so the API and the CLI refuse exactly the same values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEntryOut",
    "AuditList",
    "LoginBody",
    "MachineTokenBody",
    "Me",
    "NewToken",
    "NewUserBody",
    "PasswordBody",
    "RolesBody",
    "SessionInfo",
    "TokenBody",
    "TokenEntry",
    "TokenList",
    "UserEntry",
    "UserList",
]

_STRICT = ConfigDict(extra="forbid")


class LoginBody(BaseModel):
    model_config = _STRICT
    login: str = Field(max_length=256)
    password: str = Field(max_length=4096)


class SessionInfo(BaseModel):
    """Signed in: the cookie is set; send ``csrf_token`` as ``X-CSRF-Token`` with every change."""

    login: str
    printed_name: str
    roles: list[str]
    csrf_token: str
    expires_at: str
    idle_timeout_s: int


class Me(BaseModel):
    via: str
    user_id: str | None
    login: str | None
    name: str
    roles: list[str]
    permissions: list[str]
    token_id: str | None


class TokenBody(BaseModel):
    model_config = _STRICT
    label: str = Field(max_length=400, description="What the token is for (shown in listings).")
    expires_in_days: int = Field(default=90, description="1 to 366 days.")


class MachineTokenBody(TokenBody):
    machine: str = Field(max_length=128, description="The integration's name, as the audit trail shows it.")
    roles: list[str] = Field(max_length=8, description="viewer and/or dock_operator.")


class NewToken(BaseModel):
    """The token is shown this once; only its hash is kept."""

    id: str
    token: str
    expires_at: str


class TokenEntry(BaseModel):
    id: str
    user_id: str | None
    login: str | None
    machine: str | None
    roles: list[str] | None
    label: str
    created_at: str
    created_by: str
    expires_at: str
    revoked_at: str | None
    revoked_by: str | None


class TokenList(BaseModel):
    items: list[TokenEntry]


class UserEntry(BaseModel):
    id: str
    login: str
    printed_name: str
    email: str
    phone: str | None
    active: bool
    locked: bool
    failed_logins: int
    created_at: str | None
    disabled_at: str | None
    password_changed_at: str | None
    roles: list[str]


class UserList(BaseModel):
    items: list[UserEntry]


class NewUserBody(BaseModel):
    model_config = _STRICT
    login: str = Field(max_length=256)
    printed_name: str = Field(max_length=400)
    email: str = Field(max_length=400)
    phone: str | None = Field(default=None, max_length=64)
    roles: list[str] = Field(default_factory=list, max_length=16)
    password: str = Field(max_length=4096)


class RolesBody(BaseModel):
    model_config = _STRICT
    roles: list[str] = Field(max_length=16)


class PasswordBody(BaseModel):
    model_config = _STRICT
    password: str = Field(max_length=4096)


class AuditEntryOut(BaseModel):
    """One audit entry; ``before``/``after`` are the JSON stored (canonical, RFC 8785)."""

    seq: int
    at: str
    actor_id: str | None
    actor_name: str
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any
    reason: str | None
    request_id: str | None
    client: str | None
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    total: int = Field(description="Entries matching the filters, whatever limit and offset.")
    items: list[AuditEntryOut]
