"""Down-link documents in parts (issue 14): a recall list or master data too large for one message is
split by the cloud, each part retained on a topic of its own, and a gateway applies a version only once
all its parts arrived and fit together; the contract's added optional fields leave every message that
does not use them byte for byte as before."""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.lots import move_lot, put_lot
from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.catalog.temperature_classes import check_spec, put_class
from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.downlink.documents import PART_BYTES, build_master, content_digest, split
from coldgate.cloud.downlink.publisher import DownlinkPublisher
from coldgate.contract import examples
from coldgate.contract.codec import MAX_PAYLOAD_BYTES, decode, encode
from coldgate.contract.downlink import (
    MAX_PARTS,
    BatchInfo,
    MasterData,
    Product,
    RecallEntry,
    RecallList,
    RecallStatus,
    TemperatureClass,
)
from coldgate.contract.errors import ContractError
from coldgate.contract.items import EventType
from coldgate.contract.topics import (
    MOSQUITTO_GATEWAY_ACL,
    gateway_filter,
    master_topic,
    parse_topic,
    recall_topic,
    topic,
)
from coldgate.gateway.uplink.downlink import Document, Downlink
from coldgate.gateway.uplink.mqtt_link import Message
from tests.rig.downlink_gateway import Gateway
from tests.rig.fake_cloud import FakeCloud
from tests.rig.ingest import enrol
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, SITE, make_uplink, running, uplink_outbox

RECALL = recall_topic(SITE, GATEWAY)
MASTER = master_topic(SITE, GATEWAY)
GTIN = examples.GTIN


def recall_list(version: int, serials: int = 30, issued: int = examples.T0, reason: str = "") -> RecallList:
    entries = [RecallEntry(gtin=GTIN, lot="L7", status=RecallStatus.RECALLED, reference="FSN-1", reason="r")]
    entries += [
        RecallEntry(
            gtin=GTIN, serial=f"{n:08d}", status=RecallStatus.RECALLED, reference="FSN-1", reason=reason
        )
        for n in range(1, serials + 1)
    ]
    return RecallList(v=1, gateway=GATEWAY, version=version, issued=issued, entries=entries)


def parts_of(document: RecallList | MasterData, count: int) -> list[bytes]:
    """``document`` split into ``count`` parts (a limit just small enough), as the cloud splits it."""
    size = len(encode(document))
    payloads = split(document, limit=-(-size // count))
    assert len(payloads) == count
    return payloads


def on_topic(kind: str, part: int) -> str:
    return topic(SITE, GATEWAY, kind, part)


# -- the contract --------------------------------------------------------------------------------------


def test_a_document_in_one_message_is_encoded_byte_for_byte_as_before():
    # What contract v1 encoded before `part`/`parts` existed, written out by hand.
    expected = (
        b'{"v":1,"gateway":"gw01","version":3,"issued":1765000000000,"entries":[{"gtin":"' + GTIN.encode()
        + b'","lot":"L7","status":"recalled","reference":"FSN-1","reason":"r"}]}'
    )  # fmt: skip
    document = RecallList(
        v=1, gateway="gw01", version=3, issued=1765000000000, entries=recall_list(3, 0).entries
    )
    assert encode(document) == expected
    assert encode(decode(expected, RecallList)) == expected
    for name in ("master", "recall"):
        assert not {"part", "parts"} & set(json.loads(encode(examples.MESSAGES[name])))


def test_part_and_parts_are_checked():
    base = json.loads(encode(recall_list(4, 2)))
    assert decode(json.dumps({**base, "part": 2, "parts": 3}).encode(), RecallList).part == 2
    for changes, path, words in (
        ({"part": 4, "parts": 3}, "$.part", "part 4 of 3: beyond the number of parts"),
        ({"part": 2}, "$.part", "part 2 of 1"),
        ({"parts": 0}, "$.parts", ">= 1"),
        ({"parts": MAX_PARTS + 1}, "$.parts", f"<= {MAX_PARTS}"),
        ({"part": "1"}, "$.part", "Expected `int`"),
    ):
        with pytest.raises(ContractError) as caught:
            decode(json.dumps({**base, **changes}).encode(), RecallList)
        assert caught.value.path == path and words in caught.value.reason, (changes, caught.value)
    master = json.loads(encode(examples.MASTER))
    with pytest.raises(ContractError, match="beyond the number of parts"):
        decode(json.dumps({**master, "part": 3, "parts": 2}).encode(), MasterData)


def test_a_part_may_name_a_temperature_class_of_another_part_the_whole_may_not():
    product = Product(gtin=GTIN, name="Insulin", temperature_class="2-8C")
    MasterData(v=1, gateway=GATEWAY, version=1, issued=0, part=2, parts=2, products=[product])
    with pytest.raises(ValueError, match="unknown temperature class"):
        MasterData(v=1, gateway=GATEWAY, version=1, issued=0, products=[product])


def test_part_topics_are_built_and_parsed():
    assert recall_topic(SITE, GATEWAY) == f"coldgate/v1/{SITE}/{GATEWAY}/down/recall"
    assert recall_topic(SITE, GATEWAY, 1) == recall_topic(SITE, GATEWAY)
    assert recall_topic(SITE, GATEWAY, 2) == f"coldgate/v1/{SITE}/{GATEWAY}/down/recall/2"
    assert master_topic(SITE, GATEWAY, MAX_PARTS).endswith(f"/down/master/{MAX_PARTS}")
    info = parse_topic(recall_topic(SITE, GATEWAY, 17))
    assert (info.site, info.gateway, info.name, info.part) == (SITE, GATEWAY, "recall", 17)
    assert parse_topic(RECALL).part == 1
    for name, part in (("config", 2), ("command", 2), ("recall", 0), ("recall", MAX_PARTS + 1), ("batch", 2)):
        with pytest.raises(ContractError):
            topic(SITE, GATEWAY, name, part)
    base = f"coldgate/v1/{SITE}/{GATEWAY}"
    for bad in ("down/recall/1", "down/recall/02", "down/recall/+2", "down/recall/", "down/recall/x",
                "down/recall/٣", f"down/recall/{MAX_PARTS + 1}", "down/recall/99999", "down/config/2",
                "up/batch/2", "up/status/2", "down/recall/2/3"):  # fmt: skip
        with pytest.raises(ContractError):
            parse_topic(f"{base}/{bad}")


def test_part_topics_are_within_the_gateways_subscription_and_acl():
    acl_read = [line.split()[2] for line in MOSQUITTO_GATEWAY_ACL.splitlines() if " read " in line]
    (pattern,) = acl_read
    for part in (1, 2, MAX_PARTS):
        for name in ("master", "recall"):
            where = topic(SITE, GATEWAY, name, part)
            assert paho.topic_matches_sub(gateway_filter(SITE, GATEWAY), where)
            assert paho.topic_matches_sub(pattern.replace("%u", GATEWAY), where)
            decode(encode(msgspec.structs.replace(recall_list(1, 0), part=part, parts=MAX_PARTS)), RecallList,
                   recall_topic(SITE, GATEWAY, part))  # fmt: skip


# -- the cloud splits ----------------------------------------------------------------------------------


def test_a_document_that_fits_is_one_message_a_larger_one_parts_in_order():
    small = recall_list(5, 3)
    assert split(small) == [encode(small)]
    document = recall_list(5, 1000)
    payloads = split(document, limit=len(encode(document)) // 4)
    parts = [decode(p, RecallList) for p in payloads]
    assert len(parts) in (4, 5)
    assert [(p.part, p.parts, p.version, p.issued) for p in parts] == [
        (k, len(parts), 5, examples.T0) for k in range(1, len(parts) + 1)
    ]
    assert [e for p in parts for e in p.entries] == document.entries
    assert max(len(p) for p in payloads) <= len(encode(document)) // 4 * 1.05
    assert split(document, limit=len(encode(document)) // 4) == payloads  # deterministic


def test_master_data_keeps_classes_and_products_first():
    klass = TemperatureClass(name="2-8C", low=2, high=8)
    product = Product(gtin=GTIN, name="Insulin", temperature_class="2-8C")
    batches = [BatchInfo(gtin=GTIN, lot=f"L{n:05d}", expiry=datetime.date(2028, 1, 1)) for n in range(300)]
    document = MasterData(v=1, gateway=GATEWAY, version=9, issued=1, temperature_classes=[klass],
                          products=[product], batches=batches)  # fmt: skip
    parts = [decode(p, MasterData) for p in parts_of(document, 3)]
    assert parts[0].temperature_classes == [klass] and parts[0].products == [product]
    assert all(not p.temperature_classes and not p.products for p in parts[1:])
    assert [b for p in parts for b in p.batches] == batches


def test_master_data_of_products_without_a_gtin_split_in_parts_keeps_its_rules_across_them(tmp_path: Path):
    """Products known by HIBC or MA alone, keyed by id, their lots naming them by ``product``, each class
    with rules: the parts put together are the document the cloud built, which the gateway takes."""
    spec = check_spec("2-8C", {"low": 2, "high": 8, "alarm_delay_s": 900})
    classes = [{"name": "2-8C", "description": "", "spec": spec}]
    products = [
        {"id": f"P{n:03d}", "name": f"Device {n}", "gtin": None, "hibc_lic": "A123", "hibc_pcn": f"D{n}",
         "hibc_uom": None, "ma_id": f"MA.156.M0.100001.D{n}" if n % 2 else None, "temperature_class": "2-8C",
         "tor_budget_s": None}
        for n in range(120)
    ]  # fmt: skip
    lots = [
        {"product": f"P{n % 120:03d}", "lot": f"L{n:04d}", "expiry": "2028-01-31", "expiry_hour": n % 24}
        for n in range(600)
    ]
    built = build_master(GATEWAY, classes, products, lots, version=4, issued=examples.T0)
    document = built.document
    assert isinstance(document, MasterData) and built.left_out == 0
    assert (len(document.products), len(document.batches)) == (120, 600)
    payloads = parts_of(document, 4)
    parts = [decode(p, MasterData) for p in payloads]
    assert parts[0].temperature_classes[0].rules == {"alarm_delay_s": 900.0}
    assert [p for part in parts for p in part.products] == document.products
    assert [b for part in parts for b in part.batches] == document.batches
    gw = Gateway(tmp_path)
    for k in (4, 2, 1, 3):
        gw.deliver(on_topic("master", k), payloads[k - 1])
    assert gw.applied == [("master", 4)] and gw.downlink.errors.recent() == []
    current = gw.downlink.current("master")
    assert current is not None and current.message == document
    # A lot of a product named twice across parts breaks the rules of the whole: the version is refused.
    broken = [json.loads(p) | {"version": 5} for p in payloads]
    broken[-1]["batches"].append(broken[0]["batches"][0] if broken[0]["batches"] else broken[1]["batches"][0])
    for k, part in enumerate(broken, 1):
        gw.deliver(on_topic("master", k), json.dumps(part).encode())
    assert gw.downlink.versions.master == 4
    (error,) = gw.downlink.errors.recent()
    assert "duplicate lot 'L0000' of P000 (in the" in error.message, error.message


def test_a_100000_serial_recall_list_is_split_under_the_cap_and_kept_whole_at_the_gateway(tmp_path: Path):
    document = recall_list(2, 100_000, reason="FSN 2026-12: sterility of the lot not assured " * 3)
    whole = encode(document)
    payloads = split(document, whole)
    assert len(whole) > MAX_PAYLOAD_BYTES
    assert len(payloads) == -(-len(whole) // PART_BYTES)
    assert all(len(p) <= PART_BYTES * 1.01 for p in payloads)
    parts = [decode(p, RecallList) for p in payloads]
    assert [e for p in parts for e in p.entries] == document.entries
    assert content_digest(document) == content_digest(msgspec.json.decode(whole, type=RecallList))
    gw = Gateway(tmp_path)
    for k in reversed(range(1, len(payloads) + 1)):
        gw.deliver(on_topic("recall", k), payloads[k - 1])
    assert gw.applied == [("recall", 2)]
    assert gw.downlink.path("recall").read_bytes() == whole  # larger than one message may be
    rebooted = Gateway(tmp_path)
    assert rebooted.downlink.load().recall == 2
    assert rebooted.downlink.errors.recent() == []
    assert entries_in_force(rebooted) == document.entries


# -- the gateway puts them together --------------------------------------------------------------------


def entries_in_force(gw: Gateway) -> list[RecallEntry]:
    current = gw.downlink.current("recall")
    assert current is not None and isinstance(current.message, RecallList)
    return current.message.entries


@pytest.mark.parametrize("order", [(1, 2, 3), (3, 1, 2), (2, 3, 1), (3, 2, 1)])
def test_parts_in_any_order_are_applied_once_as_one_document(tmp_path: Path, order: tuple[int, ...]):
    gw = Gateway(tmp_path)
    document = recall_list(6, 60)
    payloads = parts_of(document, 3)
    for k in order:
        gw.deliver(on_topic("recall", k), payloads[k - 1])
        assert gw.applied == ([("recall", 6)] if k == order[-1] else [])
    for k in (1, 2, 3):  # retained re-delivery after a reconnect
        gw.deliver(on_topic("recall", k), payloads[k - 1])
    assert gw.applied == [("recall", 6)]
    assert gw.events() == [(EventType.RECALL_APPLIED, 6)]
    current = gw.downlink.current("recall")
    assert current is not None and current.message == document
    assert (current.message.part, current.message.parts) == (1, 1)
    # Saved as one document, as one that came whole: a reboot without network brings it back.
    assert gw.downlink.path("recall").read_bytes() == encode(document)
    rebooted = Gateway(tmp_path)
    assert rebooted.downlink.load().recall == 6
    assert entries_in_force(rebooted) == document.entries


def test_a_missing_part_leaves_the_old_version_in_force(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(RECALL, encode(recall_list(1, 2)))
    payloads = parts_of(recall_list(2, 60), 3)
    gw.deliver(on_topic("recall", 1), payloads[0])
    gw.deliver(on_topic("recall", 3), payloads[2])
    gw.deliver(on_topic("recall", 2), b"")  # a cleared part topic: nothing
    assert gw.downlink.versions.recall == 1
    assert gw.applied == [("recall", 1)]
    assert gw.events() == [(EventType.RECALL_APPLIED, 1)]
    assert gw.downlink.errors.recent() == []
    assert json.loads(gw.downlink.path("recall").read_bytes())["version"] == 1
    gw.deliver(on_topic("recall", 2), payloads[1])  # it comes at last
    assert gw.downlink.versions.recall == 2


def _broken(payload: bytes, **changes: Any) -> bytes:
    return json.dumps({**json.loads(payload), **changes}).encode()


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("count", "$.parts: part 2 says 4 parts, an earlier part said 3"),
        ("issued", "$.parts: part 2 was issued at 1765000000001, an earlier part at 1765000000000"),
        ("beyond", "$.part: part 4 of 3: beyond the number of parts"),
        ("topic", "$.part: part 3 arrived on the topic of part 2"),
        ("twice", "$.parts: part 1 arrived twice with different content"),
        ("duplicate", "$.entries"),
    ],
)
def test_parts_that_do_not_fit_together_reject_the_version(tmp_path: Path, breakage: str, reason: str):
    gw = Gateway(tmp_path)
    gw.deliver(RECALL, encode(recall_list(1, 2)))
    payloads = parts_of(recall_list(2, 60, issued=1765000000000), 3)
    gw.deliver(on_topic("recall", 1), payloads[0])
    if breakage == "count":
        gw.deliver(on_topic("recall", 2), _broken(payloads[1], parts=4))
    elif breakage == "issued":
        gw.deliver(on_topic("recall", 2), _broken(payloads[1], issued=1765000000001))
    elif breakage == "beyond":
        gw.deliver(on_topic("recall", 4), _broken(payloads[1], part=4))
    elif breakage == "topic":
        gw.deliver(on_topic("recall", 2), payloads[2])
    elif breakage == "twice":
        gw.deliver(on_topic("recall", 1), _broken(payloads[0], entries=[]))
    else:  # every part is valid alone, the whole is not: MasterData checks (gtin, lot) across parts
        gw = Gateway(tmp_path / "master")
        batch = BatchInfo(gtin=GTIN, lot="L1", expiry=datetime.date(2028, 1, 1))
        master = MasterData(v=1, gateway=GATEWAY, version=2, issued=0, part=1, parts=2, batches=[batch])
        gw.deliver(on_topic("master", 1), encode(master))
        gw.deliver(on_topic("master", 2), encode(msgspec.structs.replace(master, part=2)))
        (error,) = gw.downlink.errors.recent()
        assert error.message == (
            "master version 2: $.batches[1].lot: duplicate lot 'L1' of "
            + GTIN
            + " (in the 2 parts put together)"
        )
        assert gw.downlink.current("master") is None
        return
    for k in (1, 2, 3):  # the rest of the version, and its parts again: ignored, the version is rejected
        gw.deliver(on_topic("recall", k), payloads[k - 1])
    assert gw.downlink.versions.recall == 1
    assert gw.applied == [("recall", 1)]
    assert gw.events() == [(EventType.RECALL_APPLIED, 1), (EventType.RECALL_REJECTED, 2)]
    (error,) = gw.downlink.errors.recent()
    assert error.kind == "recall_rejected"
    assert error.message.startswith(f"recall version 2: {reason}"), error.message
    rejected = [i for i in gw.items if i.event is EventType.RECALL_REJECTED]  # type: ignore[attr-defined]
    assert rejected[0].detail.endswith("; keeping version 1")  # type: ignore[attr-defined]
    assert json.loads(gw.downlink.path("recall").read_bytes())["version"] == 1
    gw.deliver(RECALL, encode(recall_list(3, 5)))  # the next version is taken as usual
    assert gw.downlink.versions.recall == 3


def test_a_newer_version_overtakes_an_incomplete_one_and_older_parts_are_ignored(tmp_path: Path):
    gw = Gateway(tmp_path)
    two, three = parts_of(recall_list(2, 60), 3), parts_of(recall_list(3, 90), 2)
    gw.deliver(on_topic("recall", 1), two[0])
    gw.deliver(on_topic("recall", 2), two[1])
    gw.deliver(on_topic("recall", 2), three[1])  # version 3 starts: version 2's parts are dropped
    gw.deliver(on_topic("recall", 3), two[2])  # the last part of version 2, late: ignored
    assert gw.applied == []
    gw.deliver(on_topic("recall", 1), three[0])
    assert gw.applied == [("recall", 3)]
    assert entries_in_force(gw) == recall_list(3, 90).entries
    gw.deliver(on_topic("recall", 1), two[0])  # older than the version in force
    gw.deliver(RECALL, encode(recall_list(3, 90)))
    assert gw.applied == [("recall", 3)]
    assert gw.downlink.errors.recent() == []


def test_a_whole_document_of_an_older_version_keeps_the_newer_parts_collected(tmp_path: Path):
    gw = Gateway(tmp_path)
    five = parts_of(recall_list(5, 60), 2)
    gw.deliver(on_topic("recall", 2), five[1])
    gw.deliver(RECALL, encode(recall_list(4, 1)))  # a version older than the parts, newer than in force
    gw.deliver(on_topic("recall", 2), encode(msgspec.structs.replace(recall_list(4, 1), part=3, parts=3)))
    assert gw.applied == [("recall", 4)]
    gw.deliver(on_topic("recall", 1), five[0])
    assert gw.applied == [("recall", 4), ("recall", 5)]


def test_a_whole_document_replaces_an_incomplete_set_and_other_gateways_parts_are_not_ours(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(on_topic("recall", 1), parts_of(recall_list(2, 60), 2)[0])
    gw.deliver(recall_topic(SITE, "gw02", 2), parts_of(recall_list(9, 60), 2)[1])
    gw.deliver(f"coldgate/v1/{SITE}/{GATEWAY}/down/recall/x", encode(recall_list(9, 1)))
    gw.deliver(RECALL, encode(recall_list(4, 1)))
    assert gw.applied == [("recall", 4)]
    assert gw.events() == [(EventType.RECALL_APPLIED, 4)]


# -- through a broker ----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_retained_parts_reach_the_gateways_uplink_and_are_applied(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    """The gateway's own link subscribes to the part topics (``down/#``) and routes them to its down-link."""
    document = recall_list(8, 3000)
    payloads = parts_of(document, 3)

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            for k in (3, 1, 2):  # retained before the gateway is there
                cloud.publish(on_topic("recall", k), payloads[k - 1], retain=True)
            gw = Gateway(tmp_path)
            gw.downlink.sink = outbox
            async with running(make_uplink(outbox, mosquitto_own, downlink=gw.downlink)):
                await cloud.until(lambda: gw.downlink.versions.recall == 8, what="recall v8 applied")
            assert gw.applied == [("recall", 8)]
            assert entries_in_force(gw) == document.entries

    asyncio.run(scenario())


QA = Actor("Marta QA", id="u-marta")
NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


class GatewaySide:
    """The gateway's ``Downlink`` fed by a subscriber to its whole down-link (as bench.downlink does)."""

    def __init__(self, broker: MosquittoBroker, data_dir: Path, gateway: str, site: str) -> None:
        self.applied: list[Document] = []
        self.cleared: list[str] = []
        self.done = threading.Condition()
        self.downlink = Downlink(data_dir, gateway=gateway, site=site, sink=self, clock=CLOCK,
                                 on_document=self._on_document)  # fmt: skip
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-parts-{gateway}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(gateway_filter(site, gateway), qos=1)
        self.client.loop_start()

    def put(self, item: object) -> None:
        pass

    def _on_message(self, _c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload:
            self.cleared.append(msg.topic)
        self.downlink.handle(Message(msg.topic, msg.payload, True))

    def _on_document(self, kind: str, document: Document) -> None:
        with self.done:
            self.applied.append(document)
            self.done.notify_all()

    def wait(self, condition: Any, timeout: float = 60.0) -> None:
        with self.done:
            assert self.done.wait_for(condition, timeout), [(d.kind, d.version) for d in self.applied]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(180)
def test_a_recall_of_100000_serials_reaches_the_gateway_complete_and_is_applied_once(
    db_url: str, mosquitto_own: MosquittoBroker, tmp_path: Path
) -> None:
    migrate(db_url)
    engine = make_engine(db_url, writer=True)  # one gateway enrolled, as in bench.downlink
    gateway, site = f"gw-parts-{engine.dialect.name[:2]}", "site-parts"
    enrol(engine, [gateway], site=site)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP", by=QA, now=NOW)
        put_product(conn, "VX10", {"name": "Vaccine X", "gtin": GTIN, "temperature_class": "2-8C",
                                   "serialised": True}, reason="new", by=QA, now=NOW)  # fmt: skip
        put_lot(conn, "VX10", "L1", {"expiry": "2028-06-30"}, reason="received", by=QA, now=NOW)
        add_serials(conn, "VX10", "L1", [], [("0000000001", "0000100000")], reason="list", by=QA, now=NOW)
    side = GatewaySide(mosquitto_own, tmp_path, gateway, site)
    config = CloudMqttConfig(broker=mosquitto_own.url, client_id=f"cloud-parts-{engine.dialect.name}")
    publisher = DownlinkPublisher(engine, config, interval_s=0.5).start()
    try:
        side.wait(lambda: any(d.kind == "recall" and d.version == 1 for d in side.applied))
        with engine.begin() as conn:
            move_lot(conn, "VX10", "L1", "quarantined", reason="FSN 2026-12", by=QA, now=NOW)
        publisher.nudge()
        side.wait(lambda: any(d.kind == "recall" and d.version == 2 for d in side.applied))
        recalls = [d for d in side.applied if d.kind == "recall"]
        assert [d.version for d in recalls] == [1, 2]  # applied once
        message = recalls[-1].message
        assert isinstance(message, RecallList) and len(message.entries) == 100_001
        assert {e.serial for e in message.entries[1:]} == {f"{n:010d}" for n in range(1, 100_001)}
        # The app is handed a version before it is saved: wait for the file to hold it.
        path = side.downlink.path("recall")
        deadline = time.monotonic() + 30
        while not (path.exists() and decode(path.read_bytes(), RecallList).version == 2):
            assert time.monotonic() < deadline, "version 2 never saved"
            time.sleep(0.05)
        saved = path.read_bytes()
        assert decode(saved, RecallList) == message and len(saved) > MAX_PAYLOAD_BYTES // 2
        # The lot released: one message, and the part topics no longer used are cleared.
        with engine.begin() as conn:
            move_lot(conn, "VX10", "L1", "released", reason="QA released it", by=QA, now=NOW)
        publisher.nudge()
        side.wait(lambda: any(d.kind == "recall" and d.version == 3 for d in side.applied))
        parts = -(-len(encode(message)) // PART_BYTES)
        deadline = time.monotonic() + 10
        while len(side.cleared) < parts - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(side.cleared) == sorted(recall_topic(site, gateway, k) for k in range(2, parts + 1))
        current = side.downlink.current("recall")
        assert current is not None and current.version == 3
    finally:
        publisher.stop()
        side.close()
        engine.dispose()
