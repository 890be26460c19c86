"""``coldgate cloud``: commands that run the cloud service."""

from __future__ import annotations

import click


@click.group()
def cloud() -> None:
    """Run the cloud ingest, API and migrations."""


@cloud.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def check_config(path: str) -> None:
    """Load a cloud TOML file and report the first mistake, or a summary."""
    from cloud.config import load_cloud_config
    from coldgate.configfile import ConfigError

    try:
        config = load_cloud_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: ok: database {config.database.url.split('://', 1)[0]}")


@cloud.command("migrate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=str))
def migrate_command(path: str) -> None:
    """Upgrade the configured database to the newest schema (safe to repeat)."""
    from cloud.config import load_cloud_config
    from cloud.db.engine import database_url
    from cloud.db.migrate import migrate
    from coldgate.configfile import ConfigError

    try:
        config = load_cloud_config(path)
        url = database_url(config.database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    migrate(url)
    click.echo(f"{path}: database {url.render_as_string(hide_password=True)} is at the newest schema")
