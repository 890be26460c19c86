"""``coldgate cloud sites list|time-zone``: sites and their time zones, from the cloud host.

Like ``coldgate cloud users``, each command is one transaction on the
configured database (migrated first), and refused input reaches the operator
as a plain message naming the field.  A site's zone is a setting only admins
change (``settings.manage``), so ``time-zone`` names the person who decides it
(``--by LOGIN``): they must be an active user holding that permission, and the
audit entry records them (their printed name and user id) with the operating-
system account that ran the command as its client (``cli_actor``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from coldgate.cloud.cli_transaction import cli_actor, load_config, transaction, utc_now

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from coldgate.cloud.audit.log import Actor

__all__ = ["sites"]

#: What changing a site's settings takes (``cloud/api/access.py`` asks the same of the API route).
PERMISSION = "settings.manage"


def acting_as(
    conn: Connection, login: str, permission: str = PERMISSION, doing: str = "change sites"
) -> Actor:
    """The audit trail's actor for ``--by LOGIN``: refused (a ClickException) unless LOGIN is an
    active, unlocked user whose roles hold ``permission`` (``settings.manage`` unless told)."""
    from coldgate.cloud.audit.log import Actor
    from coldgate.cloud.identity.roles import permissions
    from coldgate.cloud.identity.users import find_user

    user = find_user(conn, login)
    if not user["active"] or user["locked"]:
        state = "disabled" if not user["active"] else "locked"
        raise click.ClickException(f"--by: {user['login']!r} is {state}")
    if permission not in permissions(user["roles"]):
        held = ", ".join(user["roles"]) or "none"
        raise click.ClickException(f"--by: {user['login']!r} may not {doing} ({permission} is not "
                                   f"among the permissions of role(s) {held})")  # fmt: skip
    return Actor(user["printed_name"], user["id"], client=cli_actor().name)


@click.group("sites")
def sites() -> None:
    """Sites the cloud knows and the time zone each one's times are shown in."""


@sites.command("list")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
def list_command(config_path: str) -> None:
    """One line per site: id, time zone, name."""
    from coldgate.cloud.api.queries_sites import sites as known_sites

    with transaction(load_config(config_path), refused=(ValueError,)) as conn:
        found = known_sites(conn)
    click.echo("site\ttime_zone\tname")
    for site in found:
        click.echo(f"{site.id}\t{site.time_zone}\t{site.name or '-'}")
    click.echo(f"{len(found)} site(s)")


@sites.command("time-zone")
@click.argument("config_path", metavar="CONFIG", type=click.Path(dir_okay=False, path_type=str))
@click.argument("site")
@click.argument("zone")
@click.option("--by", "login", required=True, help="Login of the admin who decides it (audited).")
def time_zone_command(config_path: str, site: str, zone: str, login: str) -> None:
    """Show SITE's times in ZONE (an IANA name such as Europe/Berlin)."""
    from coldgate.cloud.catalog.sites import set_time_zone

    with transaction(load_config(config_path), refused=(ValueError,)) as conn:
        stored = set_time_zone(conn, site, zone, by=acting_as(conn, login), now=utc_now())
    click.echo(f"site {site}: times now shown in {stored}")
