"""Turn the cloud config's database table into a SQLAlchemy URL and an engine.

The password lives in ``database.password_file``, never in the URL (so the
config can be world-readable); it is read here, at connect time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url

from coldgate.cloud.config import DatabaseConfig
from coldgate.mqtt_secrets import read_secret

__all__ = ["database_url", "make_engine"]


def database_url(config: DatabaseConfig) -> URL:
    """The URL of ``config`` with the password from its password file, if any."""
    url = make_url(config.url)
    if config.password_file is None:
        return url
    # The same reading as every other secret: the first line, and an empty file is an error
    # (an empty password would only fail later, at the first connection, far from the cause).
    return url.set(password=read_secret(config.password_file, "database.password_file"))


def make_engine(url: str | URL, *, writer: bool = False, pool_size: int = 5) -> Engine:
    """An engine for the cloud's database, with the settings each dialect needs.

    PostgreSQL: ``pool_pre_ping`` so that connections broken by a database
    restart are replaced instead of failing the next transaction.  SQLite: WAL
    (readers never block the writer), a busy timeout, and for ``writer``
    engines ``BEGIN IMMEDIATE``: pysqlite otherwise starts transactions lazily,
    so two writers both read, then one fails to upgrade its lock with
    "database is locked" instead of waiting its turn.
    """
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={
                # A database that vanishes from the network must fail, not hang a worker holding
                # unacknowledged messages: connect timeout, TCP keepalives, and a statement ceiling
                # (a cancelled statement is an OperationalError: retried, never dead-lettered).
                "connect_timeout": 10,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
                "options": "-c statement_timeout=300000",
            },
        )
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        if url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: in WAL mode NORMAL may lose the last commits on power loss, and ingest acks on commit.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine
