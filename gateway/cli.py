"""``coldgate gateway``: commands that run on the Pi."""

from __future__ import annotations

import click


@click.group()
def gateway() -> None:
    """Run and inspect the edge gateway."""


@gateway.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def check_config(path: str) -> None:
    """Load a gateway TOML file and report the first mistake, or a summary."""
    from coldgate.configfile import ConfigError
    from gateway.config import load_gateway_config

    try:
        config = load_gateway_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{path}: ok: gateway {config.gateway.id} at site {config.gateway.site}, "
        f"{len(config.sensors)} sensor(s)"
    )
