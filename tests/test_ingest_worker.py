"""The ingest worker through a real Mosquitto: commit, then PUBACK and the end-to-end ack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import DeadLetter, Reading
from coldgate.cloud.ingest.worker import IngestWorker
from tests.rig.ingest import Publisher, reading_batches
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.waiting import wait_until


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


def readings(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Reading)).scalar_one())


def test_two_workers_store_and_ack_each_batch_once(
    engine: Engine, mosquitto: MosquittoBroker, publisher: Publisher, request: pytest.FixtureRequest
) -> None:
    # Client ids unique per test: a persistent session keeps the subscriptions of earlier tests.
    tag = f"{abs(hash(request.node.name)) % 10**6}"
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"g{tag}", client_id=f"cloud{tag}")
    with IngestWorker(engine, config, 1) as one, IngestWorker(engine, config, 2) as two:
        for gateway in ("gw01", "gw02"):
            for topic, payload in reading_batches(gateway, 2000, 100):
                publisher.publish(topic, payload)
            publisher.publish(topic, payload)  # the last batch again: a re-send after a lost ack
        wait_until(lambda: publisher.acked("gw01") == 2000 and publisher.acked("gw02") == 2000, what="acks")
        # The re-sent copies may still be on their way when the first copies' acks arrive.
        wait_until(lambda: one.snapshot().duplicates + two.snapshot().duplicates >= 200, what="re-sends")
        stats = [one.snapshot(), two.snapshot()]
    assert readings(engine) == 4000
    assert sum(s.new_readings for s in stats) == 4000
    assert sum(s.duplicates for s in stats) == 200
    assert all(s.batches > 0 for s in stats), "the shared subscription spread the load"


def test_hostile_message_between_good_ones(
    engine: Engine, mosquitto: MosquittoBroker, publisher: Publisher, request: pytest.FixtureRequest
) -> None:
    # Unique per database: the run on the other database would otherwise inherit this session.
    tag = f"{abs(hash(request.node.name)) % 10**6}"
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"hostile{tag}", client_id=f"hostile{tag}")
    batches = list(reading_batches("gw03", 300, 100))
    with IngestWorker(engine, config, 1):
        publisher.publish(*batches[0])
        publisher.publish(batches[1][0], batches[1][1][:-20])  # truncated
        publisher.publish(batches[1][0], b"\xff\xfe not json")
        publisher.publish(*batches[1])
        publisher.publish(*batches[2])
        wait_until(lambda: publisher.acked("gw03") == 300, what="ack 300")
    assert readings(engine) == 300
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 2
