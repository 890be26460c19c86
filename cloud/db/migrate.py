"""Upgrade a database to the newest schema from code, without an alembic.ini.

The service and the CLI both call :func:`migrate`; building the Alembic config
in code keeps the migrations inside the installed package (no file layout to
ship next to the config) and makes the upgrade testable.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine

__all__ = ["MIGRATIONS_DIR", "alembic_config", "migrate"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | URL) -> Config:
    """An Alembic config pointing at the packaged migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    return config


def migrate(url: str | URL | Engine, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``; a database already there is left alone."""
    engine = url if isinstance(url, Engine) else create_engine(url)
    try:
        with engine.begin() as conn:
            config = alembic_config(engine.url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        if engine is not url:
            engine.dispose()
