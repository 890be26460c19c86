"""Purging archived months once their retention has passed (``cloud/db/purge.py``), on PostgreSQL: the
month's packs go with a purge record and an audit entry, a month that still holds a device lot before its
term or an implant lot is kept (saying why), a dry run changes nothing, and nothing else can delete packs.

The world is the batch-history story of ``tests/rig/history_world.py`` (December 2026: lots VX10/L1,
expiring 2027-12-31, and PLAIN/G1, without expiry; both standard, both still partly in stock), archived
as ``tests/test_reading_archive.py`` archives it."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from coldgate.cloud.audit.log import Actor, entries
from coldgate.cloud.catalog.lots import move_lot
from coldgate.cloud.cli import cloud
from coldgate.cloud.db import archive_cli, purge
from coldgate.cloud.db.archive import archive_month, month_digest
from coldgate.cloud.db.partitions import ensure_partitions
from coldgate.cloud.db.purge import PurgeError, purge_month, purge_plan, purged
from coldgate.cloud.db.retention import RetentionPolicy
from coldgate.cloud.db.selections import readings_in
from tests.rig.documents import QA
from tests.rig.history_world import SENSORS, history_world
from tests.rig.retention import categorise

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

DECEMBER = datetime.date(2026, 12, 1)
ARCHIVED = datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC)
#: Five years after December 2026 ends: the standard term has passed.
DUE = datetime.datetime(2032, 1, 1, 9, tzinfo=datetime.UTC)
OPERATOR = Actor("Ola Operator")
POLICY = RetentionPolicy()


@pytest.fixture
def world(engine: Engine) -> Engine:
    """The story, its two products categorised "standard" by QA (as after the upgrade that brought
    categories: until then a product has none, and its months are kept for ever)."""
    engine = uncategorised_world(engine)
    for product_id in ("VX10", "PLAIN"):
        categorise(engine, "standard", product_id=product_id)
    return engine


def uncategorised_world(engine: Engine) -> Engine:
    with engine.begin() as conn:
        ensure_partitions(conn, DECEMBER, DECEMBER)
    history_world(engine)
    with engine.begin() as conn:
        archive_month(conn, DECEMBER, now=ARCHIVED, actor=OPERATOR, after_months=0)
    return engine


def _packs(conn: Any) -> int:
    return int(conn.execute(text("SELECT count(*) FROM reading_packs")).scalar_one())


def _december_readings(conn: Any) -> int:
    return sum(
        len(conn.execute(select(readings_in("gw01", sensor, 0, 2**62, None))).all())
        for sensor in SENSORS.values()
    )


def test_a_due_month_s_packs_go_with_a_purge_record_and_an_audit_entry(world: Engine) -> None:
    with world.connect() as conn:
        [kept] = purge_plan(conn, POLICY)
        assert (kept.month, kept.purge_from, kept.lots) == (DECEMBER, datetime.date(2032, 1, 1), 2)
        assert not kept.due(datetime.date(2031, 12, 31)) and kept.due(DUE.date())
        readings, digest = month_digest(conn, DECEMBER, packed=True)
        packs = _packs(conn)
        assert readings == _december_readings(conn) > 0 and packs > 0
    with (
        world.begin() as conn,
        pytest.raises(PurgeError, match=r"2026-12 cannot be purged: it is kept until"),
    ):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE - datetime.timedelta(days=1), actor=OPERATOR)
    with world.begin() as conn:
        done = purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    assert (done.readings, done.packs, done.sha256, done.purge_from) == (
        readings, packs, digest, datetime.date(2032, 1, 1),
    )  # fmt: skip
    assert done.rule == "the standard term: 5 years after 2026-12" and done.held_longest_by is None
    with world.connect() as conn:
        assert _packs(conn) == 0 and _december_readings(conn) == 0
        assert purged(conn) == [done]
        assert purge_plan(conn, POLICY) == []
        [audited] = [e for e in entries(conn) if e.action == "readings.purged"]
    assert (audited.entity_id, audited.actor_name) == ("2026-12", "Ola Operator")
    after = json.loads(audited.after)
    assert after["sha256"] == digest and after["readings"] == readings and after["packs"] == packs
    with world.begin() as conn, pytest.raises(PurgeError, match="purged already"):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    for statement in ("DELETE FROM reading_purges", "UPDATE reading_purges SET rule = 'x'"):
        with pytest.raises(DBAPIError, match="append-only"), world.begin() as conn:
            conn.execute(text(statement))


def test_a_month_holding_a_device_lot_is_kept_two_years_past_its_expiry(world: Engine) -> None:
    categorise(world, "device", "2031-06-30")
    with (
        world.begin() as conn,
        pytest.raises(
            PurgeError,
            match=r"2026-12 cannot be purged: it is kept until 2033-06-30 \(device lot L1 of VX10 expires "
            r"2031-06-30: kept 2 years past it\)",
        ),
    ):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    with world.connect() as conn:
        assert _packs(conn) > 0 and purged(conn) == []
    with world.begin() as conn:
        later = datetime.datetime(2033, 7, 1, tzinfo=datetime.UTC)
        done = purge_month(conn, DECEMBER, policy=POLICY, now=later, actor=OPERATOR)
    assert done.held_longest_by == "device lot L1 of VX10" and done.purge_from == datetime.date(2033, 7, 1)


def test_a_month_holding_a_product_nobody_categorised_is_kept_for_ever(engine: Engine) -> None:
    """Products from before the categories, or made without one, have none: never purged on a guess."""
    world = uncategorised_world(engine)
    with world.begin() as conn:
        plan = purge_plan(conn, POLICY)
    assert [(p.month, p.purge_from) for p in plan] == [(DECEMBER, None)]
    assert "has no retention category yet" in plan[0].rule
    with pytest.raises(PurgeError, match="kept for ever"), world.begin() as conn:
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)


def test_a_month_holding_an_implant_lot_is_kept_for_ever(world: Engine) -> None:
    categorise(world, "implant")
    far = datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC)
    with (
        world.begin() as conn,
        pytest.raises(
            PurgeError,
            match=r"kept for ever \(implant lot L1 of VX10: an implant's readings are kept for ever\)",
        ),
    ):
        purge_month(conn, DECEMBER, policy=POLICY, now=far, actor=OPERATOR)
    with world.connect() as conn:
        [kept] = purge_plan(conn, POLICY)
        assert kept.purge_from is None and not kept.due(far.date())


def test_a_device_unit_handled_without_a_lot_keeps_its_month_for_ever(world: Engine) -> None:
    """A serial the catalog knows no lot of binds with no lot: the rule cannot count from an expiry, so
    the month a device's unit passed a door in is kept (review: it used to be left out)."""
    from coldgate.cloud.db.models import BindingRow

    categorise(world, "device")
    december_10 = int(datetime.datetime(2026, 12, 10, 9, tzinfo=datetime.UTC).timestamp() * 1000)
    row = {
        "gateway": "gw01", "stream": "s-unlotted", "seq": 1, "kind": "scan", "site": "site1", "door": "D1",
        "direction": "in", "time": december_10, "document": None, "line": None, "how": "no_document",
        "reason": "no lot on the label", "unit": "(01)04006381333931(21)SN-X", "label": "(01)04006381333931",
        "product": "VX10", "lot": None, "serial": "SN-X", "sscc": None, "quantity": 1, "unresolved": [],
        "bound_at": ARCHIVED, "location": None,
    }  # fmt: skip
    with world.begin() as conn:
        conn.execute(BindingRow.__table__.insert(), [row])
    with world.connect() as conn:
        [kept] = purge_plan(conn, POLICY)
    assert kept.purge_from is None
    assert "device lot (without a lot) of VX10: kept for ever, the lot has no expiry" in kept.rule


def test_an_open_recall_or_a_quarantine_of_a_lot_holds_the_month_until_it_ends(world: Engine) -> None:
    with world.begin() as conn:
        move_lot(conn, "PLAIN", "G1", "quarantined", reason="QA case 7", by=QA, now=ARCHIVED)
    with (
        world.begin() as conn,
        pytest.raises(
            PurgeError, match=r"kept for ever \(standard lot G1 of PLAIN: held while the lot is quarantined"
        ),
    ):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    with world.begin() as conn:
        move_lot(conn, "PLAIN", "G1", "released", reason="QA case 7 closed", by=QA, now=ARCHIVED)
        conn.execute(
            text(
                "INSERT INTO recalls (id, recall_class, reason, initiated_at, opened_at, by_name) "
                "VALUES ('R-1', 'II', 'potency', :at, :at, 'Rita'); "
            ),
            {"at": ARCHIVED},
        )
        conn.execute(
            text(
                "INSERT INTO recall_items (recall_id, seq, kind, asked, product, lot) "
                "VALUES ('R-1', 1, 'lot', 'L1', 'VX10', 'L1')"
            )
        )
    with world.connect() as conn:
        [kept] = purge_plan(conn, POLICY)
    assert kept.purge_from is None and "held while recall R-1 is open" in kept.rule
    with world.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO recall_events (recall_id, seq, kind, at, by_name) "
                "VALUES ('R-1', 1, 'closed', :at, 'Rita')"
            ),
            {"at": ARCHIVED},
        )
    with world.connect() as conn:
        [kept] = purge_plan(conn, POLICY)
    assert kept.purge_from == datetime.date(2032, 1, 1)


def test_a_live_month_is_never_purged_nor_while_binding_is_behind(world: Engine) -> None:
    with world.begin() as conn:
        ensure_partitions(conn, datetime.date(2026, 11, 1), datetime.date(2026, 11, 1))
    with (
        world.begin() as conn,
        pytest.raises(PurgeError, match="2026-11 cannot be purged: it is not archived"),
    ):
        purge_month(conn, datetime.date(2026, 11, 1), policy=POLICY, now=DUE, actor=OPERATOR)
    today = int(DUE.timestamp() * 1000)
    with world.begin() as conn:  # a scan of today waiting: no bearing on December 2026
        conn.execute(
            text(
                "INSERT INTO edge_items (gateway, stream, seq, ts, boot, mono, synced, kind, body) "
                "VALUES ('gw01', 'x', 1, :ts, 'b', 0, true, 'scan', '{}')"
            ),
            {"ts": today},
        )
        conn.execute(text("INSERT INTO binding_queue (gateway, stream, seq) VALUES ('gw01', 'x', 1)"))
        assert purge_plan(conn, POLICY)[0].month == DECEMBER
    with world.begin() as conn:  # one the queue holds without its item: of any time
        conn.execute(text("INSERT INTO binding_queue (gateway, stream, seq) VALUES ('gw01', 'x', 2)"))
    with (
        world.begin() as conn,
        pytest.raises(
            PurgeError, match=r"binding is behind \(1 movements or scans from before 2027-01-01 wait"
        ),
    ):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    with world.connect() as conn:
        assert _packs(conn) > 0


def test_packs_that_no_longer_hash_as_archived_are_not_purged(
    world: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(purge, "month_digest", lambda conn, month, packed: (1, "0" * 64))
    with world.begin() as conn, pytest.raises(PurgeError, match=r"2026-12 was not purged: its packs hold 1 "):
        purge_month(conn, DECEMBER, policy=POLICY, now=DUE, actor=OPERATOR)
    with world.connect() as conn:
        assert _packs(conn) > 0 and purged(conn) == []


def test_packs_are_deleted_only_with_their_purge_record(world: Engine) -> None:
    """Even the schema owner (this test's login) meets the trigger: no record, no delete."""
    with pytest.raises(DBAPIError, match="purge record"), world.begin() as conn:
        conn.execute(text("DELETE FROM reading_packs"))
    with pytest.raises(DBAPIError, match="append-only"), world.begin() as conn:
        conn.execute(text("TRUNCATE reading_packs"))


def _cli(engine: Engine, tmp_path: Path, *args: str, retention: str = "") -> Any:
    config = tmp_path / "cloud.toml"
    url = engine.url.render_as_string(hide_password=False)
    config.write_text(f'[database]\nurl = "{url}"\n{retention}')
    return CliRunner().invoke(cloud, ["archive", args[0], str(config), *args[1:]])


def test_the_operator_purges_from_the_command_line_after_a_dry_run(
    world: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    categorise(world, "device", "2031-06-30")
    monkeypatch.setattr(archive_cli, "utc_now", lambda: DUE)
    kept = _cli(world, tmp_path, "purge", "--due", "--dry-run")
    assert kept.exit_code == 0, kept.output
    assert "keep 2026-12 until 2033-06-30: device lot L1 of VX10 expires 2031-06-30" in kept.output
    assert "no archived month is due for purging (1 archived month(s) kept)" in kept.output
    # A longer standard term in the config holds it past the device's.
    monkeypatch.setattr(archive_cli, "utc_now", lambda: datetime.datetime(2034, 1, 1, tzinfo=datetime.UTC))
    longer = _cli(
        world, tmp_path, "purge", "--due", "--dry-run", retention="[retention]\nstandard_years = 10\n"
    )
    assert "keep 2026-12 until 2036-12-31: the standard term: 10 years after 2026-12" in longer.output
    dry = _cli(world, tmp_path, "purge", "--due", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would purge 2026-12: kept until 2033-06-30 (device lot L1 of VX10 expires" in dry.output
    with world.connect() as conn:
        assert _packs(conn) > 0 and purged(conn) == []
    done = _cli(world, tmp_path, "purge", "--due")
    assert done.exit_code == 0 and "purged 2026-12: " in done.output, done.output
    listed = _cli(world, tmp_path, "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines()[1].startswith("2026-12\t") and "\t2034-01-01 by " in listed.output
    assert "1 month(s) archived, 1 of them purged" in listed.output
    missing = _cli(world, tmp_path, "purge")
    assert missing.exit_code == 2 and "--due" in missing.output


def test_a_downgrade_that_would_lose_categories_or_purge_records_is_refused(world: Engine) -> None:
    """Below 0032 the purge records (what tells a purged month's silence from a gap) and QA's
    categories would be dropped: refused, naming what would go."""
    from alembic import command

    from coldgate.cloud.db.migrate import alembic_config

    with pytest.raises(RuntimeError, match=r"refused: 0 purged month\(s\) and \d+ product version\(s\)"):
        with world.begin() as conn:
            config = alembic_config(world.url)
            config.attributes["connection"] = conn
            command.downgrade(config, "0031")
    with world.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM reading_purges")).scalar_one() == 0, "still at head"
