"""The issue's trial, end to end: a forged reading published 300 numbers ahead of a real gateway.

Before: the forgery was stored, and when the real gateway reached that number its real reading was
dead-lettered as a conflict while the forgery stayed in ``readings``.  Now a real gateway (outbox
and uplink) and two real ingest workers run through Mosquitto; a client holding the gateway's
credentials (the private test broker checks none) publishes one valid-looking reading 300 ahead of
the stream.  It is refused (after the wait a batch ahead is given) and reported, and the real
reading at that number is stored when the gateway gets there.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.alerts.ingest_alerts import AHEAD_RULE
from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import Alert, DeadLetter, Reading
from coldgate.cloud.identity.enrolment import revoke_gateway
from coldgate.cloud.ingest.replay import replayable
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON
from coldgate.cloud.ingest.worker import IngestWorker
from coldgate.contract.codec import encode
from coldgate.contract.topics import batch_topic, status_topic
from coldgate.contract.uplink import Batch
from coldgate.gateway.buffer.outbox import Outbox
from tests.rig.ingest import enrol, unique_tag
from tests.rig.items import reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, SITE, make_uplink, running, uplink_outbox
from tests.rig.waiting import eventually

FORGED_VALUE = 99.5
AHEAD = 300


def _publish(broker: MosquittoBroker, topic: str, payload: bytes, *, retain: bool = False) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="forger", protocol=MQTTProtocolVersion.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def _forge(broker: MosquittoBroker, boot: str, stream: str, seq: int) -> None:
    item = reading(FORGED_VALUE, seq=seq, stamp=CLOCK.stamp())
    batch = Batch(v=1, site=SITE, gateway=GATEWAY, boot=boot, stream=stream, first_seq=seq, last_seq=seq,
                  sent=CLOCK.stamp().wall_ms, items=[item])  # fmt: skip
    _publish(broker, batch_topic(SITE, GATEWAY), encode(batch))


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    assert await eventually(condition, timeout), f"not reached within {timeout} s: {what}"


@pytest.mark.timeout(120)
def test_a_forged_future_reading_is_refused_and_the_real_one_stored(
    engine: Engine, mosquitto: MosquittoBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:  # the rig enrols gw01 for site1; this gateway is at ams-dc1
        revoke_gateway(conn, GATEWAY, now)
    enrol(engine, [GATEWAY], site=SITE)
    # The broker's retained status of this gateway id is the other dialect's run (same boot, a stream
    # already at 350): it would announce that far to this cloud.
    _publish(mosquitto, status_topic(SITE, GATEWAY), b"", retain=True)
    tag = unique_tag(request)
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"trial{tag}", client_id=f"trial{tag}")
    outbox = uplink_outbox(tmp_path / "outbox.sqlite3")
    with IngestWorker(engine, config, 1) as one, IngestWorker(engine, config, 2) as two:
        forged_seq = asyncio.run(_gateway_and_forger(outbox, mosquitto, one, two))
    _check(engine, forged_seq)


async def _gateway_and_forger(outbox: Outbox, mosquitto: MosquittoBroker, *workers: IngestWorker) -> int:
    async with running(make_uplink(outbox, mosquitto)) as uplink:
        for n in range(50):
            outbox.put(reading(4.0 + n % 5 / 10, stamp=CLOCK.stamp()))
        await _until(lambda: outbox.acked_seq == 50, 30, "the first 50 acknowledged")
        forged_seq = 50 + AHEAD
        _forge(mosquitto, CLOCK.stamp().boot, outbox.stream, forged_seq)
        await _until(lambda: sum(w.snapshot().ahead for w in workers) == 1, 30, "the forgery refused")
        for n in range(AHEAD):
            outbox.put(reading(5.0 + n % 7 / 10, stamp=CLOCK.stamp()))
        await _until(lambda: outbox.acked_seq == forged_seq, 30, "the real stream past it")
        assert uplink.stats.timeouts == 0, "the real gateway was never held back"
    return forged_seq


def _check(engine: Engine, forged_seq: int) -> None:
    with engine.connect() as conn:
        stored = conn.execute(
            select(Reading.value).where(Reading.gateway == GATEWAY, Reading.seq == forged_seq)
        ).scalar_one()
        count = len(conn.execute(select(Reading.seq).where(Reading.gateway == GATEWAY)).all())
        letters = conn.execute(select(DeadLetter.id, DeadLetter.reason, DeadLetter.gateway)).all()
        alerts = conn.execute(
            select(Alert.rule, Alert.action, Alert.message).where(Alert.gateway == GATEWAY)
        ).all()
    assert stored != FORGED_VALUE and stored == pytest.approx(5.0 + (AHEAD - 1) % 7 / 10)
    assert count == forged_seq
    assert [(reason.startswith(AHEAD_REASON), gw) for _id, reason, gw in letters] == [(True, GATEWAY)]
    assert [(rule, action) for rule, action, _m in alerts] == [(AHEAD_RULE, "raised")]
    assert f"{forged_seq}..{forged_seq}" in alerts[0][2]
    assert replayable(engine) == [], "an impersonation attempt is never replayable"
