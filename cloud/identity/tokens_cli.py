"""``coldgate cloud tokens create|list|revoke``: API tokens from the cloud host.

For automation that cannot sign in first (a token for an ERP link, a
monitoring probe, a person's script) and for revoking a leaked token when
no admin can reach the API.  Each command is one transaction with its audit
entry; the actor is the OS user (``cli_actor``).  A new token is printed once,
on its own line on stdout, so ``TOKEN=$(coldgate cloud tokens create ...)``
works; everything else goes to stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from coldgate.cloud.cli_transaction import cli_actor, load_config, transaction, utc_now
from coldgate.cloud.cli_transaction import config_option as config_option_for
from coldgate.cloud.identity.tokens import MACHINE_ROLES, MAX_TOKEN_DAYS

config_option = config_option_for("The cloud's TOML file: the tokens live in its database.")


@click.group("tokens")
def tokens() -> None:
    """API tokens of people and machines: create (shown once), list, revoke (never deleted)."""


@tokens.command("create")
@click.option("--user", "login", help="The person the token acts for (with their roles when used).")
@click.option("--machine", help="Or: the integration's name (a machine token).")
@click.option(
    "--role", "roles", multiple=True, type=click.Choice(sorted(MACHINE_ROLES)), help="A machine token's role."
)
@click.option("--label", required=True, help="What the token is for (shown in listings).")
@click.option("--days", type=click.IntRange(1, MAX_TOKEN_DAYS), default=90, show_default=True)
@config_option
def create(
    login: str | None, machine: str | None, roles: tuple[str, ...], label: str, days: int, config_path: Path
) -> None:
    """Make a token for --user LOGIN or --machine NAME --role ...; it is printed once, on stdout."""
    from coldgate.cloud.identity.tokens import create_machine_token, create_user_token, user_id_of

    if (login is None) == (machine is None):
        raise click.UsageError("give exactly one of --user LOGIN and --machine NAME")
    if login is not None and roles:
        raise click.UsageError("--role is for machine tokens; a person's token takes their roles")
    with transaction(load_config(config_path), refused=(ValueError,)) as conn:
        if login is not None:
            issued = create_user_token(
                conn, user_id_of(conn, login), label=label, days=days, by=cli_actor(), now=utc_now()
            )
        else:
            assert machine is not None
            issued = create_machine_token(
                conn, machine, list(roles), label=label, days=days, by=cli_actor(), now=utc_now()
            )
    click.echo(f"token {issued.id}, expires {issued.expires_at:%Y-%m-%d %H:%M} UTC; shown once:", err=True)
    click.echo(issued.token)


@tokens.command("list")
@config_option
def list_command(config_path: Path) -> None:
    """Every token, newest first, without secrets: id, for whom, label, expiry, revoked."""
    from coldgate.cloud.identity.tokens import list_tokens

    with transaction(load_config(config_path), refused=(ValueError,)) as conn:
        found = list_tokens(conn, all_tokens=True)
    click.echo("id\tfor\tlabel\texpires_at\trevoked_at")
    for t in found:
        who = t["login"] or f"machine {t['machine']} ({','.join(t['roles'] or [])})"
        click.echo(f"{t['id']}\t{who}\t{t['label']}\t{t['expires_at']}\t{t['revoked_at'] or '-'}")


@tokens.command("revoke")
@click.argument("token_id")
@config_option
def revoke(token_id: str, config_path: Path) -> None:
    """Revoke TOKEN_ID (t-...): it stops working at the next request."""
    from coldgate.cloud.identity.tokens import revoke_token

    with transaction(load_config(config_path), refused=(ValueError,)) as conn:
        revoke_token(conn, token_id, by=cli_actor(), now=utc_now())
    click.echo(f"revoked {token_id}")
