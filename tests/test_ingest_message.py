"""``ingest_message`` on both dialects: re-sent items, conflicts, coverage, salvage, registry, clocks."""

from __future__ import annotations

import datetime

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.db.models import (
    BatchRange,
    BootAnchor,
    DeadLetter,
    Gateway,
    Reading,
    Sensor,
    StreamCoverage,
)
from coldgate.cloud.ingest.group import Outcome
from coldgate.cloud.ingest.message import ingest_message
from coldgate.contract import examples
from coldgate.contract.codec import encode
from coldgate.contract.topics import batch_topic
from coldgate.contract.uplink import State
from tests.rig.ingest import BOOT, NOW_MS, SITE, STREAM, batch, batch_message, reading, status_message

GW = "gw01"
NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)


def ingest(engine: Engine, topic: str, payload: bytes) -> Outcome:
    with engine.begin() as conn:
        return ingest_message(conn, topic, payload, NOW)


def rows(engine: Engine, query: object) -> list:
    with engine.connect() as conn:
        return list(conn.execute(query))  # type: ignore[call-overload]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_new_then_resent_batch(engine: Engine) -> None:
    topic, payload = batch_message(GW, [reading(s) for s in range(1, 11)])
    first = ingest(engine, topic, payload)
    assert (first.kind, first.new, first.duplicates, first.conflicts) == ("batch", 10, 0, 0)
    assert first.ack is not None and first.ack.seq == 10 and first.ack.stream == STREAM
    assert [r.seq for r in first.new_readings] == list(range(1, 11))
    again = ingest(engine, topic, payload)
    assert (again.new, again.duplicates, again.conflicts, again.dead_letters) == (0, 10, 0, 0)
    assert again.ack is not None and again.ack.seq == 10  # re-published: the gateway missed the last one
    assert count(engine, Reading) == 10
    assert [r.id for r in rows(engine, select(Sensor))] == ["cr1-t01"]
    gateway = rows(engine, select(Gateway))[0]
    assert (gateway.id, gateway.site, gateway.online) == (GW, SITE, True)


def test_same_key_other_content_is_dead_lettered_and_the_stored_item_kept(engine: Engine) -> None:
    ingest(engine, *batch_message(GW, [reading(s) for s in range(1, 6)]))
    changed = [reading(s, value=99.5 if s == 3 else None) for s in range(1, 6)]
    outcome = ingest(engine, *batch_message(GW, changed))
    assert (outcome.new, outcome.duplicates, outcome.conflicts) == (0, 4, 1)
    letter = rows(engine, select(DeadLetter))[0]
    assert "conflict" in letter.reason and "value" in letter.reason and f"{GW}, {STREAM}, 3" in letter.reason
    assert msgspec.json.decode(letter.payload)["value"] == 99.5
    stored = rows(engine, select(Reading.value).where(Reading.seq == 3))
    assert stored[0].value == reading(3).value


def test_express_batch_waits_for_the_stream_to_catch_up(engine: Engine) -> None:
    alert = msgspec.structs.replace(examples.ALERT, seq=8, ts=NOW_MS + 8000)
    express = ingest(engine, *batch_message(GW, [alert]))
    assert express.ack is None  # 1..7 not yet committed
    assert count(engine, BatchRange) == 1
    first = ingest(engine, *batch_message(GW, [reading(s) for s in range(1, 5)]))
    assert first.ack is not None and first.ack.seq == 4
    rest = ingest(engine, *batch_message(GW, [reading(5), reading(6), reading(7), alert]))
    assert rest.ack is not None and rest.ack.seq == 8
    assert count(engine, BatchRange) == 0


def test_thinned_range_is_covered(engine: Engine) -> None:
    outcome = ingest(engine, *batch_message(GW, [reading(1), reading(9)], first_seq=1))
    assert outcome.ack is not None and outcome.ack.seq == 9


def test_a_bad_item_is_dead_lettered_and_its_neighbours_stored(engine: Engine) -> None:
    good = msgspec.json.decode(encode(batch(GW, [reading(s) for s in range(1, 4)])))
    good["items"][1]["value"] = "warm"
    outcome = ingest(engine, batch_topic(SITE, GW), msgspec.json.encode(good))
    assert (outcome.new, outcome.dead_letters) == (2, 1)
    assert outcome.ack is not None and outcome.ack.seq == 3
    letter = rows(engine, select(DeadLetter))[0]
    assert letter.path == "$.items[1].value" and letter.gateway == GW
    assert msgspec.json.decode(letter.payload)["value"] == "warm"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(gateway="gw02"), "$.gateway"),
        (lambda d: d.update(v=2), "$.v"),
        (lambda d: d["items"].reverse(), "$.items[1].seq"),
    ],
    ids=["spoofed_gateway", "unknown_version", "items_out_of_order"],
)
def test_a_bad_envelope_is_dead_lettered_whole(engine: Engine, mutate, path: str) -> None:  # type: ignore[no-untyped-def]
    doc = msgspec.json.decode(encode(batch(GW, [reading(1), reading(2)])))
    mutate(doc)
    payload = msgspec.json.encode(doc)
    outcome = ingest(engine, batch_topic(SITE, GW), payload)
    assert (outcome.kind, outcome.new, outcome.ack) == ("dead_letter", 0, None)
    letter = rows(engine, select(DeadLetter))[0]
    assert (letter.path, letter.payload, letter.gateway) == (path, payload, GW)
    assert count(engine, Reading) == 0


def test_truncated_json_and_foreign_topics(engine: Engine) -> None:
    topic, payload = batch_message(GW, [reading(1)])
    assert ingest(engine, topic, payload[:-7]).kind == "dead_letter"
    assert ingest(engine, "somewhere/else", payload).kind == "dead_letter"
    assert ingest(engine, f"coldgate/v1/{SITE}/{GW}/down/ack", payload).kind == "dead_letter"
    letters = rows(engine, select(DeadLetter).order_by(DeadLetter.id))
    assert [letter.gateway for letter in letters] == [GW, None, GW]
    assert "truncated" in letters[0].reason.lower() or "malformed" in letters[0].reason.lower()


def test_status_registry_heartbeat_and_will(engine: Engine) -> None:
    ingest(engine, *status_message(GW, ts=NOW_MS + 60_000, outbox_depth=12))
    gateway = rows(engine, select(Gateway))[0]
    assert gateway.online and gateway.last_status["outbox_depth"] == 12 and gateway.boot == BOOT
    # A retained older heartbeat arriving late does not replace the newer one.
    ingest(engine, *status_message(GW, ts=NOW_MS, outbox_depth=99))
    assert rows(engine, select(Gateway))[0].last_status["outbox_depth"] == 12
    # The will is stamped at connect time (older), yet it always applies.
    ingest(engine, *status_message(GW, ts=NOW_MS - 1000, state=State.OFFLINE, will=True))
    gateway = rows(engine, select(Gateway))[0]
    assert not gateway.online and gateway.last_status["will"] is True
    assert gateway.last_status["outbox_depth"] == 12  # the will is laid over the last full status


def test_clock_correction_from_a_later_anchor_and_for_later_items(engine: Engine) -> None:
    # Boot clock wrong by a year until NTP: ts are garbage but mono is right.
    early = [reading(s, synced=False, ts=1_000 + s) for s in (1, 2)]
    ingest(engine, *batch_message(GW, early))
    assert rows(engine, select(Reading.ts_corrected).order_by(Reading.seq)) == [(None,), (None,)]
    ingest(engine, *batch_message(GW, [reading(3)]))  # synced: mono 1_003_000 at NOW_MS + 3000
    corrected = rows(engine, select(Reading.seq, Reading.ts, Reading.ts_corrected).order_by(Reading.seq))
    assert corrected[0] == (1, 1_001, NOW_MS + 1000)
    assert corrected[1] == (2, 1_002, NOW_MS + 2000)
    assert corrected[2].ts_corrected is None  # synced items need none
    ingest(engine, *batch_message(GW, [reading(4, synced=False, ts=5)]))
    assert rows(engine, select(Reading.ts_corrected).where(Reading.seq == 4)) == [(NOW_MS + 4000,)]
    assert rows(engine, select(BootAnchor.mono, BootAnchor.ts)) == [(1_003_000, NOW_MS + 3000)]


def test_a_retained_status_does_not_prove_the_gateway_alive(engine: Engine) -> None:
    ingest(engine, *status_message(GW, ts=NOW_MS))
    later = NOW + datetime.timedelta(minutes=10)
    with engine.begin() as conn:
        topic, payload = status_message(GW, ts=NOW_MS)
        ingest_message(conn, topic, payload, later, retained=True)
    seen = rows(engine, select(Gateway.last_seen))[0].last_seen
    assert seen.replace(tzinfo=datetime.UTC) == NOW


@pytest.mark.parametrize("topic", ["\ud800", "coldgate/v1/site1/gw\x0001/up/batch"], ids=["surrogate", "nul"])
def test_a_topic_no_database_can_store_is_dead_lettered_escaped(engine: Engine, topic: str) -> None:
    _, payload = batch_message(GW, [reading(1)])
    assert ingest(engine, topic, payload).kind == "dead_letter"
    letter = rows(engine, select(DeadLetter))[0]
    assert letter.payload == payload and "\\" in letter.topic and "\x00" not in letter.topic


def test_a_bad_item_cannot_widen_the_acknowledged_range(engine: Engine) -> None:
    doc = msgspec.json.decode(encode(batch(GW, [reading(1), reading(2)])))
    doc["items"][0]["value"] = "warm"
    doc["last_seq"] = 1_000_000  # the contract's rule: last_seq is the last item's seq
    outcome = ingest(engine, batch_topic(SITE, GW), msgspec.json.encode(doc))
    assert (outcome.kind, outcome.new, outcome.ack) == ("dead_letter", 0, None)
    assert rows(engine, select(DeadLetter.path)) == [("$.items[0].value",)]  # refused whole


def test_a_stream_first_seen_above_one_starts_where_the_gateway_was_acknowledged(engine: Engine) -> None:
    """An earlier cloud database acknowledged 1..1000 and the gateway deleted them: without the
    gateway's word the stream would wait for ever for seqs nobody has any more."""
    first = ingest(engine, *batch_message(GW, [reading(s) for s in range(1001, 1101)]))
    assert first.ack is None  # nothing says 1..1000 are gone yet
    ingest(engine, *status_message(GW, ts=NOW_MS, last_acked_seq=1000))
    again = ingest(engine, *batch_message(GW, [reading(s) for s in range(1001, 1101)]))  # the re-send
    assert again.ack is not None and again.ack.seq == 1100
    assert rows(engine, select(StreamCoverage.covered, StreamCoverage.adopted)) == [(1100, 1000)]


def test_another_boots_acknowledgement_is_not_adopted(engine: Engine) -> None:
    ingest(engine, *status_message(GW, ts=NOW_MS, last_acked_seq=1000, boot="0" * 32))
    outcome = ingest(engine, *batch_message(GW, [reading(s) for s in range(1001, 1101)]))
    assert outcome.ack is None


def test_an_earlier_boots_will_and_heartbeat_do_not_undo_a_new_boot(engine: Engine) -> None:
    old, new = "0" * 32, BOOT
    ingest(engine, *status_message(GW, ts=NOW_MS, boot=old))
    ingest(engine, *status_message(GW, ts=NOW_MS + 60_000, boot=new))  # rebooted
    ingest(engine, *status_message(GW, ts=NOW_MS - 5000, boot=old, state=State.OFFLINE, will=True))
    ingest(engine, *status_message(GW, ts=NOW_MS + 1000, boot=old))  # a late re-delivery
    gateway = rows(engine, select(Gateway))[0]
    assert (gateway.online, gateway.boot, gateway.last_status["ts"]) == (True, new, NOW_MS + 60_000)


def test_a_refusal_sent_again_is_one_dead_letter_with_repeats(engine: Engine) -> None:
    topic, payload = batch_message(GW, [reading(1)])
    for _ in range(3):
        ingest(engine, topic, payload[:-3])
    ingest(engine, topic, payload[:-4])  # another payload is another dead letter
    letters = rows(engine, select(DeadLetter.payload, DeadLetter.repeats).order_by(DeadLetter.id))
    assert letters == [(payload[:-3], 2), (payload[:-4], 0)]
