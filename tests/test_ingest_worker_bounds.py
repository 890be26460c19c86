"""A flood cannot make a worker hold it: oversized messages are cut as they arrive, QoS 0 is dropped
while the inbox is full, and the database keeps a bounded share with counters saying the rest.

The issue's trial: 20 random payloads of 5 MB and one of 17 MB (over the contract's 16 MiB) grew
the database by 104 MB and the cloud by 134 MB, silently.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import DeadLetter, DeadLetterBudget, Reading
from coldgate.cloud.ingest.dead_letter_budget import Budget
from coldgate.cloud.ingest.dead_letter_payload import PREFIX_BYTES
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.worker import IngestWorker
from coldgate.contract.topics import batch_topic
from tests.rig.ingest import SITE, Publisher, reading_batches, unique_tag
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.waiting import wait_until

MB = 1024 * 1024


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


def test_the_flood_is_cut_on_arrival_kept_within_budget_and_counted(
    engine: Engine,
    mosquitto: MosquittoBroker,
    publisher: Publisher,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tag = unique_tag(request)
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"flood{tag}", client_id=f"flood{tag}")
    limits = IngestLimits(budget=Budget(rows=12, bytes=1 * MB), max_message_bytes=256 * 1024)
    gateway = {"sqlite": "gw09", "postgresql": "gw10"}[engine.dialect.name]  # the log is rate-limited per id
    flood = [os.urandom(5 * MB) for _ in range(20)] + [os.urandom(17 * MB)]
    caplog.set_level(logging.WARNING, logger="coldgate.cloud.ingest")
    with IngestWorker(engine, config, 1, limits=limits) as worker:
        for payload in flood:
            publisher.publish(batch_topic(SITE, gateway), payload)
        # Real data after the flood still goes through.
        for topic, payload in reading_batches(gateway, 300, 100):
            publisher.publish(topic, payload)
        wait_until(lambda: publisher.acked(gateway) == 300, 30, "the gateway's data after the flood")
        stats = worker.snapshot()
        assert worker._inbox_bytes == 0, "nothing is left counted in the inbox"
    with engine.connect() as conn:
        letters = conn.execute(
            select(
                DeadLetter.payload_size, DeadLetter.payload_sha256, DeadLetter.truncated, DeadLetter.reason
            ).order_by(DeadLetter.id)
        ).all()
        kept_bytes = conn.execute(select(func.sum(func.length(DeadLetter.payload)))).scalar_one()
        budget = conn.execute(
            select(DeadLetterBudget.kept, DeadLetterBudget.dropped, DeadLetterBudget.dropped_total).where(
                DeadLetterBudget.source == gateway
            )
        ).one()
        stored = conn.execute(select(func.count()).select_from(Reading)).scalar_one()
    # The 17 MB one is over what the worker accepts at all (MQTT 5 maximum packet size): the broker
    # never hands it over. The twenty others were cut as they arrived and twelve kept.
    assert len(letters) == 12
    sent = {(len(p), hashlib.sha256(p).hexdigest()) for p in flood[:20]}
    assert {(size, sha) for size, sha, _cut, _reason in letters} <= sent
    assert all(cut for _size, _sha, cut, _reason in letters)
    assert all("over ingest's limit of 262144 bytes" in reason for *_rest, reason in letters)
    assert kept_bytes == 12 * PREFIX_BYTES
    assert tuple(budget) == (12, 8, 8)
    assert stored == 300
    assert stats.dead_letters == 20 and stats.dead_letters_dropped == 8
    messages = [r.getMessage() for r in caplog.records]
    assert sum("are over their budget" in m for m in messages) == 1
    assert any(f"dead letter from {gateway}" in m and "5242880 bytes" in m for m in messages)


def test_qos0_is_dropped_while_the_inbox_is_full(
    engine: Engine, mosquitto: MosquittoBroker, request: pytest.FixtureRequest
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the database is held with SQLite's write lock")
    tag = unique_tag(request)
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"q0{tag}", client_id=f"q0{tag}")
    payload = os.urandom(1 * MB)
    publisher = Publisher(mosquitto)
    hold = sqlite3.connect(str(engine.url.database), isolation_level=None)
    try:
        with IngestWorker(engine, config, 1) as worker:
            hold.execute("BEGIN IMMEDIATE")  # the worker's first commit now waits
            for _ in range(60):
                publisher.client.publish(batch_topic(SITE, "gw09"), payload, qos=0).wait_for_publish(10)
            wait_until(lambda: worker.snapshot().qos0_dropped > 0, 30, "QoS 0 dropped")
            held = worker._inbox_bytes
            hold.execute("ROLLBACK")
            wait_until(
                lambda: worker.snapshot().messages + worker.snapshot().qos0_dropped >= 60, 60, "all seen"
            )
            stats = worker.snapshot()
    finally:
        hold.close()
        publisher.close()
    assert held <= 33 * MB, "the inbox stops growing at its QoS 0 bound"
    assert stats.qos0_dropped > 0 and stats.messages + stats.qos0_dropped == 60
