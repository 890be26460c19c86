"""``coldgate cloud unknown-gateways`` and ``coldgate cloud dead-letters budgets``, run as an operator
runs them (a subprocess on the cloud's TOML), on both dialects.

The tables are filled through ``ingest_message``; the budget the CLI judges
with is the config's ``[ingest]``, so the config here sets the smallest budget
it allows (10 letters per window) and ingest is given the same.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine

from coldgate.cloud.identity.enrolment import enrol_gateway
from coldgate.cloud.ingest.dead_letter_budget import Budget
from coldgate.cloud.ingest.dead_letters import NOT_ENROLLED_SOURCE
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message
from coldgate.contract.topics import batch_topic
from tests.rig.commands import run_ok
from tests.rig.ingest import SITE, batch_message, reading

BUDGET = Budget(window_s=3600.0, rows=10, bytes=1 << 20)


@pytest.fixture
def now() -> datetime.datetime:
    """Taken when the test starts: the CLI judges windows by the wall clock."""
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@pytest.fixture
def config(tmp_path: Path, db_url: str, engine: Engine) -> Path:
    """The cloud TOML of ``engine``'s database, with ``BUDGET`` as its [ingest] budget."""
    path = tmp_path / "cloud.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n\n[ingest]\n'
        f"dead_letter_window_s = {BUDGET.window_s}\n"
        f"dead_letters_per_window = {BUDGET.rows}\n"
        f"dead_letter_bytes_per_window = {BUDGET.bytes}\n"
    )
    return path


def coldgate(*args: str | Path) -> list[list[str]]:
    """The command's output lines, split at tabs."""
    out = run_ok(sys.executable, "-m", "coldgate", "cloud", *args)
    return [line.split("\t") for line in out.splitlines()]


def ingest(engine: Engine, topic: str, payload: bytes, now: datetime.datetime) -> str:
    with engine.begin() as conn:
        return ingest_message(conn, topic, payload, now, limits=IngestLimits(budget=BUDGET)).kind


def stamp(moment: datetime.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def test_unknown_gateways_one_line_per_id_newest_first(
    engine: Engine, config: Path, now: datetime.datetime
) -> None:
    assert coldgate("unknown-gateways", config) == [["0 unknown gateway id(s)"]]
    sent = [("gwX", SITE, 3, 30), ("gw06", "site2", 1, 20), ("gwLate", SITE, 2, 5)]
    for gateway, site, times, minutes in sent:
        for n in range(times):
            topic, payload = batch_message(gateway, [reading(n + 1)], site=site)
            moment = now - datetime.timedelta(minutes=minutes + times - 1 - n)
            assert ingest(engine, topic, payload, moment) == "not_enrolled"
    with engine.begin() as conn:
        enrol_gateway(conn, "gwLate", SITE, "password", now)
    size = len(batch_message("gwX", [reading(1)])[1])

    lines = coldgate("unknown-gateways", config)
    assert lines[-1] == ["3 unknown gateway id(s)"]
    assert [line[0] for line in lines[:-1]] == ["gwLate", "gw06", "gwX"]
    late, gw06, gwx = lines[:-1]
    assert gwx[:6] == [
        "gwX",
        SITE,
        "3 message(s)",
        f"{3 * size} B",
        stamp(now - datetime.timedelta(minutes=32)),
        stamp(now - datetime.timedelta(minutes=30)),
    ]
    assert gwx[6].startswith("gateway gwX is not enrolled")
    assert len(gwx) == 7
    assert gw06[1:3] == ["site2", "1 message(s)"]
    assert gw06[6] == "gateway gw06 is enrolled for site site1, not site2"
    # Enrolled since it was refused: the line stays, marked.
    assert late[2] == "2 message(s)"
    assert late[-1] == "[enrolled since]"

    only = coldgate("unknown-gateways", config, "--site", "site2")
    assert [line[0] for line in only] == ["gw06", "1 unknown gateway id(s)"]


def test_dead_letter_budgets_one_line_per_source(
    engine: Engine, config: Path, now: datetime.datetime
) -> None:
    assert coldgate("dead-letters", "budgets", config) == [
        ["0 source(s), 0 capped now (budget: 10 letters or 1048576 bytes per 3600 s)"]
    ]
    for n in range(13):  # gw01: ten kept, three only counted
        ingest(
            engine,
            batch_topic(SITE, "gw01"),
            f"garbage {n:02d}".encode(),
            now - datetime.timedelta(minutes=9),
        )
    for n in range(11):  # gw03: over its budget two hours ago, a window that has passed
        ingest(engine, batch_topic(SITE, "gw03"), f"old {n:02d}".encode(), now - datetime.timedelta(hours=2))
    ingest(engine, batch_topic(SITE, "gw02"), b"garbage", now - datetime.timedelta(minutes=1))
    topic, payload = batch_message("gwX", [reading(1)])
    ingest(engine, topic, payload, now)  # its first message is a dead letter of the shared budget

    lines = coldgate("dead-letters", "budgets", config)
    assert lines[-1] == ["4 source(s), 1 capped now (budget: 10 letters or 1048576 bytes per 3600 s)"]
    assert [line[0] for line in lines[:-1]] == ["gw01", NOT_ENROLLED_SOURCE, "gw02", "gw03"]
    gw01, shared, gw02, gw03 = lines[:-1]
    assert gw01 == [
        "gw01",
        f"window {stamp(now - datetime.timedelta(minutes=9))} (open)",
        "kept 10 (100 B)",
        "dropped 3 (30 B)",
        "dropped in all 3",
        "[CAPPED]",
    ]
    assert shared[2:] == [f"kept 1 ({len(payload)} B)", "dropped 0 (0 B)", "dropped in all 0", "[ok]"]
    assert gw02[2:] == ["kept 1 (7 B)", "dropped 0 (0 B)", "dropped in all 0", "[ok]"]
    assert gw03 == [
        "gw03",
        f"window {stamp(now - datetime.timedelta(hours=2))} (over)",
        "kept 10 (60 B)",
        "dropped 1 (6 B)",
        "dropped in all 1",
        "[ok]",
    ]

    capped = coldgate("dead-letters", "budgets", config, "--capped")
    assert [line[0] for line in capped] == [
        "gw01",
        "1 source(s), 1 capped now (budget: 10 letters or 1048576 bytes per 3600 s)",
    ]
