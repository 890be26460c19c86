"""A whole dock on real parts, for the end-to-end tests of issue 15: the real cloud (``CloudService``:
ingest, scheduler with its binding job, down-link publisher, HTTP API, SQLite), a Mosquitto, the real
gateway service with dock door ``D1`` on the simulator's LLRP reader, a barcode scanner at the same
door on a pseudo-terminal, and the stack light on the simulated relay board over Modbus TCP.

People work it through the API as they would (``DockWorld.call``): QA enters the catalog, the dock
operator makes and moves documents, the recall coordinator recalls.  Pallets are driven through the
door one pass at a time (``DockWorld.drive``): between passes the reader sends empty reports, as a
real reader at a quiet door does.  The gateway runs on an event loop of its own in a thread, so the
tests stay synchronous and poll with ``tests.rig.waiting.wait_until``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from coldgate.cloud.config import ApiConfig, CloudConfig, CloudMqttConfig, DatabaseConfig
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.db.models import Alert, BindingRow, EdgeItem
from coldgate.cloud.service import CloudService
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.service import GatewayService
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread
from coldgate.simulator.rfid_scenarios import Read
from coldgate.simulator.scanner import ScannerEmulator
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import person
from tests.rig.ports import free_port
from tests.rig.site_world import DoorPasses, GatewaySite, People

__all__ = ["DOOR", "GATEWAY", "READER", "SCANNER", "SITE", "DockWorld", "dock_world"]

GATEWAY, SITE, DOOR = "dock-e2e-15", "site-e2e-15", "D1"
READER, SCANNER = "d1-r1", "d1-s1"
def _gateway_config(
    data_dir: Path, broker: MosquittoBroker, reader_port: int, relay_port: int, scanner: str
) -> Any:
    """Door D1: the portal's reader (antenna 1 outside, 2 inside) and a picking scanner (``outbound``: a
    bad lot it scans is critical, as a case leaving through the portal is); the stack light comes on for
    what is critical, the alarm's default.  The gateway starts with the class the catalog pushes ("2-8C",
    2-8 °C, no rules), so the master data does not change its classes: else the gateway restarts its
    sources when it arrives, and the reader's new LLRP session sometimes began 5 s later, inside the first
    pass (pushed classes have tests of their own)."""
    return gateway_config_from_document(
        {
            "gateway": {"id": GATEWAY, "site": SITE, "data_dir": str(data_dir)},
            "uplink": {"broker": broker.url, "heartbeat_s": 5, "ack_timeout_s": 5},
            "temperature_classes": [{"name": "2-8C", "low": 2, "high": 8}],
            "outbox": {"commit_interval_ms": 20},
            "modbus_lines": [
                {"id": "lights", "transport": "tcp", "host": "127.0.0.1", "port": relay_port,
                 "timeout_s": 0.5}
            ],
            "readers": [
                {"id": READER, "host": "127.0.0.1", "port": reader_port, "door": DOOR,
                 "outside_antennas": [1], "inside_antennas": [2], "keepalive_s": 2}
            ],
            "scanners": [{"id": SCANNER, "port": scanner, "door": DOOR, "reopen_s": 0.5, "outbound": True}],
            "alarm": {"relay": {"line": "lights", "unit": 1, "coil": 0}},
        },
        "dock-e2e-15.toml",
    )  # fmt: skip


class DockWorld:
    """What the tests drive and read: the API as people, the door, the scanner, the cloud's tables."""

    def __init__(
        self, api: str, engine: Engine, tokens: dict[str, str], passes: DoorPasses, scanner: ScannerEmulator
    ) -> None:
        self.api, self.engine, self.tokens = api, engine, tokens
        self.passes, self.scanner = passes, scanner
        self.people = People(api, tokens)
        self.site: GatewaySite | None = None

    @property
    def service(self) -> GatewayService:
        assert self.site is not None
        return self.site.services["dock"]

    def call(self, method: str, path: str, who: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """``who``'s request (qa, dock, recall, viewer); the status and the decoded answer."""
        return self.people.call(who, method, path, body)

    def ok(self, method: str, path: str, who: str, body: dict[str, Any] | None = None) -> Any:
        return self.people.ok(who, method, path, body)

    def drive(self, reads: list[Read], timeout: float = 60.0) -> None:
        """Drive one pass through the door and return once the reader has sent its last read."""
        self.passes.drive(reads, timeout)

    def scan(self, code: bytes) -> None:
        self.scanner.send(code)

    def reconciliation(self, document: str) -> dict[str, Any]:
        return self.ok("GET", f"/documents/{document}/reconciliation", "viewer")  # type: ignore[no-any-return]

    def stored(self, kind: str) -> int:
        """How many movements (or scans) of the gateway the cloud stored."""
        with self.engine.connect() as conn:
            query = select(func.count()).where(EdgeItem.gateway == GATEWAY, EdgeItem.kind == kind)
            return int(conn.execute(query).scalar_one())

    def bound(self, document: str) -> list[Any]:
        """The stored binding rows of ``document``."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(BindingRow).where(BindingRow.document == document)).all())

    def binding_summary(self) -> dict[tuple[Any, ...], int]:
        """How many items of the gateway bound where, how and in which direction (for failure messages)."""
        b = BindingRow
        with self.engine.connect() as conn:
            query = select(b.document, b.how, b.direction, func.count()).where(b.gateway == GATEWAY)
            rows = conn.execute(query.group_by(b.document, b.how, b.direction)).all()
        return {tuple(row[:3]): row[3] for row in rows}

    def unbound_count(self) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).where(BindingRow.gateway == GATEWAY, BindingRow.document.is_(None))
            return int(conn.execute(query).scalar_one())

    def cloud_alerts(self) -> list[Any]:
        """The alerts the gateway sent up, as the cloud stored them."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(Alert).where(Alert.gateway == GATEWAY)).all())

    def light_on(self) -> bool:
        return self.site is not None and self.site.lit("dock")


@contextmanager
def dock_world(tmp_path: Path, broker: MosquittoBroker, setup: Any = None) -> Iterator[DockWorld]:
    """The running dock.  ``setup(world)`` runs once the cloud answers and before the gateway starts
    (master data entered then reaches the gateway with its first down-link documents)."""
    url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    migrate(url)
    engine = make_engine(url, writer=True)
    enrol(engine, [GATEWAY], site=SITE)
    tokens = {
        who: person(engine, login, (role,))[1]
        for who, login, role in (
            ("qa", "marta", "qa_manager"), ("dock", "dora", "dock_operator"),
            ("recall", "rico", "recall_coordinator"), ("viewer", "vera", "viewer"),
        )
    }  # fmt: skip
    config = CloudConfig(
        database=DatabaseConfig(url=url),
        mqtt=CloudMqttConfig(broker=broker.url, client_id="cloud-e2e-15", workers=1),
        api=ApiConfig(port=free_port()),
    )
    with ExitStack() as stack:
        cloud = CloudService(config, watchdog_interval_s=1.0).start()
        stack.callback(engine.dispose)
        stack.callback(cloud.stop)
        passes = DoorPasses()
        reader = stack.enter_context(LlrpReaderThread(LlrpReader(passes, port=0)))
        scanner = stack.enter_context(ScannerEmulator())
        world = DockWorld(cloud.api_url, engine, tokens, passes, scanner)
        if setup is not None:
            setup(world)
        gateway = lambda relay: _gateway_config(tmp_path / "gw", broker, reader.port, relay, scanner.device)  # noqa: E731
        configs = {"dock": gateway}
        world.site = stack.enter_context(GatewaySite(configs))
        yield world
