"""Who is asking: a person (through a browser session or their API token) or a machine.

One shape for every way in, so a route asks ``principal.permissions`` and the
audit trail gets ``principal.actor`` without caring how the caller signed in.
A person's roles are read when they ask, not when their token was made: a
role taken away, or a user disabled or locked, stops their tokens at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.identity.roles import permissions

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """``via`` says how they signed in: "session", "token" (a person's), "machine" (a machine token)
    or "tokens_file" (a line of the old read-only tokens file)."""

    via: Literal["session", "token", "machine", "tokens_file"]
    #: The user's id for a person; None for a machine.
    user_id: str | None
    #: The printed name for a person; "machine NAME" for a machine.
    name: str
    login: str | None
    roles: tuple[str, ...]
    #: The API token used, if any (its id, never its secret).
    token_id: str | None = None

    @property
    def permissions(self) -> frozenset[str]:
        """The roles' permissions; ``tokens.own`` only for a person (a machine makes no tokens)."""
        held = permissions(self.roles)
        return held if self.is_person else held - {"tokens.own"}

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.user_id)

    @property
    def is_person(self) -> bool:
        return self.user_id is not None
