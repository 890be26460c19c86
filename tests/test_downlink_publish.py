"""The cloud publishes each gateway's master data and recall list, retained, as the catalog changes:
through a private Mosquitto to the gateway's own down-link code, on both dialects.

A lot quarantined through the catalog reaches every enrolled gateway's
recall list within seconds, as a new version that the gateway applies and
its door knowledge then holds; an unchanged catalog makes no new version;
what was pushed, when, is recorded and cannot be edited.
"""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.lots import move_lot, put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import DownlinkDocument
from coldgate.cloud.downlink.documents import build_recalls, content_digest
from coldgate.cloud.downlink.publisher import DownlinkPublisher
from coldgate.contract.codec import decode_topic
from coldgate.contract.downlink import MasterData, RecallList
from coldgate.gateway.rules.dock_knowledge import Knowledge
from coldgate.gateway.uplink.downlink import Downlink
from coldgate.gateway.uplink.mqtt_link import Message
from tests.rig.ingest import SITE, enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK

QA = Actor("Marta QA", id="u-marta")
NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
GTIN = "04006381333931"


def _catalog(engine: Engine) -> None:
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=QA, now=NOW)
        put_product(conn, "VX10", {"name": "Vaccine X", "gtin": GTIN, "temperature_class": "2-8C"},
                    reason="new", by=QA, now=NOW)  # fmt: skip
        put_product(conn, "CAT", {"name": "Catheter", "hibc_lic": "A123", "hibc_pcn": "C1",
                                  "temperature_class": "2-8C"}, reason="new", by=QA, now=NOW)  # fmt: skip
        put_lot(conn, "VX10", "L1", {"expiry": "2027-06-30"}, reason="received", by=QA, now=NOW)
        put_lot(conn, "CAT", "H1", {"expiry": "2027-01-31"}, reason="received", by=QA, now=NOW)


class Listener:
    """A client reading every gateway's down-link of the site, as the gateways would."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-downlink-listener")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(f"coldgate/v1/{SITE}/+/down/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def latest(self, topic: str) -> paho.MQTTMessage | None:
        with self.lock:
            found = [m for m in self.messages if m.topic == topic]
        return found[-1] if found else None

    def wait_version(self, topic: str, version: int, timeout: float = 10.0) -> paho.MQTTMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.latest(topic)
            if msg is not None and decode_topic(topic, msg.payload)[1].version >= version:  # type: ignore[union-attr]
                return msg
            time.sleep(0.02)
        raise AssertionError(f"no version {version} on {topic} within {timeout} s")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _publisher(engine: Engine, broker: MosquittoBroker) -> DownlinkPublisher:
    config = CloudMqttConfig(broker=broker.url, client_id=f"cloud-{engine.dialect.name}")
    return DownlinkPublisher(engine, config, interval_s=0.5).start()


def test_a_quarantined_lot_reaches_every_gateway_and_its_door_knowledge(
    engine: Engine, mosquitto_own: MosquittoBroker, tmp_path: Path
) -> None:
    prefix = f"gw-{engine.dialect.name[:2]}"  # the broker is the session's: retained copies stay
    gateways = (f"{prefix}-1", f"{prefix}-2")
    enrol(engine, gateways)
    _catalog(engine)
    listener = Listener(mosquitto_own)
    publisher = _publisher(engine, mosquitto_own)  # publishes everything in force at start
    try:
        recall_topic = f"coldgate/v1/{SITE}/{gateways[0]}/down/recall"
        _, first = decode_topic(recall_topic, listener.wait_version(recall_topic, 1).payload)
        assert isinstance(first, RecallList) and first.entries == []
        master_topic = f"coldgate/v1/{SITE}/{gateways[1]}/down/master"
        _, master = decode_topic(master_topic, listener.wait_version(master_topic, 1).payload)
        assert isinstance(master, MasterData)
        assert [(p.gtin, p.id, p.hibc, p.temperature_class) for p in master.products] == [
            (GTIN, None, None, "2-8C"), (None, "CAT", "A123C1", "2-8C")
        ]  # HIBC only: keyed by its id
        assert [(b.key, b.lot, b.expiry.isoformat()) for b in master.batches] == [
            (GTIN, "L1", "2027-06-30"), ("CAT", "H1", "2027-01-31")
        ]
        with engine.begin() as conn:
            move_lot(conn, "VX10", "L1", "quarantined", reason="excursion in cold room 1", by=QA, now=NOW)
        started = time.monotonic()
        publisher.nudge()
        for gateway in gateways:
            topic = f"coldgate/v1/{SITE}/{gateway}/down/recall"
            msg = listener.wait_version(topic, 2)
            assert msg.retain or msg.topic == topic
        took = time.monotonic() - started
        assert took < 5, took  # a generous bound for a loaded CI machine; bench.downlink measures it
        # The gateway's own down-link code takes the published bytes, and its door knowledge the entry.
        applied: list[tuple[str, int]] = []
        downlink = Downlink(tmp_path, gateway=gateways[0], site=SITE, sink=_Sink(), clock=CLOCK,
                            on_document=lambda kind, doc: applied.append((kind, doc.version)))  # fmt: skip
        for topic in (recall_topic, f"coldgate/v1/{SITE}/{gateways[0]}/down/master"):
            latest = listener.latest(topic)
            assert latest is not None
            downlink.handle(Message(topic, latest.payload, retain=True))
        assert sorted(applied) == [("master", 1), ("recall", 2)]
        recalls = downlink.current("recall")
        assert recalls is not None and isinstance(recalls.message, RecallList)
        knowledge = Knowledge.from_documents(None, recalls.message)
        [entry] = knowledge.recalls[GTIN]
        assert (entry.lot, entry.status, entry.reason) == ("L1", "quarantined", "excursion in cold room 1")
        # Nothing changed: another pass records no version, and the record refuses edits.
        publisher.publish_pass()
        with engine.connect() as conn:
            d = DownlinkDocument
            rows = conn.execute(select(d.gateway, d.kind, d.version).where(d.gateway.in_(gateways))).all()
        assert sorted(rows) == [(g, kind, v) for g in gateways for kind, v in (("master", 1), ("recall", 1),
                                                                               ("recall", 2))]  # fmt: skip
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE downlink_documents SET entries = 0"))
    finally:
        publisher.stop()
        listener.close()


class _Sink:
    def put(self, item: object) -> None:
        pass


def test_the_same_catalog_gives_the_same_bytes_whatever_the_order() -> None:
    products = [{"id": "B", "gtin": GTIN}, {"id": "A", "gtin": "00000000000017"}, {"id": "C", "gtin": None}]
    lots = [
        {"product": p, "lot": lot, "status": status, "version": 2, "reason": "r"}
        for p, lot, status in (("B", "2", "recalled"), ("A", "1", "quarantined"), ("B", "1", "released"),
                               ("C", "9", "recalled"))
    ]  # fmt: skip
    one = build_recalls("gw", products, lots, version=1, issued=0)
    two = build_recalls("gw", list(reversed(products)), list(reversed(lots)), version=7, issued=99)
    assert content_digest(one.document) == content_digest(two.document)
    assert [(e.gtin, e.product, e.lot) for e in one.document.entries] == [  # type: ignore[union-attr]
        ("00000000000017", None, "1"), (GTIN, None, "2"), (None, "C", "9")
    ]  # C has no GTIN: named by its id
    assert (one.entries, one.left_out) == (3, 0)
