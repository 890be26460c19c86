"""Batches decoded ahead, in paho's thread: stored exactly as if ingest had decoded them, and let go."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import DeadLetter, Reading, ReadingHour
from coldgate.cloud.ingest.message import ingest_message
from coldgate.cloud.ingest.worker import IngestWorker
from coldgate.contract.codec import decode
from coldgate.contract.uplink import Batch
from tests.rig.ingest import Publisher, batch_message, reading, reading_batches
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.waiting import wait_until

NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def _stored(engine: Engine, gateway: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Reading.seq, Reading.ts, Reading.value, Reading.sensor)
            .where(Reading.gateway == gateway)
            .order_by(Reading.seq)
        ).all()
        hours = conn.execute(
            select(ReadingHour.sensor, ReadingHour.hour, ReadingHour.count, ReadingHour.sum)
            .where(ReadingHour.gateway == gateway)
            .order_by(ReadingHour.sensor, ReadingHour.hour)
        ).all()
    return [tuple(row) for row in rows] + [tuple(row) for row in hours]


def test_a_batch_decoded_ahead_is_stored_as_one_decoded_here(engine: Engine) -> None:
    items = [reading(seq, sensor=f"s{seq % 3}") for seq in range(1, 41)]
    outcomes = []
    for gateway, ahead in (("gw01", False), ("gw02", True)):
        topic, payload = batch_message(gateway, items)
        decoded = decode(payload, Batch, topic) if ahead else None
        for _sent in range(2):  # and once more, as a re-send after a lost ack
            with engine.begin() as conn:
                outcome = ingest_message(conn, topic, payload, NOW, decoded=decoded)
            outcomes.append((outcome.kind, outcome.new, outcome.duplicates, outcome.ack and outcome.ack.seq))
    assert outcomes == [("batch", 40, 0, 40), ("batch", 0, 40, 40)] * 2
    assert _stored(engine, "gw01") == _stored(engine, "gw02")


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


def test_the_worker_lets_go_of_what_it_decoded_ahead(
    engine: Engine, mosquitto: MosquittoBroker, publisher: Publisher, request: pytest.FixtureRequest
) -> None:
    tag = f"{abs(hash(request.node.name)) % 10**6}"
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"ahead{tag}", client_id=f"ahead{tag}")
    batches = list(reading_batches("gw04", 300, 100))
    with IngestWorker(engine, config, 1) as worker:
        publisher.publish(*batches[0])
        publisher.publish(batches[1][0], batches[1][1][:-20])  # does not decode ahead: ingest refuses it
        publisher.publish(*batches[1])
        publisher.publish(*batches[2])
        wait_until(lambda: publisher.acked("gw04") == 300, what="ack 300")
        wait_until(lambda: not worker._decoded, what="every decoded batch let go")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Reading)).scalar_one() == 300
        assert conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 1
