"""The test rig: real peers on free ports, each torn down afterwards.

No test relies on the machine's own broker or database: each session gets a
private Mosquitto and throw-away PostgreSQL databases (see tests/rig/).  Rig
modules that need an extra (psycopg for PostgreSQL, pymodbus for the Modbus
farms) are imported inside their fixtures, so a Pi with only the gateway extra
can still run the tests that concern it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.rig.browser import browser
from tests.rig.modbus import modbus_farm_config, modbus_rtu_farm, modbus_tcp_farm
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.pty import PtyPair

# Fixtures defined in the rig and registered here for every test (imported, not redefined).
__all__ = ["browser", "modbus_farm_config", "modbus_rtu_farm", "modbus_tcp_farm"]

if TYPE_CHECKING:
    from tests.rig.postgres import PrivateCluster, ThrowawayDatabase


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """One private broker for the whole session (shared, never restarted)."""
    broker = MosquittoBroker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mosquitto_own(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A broker for one test only: the test may stop, kill and restart it."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.kill()


@contextlib.contextmanager
def _private_cluster() -> Iterator[PrivateCluster]:
    """A started private PostgreSQL cluster, destroyed afterwards (also when it failed to start)."""
    from tests.rig.postgres import PrivateCluster

    cluster = PrivateCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def _pg_fallback_cluster() -> Iterator[PrivateCluster | None]:
    pytest.importorskip("psycopg", reason="PostgreSQL tests need the [cloud] extra")
    from tests.rig.postgres import server_available

    if server_available():
        yield None
        return
    with _private_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(_pg_fallback_cluster: PrivateCluster | None) -> Iterator[ThrowawayDatabase]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    from tests.rig.postgres import ThrowawayDatabase

    if _pg_fallback_cluster is None:
        database = ThrowawayDatabase.on_server()
    else:
        database = ThrowawayDatabase.in_cluster(_pg_fallback_cluster)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def pg_cluster() -> Iterator[PrivateCluster]:
    """A private cluster the test may stop and start (outage tests)."""
    pytest.importorskip("psycopg", reason="PostgreSQL tests need the [cloud] extra")
    with _private_cluster() as cluster:
        yield cluster


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """A pseudo-terminal pair: ``.device`` for the code under test, write/read for the test."""
    with PtyPair() as pair:
        yield pair


@pytest.fixture
def victoria_metrics(tmp_path: Path):
    """A private VictoriaMetrics (accepts InfluxDB ``/api/v2/write``) for one test; the
    test may stop and start it (same port, same data).  Skips when the package is absent."""
    from tests.rig.victoria import VictoriaMetrics, find_binary

    if find_binary() is None:
        pytest.skip("victoria-metrics is not installed (scripts/setup.sh installs it)")
    server = VictoriaMetrics(tmp_path / "victoria-metrics")
    server.start()
    try:
        yield server
    finally:
        server.stop(timeout=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The cloud database on both dialects: a SQLite file, or a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    return str(request.getfixturevalue("pg_database").url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Any]:
    """A migrated cloud database and the writer engine ingest uses on it (tests may override),
    with the rig's gateways enrolled (``tests.rig.ingest.ENROLLED``, site ``site1``)."""
    pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")
    from coldgate.cloud.db import migrate
    from coldgate.cloud.db.engine import make_engine
    from tests.rig.ingest import enrol

    migrate(db_url)
    engine = make_engine(db_url, writer=True)
    enrol(engine)
    yield engine
    engine.dispose()
