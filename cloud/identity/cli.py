"""``coldgate cloud gateways enroll|revoke``: a gateway's broker login, made and taken away.

The password file is rewritten whole (to a temporary file beside it, then
renamed), keeping its mode, so the broker never reads half a file; Mosquitto
reads it again on SIGHUP (``systemctl reload mosquitto``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from coldgate.cloud.identity.broker_logins import (
    gateway_config_snippet,
    mosquitto_hash,
    new_password,
    with_login,
    without_login,
)
from coldgate.contract.ids import is_id

DEFAULT_PASSWD = "/etc/mosquitto/coldgate-gateways.passwd"
SECRET_ON_PI = "/etc/coldgate/secrets/mqtt-password"


def _write_whole(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(text)
    os.chmod(tmp.name, mode)
    os.replace(tmp.name, path)


def _check_id(what: str, value: str) -> None:
    if not is_id(value):
        raise click.BadParameter(f"{value!r} is not an id (1-64 of A-Z a-z 0-9 _ . -)", param_hint=what)


passwd_option = click.option(
    "--passwd-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_PASSWD,
    show_default=True,
    help="The gateways' Mosquitto password file (deploy/mosquitto/coldgate.conf, listener 8883).",
)


@click.group("gateways")
def gateways() -> None:
    """Gateways' broker logins: enroll a new gateway, revoke one."""


@gateways.command("enroll")
@click.argument("gateway")
@click.option("--site", required=True, help="The site the gateway belongs to.")
@click.option("--broker", default="mqtts://mqtt.example.com:8883", show_default=True,
              help="The broker URL the gateway connects to (the gateways' listener).")  # fmt: skip
@passwd_option
def enroll(gateway: str, site: str, broker: str, passwd_file: Path) -> None:
    """Give GATEWAY a broker login (username = its id, a new random password) and print its config."""
    _check_id("GATEWAY", gateway)
    _check_id("--site", site)
    if not passwd_file.parent.is_dir():
        raise click.ClickException(f"{passwd_file.parent}: no such folder")
    password = new_password()
    current = passwd_file.read_text() if passwd_file.exists() else ""
    updated, replaced = with_login(current, gateway, mosquitto_hash(password))
    _write_whole(passwd_file, updated)
    done = "re-enrolled (new password)" if replaced else "enrolled"
    click.echo(f"{done} {gateway}: login written to {passwd_file}")
    click.echo("Make the broker read it: systemctl reload mosquitto")
    click.echo(f"\nOn the gateway, {SECRET_ON_PI} (chmod 600, owner coldgate) holds this password,")
    click.echo("shown only now:")
    click.echo(f"  {password}")
    click.echo("\nand /etc/coldgate/gateway.toml starts with:\n")
    click.echo(gateway_config_snippet(gateway, site, broker, SECRET_ON_PI))
    click.echo("No ACL lines to add: coldgate.acl grants every gateway its own topics by username (%u).")


@gateways.command("revoke")
@click.argument("gateway")
@passwd_option
def revoke(gateway: str, passwd_file: Path) -> None:
    """Take GATEWAY's broker login away (it is refused from the broker's next reload on)."""
    _check_id("GATEWAY", gateway)
    if not passwd_file.exists():
        raise click.ClickException(f"{passwd_file}: no such file")
    remaining, found = without_login(passwd_file.read_text(), gateway)
    if not found:
        raise click.ClickException(f"{gateway} has no login in {passwd_file}")
    _write_whole(passwd_file, remaining)
    click.echo(f"revoked {gateway}: login removed from {passwd_file}")
    click.echo("Make the broker read it: systemctl reload mosquitto (open connections end then)")
