"""Down-link documents: versioned, checked, applied atomically, cached on disk for a reboot without
network; invalid ones rejected with an event and a status error while the old version stays.  And as the
cloud builds them from its catalog: every product, whatever identifiers its labels carry, each class
with its alarm rules, and a document that uses nothing new byte for byte as before."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import Engine

from coldgate.cloud.catalog.lots import put_lot
from coldgate.cloud.catalog.products import FIELDS, put_product
from coldgate.cloud.catalog.temperature_classes import check_spec, put_class
from coldgate.cloud.downlink.documents import build_master, build_recalls, content_digest
from coldgate.cloud.downlink.versions import due_documents
from coldgate.contract import examples
from coldgate.contract.codec import decode, encode
from coldgate.contract.downlink import MasterData, RecallList
from coldgate.contract.items import EventType
from coldgate.contract.topics import config_topic, master_topic, recall_topic
from coldgate.gateway.pushed_classes import pushed_classes
from tests.rig.catalog import QA
from tests.rig.downlink_gateway import Gateway
from tests.rig.fake_cloud import FakeCloud
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import GATEWAY, SITE, make_uplink, running, uplink_outbox

CONFIG = config_topic(SITE, GATEWAY)
MASTER = master_topic(SITE, GATEWAY)
RECALL = recall_topic(SITE, GATEWAY)


def config_update(version: int, **sections: Any) -> bytes:
    document = {"gateway": {"id": GATEWAY, "site": SITE, "data_dir": "/var/lib/coldgate"}, **sections}
    return json.dumps(
        {"v": 1, "gateway": GATEWAY, "version": version, "issued": examples.T0, "config": document}
    ).encode()


def edited(message: Any, **changes: Any) -> bytes:
    body = json.loads(encode(message))
    body.update(changes)
    return json.dumps(body).encode()


def test_a_new_version_is_applied_saved_and_reported(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(CONFIG, config_update(1))
    document = gw.downlink.current("config")
    assert document is not None and document.config is not None
    assert document.config.gateway.id == GATEWAY
    assert gw.applied == [("config", 1)]
    assert gw.events() == [(EventType.CONFIG_APPLIED, 1)]
    assert gw.downlink.path("config").read_bytes() == config_update(1)
    assert gw.downlink.versions.config == 1
    assert not list((tmp_path / "downlink").glob("*.tmp"))


def test_redelivered_and_older_versions_are_ignored(tmp_path: Path):
    gw = Gateway(tmp_path)
    for version in (2, 2, 1, 2):
        gw.deliver(CONFIG, config_update(version))
    assert gw.applied == [("config", 2)]
    assert gw.events() == [(EventType.CONFIG_APPLIED, 2)]


def test_an_invalid_config_is_rejected_and_the_old_version_stays(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(CONFIG, config_update(1))
    gw.deliver(CONFIG, config_update(2, uplink={"keepalive_s": 1}))
    gw.deliver(CONFIG, config_update(2, uplink={"keepalive_s": 1}))  # retained again after a reconnect
    assert gw.downlink.versions.config == 1
    assert gw.downlink.path("config").read_bytes() == config_update(1)
    assert gw.events() == [(EventType.CONFIG_APPLIED, 1), (EventType.CONFIG_REJECTED, 2)]
    (error,) = gw.downlink.errors.recent()
    assert error.kind == "config_rejected"
    assert error.message == (
        f"config version 2: mqtt:{CONFIG}: uplink.keepalive_s: expected a whole number of seconds "
        "5..65535, got 1"
    )
    gw.deliver(CONFIG, config_update(3))
    assert gw.downlink.versions.config == 3


@pytest.mark.parametrize(
    ("topic", "payload", "kind", "words"),
    [
        (CONFIG, config_update(4, gateway={"id": "gw02", "site": SITE}), "config", "is for ams-dc1/gw02"),
        (
            CONFIG,
            b'{"v": 1, "gateway": "gw01", "version": 5, "issued": 1, "config": 3}',
            "config",
            "$.config",
        ),
        (
            MASTER,
            edited(
                examples.MASTER,
                version=58,
                products=[{"gtin": examples.GTIN, "name": "Insulin", "temperature_class": "deep-frozen"}],
            ),
            "master",
            "unknown temperature class 'deep-frozen'",
        ),
        (RECALL, edited(examples.RECALL, version=10, gateway="gw02"), "recall", "does not match the topic"),
        (RECALL, b'{"v": 1, "version": 11, "entr', "recall", "truncated"),
        (RECALL, edited(examples.RECALL, version=12, v=2), "recall", "unsupported contract version 2"),
    ],
)
def test_invalid_documents_are_rejected_with_the_reason(
    tmp_path: Path, topic: str, payload: bytes, kind: str, words: str
):
    gw = Gateway(tmp_path)
    gw.deliver(topic, payload)
    assert gw.applied == []
    assert gw.downlink.current(kind) is None
    assert [e for e, _ in gw.events()] == [EventType[f"{kind.upper()}_REJECTED"]]
    (error,) = gw.downlink.errors.recent()
    assert error.kind == f"{kind}_rejected" and words in error.message
    assert not gw.downlink.path(kind).exists()


def test_a_document_the_app_cannot_take_is_rejected_and_not_saved(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(MASTER, encode(examples.MASTER))
    gw.refuse = "master"
    gw.deliver(MASTER, edited(examples.MASTER, version=58))
    assert gw.downlink.versions.master == 57
    assert json.loads(gw.downlink.path("master").read_bytes())["version"] == 57
    assert "not applied: the alarm relay" in gw.downlink.errors.recent()[-1].message


def test_an_empty_retained_payload_is_a_deletion_marker_and_changes_nothing(tmp_path: Path):
    gw = Gateway(tmp_path)
    gw.deliver(RECALL, encode(examples.RECALL))
    gw.deliver(RECALL, b"")
    assert gw.downlink.versions.recall == examples.RECALL.version
    assert gw.events() == [(EventType.RECALL_APPLIED, examples.RECALL.version)]


def test_after_a_reboot_without_network_the_cached_versions_are_in_force(tmp_path: Path):
    before = Gateway(tmp_path)
    before.deliver(CONFIG, config_update(7))
    before.deliver(MASTER, encode(examples.MASTER))
    before.deliver(RECALL, encode(examples.RECALL))

    after = Gateway(tmp_path)
    versions = after.downlink.load()
    assert (versions.config, versions.master, versions.recall) == (7, 57, examples.RECALL.version)
    assert after.applied == [("config", 7), ("master", 57), ("recall", examples.RECALL.version)]
    assert after.items == []  # nothing new happened: no events
    after.deliver(CONFIG, config_update(7))  # the broker's retained copy, once the network is back
    assert after.applied[-1] == ("recall", examples.RECALL.version)


def test_a_corrupt_cached_file_is_reported_and_ignored(tmp_path: Path):
    before = Gateway(tmp_path)
    before.deliver(CONFIG, config_update(3))
    before.deliver(MASTER, encode(examples.MASTER))
    before.downlink.path("master").write_bytes(b'{"v": 1, "gateway": "gw01", "vers')

    after = Gateway(tmp_path)
    versions = after.downlink.load()
    assert (versions.config, versions.master) == (3, None)
    (error,) = after.downlink.errors.recent()
    assert error.kind == "master_cache_invalid" and "master.json ignored" in error.message
    after.deliver(MASTER, encode(examples.MASTER))  # the broker brings it back
    assert after.downlink.versions.master == 57


# -- through the broker ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_retained_config_reaches_the_gateway_and_a_rejection_shows_in_its_status(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            cloud.publish(CONFIG, config_update(1), retain=True)  # before the gateway is there
            gw = Gateway(tmp_path)
            gw.downlink.sink = outbox
            async with running(make_uplink(outbox, mosquitto_own, downlink=gw.downlink)):
                await cloud.until(lambda: gw.downlink.versions.config == 1, what="config v1 applied")
                cloud.publish(CONFIG, config_update(2, uplink={"keepalive_s": 1}), retain=True)

                def rejection_reported() -> bool:
                    statuses = cloud.snapshot()["statuses"]
                    return any(
                        s.versions
                        and s.versions.config == 1
                        and [e.kind for e in s.errors] == ["config_rejected"]
                        for s in statuses
                    )

                await cloud.until(rejection_reported, what="a status right after the rejection")
                await cloud.until(lambda: outbox.acked_seq == 2, what="both events delivered")
            assert gw.applied == [("config", 1)]

        rebooted = Gateway(tmp_path)  # no broker, no network
        assert rebooted.downlink.load().config == 1
        assert rebooted.applied == [("config", 1)]

    asyncio.run(scenario())


# -- built by the cloud from its catalog (issue 14: products of any scheme, each class's rules) -------


def _class_record(name: str, description: str = "", **spec: Any) -> dict[str, Any]:
    """A class as ``cloud.catalog.classes`` lists it: its spec checked and filled in, as stored."""
    return {"name": name, "description": description, "spec": check_spec(name, spec)}


def _product_record(product_id: str, **fields: Any) -> dict[str, Any]:
    """A product as ``cloud.catalog.products`` lists it (every field, None where not given)."""
    plain = {"name": product_id, "temperature_class": "2-8C", "serialised": False}
    return {"id": product_id, **{name: None for name in FIELDS}, **plain, **fields}


def _lot_record(product: str, lot: str, status: str = "released", **fields: Any) -> dict[str, Any]:
    base = {
        "expiry": "2027-06-30",
        "expiry_hour": None,
        "manufactured": None,
        "version": 2,
        "reason": "FSN 9",
    }
    return {"product": product, "lot": lot, "status": status, **base, **fields}


CATALOG_GTIN = "04006381333931"
CLASSES = [_class_record("2-8C", "Refrigerated", low=2, high=8)]
VX10 = _product_record("VX10", name="Vaccine X", gtin=CATALOG_GTIN, serialised=True)
CATH = _product_record("CATH-12", name="Catheter", hibc_lic="A123", hibc_pcn="CATH12", hibc_uom=1)
STENT = _product_record("STENT-3", name="Stent", ma_id="MA.156.M0.100001.1A2B3C", tor_budget_s=3600)


def test_a_gtin_product_without_hibc_ma_or_tor_budget_encodes_exactly_as_before():
    # What the cloud published before products without a GTIN, HIBC/MA codes and class rules existed.
    lots = [
        _lot_record("VX10", "L1"),
        _lot_record("VX10", "L2", "recalled"),
        _lot_record("VX10", "L3", expiry=None),
    ]
    master = build_master("gw01", CLASSES, [VX10], lots, version=3, issued=1765000000000)
    assert encode(master.document) == (
        b'{"v":1,"gateway":"gw01","version":3,"issued":1765000000000,"temperature_classes":[{"name":"2-8C",'
        b'"low":2.0,"high":8.0,"description":"Refrigerated"}],"products":[{"gtin":"04006381333931",'
        b'"name":"Vaccine X","temperature_class":"2-8C"}],"batches":[{"gtin":"04006381333931","lot":"L1",'
        b'"expiry":"2027-06-30"},{"gtin":"04006381333931","lot":"L2","expiry":"2027-06-30"}]}'
    )
    recalls = build_recalls(
        "gw01", [VX10], lots, version=4, issued=1765000000000, serials={("VX10", "L2"): ["7"]}
    )
    assert encode(recalls.document) == (
        b'{"v":1,"gateway":"gw01","version":4,"issued":1765000000000,"entries":[{"gtin":"04006381333931",'
        b'"lot":"L2","status":"recalled","reference":"VX10/L2 v2","reason":"FSN 9"},{"gtin":"04006381333931",'
        b'"serial":"7","status":"recalled","reference":"VX10/L2 v2","reason":"FSN 9"}]}'
    )
    assert (master.left_out, master.why, recalls.left_out, recalls.why) == (0, (), 0, ())


def test_products_known_by_hibc_or_ma_alone_are_published_by_id_with_their_lots(tmp_path: Path):
    gtin_hibc = _product_record("INS-3", gtin="80614141123458", hibc_lic="B456", hibc_pcn="INS3")
    lots = [_lot_record("STENT-3", "2405A1", expiry="2027-05-31", expiry_hour=12),
            _lot_record("CATH-12", "H26-114", expiry="2030-01-31"), _lot_record("VX10", "L1"),
            _lot_record("INS-3", "L8")]  # fmt: skip
    built = build_master("gw01", CLASSES, [STENT, CATH, gtin_hibc, VX10], lots, version=1, issued=0)
    master = built.document
    assert isinstance(master, MasterData) and (built.left_out, built.why) == (0, ())
    # GTIN products first by GTIN, as before; then the others by id, keyed by it, with their codes.
    assert [json.loads(encode(p)) for p in master.products] == [
        {"gtin": CATALOG_GTIN, "name": "Vaccine X", "temperature_class": "2-8C"},
        {"gtin": "80614141123458", "name": "INS-3", "temperature_class": "2-8C", "hibc": "B456INS3"},
        {"id": "CATH-12", "name": "Catheter", "temperature_class": "2-8C", "hibc": "A123CATH12",
         "hibc_uom": 1},
        {"id": "STENT-3", "name": "Stent", "temperature_class": "2-8C", "ma": "MA.156.M0.100001.1A2B3C",
         "tor_budget_s": 3600},
    ]  # fmt: skip
    assert [json.loads(encode(b)) for b in master.batches] == [
        {"gtin": CATALOG_GTIN, "lot": "L1", "expiry": "2027-06-30"},
        {"gtin": "80614141123458", "lot": "L8", "expiry": "2027-06-30"},
        {"product": "CATH-12", "lot": "H26-114", "expiry": "2030-01-31"},
        {"product": "STENT-3", "lot": "2405A1", "expiry": "2027-05-31", "expiry_hour": 12},
    ]
    assert built.entries == 1 + 4 + 4
    # What a gateway decodes is what was built, and its down-link takes it.
    assert decode(encode(master), MasterData) == master
    gw = Gateway(tmp_path)
    gw.deliver(MASTER, encode(master))
    assert gw.applied == [("master", 1)]


def test_recalls_of_products_without_a_gtin_name_the_product_id_lot_and_serials():
    lots = [_lot_record("CATH-12", "H26-114", "recalled"), _lot_record("STENT-3", "2405A1", "quarantined"),
            _lot_record("STENT-3", "2405A2"), _lot_record("VX10", "L1", "recalled")]  # fmt: skip
    serials = {("STENT-3", "2405A1"): ["000124", "000123"], ("CATH-12", "H26-114"): []}
    built = build_recalls("gw01", [VX10, STENT, CATH], lots, version=2, issued=0, serials=serials)
    document = built.document
    assert isinstance(document, RecallList) and (built.left_out, built.entries) == (0, 5)
    assert [(e.gtin, e.product, e.lot, e.serial, e.status) for e in document.entries] == [
        (CATALOG_GTIN, None, "L1", None, "recalled"),
        (None, "CATH-12", "H26-114", None, "recalled"),
        (None, "STENT-3", "2405A1", None, "quarantined"),
        (None, "STENT-3", None, "000123", "quarantined"),
        (None, "STENT-3", None, "000124", "quarantined"),
    ]
    assert decode(encode(document), RecallList) == document


def test_class_rules_carry_what_differs_from_the_gateways_defaults_in_key_order():
    revised = _class_record("2-8C", "Refrigerated", low=2, high=8, alarm_delay_s=900, pre_alarm_margin=1.0,
                            humidity_high=60, alarm_on="high")  # fmt: skip
    room = _class_record("15-25C", low=15, high=25)
    master = build_master("gw01", [revised, room], [VX10], [], version=1, issued=0).document
    assert isinstance(master, MasterData)
    assert [(c.name, c.rules) for c in master.temperature_classes] == [
        ("15-25C", {}),  # all at the defaults: no `rules`, which an older gateway would refuse
        (
            "2-8C",
            {"alarm_delay_s": 900.0, "alarm_on": "high", "humidity_high": 60.0, "pre_alarm_margin": 1.0},
        ),
    ]
    assert list(master.temperature_classes[1].rules) == sorted(master.temperature_classes[1].rules)
    assert b'"rules"' not in encode(master.temperature_classes[0])
    # The gateway reads them back into the very class the catalog checked and stored.
    pushed = {c.name: msgspec.to_builtins(c) for c in pushed_classes(master)}
    assert pushed["2-8C"] == {"name": "2-8C", **revised["spec"]}
    assert pushed["15-25C"] == {"name": "15-25C", **room["spec"]}
    # Deterministic: the spec's key order, the lists' order and the issue make no other digest; a rule does.
    shuffled = {**revised, "spec": dict(reversed(list(revised["spec"].items())))}
    again = build_master("gw01", [room, shuffled], [VX10], [], version=9, issued=5).document
    assert encode(msgspec.structs.replace(again, version=1, issued=0)) == encode(master)
    assert content_digest(again) == content_digest(master)
    stricter = _class_record("2-8C", "Refrigerated", low=2, high=8, alarm_delay_s=600, pre_alarm_margin=1.0,
                             humidity_high=60, alarm_on="high")  # fmt: skip
    changed = build_master("gw01", [stricter, room], [VX10], [], version=1, issued=0).document
    assert content_digest(changed) != content_digest(master)


def test_what_the_contract_cannot_carry_is_left_out_counted_and_said_never_a_crash():
    """Values stored before the catalog checked them as the contract does, a product of a class no longer
    in force, a held lot of a retired product: the rest is published, the gateway takes it."""
    legacy_ma = _product_record("IN20", name="Insulin 20", ma_id="ma-in20")
    both = _product_record("GZ", gtin="09506000134352", ma_id="gauze-1")
    orphan = _product_record("OLD", gtin="80614141123458", temperature_class="frozen")
    bad_class = {"name": "hot", "description": "", "spec": {"low": 30.0, "high": 20.0, "hysteresis": 0.3}}
    stale_key = {**CLASSES[0], "spec": {**CLASSES[0]["spec"], "max_door_open_s": 60}}
    lots = [_lot_record("IN20", "B7"), _lot_record("OLD", "X1"), _lot_record("GZ", "G1")]
    built = build_master("gw01", [stale_key, bad_class], [legacy_ma, both, orphan], lots, version=1, issued=0)
    master = built.document
    assert isinstance(master, MasterData)
    assert [c.name for c in master.temperature_classes] == ["2-8C"] and master.temperature_classes[
        0
    ].rules == {}
    assert [(p.gtin, p.id, p.ma) for p in master.products] == [
        ("09506000134352", None, None),
        (None, "IN20", None),
    ]
    assert [(b.key, b.lot) for b in master.batches] == [("09506000134352", "G1"), ("IN20", "B7")]
    assert built.left_out == 6  # a rule key, a class, a product and its lot, two MA ids
    said = "\n".join(built.why)
    for words in ("temperature class '2-8C': rule 'max_door_open_s' is not a gateway class key; left out",
                  "temperature class 'hot': ",
                  "product 'OLD': its temperature class 'frozen' is not published",
                  "product 'IN20': MA id 'ma-in20' is not one the contract carries; published without it",
                  "product 'GZ': MA id 'gauze-1' is not one"):  # fmt: skip
        assert words in said, said
    assert decode(encode(master), MasterData) == master
    held = [_lot_record("GONE", "L1", "recalled"), _lot_record("IN20", "B7", "quarantined")]
    recalls = build_recalls("gw01", [legacy_ma], held, version=1, issued=0)
    assert [(e.product, e.lot) for e in recalls.document.entries] == [("IN20", "B7")]  # type: ignore[union-attr]
    assert recalls.left_out == 1 and "lot GONE/L1 (recalled): its product is unknown" in recalls.why[0]


def test_the_catalog_publishes_hibc_and_ma_products_and_a_new_version_only_when_content_changes(
    engine: Engine,
):
    """Through the catalog's own writes and ``due_documents``, on both dialects."""
    now = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=QA, now=now)
        for product_id, fields in (("VX10", VX10), ("CATH-12", CATH), ("STENT-3", STENT)):
            wanted = {k: v for k, v in fields.items() if k in FIELDS and v is not None}
            put_product(conn, product_id, wanted, reason="new", by=QA, now=now)
        put_lot(
            conn,
            "STENT-3",
            "2405A1",
            {"expiry": "2027-05-31", "expiry_hour": 23},
            reason="in",
            by=QA,
            now=now,
        )
        put_lot(
            conn, "CATH-12", "H1", {"expiry": "2030-01-31"}, status="recalled", reason="FSN", by=QA, now=now
        )
        first = {(d.gateway, d.kind): d for d in due_documents(conn, now)}
    gateway = sorted(first)[0][0]
    master = first[(gateway, "master")]
    assert master.new and master.built.left_out == 0
    assert master.payload.count(b'"id":') == 2 and b'"ma":"MA.156.M0.100001.1A2B3C"' in master.payload
    assert b'{"product":"STENT-3","lot":"2405A1","expiry":"2027-05-31","expiry_hour":23}' in master.payload
    assert b'"product":"CATH-12","lot":"H1","status":"recalled"' in first[(gateway, "recall")].payload
    with engine.begin() as conn:
        again = {(d.gateway, d.kind): d for d in due_documents(conn, now)}
        assert not any(d.new for d in again.values())
        assert again[(gateway, "master")].payload == master.payload
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12 again, same content", by=QA, now=now)
        assert not any(d.new for d in due_documents(conn, now))
        put_class(
            conn, "2-8C", {"low": 2, "high": 8, "alarm_delay_s": 900}, reason="SOP-12 rev 2", by=QA, now=now
        )
        revised = {(d.gateway, d.kind): d for d in due_documents(conn, now)}
    assert revised[(gateway, "master")].new and revised[(gateway, "master")].version == master.version + 1
    assert b'"rules":{"alarm_delay_s":900.0}' in revised[(gateway, "master")].payload
    assert not revised[(gateway, "recall")].new


def test_a_recalled_lot_of_a_retired_product_is_still_on_the_recall_list(engine: Engine) -> None:
    """A product taken out of the range is not recognised at the door any more (master data), but its
    recalled lot must still be stopped (GDP): the recall list names it."""
    now = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8}, reason="SOP-12", by=QA, now=now)
        fields = {k: v for k, v in VX10.items() if k in FIELDS and v is not None}
        put_product(conn, "VX10", fields, reason="new", by=QA, now=now)
        put_lot(conn, "VX10", "OLD7", {"expiry": "2027-05-31"}, status="recalled", reason="FSN", by=QA,
                now=now)  # fmt: skip
        put_product(conn, "VX10", fields, reason="discontinued", retired=True, by=QA, now=now)
        due = {(d.gateway, d.kind): d for d in due_documents(conn, now)}
    gateway = sorted(due)[0][0]
    assert b'"lot":"OLD7","status":"recalled"' in due[(gateway, "recall")].payload
    assert due[(gateway, "recall")].built.left_out == 0
    assert b'"OLD7"' not in due[(gateway, "master")].payload
