"""Dead letters that cannot hurt: garbage keeps a prefix, data stays whole, a flood stays small.

Issue 11's trial: 20 payloads of 5 MB of random bytes and one of 17 MB (over the
contract's 16 MiB) were stored whole, and the database grew by 104 MB without a
log line.  Now each keeps its first 4 KiB with the size and SHA-256 of the
whole, and one warning per source every few seconds says what happened.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.db.models import DeadLetter
from coldgate.cloud.ingest.dead_letter_payload import PREFIX_BYTES, keep
from coldgate.cloud.ingest.message import ingest_message
from coldgate.contract.codec import MAX_PAYLOAD_BYTES
from coldgate.contract.topics import batch_topic
from tests.rig.ingest import SITE, batch_message, enrol, reading

NOW = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)
MB = 1024 * 1024


@given(st.binary(max_size=3 * PREFIX_BYTES))
def test_what_is_kept_is_a_prefix_with_the_size_and_hash_of_the_whole(payload: bytes) -> None:
    kept = keep(payload)
    assert payload.startswith(kept.data)
    assert (kept.size, kept.sha256) == (len(payload), hashlib.sha256(payload).hexdigest())
    assert kept.truncated == (len(kept.data) < len(payload))
    assert len(kept.data) == len(payload) or len(kept.data) == PREFIX_BYTES


@pytest.mark.parametrize(
    ("payload", "truncated"),
    [
        (b"\xff" * PREFIX_BYTES, False),  # small garbage costs nothing: kept whole
        (os.urandom(5 * MB), True),
        (b"[" + b"1," * (100 * 1024) + b"1]", False),  # JSON: it might become data after an upgrade
        (b'{"v": 2, "items": []}' + b" " * (300 * 1024), False),
        (b'"' + b"x" * MAX_PAYLOAD_BYTES + b'"', True),  # JSON, but over the contract's limit
    ],
    ids=["small-garbage", "5MB-random", "200kB-json", "padded-json", "json-over-16MiB"],
)
def test_only_what_could_become_data_is_kept_whole(payload: bytes, truncated: bool) -> None:
    kept = keep(payload)
    assert kept.truncated is truncated
    assert len(kept.data) == (PREFIX_BYTES if truncated else len(payload))


def test_a_flood_of_garbage_stays_small_and_is_logged_not_silently_kept(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = f"gw-flood-{engine.dialect.name}"  # the log's rate limit is per source and process-wide
    enrol(engine, [gateway])
    topic = batch_topic(SITE, gateway)
    flood = [os.urandom(5 * MB) for _ in range(20)] + [os.urandom(17 * MB)]
    caplog.set_level(logging.WARNING, logger="coldgate.cloud.ingest.dead_letters")
    for payload in flood:
        with engine.begin() as conn:
            outcome = ingest_message(conn, topic, payload, NOW)
        assert outcome.kind == "dead_letter"
    columns = (DeadLetter.payload_size, DeadLetter.payload_sha256, DeadLetter.truncated)
    with engine.connect() as conn:
        stored = conn.execute(select(*columns).order_by(DeadLetter.id)).all()
        kept_bytes = conn.execute(select(func.sum(func.length(DeadLetter.payload)))).scalar_one()
    assert [(size, sha, cut) for size, sha, cut in stored] == [
        (len(p), hashlib.sha256(p).hexdigest(), True) for p in flood
    ]
    assert kept_bytes == len(flood) * PREFIX_BYTES  # 86 kB of the 117 MB that arrived
    lines = [r.getMessage() for r in caplog.records if f"dead letter from {gateway} " in r.getMessage()]
    assert 1 <= len(lines) <= 2, lines  # rate-limited: one line, not twenty-one
    assert "kept 4096" in lines[0] and "5242880 bytes" in lines[0]


def test_real_data_refused_is_still_kept_whole(engine: Engine) -> None:
    topic, payload = batch_message("gw02", [reading(seq) for seq in range(1, 400)])
    future = payload.replace(b'"v":1', b'"v":2', 1)  # a newer gateway: replayable after an upgrade
    assert len(future) > PREFIX_BYTES
    with engine.begin() as conn:
        assert ingest_message(conn, topic, future, NOW).kind == "dead_letter"
    with engine.connect() as conn:
        kept, cut = conn.execute(select(DeadLetter.payload, DeadLetter.truncated)).one()
    assert (bytes(kept), cut) == (future, False)
