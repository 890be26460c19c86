"""Archiving old months of readings (``cloud/db/archive.py``): packed, proven whole by their hash, read
back by every report exactly as before; refused where it may not be done, and nothing lost when refused."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from coldgate.cloud.audit.log import Actor, entries
from coldgate.cloud.cli import cloud
from coldgate.cloud.db import archive
from coldgate.cloud.db.archive import ArchiveError, archivable_months, archive_month, archives
from coldgate.cloud.db.partitions import ensure_partitions, partition_name
from coldgate.cloud.db.selections import readings_in
from coldgate.cloud.reports.history_json import history_content
from coldgate.cloud.reports.history_store import lot_history
from tests.rig.custody_world import GTIN
from tests.rig.history_world import AS_OF, SENSORS, history_world

DECEMBER = datetime.date(2026, 12, 1)
#: A moment when December 2026 may be archived with ``after_months=0``.
LATER = datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC)
OPERATOR = Actor("Ola Operator")


@pytest.fixture
def world(engine: Engine) -> Engine:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            ensure_partitions(conn, DECEMBER, DECEMBER)  # December's readings in their own month, not DEFAULT
    history_world(engine)
    return engine


def _rows(conn: Any, sensor: str) -> list[tuple[Any, ...]]:
    selection = readings_in("gw01", sensor, 0, 2**62, None)
    return sorted(tuple(row) for row in conn.execute(select(selection)).all())


def _pg_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("months are partitions on PostgreSQL only")


def test_an_archived_month_reads_back_row_for_row_and_the_history_is_unchanged(world: Engine) -> None:
    _pg_only(world)
    with world.connect() as conn:
        before_rows = {sensor: _rows(conn, sensor) for sensor in SENSORS.values()}
        before_history = history_content(lot_history(conn, GTIN, "L1", as_of=AS_OF))
        live = conn.execute(text(f"SELECT count(*) FROM {partition_name(DECEMBER)}")).scalar_one()
    with world.begin() as conn:
        done = archive_month(conn, DECEMBER, now=LATER, actor=OPERATOR, after_months=0)
    assert done.readings == live > 0 and done.packs > 0
    assert done.bytes_after < done.bytes_before
    with world.connect() as conn:
        assert conn.execute(text(f"SELECT to_regclass('{partition_name(DECEMBER)}')")).scalar() is None
        assert {sensor: _rows(conn, sensor) for sensor in SENSORS.values()} == before_rows
        assert history_content(lot_history(conn, GTIN, "L1", as_of=AS_OF)) == before_history
        assert archives(conn) == [done]
        assert archive.month_digest(conn, DECEMBER, packed=True) == (done.readings, done.sha256)
        audited = [e for e in entries(conn) if e.action == "readings.archived"]
    assert [(e.entity_id, e.actor_name) for e in audited] == [("2026-12", "Ola Operator")]


def test_a_range_inside_an_archived_day_gets_only_its_readings(world: Engine) -> None:
    _pg_only(world)
    sensor = SENSORS["CR2"]
    start = int(datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC).timestamp() * 1000)
    end = start + 20 * 60_000
    query = select(readings_in("gw01", sensor, start, end, "temperature"))
    with world.connect() as conn:
        before = sorted(tuple(r) for r in conn.execute(query).all())
    with world.begin() as conn:
        archive_month(conn, DECEMBER, now=LATER, actor=OPERATOR, after_months=0)
    with world.connect() as conn:
        after = sorted(tuple(r) for r in conn.execute(query).all())
    assert after == before and len(after) == 20


def test_a_month_too_young_not_live_or_on_sqlite_is_refused_and_nothing_changes(world: Engine) -> None:
    now = datetime.datetime(2027, 1, 15, tzinfo=datetime.UTC)
    if world.dialect.name != "postgresql":
        with world.begin() as conn, pytest.raises(ArchiveError, match="needs PostgreSQL"):
            archive_month(conn, DECEMBER, now=now, actor=OPERATOR)
        return
    with world.begin() as conn:
        assert archivable_months(conn, now.date()) == []  # 13 months kept live by default
        with pytest.raises(ArchiveError, match=r"2026-12 cannot be archived: it is not 13 months old yet"):
            archive_month(conn, DECEMBER, now=now, actor=OPERATOR)
        with pytest.raises(ArchiveError, match="no live partition"):
            archive_month(conn, datetime.date(2019, 5, 1), now=now, actor=OPERATOR, after_months=0)
    with world.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {partition_name(DECEMBER)}")).scalar_one() > 0
        assert conn.execute(text("SELECT count(*) FROM reading_packs")).scalar_one() == 0


def test_packs_that_do_not_hash_like_the_month_leave_the_month_as_it_was(
    world: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pg_only(world)
    real = archive.month_digest

    def tampered(conn: Any, month: datetime.date, *, packed: bool = False) -> tuple[int, str]:
        count, digest = real(conn, month, packed=packed)
        return (count, "0" * 64) if packed else (count, digest)

    monkeypatch.setattr(archive, "month_digest", tampered)
    with pytest.raises(ArchiveError, match=r"2026-12 was not archived: its \d+ readings hash to \w{64}"):
        with world.begin() as conn:
            archive_month(conn, DECEMBER, now=LATER, actor=OPERATOR, after_months=0)
    with world.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {partition_name(DECEMBER)}")).scalar_one() > 0
        assert conn.execute(text("SELECT count(*) FROM reading_packs")).scalar_one() == 0
        assert archives(conn) == []


def test_packs_and_the_archive_record_are_never_edited(world: Engine) -> None:
    _pg_only(world)
    with world.begin() as conn:
        archive_month(conn, DECEMBER, now=LATER, actor=OPERATOR, after_months=0)
    for statement in (
        "UPDATE reading_packs SET count = 0",
        "DELETE FROM reading_packs",
        "DELETE FROM reading_archives",
        "TRUNCATE reading_packs",
    ):
        with pytest.raises(DBAPIError, match=r"append-only|refuse"), world.begin() as conn:
            conn.execute(text(statement))


def _cli(engine: Engine, tmp_path: Any, *args: str) -> Any:
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "{engine.url.render_as_string(hide_password=False)}"\n')
    return CliRunner().invoke(cloud, ["archive", args[0], str(config), *args[1:]])


def test_the_operator_archives_a_month_from_the_command_line_and_lists_it(
    world: Engine, tmp_path: Any
) -> None:
    if world.dialect.name != "postgresql":
        refused = _cli(world, tmp_path, "run", "--month", "2026-12", "--after-months", "0")
        assert refused.exit_code == 1 and "archiving needs PostgreSQL" in refused.output
        return
    bad = _cli(world, tmp_path, "run", "--month", "2026-13")
    assert bad.exit_code == 2 and "'2026-13' is not a month written YYYY-MM" in bad.output
    neither = _cli(world, tmp_path, "run")
    assert neither.exit_code == 2 and "name months with --month, or ask for --due" in neither.output
    young = _cli(world, tmp_path, "run", "--month", "2026-12")
    assert young.exit_code == 1 and "2026-12 cannot be archived: it is not 13 months old yet" in young.output
    dry = _cli(world, tmp_path, "run", "--due", "--after-months", "0", "--dry-run")
    assert dry.exit_code == 0 and "would archive 2026-12" not in dry.output  # December is this month
    done = _cli(world, tmp_path, "run", "--month", "2026-12", "--after-months", "0")
    assert done.exit_code == 1 and "not 0 months old yet" in done.output  # this month is never archived
    with world.begin() as conn:
        ensure_partitions(conn, datetime.date(2025, 3, 1), datetime.date(2025, 3, 1))
    moved = _cli(world, tmp_path, "run", "--due")
    assert moved.exit_code == 0, moved.output
    assert "2025-03: 0 readings in 0 packs" in moved.output
    listed = _cli(world, tmp_path, "list")
    assert listed.exit_code == 0 and listed.output.splitlines()[1].startswith("2025-03\t0\t0\t")
    assert "1 month(s) archived" in listed.output
