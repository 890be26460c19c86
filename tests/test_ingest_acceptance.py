"""Issue 5's "done when" for cloud ingest, at full size, against real Mosquitto and PostgreSQL.

* a million readings from four gateways through two workers on one shared
  subscription: every one stored once, every gateway acknowledged to the end,
  re-sent batches counted as duplicates and not as rows;
* PostgreSQL stopped for 30 s mid-ingest: nothing lost or doubled, and no
  acknowledgement ever runs ahead of what was committed;
* the broker restarted mid-ingest: the workers' persistent sessions get the
  unacknowledged messages back, and nothing is lost or doubled.

These are slow on purpose (minutes, not seconds): they are the load the
design promises to carry, not a sample of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select, text

from coldgate.cloud.config import CloudMqttConfig
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.models import DeadLetter, ItemKey, Reading
from coldgate.cloud.ingest.worker import IngestWorker
from tests.rig.ingest import (
    AckWatcher,
    GatewayPublisher,
    announced_batches,
    enrol,
    reading_batches,
    unique_tag,
)
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.postgres import PrivateCluster, ThrowawayDatabase
from tests.rig.waiting import wait_until


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def distinct_item_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        query = "SELECT COUNT(DISTINCT (gateway, stream, seq)) FROM readings"
        return int(conn.execute(text(query)).scalar_one())


@pytest.fixture
def pg_engine(pg_database: ThrowawayDatabase) -> Iterator[Engine]:
    migrate(pg_database.url)
    engine = make_engine(pg_database.url, writer=True)
    enrol(engine)
    yield engine
    engine.dispose()


# -- a million readings ----------------------------------------------------------------------------

GATEWAYS = ("gw01", "gw02", "gw03", "gw04")
PER_GATEWAY = 250_000
PER_BATCH = 500
#: Batches re-sent by every gateway mid-run, as after a lost ack (1-based batch numbers).
RESENT_BATCHES = (99, 100)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_million_readings_through_two_workers(
    pg_engine: Engine, mosquitto: MosquittoBroker, request: pytest.FixtureRequest
) -> None:
    tag = unique_tag(request)
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"million{tag}", client_id=f"cloud{tag}")
    watcher = AckWatcher(mosquitto, f"acks{tag}")
    resent: list[tuple[str, bytes]] = []
    for gateway in GATEWAYS:
        batches = reading_batches(gateway, RESENT_BATCHES[-1] * PER_BATCH, PER_BATCH)
        resent += [msg for number, msg in enumerate(batches, 1) if number in RESENT_BATCHES]
    started = time.monotonic()
    try:
        with IngestWorker(pg_engine, config, 1) as one, IngestWorker(pg_engine, config, 2) as two:
            publishers = [
                GatewayPublisher(
                    mosquitto, f"{gateway}-{tag}", announced_batches(gateway, PER_GATEWAY, PER_BATCH)
                )
                for gateway in GATEWAYS
            ]
            for publisher in publishers:
                publisher.start()
            # A gateway whose ack got lost re-sends what it already had acknowledged... in the cloud.
            last_resent = RESENT_BATCHES[-1] * PER_BATCH
            wait_until(
                lambda: all(watcher.acked(g) >= last_resent for g in GATEWAYS), 300, "acks of re-sent range"
            )
            resender = GatewayPublisher(mosquitto, f"resend-{tag}", iter(resent))
            resender.start()
            for publisher in [*publishers, resender]:
                publisher.join_ok()
            assert min(watcher.acked(g) for g in GATEWAYS) < PER_GATEWAY, "the re-send was not mid-run"
            wait_until(
                lambda: all(watcher.acked(g) == PER_GATEWAY for g in GATEWAYS), 540, "every gateway acked"
            )
            # The re-sent batches lie below ranges already acked, so no ack marks their
            # processing: the broker may still be handing them out after the last
            # gateway ack. Wait until the workers have seen them all.
            wait_until(
                lambda: sum(w.snapshot().duplicates for w in (one, two)) >= len(resent) * PER_BATCH,
                60,
                "every re-sent batch processed",
            )
            stats = [one.snapshot(), two.snapshot()]
    finally:
        watcher.close()
    elapsed = time.monotonic() - started
    total = len(GATEWAYS) * PER_GATEWAY
    print(f"\n{total} readings in {elapsed:.1f} s: {total / elapsed:.0f} readings/s with two workers")
    print(
        "per worker (readings, batches, commits, db_retries, lock_retries):",
        [(s.new_readings, s.batches, s.commits, s.db_retries, s.lock_retries) for s in stats],
    )

    assert count(pg_engine, Reading) == total
    assert count(pg_engine, ItemKey) == total
    assert distinct_item_keys(pg_engine) == total
    assert count(pg_engine, DeadLetter) == 0
    assert sum(s.new_readings for s in stats) == total
    assert sum(s.duplicates for s in stats) == len(resent) * PER_BATCH
    assert sum(s.conflicts for s in stats) == 0
    assert all(s.batches > 0 and s.new_readings > 0 for s in stats), "both workers got a share"
    assert all(watcher.acked(g) == PER_GATEWAY for g in GATEWAYS)
    assert not watcher.foreign, "every ack the cloud published follows the contract"
    # Groups are stored in gateway order, so the two workers never deadlock on row locks.
    assert [s.lock_retries for s in stats] == [0, 0]
    assert [s.db_retries for s in stats] == [0, 0]


# -- PostgreSQL down for 30 s ----------------------------------------------------------------------

OUTAGE_S = 30.0


def covered_frozen(engine: Engine, cluster: PrivateCluster) -> dict[str, int]:
    """What is committed right now, then the cluster stopped before any more can commit.

    The stream rows are locked ``FOR UPDATE`` (as ``advance_coverage`` does),
    so a worker transaction either committed before the read, and is counted,
    or waits on the lock and dies with the server (``pg_ctl stop -m fast``
    ends every session), uncommitted.  No ack may exceed what is returned.
    """
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT gateway, covered FROM stream_coverage FOR UPDATE")
        covered = {gateway: int(seq) for gateway, seq in cursor.fetchall()}
        cluster.stop()
    finally:
        conn.invalidate()
    return covered


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_postgresql_outage_loses_nothing_and_acks_nothing_early(
    pg_cluster: PrivateCluster, mosquitto: MosquittoBroker, request: pytest.FixtureRequest
) -> None:
    database = ThrowawayDatabase.in_cluster(pg_cluster)
    migrate(database.url)
    engine = make_engine(database.url, writer=True)
    enrol(engine)
    tag = unique_tag(request)
    config = CloudMqttConfig(broker=mosquitto.url, shared_group=f"outage{tag}", client_id=f"cloud{tag}")
    gateways = ("gw11", "gw12")
    per_gateway, batches = 50_000, 100  # 200 batches of 500
    watcher = AckWatcher(mosquitto, f"acks{tag}")
    try:
        with IngestWorker(engine, config, 1) as worker:
            publishers = [
                GatewayPublisher(
                    mosquitto, f"{g}-{tag}", iter(reading_batches(g, per_gateway, PER_BATCH)), pause_s=0.1
                )
                for g in gateways
            ]
            for publisher in publishers:
                publisher.start()
            wait_until(lambda: all(watcher.acked(g) >= 5_000 for g in gateways), 60, "some batches stored")
            covered = covered_frozen(engine, pg_cluster)
            outage_start = time.monotonic()
            sent_at_stop = sum(p.sent for p in publishers)
            time.sleep(OUTAGE_S)
            during = worker.snapshot()
            sent_during = sum(p.sent for p in publishers) - sent_at_stop
            pg_cluster.start()
            outage_end = time.monotonic()
            for publisher in publishers:
                publisher.join_ok()
            wait_until(lambda: all(watcher.acked(g) == per_gateway for g in gateways), 120, "acks to the end")
            stats = worker.snapshot()
        early = [
            (gateway, seq)
            for _at, gateway, seq in watcher.between(outage_start, outage_end)
            if seq > covered[gateway]
        ]
        late = [(g, s) for at, g, s in watcher.log if at < outage_end and s > covered[g]]
        print(
            f"\ncovered at the stop: {covered}; sent during the outage: {sent_during} batches; "
            f"db_retries={stats.db_retries} last_db_error={stats.last_db_error!r}"
        )
        assert sent_during > 0, "the gateways kept publishing during the outage"
        assert not early and not late, f"acked beyond what was committed before the stop: {early or late}"
        assert during.db_retries > 0, "the worker retried while PostgreSQL was down"
        total = len(gateways) * per_gateway
        assert count(engine, Reading) == total
        assert count(engine, ItemKey) == total
        assert distinct_item_keys(engine) == total
        assert count(engine, DeadLetter) == 0
        assert stats.new_readings == total and stats.conflicts == 0
        assert stats.batches >= batches * len(gateways)
        assert not watcher.foreign
    finally:
        watcher.close()
        engine.dispose()
        database.drop()


# -- the broker restarted mid-ingest ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_broker_restart_mid_ingest_loses_nothing(mosquitto_own: MosquittoBroker, pg_engine: Engine) -> None:
    """A clean broker restart (it saves its persistence file) while messages are unacknowledged.

    The workers' sessions are persistent with manual acks: what they had
    received but not yet committed and acknowledged is re-delivered after the
    restart, and what they had committed but whose PUBACK was lost comes back
    as a duplicate, which ingest recognises.
    """
    broker = mosquitto_own
    config = CloudMqttConfig(broker=broker.url, shared_group="restart", client_id="cloud")
    gateways = ("gw21", "gw22")
    per_gateway = 50_000
    with IngestWorker(pg_engine, config, 1) as one, IngestWorker(pg_engine, config, 2) as two:
        publishers = [
            # Each gateway announces its backlog first, as at connect: what the restart re-delivers
            # out of order then lies inside the sequence window.
            GatewayPublisher(broker, f"{g}", announced_batches(g, per_gateway, PER_BATCH))
            for g in gateways
        ]
        for publisher in publishers:
            publisher.start()
        for publisher in publishers:
            publisher.join_ok()  # every batch is with the broker (PUBACKed) before the restart
        wait_until(lambda: count(pg_engine, Reading) >= 10_000, 60, "ingest under way")
        assert count(pg_engine, Reading) < len(gateways) * per_gateway, "restart came too late"
        broker.restart()
        wait_until(lambda: count(pg_engine, Reading) == len(gateways) * per_gateway, 120, "all stored")
        wait_until(lambda: one.snapshot().connected and two.snapshot().connected, 30, "reconnected")
        time.sleep(1.0)  # anything re-delivered late would show up as extra rows or dead letters
        stats = [one.snapshot(), two.snapshot()]
    total = len(gateways) * per_gateway
    assert count(pg_engine, Reading) == total
    assert count(pg_engine, ItemKey) == total
    assert distinct_item_keys(pg_engine) == total
    assert count(pg_engine, DeadLetter) == 0
    assert sum(s.new_readings for s in stats) == total
    assert sum(s.conflicts for s in stats) == 0
