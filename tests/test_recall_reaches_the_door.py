"""Issue 14's promise end to end on real parts: a lot recalled through the cloud's API reaches the
gateway's door checks, and a case of that lot carried out through the simulated dock door lights the
stack light; the cloud stores the door's alert and its audit trail says who recalled the lot and why.

The real cloud (``CloudService``: ingest, scheduler, down-link publisher, API over HTTP, SQLite), a
private Mosquitto, the real gateway service (outbox, uplink, down-link, dock door on the simulator's
LLRP reader, the stack light on the simulated relay board over Modbus TCP).  The pallet is held at
the door (empty reports) until the gateway holds the recall list, then driven out.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sllurp", reason="the LLRP tests need the [gateway] extra (sllurp)")

from sqlalchemy import select

from coldgate.cloud.config import ApiConfig, CloudConfig, CloudMqttConfig, DatabaseConfig
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.migrate import migrate
from coldgate.cloud.db.models import Alert
from coldgate.cloud.service import CloudService
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.readers.epc import decode_epc
from coldgate.gateway.service import GatewayService
from coldgate.simulator.llrp import LlrpReader, LlrpReaderThread, TupleReads
from coldgate.simulator.llrp.messages import RoAccessReport, pack_ro_access_report
from coldgate.simulator.relay import RelayBoard
from coldgate.simulator.rfid_scenarios import pallet_pass
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import bearer, person
from tests.rig.ports import free_port
from tests.rig.waiting import eventually

pytestmark = pytest.mark.timeout(180)

GATEWAY, SITE = "dock-e2e", "site-e2e"


class HeldAtTheDoor:
    """The reader's reports: empty ones every 0.2 s until ``go`` is set, then the pallet's reads."""

    def __init__(self, reads: list[Any]) -> None:
        self.reads = reads
        self.go = threading.Event()

    def __iter__(self) -> Iterator[tuple[float, bytes]]:
        message_id = 1_000_000
        while not self.go.is_set():
            message_id += 1
            yield 0.2, pack_ro_access_report(RoAccessReport(message_id, ()))
        yield from TupleReads(self.reads, speed=4.0, offset_ms=int(time.time() * 1000))


def _call(api: str, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        api + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None


def _gateway_config(data_dir: Path, broker: MosquittoBroker, reader_port: int, relay_port: int) -> Any:
    return gateway_config_from_document(
        {
            "gateway": {"id": GATEWAY, "site": SITE, "data_dir": str(data_dir)},
            "uplink": {"broker": broker.url, "heartbeat_s": 5, "ack_timeout_s": 5},
            "outbox": {"commit_interval_ms": 20},
            "modbus_lines": [
                {"id": "lights", "transport": "tcp", "host": "127.0.0.1", "port": relay_port,
                 "timeout_s": 0.5}
            ],
            "readers": [
                {"id": "dock2-r1", "host": "127.0.0.1", "port": reader_port, "door": "dock2",
                 "outside_antennas": [1], "inside_antennas": [2], "keepalive_s": 2}
            ],
            "alarm": {"min_severity": "critical", "relay": {"line": "lights", "unit": 1, "coil": 0}},
        },
        "dock-e2e.toml",
    )  # fmt: skip


def test_a_lot_recalled_in_the_cloud_lights_the_stack_light_at_the_door(
    tmp_path: Path, mosquitto_own: MosquittoBroker
) -> None:
    url = f"sqlite:///{tmp_path / 'cloud.sqlite3'}"
    migrate(url)
    engine = make_engine(url, writer=True)
    enrol(engine, [GATEWAY], site=SITE)
    _, marta = person(engine, "marta", ("qa_manager",))
    rico_id, rico = person(engine, "rico", ("recall_coordinator",))
    _, vera = person(engine, "vera", ("viewer",))
    reads = pallet_pass("out", cases=20, first_serial=1001, start_ms=0, seed=3)
    gtin = decode_epc(reads[0][2]).gtin
    assert gtin is not None
    config = CloudConfig(
        database=DatabaseConfig(url=url),
        mqtt=CloudMqttConfig(broker=mosquitto_own.url, client_id="cloud-e2e", workers=1),
        api=ApiConfig(port=free_port()),
    )
    cloud = CloudService(config, watchdog_interval_s=1.0).start()
    api = cloud.api_url
    try:
        # QA's master data, through the API as people enter it.
        _call(api, "PUT", "/catalog/temperature-classes/15-25C", marta,
              {"spec": {"low": 15, "high": 25}, "reason": "SOP-7 ambient storage"})  # fmt: skip
        _call(api, "PUT", "/catalog/products/INF-SET", marta,
              {"name": "Infusion set", "gtin": gtin, "temperature_class": "15-25C", "serialised": True,
               "reason": "new product"})  # fmt: skip
        _call(api, "PUT", "/catalog/products/INF-SET/lots/L2026-11", marta,
              {"expiry": "2028-11-30", "reason": "received GRN-88"})  # fmt: skip
        _call(api, "POST", "/catalog/products/INF-SET/lots/L2026-11/serials", marta,
              {"ranges": [{"first": "1001", "last": "1020"}], "reason": "supplier list"})  # fmt: skip
        reader_source = HeldAtTheDoor(reads)

        def door_alert() -> bool:
            with engine.connect() as conn:
                rules = conn.execute(select(Alert.rule).where(Alert.gateway == GATEWAY)).scalars().all()
            return "door.recalled" in rules

        async def at_the_door(reader_port: int) -> tuple[RelayBoard, float, float]:
            board = RelayBoard(unit=1)
            relay_port = await board.serve_tcp()
            service = GatewayService(_gateway_config(tmp_path / "gw", mosquitto_own, reader_port, relay_port))
            stop = asyncio.Event()
            task = asyncio.create_task(service.run(stop))
            try:
                assert await eventually(lambda: service.master is not None, 30, 0.05), "no master data"
                recalled_at = time.monotonic()
                await asyncio.to_thread(
                    _call, api, "POST", "/catalog/products/INF-SET/lots/L2026-11/recall", rico,
                    {"reason": "FSN-2026-12: sterility breach reported by the manufacturer"},
                )  # fmt: skip
                held = lambda: service.recalls is not None and len(service.recalls.entries) == 21  # noqa: E731
                assert await eventually(held, 30, 0.02), "the recall never reached the gateway"
                applied_after = time.monotonic() - recalled_at
                reader_source.go.set()
                lit = lambda: any(w.coil == 0 and w.value for w in board.writes())  # noqa: E731
                assert await eventually(lit, 60, 0.05), "the stack light never came on"
                lit_after = time.monotonic() - recalled_at
                # The door's alert reaches the cloud through the normal uplink (before the gateway stops).
                assert await eventually(door_alert, 90, 0.2), "the door's alert never reached the cloud"
                return board, applied_after, lit_after
            finally:
                stop.set()
                await task
                await board.stop()

        with LlrpReaderThread(LlrpReader(reader_source, port=0)) as reader:
            _, applied_after, lit_after = asyncio.run(at_the_door(reader.port))
        print(f"\nrecall -> applied at the gateway {applied_after:.2f} s, light on {lit_after:.1f} s")

        # The audit trail says who recalled the lot and why.
        with engine.connect() as conn:
            alert = conn.execute(
                select(Alert).where(Alert.gateway == GATEWAY, Alert.rule == "door.recalled")
            ).first()
        assert alert is not None and alert.severity == "critical" and "FSN-2026-12" in alert.message
        assert _call(api, "GET", "/catalog/lots?status=recalled", vera)[0]["lot"] == "L2026-11"
        audit = _call(api, "GET", "/audit?action=lot.status", marta)["items"]
        [entry] = [e for e in audit if e["entity_id"] == "INF-SET/L2026-11"]
        assert entry["actor_id"] == rico_id
        assert entry["reason"].startswith("FSN-2026-12")
        states = _call(api, "GET", f"/gateways/{GATEWAY}/downlink", vera)
        assert {s["kind"]: s["state"] for s in states} == {"master": "current", "recall": "current"}
    finally:
        cloud.stop()
        engine.dispose()
