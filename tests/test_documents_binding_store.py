"""Binding's database edge (``cloud/documents/binding_store.py``) on both dialects: movements and scans
stored by the real ingest path are bound to the receiving note open at their door, the rest kept
unbound with the reason; binding again after the note was completed and closed gives the same rows."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Engine, select

from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.db.models import BindingRow
from coldgate.cloud.documents.binding_store import bind_pending, door_documents, rebind
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.moves import move_document
from coldgate.contract import examples
from coldgate.contract.items import Direction, Movement, Scan, Scheme
from coldgate.simulator.rfid_scenarios import sgtin96_hex
from tests.rig.cloud_db import ingest
from tests.rig.documents import DOCK, NOW, QA, SITE, accept_open, stock_the_dock
from tests.rig.ingest import STREAM, batch_message

AT = int(NOW.timestamp() * 1000) + 60_000  # a minute after the note was released
LATER = NOW + datetime.timedelta(hours=1)


def _stamp(seq: int, ts: int) -> dict[str, Any]:
    return {"seq": seq, "ts": ts, "boot": examples.BOOT, "mono": 1000 + seq, "synced": True}


def _case(seq: int, serial: int, door: str = "D1") -> Movement:
    epc = sgtin96_hex("4006381", "033393", serial).lower()  # VX10: GTIN 04006381333931
    return Movement(**_stamp(seq, AT + seq), reader="r1", door=door, direction=Direction.IN, epc=epc,
                    first_seen=AT + seq, last_seen=AT + seq + 500, read_count=4)  # fmt: skip


def _scan(seq: int, scanner: str, serial: str) -> Scan:
    raw = f"]d2010400638133393110L1\x1d21{serial}"
    return Scan(**_stamp(seq, AT + seq), scanner=scanner, raw=raw, symbology="]d2", scheme=Scheme.GS1,
                gtin="04006381333931", lot="L1", serial=serial)  # fmt: skip


def _setup(engine: Engine) -> str:
    stock_the_dock(engine)
    with engine.begin() as conn:
        add_serials(conn, "VX10", "L1", [], [("1000", "1019")], reason="ASN", by=QA, now=NOW)
        line = {"product": "VX10", "lot": "L1", "quantity": 3, "serials": ["1000", "1001", "1002"]}
        note = {"kind": "receiving", "site": SITE, "reference": "ASN-7", "party": "Acme", "lines": [line]}
        made = create_document(conn, note, reason="ASN received", by=DOCK, now=NOW)
        move_document(conn, made["id"], "released", door="D1", reason="truck at door 1", by=DOCK, now=NOW)
        since = AT - 3_600_000
        place(conn, "gw01", "scanner", "s1", "D1", since, reason="handheld at door 1", by=QA, now=NOW)
    items = [_case(1, 1000), _case(2, 1001), _case(3, 1002), _case(4, 1500), _case(5, 1003, door="D9"),
             _scan(6, "s1", "1002"), _scan(7, "s2", "1001")]  # fmt: skip
    assert ingest(engine, *batch_message("gw01", items)).kind == "batch"
    return str(made["id"])


def _rows(engine: Engine) -> dict[int, tuple[Any, ...]]:
    b = BindingRow
    with engine.connect() as conn:
        rows = conn.execute(
            select(b.seq, b.door, b.document, b.line, b.how, b.product, b.lot, b.serial, b.reason)
        ).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_stored_items_bind_to_the_note_open_at_their_door_and_the_rest_say_why(engine: Engine) -> None:
    document = _setup(engine)
    with engine.begin() as conn:
        assert bind_pending(conn, LATER) == 7
        assert bind_pending(conn, LATER) == 0  # nothing pending: each item is bound once
    rows = _rows(engine)
    for seq, serial in ((1, "1000"), (2, "1001"), (3, "1002")):
        assert rows[seq][:7] == ("D1", document, 1, "serial", "VX10", "L1", serial), rows[seq]
    # A case of the note's product whose serial is in no lot: on the line, for reconciliation to flag.
    assert rows[4][:6] == ("D1", document, 1, "other_lot", "VX10", None)
    assert rows[5][1] is None and rows[5][0] == "D9" and rows[5][3] == "unbound"
    assert rows[6][:3] == ("D1", document, 1)  # the handheld at door 1: the same case again, bound
    assert rows[7][:4] == (None, None, None, "no door")
    assert "scanner s2 was placed nowhere" in rows[7][7]


def test_binding_again_after_the_note_was_completed_and_closed_gives_the_same_rows(engine: Engine) -> None:
    """The note is offered as it stood when the cases passed, not as it stands now."""
    document = _setup(engine)
    with engine.begin() as conn:
        bind_pending(conn, LATER)
    first = _rows(engine)
    with engine.begin() as conn:
        for state in ("in_progress", "completed", "closed"):
            if state == "completed":
                accept_open(conn, document, LATER)
            move_document(conn, document, state, reason="received", by=DOCK, now=LATER)
        [window] = door_documents(conn, SITE)
        released, done = int(NOW.timestamp() * 1000), int(LATER.timestamp() * 1000)
        assert (window.opened_at, window.closed_at) == (released, done)
        assert rebind(conn, LATER + datetime.timedelta(days=1)) == 7
    assert _rows(engine) == first


def test_the_cloud_schedulers_binding_job_binds_what_ingest_stored(engine: Engine) -> None:
    from coldgate.cloud.config import CloudConfig
    from coldgate.cloud.scheduler import CloudScheduler

    _setup(engine)
    scheduler = CloudScheduler(engine, CloudConfig(), clock=lambda: LATER)
    assert scheduler.bind_items_now() == 7
    assert scheduler.bind_items_now() == 0
    assert len(_rows(engine)) == 7


def test_an_operator_binds_everything_again_from_the_shell(
    engine: Engine, db_url: str, tmp_path: Any
) -> None:
    from click.testing import CliRunner

    from coldgate.cloud.cli import cloud

    _setup(engine)
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    for _ in range(2):  # twice: the same records give the same bindings
        result = CliRunner().invoke(cloud, ["documents", "rebind", str(config), "--site", SITE])
        assert result.exit_code == 0, result.output
        assert result.output == "7 movement(s) and scan(s) bound again at site site1\n"
    assert len(_rows(engine)) == 7


def test_an_item_another_process_bound_meanwhile_keeps_that_binding_and_the_batch_still_binds(
    engine: Engine,
) -> None:
    """Two cloud processes binding at once: the second finds one of its items bound already (on
    PostgreSQL its COPY fails on the key and the batch goes through ``ON CONFLICT DO NOTHING``)."""
    from sqlalchemy import insert, update

    from coldgate.cloud.db.models import BindingQueue

    _setup(engine)
    with engine.begin() as conn:
        assert bind_pending(conn, LATER, limit=2) == 2  # items 1 and 2, as the other process did
        conn.execute(update(BindingRow).where(BindingRow.seq == 2).values(reason="the other process's"))
        # Item 2 queued again, as if the other process's run had read it before this one dequeued it.
        conn.execute(insert(BindingQueue).values(gateway="gw01", stream=STREAM, seq=2))
    with engine.begin() as conn:
        queued = conn.execute(select(BindingQueue.seq)).scalars().all()
        assert sorted(queued) == [2, 3, 4, 5, 6, 7], queued
        assert bind_pending(conn, LATER) == 6
        assert conn.execute(select(BindingQueue.seq)).scalars().all() == []  # nothing left queued
    rows = _rows(engine)
    assert len(rows) == 7
    assert rows[2][7] == "the other process's"  # the binding written first stays
    assert rows[3][3] == "serial" and rows[7][3] == "no door"


def test_the_binding_cache_is_dropped_when_anything_audited_changes(engine: Engine) -> None:
    """A document released after the cache was filled is seen by the next run (its audit entry moves
    the audit log's last number), and nothing is read again while nothing changed."""
    from coldgate.cloud.documents.binding_store import BindingCache

    document = _setup(engine)
    cache = BindingCache()
    with engine.begin() as conn:
        assert bind_pending(conn, LATER, limit=1, cache=cache) == 1
        assert bind_pending(conn, LATER, limit=1, cache=cache) == 1
        assert cache.reloads == 1  # read once, kept for the second run
        # The note leaves door 1 and goes to door 9: the case at door 9 (item 5) binds to it now.
        door = {"name": "Dock door 9", "kind": "dock_door", "inside": "CR1", "outside": "YARD"}
        put_location(conn, SITE, "D9", door, reason="survey", by=QA, now=NOW)
        move_document(conn, document, "draft", reason="wrong door", by=DOCK, now=NOW)
        move_document(conn, document, "released", door="D9", reason="truck at door 9", by=DOCK, now=NOW)
        assert bind_pending(conn, LATER, cache=cache) == 5
        assert cache.reloads == 2
    rows = _rows(engine)
    assert rows[5][:3] == ("D9", document, 1), rows[5]


def test_the_binding_job_in_a_process_of_its_own(engine: Engine) -> None:
    """The job's run goes to a child process (``binding_runs.BindingProcess``; the cloud's choice beside
    ingest on PostgreSQL) that binds what ingest stored, keeps its engine for the next run, and is
    stopped with the scheduler."""
    from coldgate.cloud.config import CloudConfig
    from coldgate.cloud.scheduler import CloudScheduler

    _setup(engine)
    scheduler = CloudScheduler(engine, CloudConfig(), clock=lambda: LATER, binding_apart=True)
    process = scheduler.binding_process
    assert process is not None and not process.started
    try:
        process.start()  # what the scheduler's start() does, before ingest is busy
        assert process.started
        assert scheduler.bind_job_now() == 7
        assert process.started
        assert scheduler.bind_job_now() == 0
        assert len(_rows(engine)) == 7
    finally:
        scheduler.shutdown()
    assert not process.started


def test_the_cloud_binds_in_a_child_process_beside_ingest_on_postgresql_only(
    db_url: str, mosquitto: Any
) -> None:
    """``cloud run`` with its ingest workers: on PostgreSQL binding's Python work goes to a child
    process (it would otherwise take the workers'); SQLite, one writer at a time, keeps it in the
    scheduler's thread, as does a cloud process that leaves ingest to others."""
    from coldgate.cloud.config import ApiConfig, CloudConfig, CloudMqttConfig, DatabaseConfig
    from coldgate.cloud.service import CloudService

    config = CloudConfig(
        database=DatabaseConfig(url=db_url),
        mqtt=CloudMqttConfig(broker=mosquitto.url, client_id="cloud-binding-apart", workers=1),
        api=ApiConfig(port=0),
    )
    for ingesting, apart in ((True, db_url.startswith("postgresql")), (False, False)):
        service = CloudService(config, ingest=ingesting, api=False).start()
        try:
            process = service._scheduler.binding_process if service._scheduler else None
            assert (process is not None) == apart, (db_url, ingesting)
        finally:
            service.stop()


def test_a_binding_process_that_cannot_reach_its_database_binds_nothing_and_raises_nothing() -> None:
    """The child logs the failure and the run returns 0: the scheduler's job goes on, the items wait."""
    from coldgate.cloud.db.engine import make_engine
    from coldgate.cloud.documents.binding_runs import BindingProcess

    nowhere = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    process = BindingProcess(nowhere)
    try:
        assert process.run(LATER, most=1) == 0
        assert process.started  # the child runs on; the next run tries again
    finally:
        process.close()
    assert not process.started
