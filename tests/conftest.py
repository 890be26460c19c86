"""The test rig: real peers on free ports, each torn down afterwards.

No test relies on the machine's own broker or database: each session gets a
private Mosquitto and throw-away PostgreSQL databases (see tests/rig/).  Rig
modules that need an extra (psycopg for PostgreSQL, pymodbus for the Modbus
farms) are imported inside their fixtures, so a Pi with only the gateway extra
can still run the tests that concern it.
"""

from __future__ import annotations

import contextlib
import shutil
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
def pg_database(
    request: pytest.FixtureRequest, _pg_fallback_cluster: PrivateCluster | None
) -> Iterator[ThrowawayDatabase]:
    """A fresh PostgreSQL database, dropped after the test: empty, or, for a test that uses ``engine``,
    already migrated (a copy of the session's migrated template)."""
    from tests.rig.postgres import ThrowawayDatabase

    template = None
    if "engine" in request.fixturenames:
        template = request.getfixturevalue("_migrated_templates").postgresql()
    if _pg_fallback_cluster is None:
        database = ThrowawayDatabase.on_server(template=template)
    else:
        database = ThrowawayDatabase.in_cluster(_pg_fallback_cluster, template=template)
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


class _MigratedTemplates:
    """One database per dialect migrated once per session, copied for each test that wants a migrated
    one: migrating cost 0.07 s on SQLite and 0.42 s on PostgreSQL per test, copying is a file copy."""

    def __init__(self, request: pytest.FixtureRequest, base: Path) -> None:
        self._request, self._base = request, base
        self._sqlite: Path | None = None
        self._pg: ThrowawayDatabase | None = None

    def sqlite(self) -> Path:
        from coldgate.cloud.db import migrate

        if self._sqlite is None:
            path = self._base / "template.sqlite3"
            migrate(f"sqlite:///{path}")  # its engine is disposed: the file is whole, nothing in a WAL
            self._sqlite = path
        return self._sqlite

    def postgresql(self) -> ThrowawayDatabase:
        from coldgate.cloud.db import migrate
        from tests.rig.postgres import ThrowawayDatabase

        if self._pg is None:
            cluster = self._request.getfixturevalue("_pg_fallback_cluster")
            if cluster is None:
                database = ThrowawayDatabase.on_server()
            else:
                database = ThrowawayDatabase.in_cluster(cluster)
            migrate(database.url)
            self._pg = database
        return self._pg

    def drop(self) -> None:
        if self._pg is not None:
            self._pg.drop()


def _copied(database: ThrowawayDatabase, url: str) -> bool:
    """``url`` is ``database``'s, which was made a copy of the migrated template (``pg_database``)."""
    return str(database.url) == url and database.template is not None


@pytest.fixture(scope="session")
def _migrated_templates(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_MigratedTemplates]:
    templates = _MigratedTemplates(request, tmp_path_factory.mktemp("migrated"))
    yield templates
    templates.drop()


@pytest.fixture
def engine(
    db_url: str, request: pytest.FixtureRequest, _migrated_templates: _MigratedTemplates
) -> Iterator[Any]:
    """A migrated cloud database (a copy of the session's migrated template) and the writer engine
    ingest uses on it (tests may override), with the rig's gateways enrolled
    (``tests.rig.ingest.ENROLLED``, site ``site1``)."""
    pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")
    from coldgate.cloud.db import migrate
    from coldgate.cloud.db.engine import make_engine
    from tests.rig.ingest import enrol

    sqlite_file = Path(db_url.removeprefix("sqlite:///"))
    if db_url.startswith("sqlite:///") and not sqlite_file.exists():
        shutil.copyfile(_migrated_templates.sqlite(), sqlite_file)
    elif not (db_url.startswith("postgresql") and _copied(request.getfixturevalue("pg_database"), db_url)):
        migrate(db_url)  # a database the test made itself
    engine = make_engine(db_url, writer=True)
    enrol(engine)
    yield engine
    engine.dispose()


#: The tests that run a whole site in real time (gateway threads, the simulator's LLRP reader replaying
#: passes at the speed of a forklift, the farm's scenario clock): each is judged on timing a starved CPU
#: breaks (a portal that hears a pass's reads seconds late judges them late), so two must not run at once
#: on a 2-core machine.  They share one xdist scope, so one worker runs them one after another.
REAL_TIME_SITE = frozenset({
    "tests/test_dock_end_to_end.py", "tests/test_case_end_to_end.py", "tests/test_recall_end_to_end.py",
})  # fmt: skip


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (a file's tests on one worker, in order), with :data:`REAL_TIME_SITE`'s files
    as one unit."""
    from xdist.scheduler import LoadFileScheduling

    class RealTimeSiteTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "real-time-site" if scope in REAL_TIME_SITE else scope

    return RealTimeSiteTogether(config, log)
