"""Verdicts on the cloud's unheard-gateway gaps: a broker outage with the backlog delivered reads as
"delayed, nothing missing", a restart while unheard as "not monitored"; the gap itself is never edited.

The judgement (pure) case by case, then the whole path on both dialects:
statuses and batches through ingest, the watchdog opening and closing the
gap, and the verdict written once, as a record of its own that refuses
change.
"""

from __future__ import annotations

import datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.alerts.gap_verdicts import DELAYED, NOT_MONITORED, ClosedGap, GatewayEvidence, judge
from coldgate.cloud.alerts.gap_verdicts_watch import decide_gaps
from coldgate.cloud.alerts.gateway_unheard_watch import check_gateways
from coldgate.cloud.db.models import Gap, GapVerdict
from tests.rig.cloud_db import RECEIVED, ingest
from tests.rig.ingest import batch_message, enrol, reading, status_message

T = int(RECEIVED.timestamp() * 1000)
GAP = ClosedGap(gateway="gw01", start=T, end=T + 250_000)


def evidence(**changes: object) -> GatewayEvidence:
    """A gateway up for an hour before the gap, heard after it, its backlog stored past the gap's end."""
    fields: dict[str, object] = {
        "status_ts": T + 250_000, "status_boot": "b", "uptime_s": 3600 + 250, "stream": "s",
        "covered": 260, "covered_ts": T + 250_000,
    }  # fmt: skip
    fields.update(changes)
    return GatewayEvidence(**fields)  # type: ignore[arg-type]


def test_running_throughout_with_the_backlog_stored_is_delayed() -> None:
    verdict = judge(GAP, evidence())
    assert verdict is not None and verdict.verdict == DELAYED
    assert verdict.evidence["process_start"] == T + 250_000 - 3_850_000
    assert "nothing missing" in verdict.detail and "seq 260" in verdict.detail


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"covered": 120, "covered_ts": T + 110_000}, "backlog still arriving"),
        ({"covered": None, "covered_ts": None}, "nothing stored yet"),
        ({"status_ts": T + 200_000}, "no status from after the gap"),
        ({"uptime_s": None}, "an older gateway that does not say its uptime"),
        ({"status_ts": T + 900_000, "uptime_s": 60}, "restarted after the gap ended: cannot tell"),
    ],
)
def test_no_verdict_while_it_cannot_be_told(changes: dict[str, object], why: str) -> None:
    assert judge(GAP, evidence(**changes)) is None, why


def test_a_process_started_while_unheard_did_not_monitor_throughout() -> None:
    verdict = judge(GAP, evidence(uptime_s=30))  # started 30 s before T + 250 s: inside the gap
    assert verdict is not None and verdict.verdict == NOT_MONITORED
    assert verdict.evidence["process_start"] == T + 220_000


def _at(seconds: float) -> datetime.datetime:
    return RECEIVED + datetime.timedelta(seconds=seconds)


def _unheard_then_back(engine: Engine, gateway: str, *, uptime_back: int) -> None:
    """Heard at T with ten readings, unheard past the 180 s timeout, heard again at T + 250 s."""
    enrol(engine, [gateway])
    ingest(engine, *status_message(gateway, ts=T, last_seq=10, uptime_s=3600), now=_at(0))
    ingest(
        engine,
        *batch_message(gateway, [reading(n, ts=T - (10 - n) * 1000) for n in range(1, 11)]),
        now=_at(0),
    )
    [opened] = check_gateways(engine, _at(200), 180.0)
    assert opened.start == T
    back = status_message(gateway, ts=T + 250_000, last_seq=260, uptime_s=uptime_back)
    ingest(engine, *back, now=_at(250))
    [closed] = check_gateways(engine, _at(251), 180.0)
    assert (closed.start, closed.end) == (T, T + 250_000)  # type: ignore[union-attr]


def test_a_broker_outage_with_its_backlog_delivered_reads_delayed(engine: Engine) -> None:
    _unheard_then_back(engine, "gw01", uptime_back=3600 + 250)
    assert decide_gaps(engine, _at(252)) == []  # the backlog has not arrived: no verdict yet
    backlog = [reading(n, ts=T + (n - 10) * 1000) for n in range(11, 261)]
    ingest(engine, *batch_message("gw01", backlog), now=_at(253))
    [(gap, verdict)] = decide_gaps(engine, _at(254))
    assert (gap.start, gap.end, verdict.verdict) == (T, T + 250_000, DELAYED)
    assert decide_gaps(engine, _at(300)) == []  # judged once
    with engine.connect() as conn:
        [row] = conn.execute(select(GapVerdict)).all()
        gaps = conn.execute(select(Gap.start, Gap.end).where(Gap.gateway == "gw01")).all()
    assert (row.gap_start, row.gap_end, row.verdict, row.evidence["covered"]) == (
        T,
        T + 250_000,
        DELAYED,
        260,
    )
    assert sorted(gaps, key=lambda g: g.end is not None) == [(T, None), (T, T + 250_000)]  # both rows kept


def test_a_restart_while_unheard_reads_not_monitored_and_the_verdict_cannot_change(engine: Engine) -> None:
    _unheard_then_back(engine, "gw02", uptime_back=30)
    [(_, verdict)] = decide_gaps(engine, _at(252))
    assert verdict.verdict == NOT_MONITORED
    for statement in ("UPDATE gap_verdicts SET verdict = 'delayed'", "DELETE FROM gap_verdicts"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
