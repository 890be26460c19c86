"""One transaction on the database a cloud config names, for the commands that write to it.

Every such command (``coldgate cloud gateways``, ``coldgate cloud users``)
migrates first, as ``cloud run`` does, so a command run before the service
ever started still finds its tables; and turns what the operator can fix (a
bad config, refused input) into a plain message rather than a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import Connection

__all__ = ["transaction"]


@contextmanager
def transaction(config_path: Path, refused: tuple[type[Exception], ...] = ()) -> Iterator[Connection]:
    """The block's writes in one transaction; an error of ``refused`` rolls it back and reaches the
    operator as its message."""
    from coldgate.cloud.config import load_cloud_config
    from coldgate.cloud.db.engine import database_url, make_engine
    from coldgate.cloud.db.migrate import migrate
    from coldgate.configfile import ConfigError

    try:
        url = database_url(load_cloud_config(config_path).database)
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
