"""Down-link documents: versioned, checked, applied atomically, cached on disk for a reboot without
network; invalid ones rejected with an event and a status error while the old version stays."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from coldgate.contract import examples
from coldgate.contract.codec import encode
from coldgate.contract.items import EventType
from coldgate.contract.topics import config_topic, master_topic, recall_topic
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
