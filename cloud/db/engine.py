"""Turn the cloud config's database table into a SQLAlchemy URL.

The password lives in ``database.password_file``, never in the URL (so the
config can be world-readable); it is read here, at connect time.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import URL, make_url

from cloud.config import DatabaseConfig
from coldgate.configfile import ConfigError

__all__ = ["database_url"]


def database_url(config: DatabaseConfig) -> URL:
    """The URL of ``config`` with the password from its password file, if any."""
    url = make_url(config.url)
    if config.password_file is None:
        return url
    try:
        password = Path(config.password_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError("database.password_file", f"cannot read: {exc.strerror}") from exc
    return url.set(password=password)
