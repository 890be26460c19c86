"""``coldgate cloud users add|list|disable|unlock|roles|reset-password``: people, from the cloud host.

The CLI is how the first admin comes to be (``users add --admin``), so it
needs no login of its own: whoever runs it on the cloud host is recorded in
the audit trail as ``<unix user> (coldgate CLI)``.  Each command is one
transaction on the configured database (migrated first): the change and its
audit entry land together or not at all.

A password is typed twice (hidden), or read from the first line of
``--password-file`` for automation; it is never an option's value, which
would end up in the shell's history and in ``ps``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coldgate.cloud.cli_transaction import cli_actor, load_config, transaction, utc_now
from coldgate.cloud.cli_transaction import config_option as config_option_for
from coldgate.cloud.identity.roles import ROLES

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from coldgate.cloud.config import CloudConfig


def _transaction(config: CloudConfig) -> AbstractContextManager[Connection]:
    """One transaction on the cloud's database; refused input (``UserInputError``, which names the
    field) rolls it back and reaches the operator as a plain message."""
    return transaction(config, refused=(ValueError,))


def _password(password_file: Path | None) -> str:
    """The new password: the file's first line (without its line ending), or typed twice."""
    if password_file is None:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with password_file.open(encoding="utf-8", newline="") as handle:
            line = handle.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"--password-file: {exc}") from exc
    return line.removesuffix("\n").removesuffix("\r")


config_option = config_option_for("The cloud's TOML file: the users live in its database.")
password_file_option = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the password from this file's first line (automation) instead of typing it twice.",
)
role_option = click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(sorted(ROLES)),
    help="A role (repeatable).",
)


@click.group("users")
def users() -> None:
    """People who use the cloud: add, list, disable, unlock, roles, reset-password (never delete)."""


@users.command("add")
@click.argument("login")
@click.option("--name", "printed_name", required=True, help="The printed name (shown in signatures).")
@click.option("--email", required=True, help="E-mail address.")
@click.option("--phone", help="Phone number.")
@role_option
@click.option("--admin", is_flag=True, help="Also give the admin role (the first admin is made so).")
@password_file_option
@config_option
def add(
    login: str,
    printed_name: str,
    email: str,
    phone: str | None,
    roles: tuple[str, ...],
    admin: bool,
    password_file: Path | None,
    config_path: Path,
) -> None:
    """Add LOGIN (never reused, also once disabled) with a password and roles."""
    from coldgate.cloud.identity.users import add_user, check_login_name

    try:
        check_login_name(login)  # before the password is typed twice for nothing
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    config = load_config(config_path)
    password = _password(password_file)
    held = {*roles, *(["admin"] if admin else [])}
    with _transaction(config) as conn:
        user_id = add_user(
            conn,
            login=login,
            printed_name=printed_name,
            email=email,
            phone=phone,
            password=password,
            roles=held,
            by=cli_actor(),
            now=utc_now(),
            min_length=config.identity.password_min_length,
        )
    shown = ", ".join(sorted(held)) or "(none)"
    click.echo(f"added {login.strip().lower()} ({user_id}) with role(s) {shown}")


@users.command("list")
@config_option
def list_command(config_path: Path) -> None:
    """One line per user, disabled ones too: login, id, printed name, e-mail, roles, state."""
    from coldgate.cloud.identity.users import list_users

    with _transaction(load_config(config_path)) as conn:
        found = list_users(conn)
    click.echo("login\tid\tprinted_name\temail\troles\tstate")
    for user in found:
        state = "disabled" if not user["active"] else "locked" if user["locked"] else "active"
        click.echo(
            f"{user['login']}\t{user['id']}\t{user['printed_name']}\t{user['email']}\t"
            f"{','.join(user['roles']) or '-'}\t{state}"
        )
    click.echo(f"{len(found)} user(s)")


@users.command("disable")
@click.argument("login")
@config_option
def disable(login: str, config_path: Path) -> None:
    """Disable LOGIN: no more logins; the user and their login stay (never deleted, never reused)."""
    from coldgate.cloud.identity.users import disable_user

    with _transaction(load_config(config_path)) as conn:
        disable_user(conn, login, by=cli_actor(), now=utc_now())
    click.echo(f"disabled {login}")


@users.command("unlock")
@click.argument("login")
@config_option
def unlock(login: str, config_path: Path) -> None:
    """Unlock LOGIN after too many failed logins."""
    from coldgate.cloud.identity.users import unlock_user

    with _transaction(load_config(config_path)) as conn:
        unlock_user(conn, login, by=cli_actor(), now=utc_now())
    click.echo(f"unlocked {login}")


@users.command("roles")
@click.argument("login")
@role_option
@click.option("--none", "no_roles", is_flag=True, help="Take every role away.")
@config_option
def roles_command(login: str, roles: tuple[str, ...], no_roles: bool, config_path: Path) -> None:
    """Replace LOGIN's roles with the --role values given (or --none)."""
    from coldgate.cloud.identity.users import set_roles

    if bool(roles) == no_roles:
        raise click.UsageError("give --role R (one or more) or --none")
    with _transaction(load_config(config_path)) as conn:
        set_roles(conn, login, roles, by=cli_actor(), now=utc_now())
    click.echo(f"{login}: role(s) now {', '.join(sorted(set(roles))) or '(none)'}")


@users.command("reset-password")
@click.argument("login")
@password_file_option
@config_option
def reset_password_command(login: str, password_file: Path | None, config_path: Path) -> None:
    """Give LOGIN a new password (typed twice, or from --password-file)."""
    from coldgate.cloud.identity.users import reset_password

    config = load_config(config_path)
    password = _password(password_file)
    with _transaction(config) as conn:
        minimum = config.identity.password_min_length
        reset_password(conn, login, password, by=cli_actor(), now=utc_now(), min_length=minimum)
    click.echo(f"new password set for {login}")
