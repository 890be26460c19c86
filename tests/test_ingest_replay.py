"""Dead-letter replay on both dialects: stored once, refusals recorded, the dead letter never touched."""

from __future__ import annotations

import datetime
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from click.testing import CliRunner
from sqlalchemy import Engine, func, select, update

from coldgate.cloud.audit.log import entries
from coldgate.cloud.cli import cloud
from coldgate.cloud.db.models import (
    BatchRange,
    DeadLetter,
    DeadLetterReplay,
    Gateway,
    Reading,
    StreamCoverage,
)
from coldgate.cloud.ingest.dead_letters import dead_letter
from coldgate.cloud.ingest.message import batch_header, ingest_message
from coldgate.cloud.ingest.replay import replay_dead_letters, replayable
from coldgate.contract.codec import encode
from coldgate.contract.topics import batch_topic, status_topic
from tests.rig.ingest import BOOT, SITE, STREAM, batch, batch_message, reading

GW = "gw01"
NOW = datetime.datetime(2026, 11, 25, 12, 0, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(days=2)
TOPIC = batch_topic(SITE, GW)


def ingest(engine: Engine, topic: str, payload: bytes) -> None:
    with engine.begin() as conn:
        ingest_message(conn, topic, payload, NOW)


def letters(engine: Engine) -> list[tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(DeadLetter).order_by(DeadLetter.id)).all()
    return [(r.id, r.topic, bytes(r.payload), r.reason, r.path, r.repeats, r.batch) for r in rows]


def replays(engine: Engine) -> list[tuple[int, str, str, int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(DeadLetterReplay).order_by(DeadLetterReplay.id)).all()
    return [(r.dead_letter_id, r.by, r.outcome, r.new_items, r.detail) for r in rows]


def readings(engine: Engine) -> list[tuple[str, int, float]]:
    with engine.connect() as conn:
        query = select(Reading.stream, Reading.seq, Reading.value).order_by(Reading.seq)
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]


def old_refusal(engine: Engine, payload: bytes, *, item_of: tuple[int, int] | None = None) -> int:
    """A dead letter an older version wrote for something this version accepts; returns its id."""
    batch = batch_header(STREAM, BOOT, *item_of) if item_of else None
    with engine.begin() as conn:
        dead_letter(
            conn,
            topic=TOPIC,
            payload=payload,
            reason="refused by v0.9",
            now=NOW,
            gateway=GW,
            path="$",
            batch=batch,
        )
        return int(conn.execute(select(func.max(DeadLetter.id))).scalar_one())


def test_an_item_refused_inside_a_good_batch_keeps_its_batch_and_stays_refused_untouched(
    engine: Engine,
) -> None:
    good = msgspec.json.decode(encode(batch(GW, [reading(s) for s in range(1, 4)])))
    good["items"][1]["value"] = "warm"
    ingest(engine, TOPIC, msgspec.json.encode(good))
    ((ident, _, _, _, path, repeats, header),) = letters(engine)
    assert path == "$.items[1].value" and repeats == 0
    assert header == {"stream": STREAM, "boot": BOOT, "first_seq": 1, "last_seq": 3}
    before = letters(engine)

    (result,) = replay_dead_letters(engine, by="qa-anna", now=LATER)
    assert (result.dead_letter_id, result.outcome, result.new_items) == (ident, "refused", 0)
    assert result.detail.startswith("$.items[0].value:"), result.detail
    assert letters(engine) == before, "a replay neither edits the dead letter nor adds another"
    assert replays(engine) == [(ident, "qa-anna", "refused", 0, result.detail)]
    assert replayable(engine) == [ident], "refused: still offered"
    assert [seq for _, seq, _ in readings(engine)] == [1, 3]


def test_an_item_accepted_now_is_stored_in_its_stream_once(engine: Engine) -> None:
    ingest(engine, *batch_message(GW, [reading(1), reading(3)], first_seq=1))  # 2 was refused back then
    ident = old_refusal(engine, encode(reading(2, value=4.5)), item_of=(1, 3))
    (result,) = replay_dead_letters(engine, by="ops", now=LATER)
    assert (result.outcome, result.new_items) == ("stored", 1)
    assert readings(engine) == [
        (STREAM, 1, reading(1).value),
        (STREAM, 2, 4.5),
        (STREAM, 3, reading(3).value),
    ]
    with engine.connect() as conn:
        assert conn.execute(select(StreamCoverage.covered)).scalar_one() == 3
        assert conn.execute(select(func.count()).select_from(BatchRange)).scalar_one() == 0, "no stray range"
    assert replayable(engine) == [] and replay_dead_letters(engine, by="ops", now=LATER) == []
    assert replay_dead_letters(engine, by="ops", now=LATER, ids=[ident]) == [], "stored: not offered again"
    assert [r[2] for r in replays(engine)] == ["stored"]
    # Who replayed what is in the audit trail, written with the items it stored.
    with engine.connect() as conn:
        (entry,) = list(entries(conn))
    assert (entry.actor_name, entry.action, entry.entity_id) == ("ops", "dead_letter.replay", str(ident))
    assert entry.hashed_fields()["after"] == {"outcome": "stored", "new_items": 1, "detail": result.detail}


def test_a_whole_batch_accepted_now_is_stored_and_one_already_there_is_a_duplicate(engine: Engine) -> None:
    fresh = old_refusal(engine, batch_message(GW, [reading(s) for s in range(1, 6)])[1])
    ingest(engine, *batch_message(GW, [reading(s) for s in range(6, 9)]))
    again = old_refusal(engine, batch_message(GW, [reading(s) for s in range(6, 9)])[1])
    results = {r.dead_letter_id: r for r in replay_dead_letters(engine, by="ops", now=LATER)}
    assert (results[fresh].outcome, results[fresh].new_items) == ("stored", 5)
    assert (results[again].outcome, results[again].detail) == (
        "duplicate",
        "all 3 item(s) were already stored",
    )
    assert [seq for _, seq, _ in readings(engine)] == list(range(1, 9))


def test_what_a_replay_cannot_store_is_not_offered_or_is_refused_with_its_reason(engine: Engine) -> None:
    ingest(engine, *batch_message(GW, [reading(1, value=4.0)]))
    ingest(engine, *batch_message(GW, [reading(1, value=9.0)]))  # same key, other content: a conflict
    with engine.begin() as conn:
        dead_letter(conn, topic=status_topic(SITE, GW), payload=b"{}", reason="old", now=NOW, gateway=GW)
        dead_letter(conn, topic="elsewhere/x", payload=b"{}", reason="old", now=NOW)
        # An item kept before migration 0003 recorded its batch: nowhere to put it.
        dead_letter(
            conn, topic=TOPIC, payload=encode(reading(5)), reason="item of batch s 1..9 refused: x", now=NOW
        )
    never = [ident for ident, *_ in letters(engine)]
    seqless = old_refusal(engine, b'{"kind":"reading"}', item_of=(1, 1))
    not_json = old_refusal(engine, b"\xff\xfe", item_of=(1, 1))
    too_deep = old_refusal(engine, b'{"seq":' + b"[" * 100_000 + b"]" * 100_000 + b"}", item_of=(1, 1))
    outside = old_refusal(engine, encode(reading(999)), item_of=(1, 3))
    # 200 kB nested deeper than any decoder follows can never be data: only a prefix was kept.
    assert replayable(engine) == [seqless, not_json, outside], "conflict, status, foreign, headerless, cut"
    with engine.connect() as conn:
        cut = select(DeadLetter.truncated, DeadLetter.payload_size).where(DeadLetter.id == too_deep)
        assert conn.execute(cut).one() == (True, 200_008)
    before = letters(engine)
    details = {r.dead_letter_id: r.detail for r in replay_dead_letters(engine, by="ops", now=LATER)}
    assert set(details) == {seqless, not_json, outside}
    assert all(r[2] == "refused" for r in replays(engine))
    assert "no integer seq" in details[seqless] and "not JSON" in details[not_json]
    assert details[outside] == "the item's seq 999 lies outside its batch 1..3"
    assert replay_dead_letters(engine, by="ops", now=LATER, ids=never) == []
    assert letters(engine) == before
    assert readings(engine) == [(STREAM, 1, 4.0)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BatchRange)).scalar_one() == 0


def test_a_replay_does_not_count_as_hearing_the_gateway(engine: Engine) -> None:
    """The unheard-gateway watch turns last_seen and online into audit rows: a replay must not move them."""
    ingest(engine, *batch_message(GW, [reading(1)]))
    with engine.begin() as conn:
        conn.execute(update(Gateway).where(Gateway.id == GW).values(online=False))
        before = conn.execute(select(Gateway.last_seen, Gateway.online, Gateway.state_since)).one()
    old_refusal(engine, batch_message(GW, [reading(2)])[1])
    (result,) = replay_dead_letters(engine, by="ops", now=LATER)
    assert result.outcome == "stored"
    with engine.connect() as conn:
        assert conn.execute(select(Gateway.last_seen, Gateway.online, Gateway.state_since)).one() == before


def test_a_gateway_never_registered_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        dead_letter(
            conn, topic=TOPIC, payload=batch_message(GW, [reading(1)])[1], reason="x", now=NOW, gateway=GW
        )
    (result,) = replay_dead_letters(engine, by="ops", now=LATER)
    assert (result.outcome, result.detail) == (
        "refused",
        "gateway gw01 is not registered: replay once it has connected",
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Gateway)).scalar_one() == 0
    assert readings(engine) == []


def test_a_refusal_repeated_after_the_upgrade_gets_its_batch_header(engine: Engine) -> None:
    payload = encode(reading(2))
    with engine.begin() as conn:
        dead_letter(
            conn, topic=TOPIC, payload=payload, reason="item of batch", now=NOW, gateway=GW, path="$.items[1]"
        )
        dead_letter(
            conn,
            topic=TOPIC,
            payload=payload,
            reason="item of batch",
            now=LATER,
            gateway=GW,
            path="$.items[1]",
            batch=batch_header(STREAM, BOOT, 1, 3),
        )
    ((_, _, _, _, _, repeats, header),) = letters(engine)
    assert repeats == 1 and header == {"stream": STREAM, "boot": BOOT, "first_seq": 1, "last_seq": 3}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["kind", "seq", "ts", "value", "sensor"]), st.integers() | st.text()
        ).map(msgspec.json.encode),
    ),
    header=st.none()
    | st.fixed_dictionaries(
        {
            "stream": st.text(max_size=70) | st.integers(),
            "boot": st.text(max_size=70),
            "first_seq": st.integers(-5, 5),
            "last_seq": st.integers(-5, 5) | st.text(max_size=3),
        }
    ),
)
def test_whatever_a_dead_letter_holds_a_replay_records_an_outcome_and_changes_nothing_else(
    engine: Engine, payload: bytes, header: dict | None
) -> None:
    ingest(engine, *batch_message(GW, [reading(1)]))  # registered, so replays get past that check
    with engine.begin() as conn:
        dead_letter(
            conn, topic=TOPIC, payload=payload, reason="x", now=NOW, gateway=GW, path="$", batch=header
        )
    before, recorded = letters(engine), len(replays(engine))
    results = replay_dead_letters(engine, by="fuzz", now=LATER)
    assert results, "the new dead letter is offered"
    for result in results:
        assert result.outcome in ("stored", "duplicate", "refused") and result.detail
    assert letters(engine) == before, "no dead letter edited, none added"
    assert len(replays(engine)) == recorded + len(results), "every attempt recorded"


def test_the_cli_lists_and_replays(engine: Engine, db_url: str, tmp_path: Path) -> None:
    ingest(engine, *batch_message(GW, [reading(1), reading(3)], first_seq=1))
    ident = old_refusal(engine, encode(reading(2, value=4.5)), item_of=(1, 3))
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    runner = CliRunner()
    listed = runner.invoke(cloud, ["dead-letters", "list", str(config)])
    assert listed.exit_code == 0, listed.output
    assert f"{ident}\t" in listed.output and "refused by v0.9\t[replayable]" in listed.output
    assert listed.output.rstrip().endswith("1 dead letter(s) not stored by a replay")
    refused = runner.invoke(cloud, ["dead-letters", "replay", str(config), "--by", "ops"])
    assert refused.exit_code != 0 and "give --id N (one or more) or --all" in refused.output
    done = runner.invoke(
        cloud, ["dead-letters", "replay", str(config), "--id", str(ident), "--id", "999", "--by", "ops"]
    )
    assert done.exit_code == 0, done.output
    assert f"{ident}\tstored\t1 new item(s) stored" in done.output
    assert (
        "not replayable (no such id, already stored, or not a batch a replay could store): 999" in done.output
    )
    assert done.output.index(f"{ident}\tstored") < done.output.index("1 replayed: 1 stored"), (
        "reported as it goes"
    )
    hidden = runner.invoke(cloud, ["dead-letters", "list", str(config)])
    assert hidden.output.strip() == "0 dead letter(s) not stored by a replay"
    after = runner.invoke(cloud, ["dead-letters", "list", str(config), "--all"])
    assert "replayed" in after.output and "by ops: stored]" in after.output
    assert [seq for _, seq, _ in readings(engine)] == [1, 2, 3]


def test_the_api_shows_each_dead_letters_batch_and_last_replay(engine: Engine) -> None:
    from fastapi.testclient import TestClient

    from coldgate.cloud.api import ApiTokens, create_app

    good = msgspec.json.decode(encode(batch(GW, [reading(s) for s in range(1, 4)])))
    good["items"][1]["value"] = "warm"
    ingest(engine, TOPIC, msgspec.json.encode(good))
    untouched = old_refusal(engine, b"{}")
    replay_dead_letters(engine, by="qa-anna", now=LATER, ids=[1])
    replay_dead_letters(engine, by="qa-ben", now=LATER + datetime.timedelta(hours=1), ids=[1])
    token = "t0ken-0123456789abcdef"
    with TestClient(create_app(engine, ApiTokens((("qa", token),)))) as client:
        reply = client.get("/dead-letters", headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200, reply.text
    newest, item = reply.json()["items"]
    assert newest["id"] == untouched and newest["batch"] is None and newest["last_replay"] is None
    assert item["batch"] == {"stream": STREAM, "boot": BOOT, "first_seq": 1, "last_seq": 3}
    last = item["last_replay"]
    assert (last["by"], last["outcome"], last["new_items"]) == ("qa-ben", "refused", 0)
    assert last["replayed_at"] == "2026-11-27T13:00:00Z" and last["detail"].startswith("$.items[0].value:")
