"""What the cloud commands that write share: the config option, one transaction on the database the
config names, who is acting, and the time.

Every such command (``coldgate cloud gateways``, ``coldgate cloud users``)
migrates first, as ``cloud run`` does, so a command run before the service
ever started still finds its tables; and turns what the operator can fix (a
bad config, refused input) into a plain message rather than a traceback.
"""

from __future__ import annotations

import datetime
import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from coldgate.cloud.audit.log import Actor
    from coldgate.cloud.config import CloudConfig

__all__ = ["DEFAULT_CONFIG", "cli_actor", "config_option", "load_config", "transaction", "utc_now"]

DEFAULT_CONFIG = "/etc/coldgate/cloud.toml"


def config_option(help: str) -> Callable[[Any], Any]:
    """``--config PATH`` (the cloud's TOML file), saying what the command keeps in its database."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_CONFIG,
        show_default=True,
        help=help,
    )


def load_config(config_path: str | Path) -> CloudConfig:
    """The cloud config at ``config_path``; a mistake in it reaches the operator as a plain message."""
    from coldgate.cloud.config import load_cloud_config
    from coldgate.configfile import ConfigError

    try:
        return load_cloud_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def transaction(config: CloudConfig, refused: tuple[type[Exception], ...] = ()) -> Iterator[Connection]:
    """The block's writes in one transaction on ``config``'s database (migrated first); an error of
    ``refused`` rolls it back and reaches the operator as its message."""
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.cloud.db.migrate import migrate
    from coldgate.configfile import ConfigError

    try:
        url = database_url(config.database)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    migrate(url)
    engine = make_engine(url, writer=True, pool_size=1)
    try:
        with engine.begin() as conn:
            yield conn
    except refused as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()


def cli_actor() -> Actor:
    """Who ran the command, as the audit trail names them: the operating-system user on the cloud host
    (people log in through the API and the browser; on the host, the account is what holds to account)."""
    from coldgate.cloud.audit.log import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        who = "unknown"
    return Actor(f"{who} (coldgate CLI)")


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
