"""The cloud database on both dialects: migrations, partitions and idempotent inserts."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

pytest.importorskip("sqlalchemy", reason="cloud database tests need the [cloud] extra")
pytest.importorskip("alembic", reason="cloud database tests need the [cloud] extra")

from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from coldgate.cloud.db import insert_items, migrate
from coldgate.cloud.db.migrate import alembic_config
from coldgate.cloud.db.models import Alert, EdgeItem, Gap, Reading
from coldgate.cloud.db.writes import item_row
from coldgate.contract import examples
from coldgate.contract.items import Quantity
from coldgate.contract.items import Reading as ReadingItem
from coldgate.contract.units import Unit

GATEWAY, SITE, STREAM = "gw01", "site1", "s-0001"
NOW_MS = 1_795_000_000_000  # 2026-11
BOOT = examples.READING.boot


def readings(n: int, start_seq: int = 1, ts0: int = NOW_MS) -> list[ReadingItem]:
    return [
        ReadingItem(
            seq=start_seq + i,
            ts=ts0 + i * 1000,
            boot=BOOT,
            mono=10_000 + i * 1000,
            synced=True,
            sensor="cr1-t01",
            quantity=Quantity.TEMPERATURE,
            value=4.0 + (i % 10) / 10,
            unit=Unit.CEL,
        )
        for i in range(n)
    ]


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_migrate_creates_every_table_and_is_repeatable(db_url: str) -> None:
    migrate(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            first = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        names = set(inspect(engine).get_table_names())
        assert {"sites", "zones", "sensors", "gateways", "readings", "gaps", "alerts"} <= names
        assert {"edge_items", "dead_letters", "alembic_version", "item_keys"} <= names
        assert {"stream_coverage", "batch_ranges", "boot_anchors"} <= names
        migrate(db_url)  # a database at head is left alone
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == first
        assert first == [ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()]
    finally:
        engine.dispose()


def test_insert_is_idempotent(engine: Engine) -> None:
    batch = readings(1000)
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, batch) == 1000
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, batch) == 0
    assert count(engine, Reading) == 1000
    # Same seqs on another stream (a replaced SD card) are new items.
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, "s-0002", batch[:10]) == 10
    assert count(engine, Reading) == 1010


def test_partial_overlap_counts_only_new(engine: Engine) -> None:
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(100)) == 100
    with engine.begin() as conn:
        assert (
            insert_items(conn, GATEWAY, SITE, STREAM, readings(100, start_seq=51, ts0=NOW_MS + 50_000)) == 50
        )
    assert count(engine, Reading) == 150


def test_reading_far_in_the_future_or_past_lands(engine: Engine) -> None:
    far_future = 4_102_444_800_000  # 2100-01-01: a gateway with a wild clock
    far_past = 86_400_000  # 1970-01-02: an RTC-less Pi before NTP
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1, ts0=far_future)) == 1
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1, start_seq=2, ts0=far_past)) == 1
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1, ts0=far_future)) == 0
    assert count(engine, Reading) == 2
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT tableoid::regclass::text FROM readings")).scalars().all()
        assert rows == ["readings_default", "readings_default"]


def test_every_item_kind_is_stored(engine: Engine) -> None:
    items = [examples.READING_ERROR, *examples.ITEMS.values()]  # one of each kind, distinct seqs
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, items) == 7
        assert insert_items(conn, GATEWAY, SITE, STREAM, items) == 0
    assert count(engine, Reading) == 2
    assert count(engine, Gap) == 1
    assert count(engine, Alert) == 1
    assert count(engine, EdgeItem) == 3
    with engine.connect() as conn:
        kinds = conn.execute(select(EdgeItem.kind).order_by(EdgeItem.seq)).scalars().all()
        evidence = conn.execute(select(Alert.evidence)).scalar_one()
    assert kinds == ["movement", "scan", "event"]
    assert isinstance(evidence, dict)


def test_readings_partitioned_on_postgresql(pg_database: object) -> None:
    url = str(pg_database.url)  # type: ignore[attr-defined]
    migrate(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            strategy = conn.execute(
                text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'readings'::regclass")
            ).scalar_one()
            children = (
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'readings'::regclass ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
        assert strategy == "r"
        assert "readings_default" in children
        assert sum(name.startswith("readings_2") for name in children) >= 3
    finally:
        engine.dispose()


def test_cli_migrate(tmp_path: Path) -> None:
    from coldgate.cloud.cli import cloud

    db = tmp_path / "cloud.sqlite3"
    config = tmp_path / "cloud.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n')
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cloud, ["migrate", str(config)])
        assert result.exit_code == 0, result.output
        assert "newest schema" in result.output
    engine = create_engine(f"sqlite:///{db}")
    try:
        assert "readings" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_models_match_migrations(engine: Engine) -> None:
    """Autogenerate finds nothing to do: the hand-written migration and the models agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from coldgate.cloud.db.models import Base, autogenerate_include

    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": autogenerate_include}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_same_key_other_ts(engine: Engine) -> None:
    """A re-sent seq with another ts is not stored twice, although readings is partitioned by ts."""
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1)) == 1
        again = insert_items(conn, GATEWAY, SITE, STREAM, readings(1, ts0=NOW_MS + 5))
    assert again == 0
    assert count(engine, Reading) == 1


def test_seq_twice_in_one_call_is_stored_once(engine: Engine) -> None:
    twice = [*readings(1), *readings(1, ts0=NOW_MS + 7)]
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, twice) == 1
    assert count(engine, Reading) == 1


def test_the_database_password_is_the_first_line_of_its_file_and_an_empty_one_is_refused(
    tmp_path: Path,
) -> None:
    from coldgate.cloud.config import DatabaseConfig
    from coldgate.cloud.db.engine import database_url
    from coldgate.configfile import ConfigError

    secret = tmp_path / "db-password"
    secret.write_text("s3cret pass\n")
    config = DatabaseConfig(
        url="postgresql+psycopg://coldgate@db.example/coldgate", password_file=str(secret)
    )
    assert database_url(config).password == "s3cret pass"
    secret.write_text("")
    with pytest.raises(ConfigError, match=r"database\.password_file: .*db-password is empty"):
        database_url(config)
    secret.unlink()
    with pytest.raises(ConfigError, match=r"database\.password_file: cannot read .*db-password"):
        database_url(config)
    secret.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"database\.password_file: cannot read"):
        database_url(config)


def test_one_seq_holds_one_item_whatever_its_kind(engine: Engine) -> None:
    alert = examples.ALERT
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, [alert]) == 1
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1, start_seq=alert.seq)) == 0
    assert count(engine, Reading) == 0 and count(engine, Alert) == 1


def test_an_upgrade_gives_the_kinds_already_stored_their_keys(db_url: str) -> None:
    migrate(db_url, "0005")
    engine = create_engine(db_url)
    alert, gap = examples.ALERT, examples.GAP
    own = msgspec.structs.replace(alert, seq=alert.seq, alert_id="cloud-1")
    with engine.begin() as conn:  # as the cloud before item_keys wrote them: no key but for readings
        conn.execute(Alert.__table__.insert(), [item_row(GATEWAY, STREAM, alert)])
        conn.execute(Gap.__table__.insert(), [item_row(GATEWAY, STREAM, gap)])
        # The cloud's own rows (stream "cloud") never collide with a gateway's: they get no key.
        conn.execute(Alert.__table__.insert(), [item_row(GATEWAY, "cloud", own)])
    engine.dispose()
    migrate(db_url)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT stream, seq FROM item_keys")).all()
    assert sorted(tuple(key) for key in keys) == sorted([(STREAM, alert.seq), (STREAM, gap.seq)])
    with engine.begin() as conn:
        assert insert_items(conn, GATEWAY, SITE, STREAM, readings(1, start_seq=alert.seq)) == 0
    engine.dispose()
