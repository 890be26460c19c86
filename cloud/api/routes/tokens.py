"""Every API token, for admins: list, make machine tokens for integrations, revoke anyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from coldgate.cloud.api.auth import signed_in
from coldgate.cloud.api.schemas_identity import MachineTokenBody, NewToken, TokenEntry, TokenList
from coldgate.cloud.api.writes import acting, utc_now, writing
from coldgate.cloud.identity.principal import Principal
from coldgate.cloud.identity.tokens import create_machine_token, list_tokens, revoke_token
from coldgate.cloud.identity.users import iso

__all__ = ["router"]

router = APIRouter(tags=["tokens"])
Who = Annotated[Principal, Depends(signed_in)]


@router.get("/tokens", response_model=TokenList)
def all_tokens(request: Request) -> TokenList:
    """Every token, people's and machines', newest first, without secrets."""
    with request.app.state.engine.connect() as conn:
        return TokenList(items=[TokenEntry(**t) for t in list_tokens(conn, all_tokens=True)])


@router.post("/tokens/machine", response_model=NewToken, status_code=status.HTTP_201_CREATED)
def new_machine_token(who: Who, body: MachineTokenBody, request: Request) -> NewToken:
    """A token for an integration, holding viewer and/or dock_operator; shown this once."""
    with writing(request) as conn:
        issued = create_machine_token(
            conn, body.machine, body.roles, label=body.label, days=body.expires_in_days,
            by=acting(request), now=utc_now(),
        )  # fmt: skip
    return NewToken(id=issued.id, token=issued.token, expires_at=iso(issued.expires_at) or "")


@router.delete("/tokens/{token_id}", response_model=TokenEntry, responses={404: {"description": "Unknown."}})
def revoke_any_token(who: Who, token_id: str, request: Request) -> TokenEntry:
    """Revoke anyone's token (a person who left, a leaked integration key)."""
    with writing(request) as conn:
        return TokenEntry(**revoke_token(conn, token_id, by=acting(request), now=utc_now()))
