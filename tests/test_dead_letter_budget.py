"""A bounded share of what ingest refuses (issue 11): per source and window, at most ``rows`` dead
letters and ``bytes`` kept; the rest are counted in ``dead_letter_budgets``, logged once and, for a
gateway, raised as ``dead_letters.capped.budget``.  Repeats of a kept letter cost nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import logging

import pytest

pytest.importorskip("sqlalchemy", reason="ingest tests need the [cloud] extra")

from sqlalchemy import Engine, func, select

from coldgate.cloud.alerts.cloud_stream import CLOUD_STREAM
from coldgate.cloud.alerts.ingest_alerts import CAPPED_RULE
from coldgate.cloud.db.models import Alert, DeadLetter, DeadLetterBudget
from coldgate.cloud.ingest.dead_letter_budget import Budget
from coldgate.cloud.ingest.dead_letter_payload import PREFIX_BYTES
from coldgate.cloud.ingest.dead_letters import NO_GATEWAY_SOURCE, NOT_ENROLLED_SOURCE
from coldgate.cloud.ingest.group import Outcome
from coldgate.cloud.ingest.limits import IngestLimits
from coldgate.cloud.ingest.message import ingest_message
from coldgate.contract.topics import batch_topic
from tests.rig.cloud_db import RECEIVED
from tests.rig.cloud_db import ingest as ingest_one
from tests.rig.ingest import SITE

NOW = RECEIVED
LOGGER = "coldgate.cloud.ingest.dead_letters"
KIB = 1024
BUDGET = Budget(window_s=3600.0, rows=10, bytes=64 * KIB)
LIMITS = IngestLimits(window=256, budget=BUDGET)


def garbage(n: int, size: int = 200) -> bytes:
    """Bytes that are no JSON, distinct for each ``n`` and the same every time: refused whole, kept
    whole when small (at most ``PREFIX_BYTES``), else a prefix."""
    noise = hashlib.sha256(f"garbage {n}".encode()).digest() * (size // 32 + 1)
    return (b"\xff" + f"garbage {n:06d} ".encode() + noise)[:size]


def ingest(engine: Engine, topic: str, payload: bytes, now: datetime.datetime = NOW) -> Outcome:
    return ingest_one(engine, topic, payload, now, LIMITS)


def kept(engine: Engine, gateway: str | None) -> list:
    with engine.connect() as conn:
        where = DeadLetter.gateway.is_(None) if gateway is None else DeadLetter.gateway == gateway
        return list(conn.execute(select(DeadLetter).where(where).order_by(DeadLetter.id)))


def budget_row(engine: Engine, source: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(DeadLetterBudget).where(DeadLetterBudget.source == source)).one()


def capped_alerts(engine: Engine, gateway: str) -> list:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(Alert).where(Alert.gateway == gateway, Alert.rule == CAPPED_RULE).order_by(Alert.seq)
            )
        )


def over_budget_lines(caplog: pytest.LogCaptureFixture, source: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and f"dead letters from {source} are over their budget" in r.getMessage()
    ]


def test_a_flood_keeps_the_budget_and_counts_the_rest(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = "gw07"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    topic = batch_topic(SITE, gateway)
    flood = [garbage(n) for n in range(50)]
    outcomes = [ingest(engine, topic, payload) for payload in flood]

    assert all((o.kind, o.dead_letters) == ("dead_letter", 1) for o in outcomes)
    assert [o.dead_letters_dropped for o in outcomes] == [0] * 10 + [1] * 40
    letters = kept(engine, gateway)
    assert [letter.payload for letter in letters] == flood[:10]
    row = budget_row(engine, gateway)
    assert (row.kept, row.kept_bytes) == (10, sum(len(p) for p in flood[:10]))
    assert (row.dropped, row.dropped_total, row.dropped_bytes) == (40, 40, sum(len(p) for p in flood[10:]))
    [line] = over_budget_lines(caplog, gateway)
    assert "10 letters or 65536 bytes per 3600 s" in line
    [alert] = capped_alerts(engine, gateway)
    assert (alert.alert_id, alert.action, alert.stream) == (f"{CAPPED_RULE}.budget", "raised", CLOUD_STREAM)
    assert alert.evidence["details"] == {"rows": 10, "bytes": 64 * KIB, "window_s": 3600.0}


def test_repeats_of_a_kept_letter_do_not_spend_the_budget(engine: Engine) -> None:
    gateway = "gw08"
    topic = batch_topic(SITE, gateway)
    first = garbage(0)
    for _ in range(25):  # a gateway re-sending the refused batch it cannot get acknowledged
        assert ingest(engine, topic, first).dead_letters_dropped == 0
    rest = [ingest(engine, topic, garbage(n)) for n in range(1, 10)]
    assert [o.dead_letters_dropped for o in rest] == [0] * 9
    assert (budget_row(engine, gateway).kept, budget_row(engine, gateway).dropped) == (10, 0)
    letters = kept(engine, gateway)
    assert len(letters) == 10 and letters[0].repeats == 24

    # Spent now: a new one is dropped, but a repeat of a kept one is still counted on its letter.
    assert ingest(engine, topic, garbage(10)).dead_letters_dropped == 1
    assert ingest(engine, topic, garbage(5)).dead_letters_dropped == 0
    assert kept(engine, gateway)[5].repeats == 1
    assert (budget_row(engine, gateway).kept, budget_row(engine, gateway).dropped) == (10, 1)


def test_the_budget_is_fresh_once_the_window_has_passed(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = "gw09"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    topic = batch_topic(SITE, gateway)
    for n in range(15):
        ingest(engine, topic, garbage(n))
    almost = NOW + datetime.timedelta(seconds=BUDGET.window_s - 1)
    assert ingest(engine, topic, garbage(15), now=almost).dead_letters_dropped == 1

    later = NOW + datetime.timedelta(seconds=BUDGET.window_s)
    outcomes = [ingest(engine, topic, garbage(n), now=later) for n in range(100, 115)]
    assert [o.dead_letters_dropped for o in outcomes] == [0] * 10 + [1] * 5
    assert len(kept(engine, gateway)) == 20
    row = budget_row(engine, gateway)
    assert (row.kept, row.dropped, row.dropped_total) == (10, 5, 11)
    # Said once per window: a line each, the alert raised, then updated.
    assert len(over_budget_lines(caplog, gateway)) == 2
    assert [alert.action for alert in capped_alerts(engine, gateway)] == ["raised", "updated"]


def test_another_source_is_unaffected(engine: Engine) -> None:
    flooder, neighbour = "gw10", "gw11"
    for n in range(30):
        ingest(engine, batch_topic(SITE, flooder), garbage(n))
    assert budget_row(engine, flooder).dropped == 20
    mine = [ingest(engine, batch_topic(SITE, neighbour), garbage(1000 + n)) for n in range(10)]
    assert [o.dead_letters_dropped for o in mine] == [0] * 10
    assert len(kept(engine, neighbour)) == 10
    # Messages on no Coldgate topic have a budget of their own, untouched by either gateway.
    assert ingest(engine, "somewhere/else", garbage(2000)).dead_letters_dropped == 0
    assert [letter.payload[:20] for letter in kept(engine, None)] == [garbage(2000)[:20]]
    assert budget_row(engine, NO_GATEWAY_SOURCE).kept == 1
    assert capped_alerts(engine, neighbour) == []
    assert len(capped_alerts(engine, flooder)) == 1


def test_the_bytes_cap_holds_too(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    gateway = "gw12"
    caplog.set_level(logging.WARNING, logger=LOGGER)
    topic = batch_topic(SITE, gateway)
    roomy = IngestLimits(window=256, budget=Budget(window_s=3600.0, rows=1000, bytes=64 * KIB))
    # JSON is kept whole (it might become data): one of 100 KiB is over the whole budget on its own.
    big_json = b"[" + b"1," * (50 * KIB) + b"1]"
    with engine.begin() as conn:
        outcome = ingest_message(conn, topic, big_json, NOW, limits=roomy)
    assert (outcome.dead_letters, outcome.dead_letters_dropped) == (1, 1)
    assert kept(engine, gateway) == []
    # Garbage keeps a 4 KiB prefix each: sixteen fill 64 KiB, the rest are dropped.
    outcomes = []
    for n in range(20):
        with engine.begin() as conn:
            outcomes.append(ingest_message(conn, topic, garbage(n, size=10 * KIB), NOW, limits=roomy))
    assert [o.dead_letters_dropped for o in outcomes] == [0] * 16 + [1] * 4
    row = budget_row(engine, gateway)
    assert (row.kept, row.kept_bytes, row.dropped) == (16, 16 * PREFIX_BYTES, 5)
    assert row.dropped_bytes == len(big_json) + 4 * PREFIX_BYTES
    with engine.connect() as conn:
        assert conn.execute(select(func.sum(func.length(DeadLetter.payload)))).scalar_one() <= 64 * KIB
    assert len(over_budget_lines(caplog, gateway)) == 1
    assert len(capped_alerts(engine, gateway)) == 1


def test_gateways_that_are_not_enrolled_share_one_budget(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    # Made-up ids cost a budget each no more: each first message is a letter of the shared source.
    outcomes = [ingest(engine, batch_topic(SITE, f"nobody-{n:02d}"), garbage(n)) for n in range(15)]
    assert [o.kind for o in outcomes] == ["not_enrolled"] * 15
    assert [o.dead_letters_dropped for o in outcomes] == [0] * 10 + [1] * 5
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 10
        assert conn.execute(select(func.count()).select_from(Alert)).scalar_one() == 0  # no gateway's
    row = budget_row(engine, NOT_ENROLLED_SOURCE)
    assert (row.kept, row.dropped) == (10, 5)
    assert len(over_budget_lines(caplog, NOT_ENROLLED_SOURCE)) == 1
    # An enrolled gateway's own budget is untouched by them.
    assert ingest(engine, batch_topic(SITE, "gw13"), garbage(99)).dead_letters_dropped == 0
