"""From the API call that recalls a lot to a gateway holding the new recall list, for lots of 1,000 and
100,000 serials.

Per dialect (PostgreSQL, SQLite), in one run, for each size: a private Mosquitto, the cloud's
``DownlinkPublisher`` (running, nudged by the API as in ``coldgate cloud run``), the JSON API in
process (``POST /catalog/products/{p}/lots/{lot}/recall`` by a recall coordinator), and on the
gateway side a subscriber that hands each message to the gateway's own ``Downlink`` (decode, check,
save to disk, hand over), as the gateway's uplink does.  The clock runs from the API call to the
``Downlink`` handing over the version that holds the recall.

Figures, per size: ``total`` (the promise), and as references measured in the same run the parts it
is made of: ``build`` (reading the catalog and building and encoding the document, no MQTT) and
the size of the whole recall list then in force (every repeat recalls one more lot, so the last
repeat's list holds them all; lists over 8 MiB travel in parts).  Goals (issue 14): <= 2 s for
1,000 serials, <= 10 s for 100,000 (p50 of ``--repeats`` recalls, each on a fresh lot).

``python -m bench.downlink [--sizes 1000,100000] [--repeats 3] [--dialects postgresql,sqlite]``
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine

from bench.dialects import on_each_dialect
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.downlink.publisher import DownlinkPublisher
from coldgate.cloud.downlink.versions import due_documents
from coldgate.contract.downlink import RecallList
from coldgate.contract.topics import recall_topic
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.uplink.downlink import Document, Downlink
from coldgate.gateway.uplink.mqtt_link import Message
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.people import bearer, person

NOW = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
QA = Actor("Marta QA", "u-marta")
GATEWAY, SITE = "gw-bench", "site-bench"
GTIN = "04006381333931"
GOALS = {1_000: 2.0, 100_000: 10.0}


class GatewaySide:
    """The gateway's ``Downlink`` fed by a subscriber; ``applied`` is set when a version with the
    recall of ``lot`` has been handed over."""

    def __init__(self, broker: MosquittoBroker, data_dir: Path, gateway: str) -> None:
        self.lot: str | None = None
        self.applied = threading.Event()
        self.downlink = Downlink(
            data_dir,
            gateway=gateway,
            site=SITE,
            sink=self,
            clock=SystemClock(),
            on_document=self._on_document,
        )
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{gateway}")
        self.client.on_message = lambda _c, _u, msg: self.downlink.handle(
            Message(msg.topic, msg.payload, True)
        )
        self.client.connect(broker.host, broker.port)
        # "…/recall/#" is the list's first part and every further one (a long list comes in parts).
        self.client.subscribe(f"{recall_topic(SITE, gateway)}/#", qos=1)
        self.client.loop_start()

    def put(self, item: object) -> None:  # the gateway's outbox: events are not measured here
        pass

    def _on_document(self, kind: str, document: Document) -> None:
        message = document.message
        if isinstance(message, RecallList) and any(e.lot == self.lot for e in message.entries):
            self.applied.set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _lot_with_serials(engine: Engine, lot: str, serials: int, index: int) -> None:
    """The lot and its serials ``<index>0000001`` to ``<index><serials>``: no two lots' ranges meet."""
    with engine.begin() as conn:
        put_lot(conn, "VX10", lot, {"expiry": "2028-06-30"}, reason="received", by=QA, now=NOW)
        add_serials(conn, "VX10", lot, [], [(f"{index:03d}{1:07d}", f"{index:03d}{serials:07d}")],
                    reason="supplier list", by=QA, now=NOW)  # fmt: skip


def measure(
    engine: Engine, broker: MosquittoBroker, sizes: list[int], repeats: int, tmp: Path
) -> dict[str, float]:
    gateway_id = f"{GATEWAY}-{engine.dialect.name[:2]}"  # one broker: each dialect's gateway its own topics
    enrol(engine, [gateway_id], site=SITE)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=QA, now=NOW)
        put_product(conn, "VX10", {"name": "Vaccine X", "gtin": GTIN, "temperature_class": "2-8C",
                                   "serialised": True}, reason="new", by=QA, now=NOW)  # fmt: skip
    _, token = person(engine, "rico", ("recall_coordinator",))
    config = CloudMqttConfig(broker=broker.url, client_id=f"bench-{engine.dialect.name}")
    publisher = DownlinkPublisher(engine, config, interval_s=5.0).start()
    gateway = GatewaySide(broker, tmp / engine.dialect.name, gateway_id)
    app = create_app(engine, ApiTokens(()))
    app.state.catalog_changed = publisher.nudge
    figures: dict[str, float] = {}
    made = 0
    try:
        with TestClient(app) as client:
            for size in sizes:
                totals, builds = [], []
                for n in range(repeats):
                    lot = f"L{size}-{n:03d}"
                    made += 1
                    _lot_with_serials(engine, lot, size, made)
                    publisher.publish_pass()  # the lot exists (released) at the gateway before the clock runs
                    gateway.lot, gateway.applied = lot, threading.Event()
                    started = time.perf_counter()
                    reply = client.post(f"/catalog/products/VX10/lots/{lot}/recall",
                                        json={"reason": "FSN bench"}, headers=bearer(token))  # fmt: skip
                    assert reply.status_code == 200, reply.text
                    if not gateway.applied.wait(120):
                        raise SystemExit(f"{size} serials: the recall never reached the gateway")
                    totals.append(time.perf_counter() - started)
                    with engine.connect() as conn, conn.begin() as tx:
                        t = time.perf_counter()
                        due = due_documents(conn, NOW + datetime.timedelta(days=1), {gateway_id})
                        builds.append(time.perf_counter() - t)
                        payload = max(len(d.payload) for d in due)
                        tx.rollback()
                figures[f"s{size}_total_s"] = statistics.median(totals)
                figures[f"s{size}_build_s"] = statistics.median(builds)
                figures[f"s{size}_mib"] = payload / 2**20
                goal = GOALS.get(size)
                print(
                    f"{engine.dialect.name}: {size:,} serials: API recall -> applied at the gateway p50 "
                    f"{figures[f's{size}_total_s']:.2f} s (max {max(totals):.2f} s"
                    f"{f', goal {goal:g} s' if goal else ''}); building the list alone "
                    f"{figures[f's{size}_build_s']:.2f} s; the recall list then in force (the lots of this "
                    f"size recalled so far) {figures[f's{size}_mib']:.1f} MiB"
                )
    finally:
        gateway.close()
        publisher.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dialects", default="postgresql,sqlite")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "mosquitto")
        broker.start()
        try:

            def run(dialect: str, url: str) -> dict[str, float]:
                migrate(url)
                engine = make_engine(url, writer=True)
                try:
                    return measure(engine, broker, sizes, args.repeats, Path(tmp))
                finally:
                    engine.dispose()

            results: dict[str, Any] = on_each_dialect(args.dialects, "downlink", run)
        finally:
            broker.stop()
    keys = " ".join(f"{d[:2]}_{k}={v:.2f}" for d, r in results.items() for k, v in r.items())
    print(f"RESULT repeats={args.repeats} {keys}")


if __name__ == "__main__":
    main()
