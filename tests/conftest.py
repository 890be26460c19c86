"""The test rig: real peers on free ports, each torn down afterwards.

No test relies on the machine's own broker or database: each session gets a
private Mosquitto and throw-away PostgreSQL databases (see tests/rig/).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rig.modbus import modbus_farm_config, modbus_rtu_farm, modbus_tcp_farm
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.postgres import PrivateCluster, ThrowawayDatabase, server_available
from tests.rig.pty import PtyPair

# pymodbus servers over TCP and over a pseudo-terminal pair (RTU framing), serving
# the simulator's loggers; a test module overrides ``modbus_farm_config`` to change the farm.
__all__ = ["modbus_farm_config", "modbus_rtu_farm", "modbus_tcp_farm"]


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


@pytest.fixture(scope="session")
def _pg_fallback_cluster() -> Iterator[PrivateCluster | None]:
    if server_available():
        yield None
        return
    cluster = PrivateCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_database(_pg_fallback_cluster: PrivateCluster | None) -> Iterator[ThrowawayDatabase]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    if _pg_fallback_cluster is None:
        database = ThrowawayDatabase.on_server()
    else:
        database = ThrowawayDatabase.in_cluster(_pg_fallback_cluster)
    yield database
    database.drop()


@pytest.fixture
def pg_cluster() -> Iterator[PrivateCluster]:
    """A private cluster the test may stop and start (outage tests)."""
    cluster = PrivateCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pty_pair() -> Iterator[PtyPair]:
    """A pseudo-terminal pair: ``.device`` for the code under test, write/read for the test."""
    with PtyPair() as pair:
        yield pair
