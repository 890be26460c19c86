"""The sequence window through a real ingest worker and Mosquitto (issue 11): a batch beyond the
window waits, unacknowledged, for what may bring it inside (up to ``AHEAD_WAIT_S``), and only then
is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.alerts.ingest_alerts import AHEAD_RULE
from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db.models import Alert, DeadLetter, Reading, StreamCoverage
from coldgate.cloud.ingest.sequence_window import AHEAD_REASON
from coldgate.cloud.ingest.worker import AHEAD_WAIT_S, IngestWorker
from tests.rig.cloud_db import count
from tests.rig.ingest import STREAM, Publisher, batch_message, reading, unique_tag
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.waiting import wait_until


@pytest.fixture
def publisher(mosquitto: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(mosquitto)
    yield pub
    pub.close()


@pytest.fixture
def config(mosquitto: MosquittoBroker, request: pytest.FixtureRequest) -> CloudMqttConfig:
    tag = unique_tag(request)
    return CloudMqttConfig(broker=mosquitto.url, shared_group=f"win{tag}", client_id=f"win{tag}")



def covered(engine: Engine, gateway: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(StreamCoverage.covered).where(
                    StreamCoverage.gateway == gateway, StreamCoverage.stream == STREAM
                )
            ).scalar()
            or 0
        )


def readings(gateway: str, first: int, last: int) -> tuple[str, bytes]:
    return batch_message(gateway, [reading(s) for s in range(first, last + 1)])


def test_a_batch_ahead_waits_for_the_one_before_it(
    engine: Engine, config: CloudMqttConfig, publisher: Publisher
) -> None:
    gateway = "gw21"
    with IngestWorker(engine, config, 1) as worker:
        publisher.publish(*readings(gateway, 301, 400))  # 301 is 300 past nothing: outside the window
        time.sleep(AHEAD_WAIT_S / 4)
        # Waiting: nothing stored, nothing refused, nothing acknowledged.
        assert count(engine, Reading) == 0 and count(engine, DeadLetter) == 0
        assert publisher.acked(gateway) == 0
        publisher.publish(*readings(gateway, 1, 300))
        wait_until(lambda: publisher.acked(gateway) == 400, timeout=10, what="ack 400")
        stats = worker.snapshot()
    assert count(engine, Reading) == 400 and covered(engine, gateway) == 400
    assert count(engine, DeadLetter) == 0 and count(engine, Alert) == 0
    assert (stats.batches, stats.new_readings, stats.ahead, stats.dead_letters) == (2, 400, 0, 0)


def test_a_forgery_far_ahead_is_refused_after_the_wait(
    engine: Engine, config: CloudMqttConfig, publisher: Publisher
) -> None:
    gateway = "gw22"
    with IngestWorker(engine, config, 1) as worker:
        published = time.monotonic()
        publisher.publish(*readings(gateway, 5000, 5004))
        time.sleep(AHEAD_WAIT_S / 2)
        assert count(engine, DeadLetter) == 0  # still waiting for what might bring it inside
        wait_until(lambda: worker.snapshot().ahead > 0, timeout=10, what="the refusal")
        refused_after = time.monotonic() - published
        stats = worker.snapshot()
    assert refused_after >= AHEAD_WAIT_S
    assert (stats.ahead, stats.dead_letters, stats.new_readings, stats.acks_published) == (5, 1, 0, 0)
    assert count(engine, Reading) == 0 and covered(engine, gateway) == 0
    with engine.connect() as conn:
        [letter] = conn.execute(select(DeadLetter)).all()
        [alert] = conn.execute(select(Alert).where(Alert.rule == AHEAD_RULE)).all()
    assert letter.reason.startswith(AHEAD_REASON) and letter.gateway == gateway
    assert "first_seq 5000 is more than 256 past 0" in letter.reason
    assert (alert.gateway, alert.action) == (gateway, "raised")
    assert publisher.acked(gateway) == 0


def test_a_batch_refused_after_the_wait_is_stored_when_the_gateway_sends_it_again(
    engine: Engine, config: CloudMqttConfig, publisher: Publisher
) -> None:
    gateway = "gw23"
    later = readings(gateway, 301, 400)
    with IngestWorker(engine, config, 1) as worker:
        publisher.publish(*later)
        wait_until(lambda: worker.snapshot().ahead == 100, timeout=10, what="the refusal")
        publisher.publish(*readings(gateway, 1, 300))
        wait_until(lambda: publisher.acked(gateway) == 300, timeout=10, what="ack 300")
        publisher.publish(*later)  # unacknowledged, so the real gateway sends it again, in order now
        wait_until(lambda: publisher.acked(gateway) == 400, timeout=10, what="ack 400")
    assert count(engine, Reading) == 400 and covered(engine, gateway) == 400
    with engine.connect() as conn:
        [letter] = conn.execute(select(DeadLetter)).all()
    assert letter.reason.startswith(AHEAD_REASON)  # kept as evidence, and nothing real was lost
