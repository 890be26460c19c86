"""The rig itself: each private peer really runs, answers, and can be stopped."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import msgspec
import paho.mqtt.client as mqtt
import psycopg
import pytest
import serial

from coldgate.contract.codec import validate
from coldgate.contract.units import Quantity
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import UNSEQUENCED
from tests.rig.clocks import FakeClock
from tests.rig.items import BOOT, T0, alert, priority_items, reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.outbox import MINUTE
from tests.rig.postgres import PrivateCluster, ThrowawayDatabase
from tests.rig.pty import PtyPair
from tests.rig.uplink import CLOCK, uplink_config


def _client(broker: MosquittoBroker, client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTProtocolVersion.MQTTv5
    )
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def _retained(broker: MosquittoBroker, topic: str) -> bytes | None:
    """The retained payload on ``topic``, or None when the broker holds none.

    A retained message is sent right after SUBACK; a marker published after the
    subscription arrives behind it on the same subscription, so once the marker
    is in, whatever came before it is the retained message (no waiting on a timer).
    """
    got: list[bytes] = []
    subscribed = threading.Event()
    marker_in = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTProtocolVersion.MQTTv5)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.payload == b"--marker--":
            marker_in.set()
        else:
            got.append(message.payload)

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    client.publish(topic, b"--marker--", qos=1)
    assert marker_in.wait(5)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


def test_private_broker_delivers_qos1(mosquitto: MosquittoBroker) -> None:
    assert mosquitto.port != 1883
    received: list[bytes] = []
    done = threading.Event()
    sub = _client(mosquitto, "rig-sub")

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        received.append(message.payload)
        if len(received) == 100:
            done.set()

    subscribed = threading.Event()
    sub.on_message = on_message
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.subscribe("rig/test", qos=1)
    assert subscribed.wait(5)
    pub = _client(mosquitto, "rig-pub")
    infos = [pub.publish("rig/test", str(i).encode(), qos=1) for i in range(100)]
    for info in infos:
        info.wait_for_publish(5)
    assert done.wait(5)
    assert received == [str(i).encode() for i in range(100)]
    for client in (sub, pub):
        client.loop_stop()
        client.disconnect()


def test_broker_restart_keeps_or_drops_retained_by_persistence(mosquitto_own: MosquittoBroker) -> None:
    pub = _client(mosquitto_own, "rig-retain")
    pub.publish("rig/retained", b"kept", qos=1, retain=True).wait_for_publish(5)
    pub.loop_stop()
    pub.disconnect()

    mosquitto_own.restart()  # clean stop: persistence file written
    assert _retained(mosquitto_own, "rig/retained") == b"kept"

    mosquitto_own.restart(persistence=False)
    assert _retained(mosquitto_own, "rig/retained") is None


def test_broker_kill_frees_port_and_restarts_on_same_port(mosquitto_own: MosquittoBroker) -> None:
    port = mosquitto_own.port
    mosquitto_own.kill()
    assert not mosquitto_own.running
    with pytest.raises(ConnectionRefusedError):
        mqtt.Client(mqtt.CallbackAPIVersion.VERSION2).connect("127.0.0.1", port)
    mosquitto_own.start()
    assert mosquitto_own.port == port and mosquitto_own.running


def test_throwaway_database_is_empty_and_writable(pg_database: ThrowawayDatabase) -> None:
    with psycopg.connect(pg_database.dsn) as conn:
        tables = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("create table t (x int primary key)")
        conn.execute("insert into t values (1), (2)")
        assert conn.execute("select sum(x) from t").fetchone() == (3,)
    assert pg_database.url.endswith(f"/{pg_database.name}")


def test_private_cluster_stops_and_starts(pg_cluster: PrivateCluster) -> None:
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute("create table kept (x int)")
        conn.execute("insert into kept values (42)")
    pg_cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_cluster.dsn(), connect_timeout=2)
    pg_cluster.start()
    with psycopg.connect(pg_cluster.dsn()) as conn:
        assert conn.execute("select x from kept").fetchone() == (42,)


def test_pty_pair_carries_raw_bytes_both_ways(pty_pair: PtyPair) -> None:
    code = b"]d2\x1d0104012345012345\x1d10LOT-7\r"
    with serial.Serial(pty_pair.device, 9600, timeout=1) as port:
        pty_pair.write(code)
        assert port.read_until(b"\r") == code
        port.write(b"\x01\x04\x00\x01\x00\x02\x20\x0b")
        assert pty_pair.read_until(b"\x0b") == b"\x01\x04\x00\x01\x00\x02\x20\x0b"


def test_factories_build_valid_items() -> None:
    for item in [
        reading(),
        reading(None),
        reading(45.0, quantity=Quantity.HUMIDITY),
        alert(),
        *priority_items(),
    ]:
        assert item.seq == UNSEQUENCED
        validate(msgspec.structs.replace(item, seq=1))


def test_factories_build_valid_clock_stamped_items() -> None:
    for item in (
        reading(stamp=CLOCK.stamp()),
        reading(-1.0, sensor="cr1-t02", stamp=CLOCK.stamp()),
        alert(7, stamp=CLOCK.stamp()),
    ):
        assert item.seq == UNSEQUENCED
        validate(msgspec.structs.replace(item, seq=1))


def test_fake_clock_stamps() -> None:
    clock = FakeClock(synced=False)
    clock.advance(MINUTE)
    assert clock.stamp() == Stamp(wall_ms=T0 + MINUTE, mono_ms=1_060_000, boot=BOOT, synced=False)


def test_uplink_config_takes_the_broker_url() -> None:
    config = uplink_config("mqtt://127.0.0.1:1884", inflight_max_batches=3)
    assert config.address.port == 1884 and config.inflight_max_batches == 3


# -- where shared test code lives ---------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _imports_a_test_module(path: Path) -> list[str]:
    return sorted(m for m in _imported_modules(path) if m.startswith("tests.test_"))


SHARED = [*REPO.glob("tests/rig/*.py"), *REPO.glob("bench/*.py")]


def test_shared_test_code_lives_in_the_rig_not_in_test_modules() -> None:
    # A test module that imports another runs the other's module-level code and couples their
    # fixtures; benchmarks import only the rig, never a test module.
    offenders = {
        p.relative_to(REPO).as_posix(): _imports_a_test_module(p)
        for p in sorted([*REPO.glob("tests/*.py"), *SHARED])
        if _imports_a_test_module(p)
    }
    assert offenders == {}


def test_the_rig_and_the_benchmarks_are_not_collected_as_tests() -> None:
    assert [p.name for p in SHARED if p.name.startswith("test_")] == []


def test_the_check_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from tests.test_portal import CASES\nimport tests.test_epc\nfrom tests.rig import dock\n")
    assert _imports_a_test_module(bad) == ["tests.test_epc", "tests.test_portal", "tests.test_portal.CASES"]
