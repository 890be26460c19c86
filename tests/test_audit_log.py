"""The audit trail and the recorded data, on SQLite and PostgreSQL: appended with the change or not at
all, never changed by anyone (the database refuses), and any tampering found by ``audit verify``.

Tampering needs the triggers out of the way first, as someone with the schema owner's rights would
do; ``_without_triggers`` does that for the test.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="cloud tests need the [cloud] extra")

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import DBAPIError

from coldgate.cloud.audit.chain import GENESIS, canonical_entry, entry_hash, first_break
from coldgate.cloud.audit.log import SYSTEM, Actor, append, entries, head, verify
from coldgate.cloud.db.models import AuditEntry, GatewayEnrolment
from coldgate.cloud.identity.enrolment import enrol_gateway
from tests.rig.audit_keys import checkpoint_key_file
from tests.rig.cloud_db import count, ingest
from tests.rig.commands import run_ok
from tests.rig.ingest import batch_message, reading

NOW = datetime.datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=datetime.UTC)
QA = Actor("Dr. Anna Berg", "u-anna")
FIRST_HASH = "85c5c92061941a519b474f1b66351f3214ca2af962c812c535cf13ae54cd5c44"


def _five(engine: Engine) -> None:
    with engine.begin() as conn:
        for n in range(1, 6):
            append(
                conn,
                actor=QA if n % 2 else SYSTEM,
                action="lot.status",
                entity_type="lot",
                entity_id=f"L{n}",
                now=NOW + datetime.timedelta(seconds=n),
                before={"status": "released", "temp": 4.5},
                after={"status": "quarantined", "temp": 4.5, "note": "Kühlkette ✓"},
                reason=f"excursion {n}",
                request_id=f"req-{n}",
                client="10.0.0.7",
            )


def _without_triggers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    else:
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))


def test_entries_chain_and_verify(engine: Engine) -> None:
    _five(engine)
    with engine.connect() as conn:
        checked, broken = verify(conn)
        stored = list(entries(conn))
        assert head(conn) == (5, stored[-1].hash)
    assert (checked, broken) == (5, None)
    assert stored[0].prev_hash == GENESIS
    assert [e.prev_hash for e in stored[1:]] == [e.hash for e in stored[:-1]]
    assert stored[0].at == "2026-12-06T12:00:01.123456Z"
    assert stored[0].after == '{"note":"Kühlkette ✓","status":"quarantined","temp":4.5}'
    assert stored[0].hashed_fields()["after"] == {"status": "quarantined", "temp": 4.5, "note": "Kühlkette ✓"}
    assert (stored[0].actor_id, stored[1].actor_id) == ("u-anna", None)
    assert all(entry_hash(e) == e.hash for e in stored)


def test_the_same_entries_hash_the_same_on_both_dialects(engine: Engine) -> None:
    # Fixed inputs, one fixed hash on both dialects: a change of driver, time zone or JSON column type
    # (JSONB would reorder keys and rewrite numbers) would show here.
    _five(engine)
    with engine.connect() as conn:
        first = next(entries(conn))
        raw = conn.execute(select(AuditEntry.after).where(AuditEntry.seq == 1)).scalar_one()
    assert raw == '{"note":"Kühlkette ✓","status":"quarantined","temp":4.5}'
    assert first.hash == FIRST_HASH


def test_a_change_and_its_entry_land_together_or_not_at_all(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enrol_gateway(conn, "gw-audit", "site9", "password", NOW)
        append(conn, actor=QA, action="gateway.enrol", entity_type="gateway", entity_id="gw-audit", now=NOW,
               after={"site": "site9"})  # fmt: skip
        raise RuntimeError("the request failed after both were written")
    assert count(engine, AuditEntry) == 0
    assert count(engine, GatewayEnrolment, GatewayEnrolment.gateway == "gw-audit") == 0
    # And an entry the database refuses takes the change down with it: here a copy of entry 1's hash,
    # which the unique hash refuses, as it would a forged copy.
    _five(engine)
    with engine.connect() as conn:
        taken = next(entries(conn)).hash
    with pytest.raises(DBAPIError), engine.begin() as conn:
        enrol_gateway(conn, "gw-audit", "site9", "password", NOW)
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor_name, action, entity_type, entity_id, prev_hash, "
                "hash) VALUES (6, :at, 'x', 'a', 'e', 'i', :p, :h)"
            ),
            {"at": NOW, "p": GENESIS, "h": taken},
        )
    assert count(engine, GatewayEnrolment, GatewayEnrolment.gateway == "gw-audit") == 0
    assert count(engine, AuditEntry) == 5


@pytest.mark.parametrize(
    ("tamper", "at_seq", "why"),
    [
        ("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3", 3, "does not match its hash"),
        ("UPDATE audit_log SET after = '{\"status\":\"released\"}' WHERE seq = 2", 2, "match its hash"),
        ("DELETE FROM audit_log WHERE seq = 3", 4, "is missing"),
        ("UPDATE audit_log SET seq = -seq WHERE seq IN (3, 4); "
         "UPDATE audit_log SET seq = 7 - (-seq) WHERE seq IN (-3, -4)", 3, "previous hash"),
    ],
    ids=["edited-field", "edited-json", "deleted", "swapped"],
)  # fmt: skip
def test_verify_finds_the_first_tampered_entry(engine: Engine, tamper: str, at_seq: int, why: str) -> None:
    _five(engine)
    with engine.begin() as conn:
        _without_triggers(conn)
        for statement in tamper.split("; "):
            conn.execute(text(statement))
    with engine.connect() as conn:
        _checked, broken = verify(conn)
    assert broken is not None and broken.seq == at_seq and why in broken.why, broken


def test_verify_finds_an_inserted_entry(engine: Engine) -> None:
    _five(engine)
    with engine.begin() as conn:
        _without_triggers(conn)
        stored = list(entries(conn))
        # Make room at 3 and write a forged entry there whose own hash is right and which follows 2.
        for entry in reversed(stored[2:]):
            conn.execute(text("UPDATE audit_log SET seq = seq + 1 WHERE seq = :s"), {"s": entry.seq})
        forged = msgspec.structs.replace(stored[2], reason="forged", prev_hash=stored[1].hash)
        forged = msgspec.structs.replace(forged, hash=entry_hash(forged))
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, at, actor_id, actor_name, action, entity_type, entity_id, "
                "before, after, reason, request_id, client, prev_hash, hash) "
                "VALUES (3, :at, :ai, :n, :a, :t, :i, :b, :af, 'forged', :r, :c, :p, :h)"
            ),
            {"at": NOW + datetime.timedelta(seconds=3), "ai": forged.actor_id, "n": forged.actor_name,
             "a": forged.action, "t": forged.entity_type, "i": forged.entity_id,
             "b": forged.before, "af": forged.after,
             "r": forged.request_id, "c": forged.client, "p": forged.prev_hash, "h": forged.hash},
        )  # fmt: skip
    with engine.connect() as conn:
        _checked, broken = verify(conn)
    # The forged entry fits on its own; the one after it no longer follows it.
    assert broken is not None and broken.seq == 4 and "previous hash" in broken.why, broken


def test_the_database_refuses_to_change_what_is_recorded(engine: Engine) -> None:
    _five(engine)
    topic, payload = batch_message("gw01", [reading(1, synced=False), reading(2)])
    ingest(engine, topic, payload)
    ingest(engine, topic.replace("batch", "bogus"), b"garbage")  # a dead letter
    refused = [
        "UPDATE audit_log SET reason = 'x'",
        "DELETE FROM audit_log",
        "UPDATE readings SET value = 99",
        "DELETE FROM readings",
        "UPDATE item_keys SET ts = 0",
        "DELETE FROM item_keys",
        "UPDATE dead_letters SET reason = 'x'",
        "DELETE FROM dead_letters",
    ]
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    if engine.dialect.name == "postgresql":
        for table in ("audit_log", "readings", "dead_letters"):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {table} CASCADE"))
    with engine.connect() as conn:
        assert verify(conn) == (5, None)
    # The sanctioned fill-ins: a reading's ts_corrected once, a dead letter's repeats.
    with engine.begin() as conn:
        conn.execute(text("UPDATE readings SET ts_corrected = 1 WHERE seq = 2"))  # synced: none yet
        conn.execute(text("UPDATE dead_letters SET repeats = repeats + 1"))
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE readings SET ts_corrected = 2 WHERE seq = 2"))


def test_the_cli_says_intact_or_names_the_break(engine: Engine, tmp_path: Path) -> None:
    _five(engine)
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n')
    out = run_ok(sys.executable, "-m", "coldgate", "cloud", "audit", "verify", config)
    assert "audit trail intact: 5 entries verified" in out
    with engine.begin() as conn:
        _without_triggers(conn)
        conn.execute(text("UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 4"))
    done = subprocess.run([sys.executable, "-m", "coldgate", "cloud", "audit", "verify", str(config)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert "BROKEN at entry 4" in done.stderr


def test_first_break_is_pure_and_picks_up_after_a_checkpoint(engine: Engine) -> None:
    _five(engine)
    with engine.connect() as conn:
        stored = list(entries(conn))
    assert first_break(stored) is None
    assert first_break(stored[2:], after_seq=2, after_hash=stored[1].hash) is None
    assert first_break(stored[2:]) is not None  # without the checkpoint the tail does not start the chain


def _rewrite_from(engine: Engine, seq: int) -> None:
    """What someone with the database's rights could do: change entry ``seq`` and recompute every hash
    from it on, so that the chain holds again."""
    with engine.begin() as conn:
        _without_triggers(conn)
        stored = list(entries(conn))
        previous = stored[seq - 2].hash if seq > 1 else GENESIS
        for entry in stored[seq - 1 :]:
            changed = msgspec.structs.replace(entry, prev_hash=previous)
            if entry.seq == seq:
                changed = msgspec.structs.replace(changed, reason="nothing to see")
            changed = msgspec.structs.replace(changed, hash=entry_hash(changed))
            conn.execute(
                text("UPDATE audit_log SET reason = :r, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"r": changed.reason, "p": changed.prev_hash, "h": changed.hash, "s": entry.seq},
            )
            previous = changed.hash


def test_a_rewritten_tail_is_caught_by_the_signed_checkpoints(engine: Engine, tmp_path: Path) -> None:
    from coldgate.cloud.audit.checkpoint import check, load_private_key, read_checkpoints, write_checkpoint

    key_file, points = checkpoint_key_file(tmp_path, "audit.key"), tmp_path / "audit.checkpoints"
    key = load_private_key(key_file)
    _five(engine)
    with engine.connect() as conn:
        written = write_checkpoint(conn, points, NOW, key)
        assert written is not None and written.seq == 5
        assert write_checkpoint(conn, points, NOW, key) is None, "the same head is not written twice"
        assert check(conn, points, key.public_key()) is None
    _rewrite_from(engine, 2)
    with engine.connect() as conn:
        assert verify(conn) == (5, None), "the rewritten chain holds on its own"
        broken = check(conn, points, key.public_key())
    assert broken is not None and broken.seq == 5 and "rewritten" in broken.why
    # Rewriting the checkpoint file to match needs the key: a line signed by another is refused.
    other = load_private_key(checkpoint_key_file(tmp_path, "other.key"))
    points.write_text("")
    with engine.connect() as conn:
        write_checkpoint(conn, points, NOW, other)
        broken = check(conn, points, key.public_key())
    assert broken is not None and "not signed by the checkpoint key" in broken.why
    assert [p.seq for p in read_checkpoints(points)] == [5]


def test_the_cli_holds_the_chain_to_the_configured_checkpoints(engine: Engine, tmp_path: Path) -> None:
    from coldgate.cloud.audit.checkpoint import load_private_key, write_checkpoint

    key_file, points = checkpoint_key_file(tmp_path, "audit.key"), tmp_path / "audit.checkpoints"
    _five(engine)
    with engine.connect() as conn:
        write_checkpoint(conn, points, NOW, load_private_key(key_file))
    config = tmp_path / "cloud.toml"
    config.write_text(
        f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n'
        f'[audit]\ncheckpoint_file = "{points}"\ncheckpoint_key_file = "{key_file}"\n'
    )
    out = run_ok(sys.executable, "-m", "coldgate", "cloud", "audit", "verify", config)
    assert "5 entries verified" in out and "every checkpoint" in out
    _rewrite_from(engine, 3)
    done = subprocess.run([sys.executable, "-m", "coldgate", "cloud", "audit", "verify", str(config)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "BROKEN at entry 5" in done.stderr and "rewritten" in done.stderr


def test_the_scheduler_writes_a_checkpoint_when_configured(engine: Engine, tmp_path: Path) -> None:
    from coldgate.cloud.audit.checkpoint import read_checkpoints
    from coldgate.cloud.config import cloud_config_from_document
    from coldgate.cloud.scheduler import CloudScheduler

    points = tmp_path / "audit.checkpoints"
    config = cloud_config_from_document({"audit": {"checkpoint_file": str(points)}}, "test")
    scheduler = CloudScheduler(engine, config, clock=lambda: NOW)
    assert scheduler.checkpoint_audit_now() is None, "an empty trail has no head to keep"
    _five(engine)
    written = scheduler.checkpoint_audit_now()
    assert written is not None and [(p.seq, p.hash, p.signature) for p in read_checkpoints(points)] == [
        (5, written.hash, None)
    ]


#: Text that JSON escapes in every way there is (short escapes, \u00XX, quotes, backslashes) and text it
#: leaves alone (DEL, U+2028, non-ASCII, an astral character), in every field that is quoted; and NUL
#: where the database can store it (SQLite).
AWKWARD = 'a"b\\c\x01\x08\x0c\n\r\t\x1f\x7f\u2028 Kühlkette ✓ 😀'


def test_the_fast_paths_are_the_canonical_form_on_both_dialects(engine: Engine) -> None:
    """verify takes the canonical bytes from the database (SQLite) or from the fields (PostgreSQL) and
    only rebuilds an entry that does not hash: here none may need rebuilding, or verify is slow for real
    entries while staying right."""
    from coldgate.cloud.audit import log

    awkward = AWKWARD + ("\x00" if engine.dialect.name == "sqlite" else "")
    with engine.begin() as conn:
        for n in range(1, 4):
            append(conn, actor=Actor(awkward + str(n), awkward), action=awkward, entity_type=awkward,
                   entity_id=awkward, now=NOW + datetime.timedelta(microseconds=n),
                   before={awkward: [n, None]}, after={"ä": awkward, "z": 1.5, "a": True}, reason=awkward,
                   request_id=awkward, client=awkward)  # fmt: skip
        append(conn, actor=SYSTEM, action="a", entity_type="t", entity_id="i", now=NOW.replace(microsecond=0))
    with engine.connect() as conn:
        stored = list(entries(conn))
        hashed = [row for page in log._hashed_pages(conn) for row in page]
        assert verify(conn) == (4, None)
    assert [canonical for *_, canonical in hashed] == [canonical_entry(e) for e in stored]
    assert [e.seq for e in stored] == [1, 2, 3, 4] and stored[3].at == "2026-12-06T12:00:00.000000Z"
    assert all(entry_hash(e) == e.hash for e in stored)


def test_a_time_in_another_zone_is_stored_as_the_time_hashed(engine: Engine) -> None:
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    stored_at = datetime.datetime(2026, 12, 6, 12, 0, 0, 5, datetime.UTC)
    with engine.begin() as conn:
        written = append(conn, actor=QA, action="a", entity_type="t", entity_id="i",
                         now=datetime.datetime(2026, 12, 6, 13, 0, 0, 5, tzinfo=berlin))  # fmt: skip
    with engine.connect() as conn:
        assert verify(conn) == (1, None)
        (stored,) = entries(conn)
        at = conn.execute(select(AuditEntry.at)).scalar_one()
    assert written == stored and stored.at == "2026-12-06T12:00:00.000005Z"
    assert at.replace(tzinfo=at.tzinfo or datetime.UTC) == stored_at  # SQLite: naive, UTC


def test_concurrent_appends_form_one_chain(engine: Engine) -> None:
    """Appends from many transactions at once: numbered without a gap or a repeat, each on the one before.

    On PostgreSQL two appends that read the same head both try the same number: one waits for the other's
    transaction, then reads the new head and tries again (``log.append``)."""
    threads, each = 4, 15
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        for n in range(each):
            with engine.begin() as conn:
                enrol_gateway(conn, f"gw-c{k}-{n}", "site1", "password", NOW)
                append(conn, actor=QA, action="gateway.enrol", entity_type="gateway",
                       entity_id=f"gw-c{k}-{n}", now=NOW, after={"site": "site1"})  # fmt: skip

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    with engine.connect() as conn:
        assert verify(conn) == (threads * each, None)
        stored = list(entries(conn))
    expected = sorted(f"gw-c{k}-{n}" for k in range(threads) for n in range(each))
    assert sorted(e.entity_id for e in stored) == expected


def test_verify_counts_every_entry_when_it_finds_a_break(engine: Engine) -> None:
    _five(engine)
    with engine.begin() as conn:
        _without_triggers(conn)
        conn.execute(text("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2"))
    with engine.connect() as conn:
        checked, broken = verify(conn)
    assert checked == 5 and broken is not None and broken.seq == 2


def test_a_value_of_another_type_is_a_break_not_a_failure(engine: Engine) -> None:
    """SQLite stores any type in any column, and its JSON quoting refuses a BLOB: verify then carries on
    from the fields, where the bytes are not the text that was hashed."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's columns hold their type")
    _five(engine)
    with engine.begin() as conn:
        _without_triggers(conn)
        conn.execute(text("UPDATE audit_log SET reason = CAST(reason AS BLOB) WHERE seq = 4"))
        conn.execute(text("UPDATE audit_log SET entity_id = 3 WHERE seq = 3"))  # stays text: 'L3' -> '3'
    with engine.connect() as conn:
        checked, broken = verify(conn)
    assert checked == 5 and broken is not None and broken.seq == 3
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET entity_id = 'L3' WHERE seq = 3"))
    with engine.connect() as conn:
        checked, broken = verify(conn)
    assert checked == 5 and broken is not None and broken.seq == 4, broken
