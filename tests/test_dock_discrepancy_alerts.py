"""Issue 15: a discrepancy raises an alert QA can act on.  The pure judge (a foreign or recalled case at
once; a shortfall only once the door has been quiet; updated when the counts change; cleared when
nothing is left open) and the watch on both dialects against a real pass at the door, through to the
alert rows the alerts API serves."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from sqlalchemy import Engine, select

from coldgate.cloud.alerts import dock_discrepancies
from coldgate.cloud.alerts.dock_discrepancies import (
    SETTLE_MS,
    DockStanding,
    OpenDockAlert,
    alert_id,
    dock_alert,
    judge,
)
from coldgate.cloud.alerts.dock_discrepancies_watch import check_dock
from coldgate.cloud.db.models import Alert
from coldgate.cloud.documents.moves import move_document
from coldgate.contract.items import AlertAction, Severity, SubjectType
from tests.rig.dock_pass import pass_at_the_door
from tests.rig.documents import DOCK, accept_open

T = 1_780_000_000_000


def standing(kinds: dict[str, int], *, last: int | None = T, worked: bool = True) -> DockStanding:
    return DockStanding("doc-1", "receiving", "ASN-7", "D1", worked, kinds, "gw01" if last else None, last)


def test_a_foreign_or_recalled_case_is_alerted_at_once_and_a_shortfall_once_the_door_is_quiet() -> None:
    [step] = judge([standing({"recalled": 1, "missing": 2})], {}, T + 1000)
    assert (step.action, step.severity, step.counts, step.gateway, step.door) == (
        AlertAction.RAISED, Severity.CRITICAL, "recalled=1", "gw01", "D1",
    )  # fmt: skip
    assert judge([standing({"missing": 2})], {}, T + SETTLE_MS - 1) == []
    [late] = judge([standing({"missing": 2})], {}, T + SETTLE_MS)
    assert (late.severity, late.counts) == (Severity.WARNING, "missing=2")
    assert judge([standing({"missing": 5}, last=None)], {}, T + 10 * SETTLE_MS) == []  # no truck yet


def test_an_open_alert_is_updated_when_its_counts_change_and_cleared_when_nothing_is_left() -> None:
    held = {"doc-1": OpenDockAlert("gw01", "D1", Severity.WARNING, "unexpected=1")}
    assert judge([standing({"unexpected": 1})], held, T) == []
    [more] = judge([standing({"unexpected": 1, "expired": 1})], held, T)
    assert (more.action, more.severity, more.counts) == (
        AlertAction.UPDATED,
        Severity.CRITICAL,
        "expired=1, unexpected=1",
    )
    [gone] = judge([standing({})], held, T)
    assert (gone.action, gone.counts) == (AlertAction.CLEARED, "")
    [left] = judge([standing({"unexpected": 1}, worked=False)], held, T)  # completed, closed or back to draft
    assert left.action is AlertAction.CLEARED


def test_the_alert_is_a_contract_alert_about_the_door() -> None:
    [step] = judge([standing({"unexpected": 1})], {}, T)
    alert = dock_alert(step, 7, datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC))
    assert (alert.alert_id, alert.rule, alert.subject_type, alert.subject) == (
        "dock.discrepancy.doc-1", "dock.discrepancy", SubjectType.DOOR, "D1",
    )  # fmt: skip
    assert alert.message == "receiving ASN-7 at door D1: discrepancies for QA to decide on: unexpected=1"
    assert alert.evidence.details == {"document": "doc-1", "reference": "ASN-7", "open": "unexpected=1"}
    assert len(alert_id("d" * 64)) <= 64 and alert_id("d" * 64) != alert_id("d" * 63 + "e")


def test_the_judge_is_pure() -> None:
    source = Path(dock_discrepancies.__file__ or "").read_text(encoding="utf-8")
    for word in ("sqlalchemy", "apscheduler", "import time", "datetime.now", "open("):
        assert word not in source


def _alerts(engine: Engine) -> list[tuple[str, str, str, str]]:
    a = Alert
    with engine.connect() as conn:
        query = select(a.gateway, a.action, a.severity, a.message).where(a.rule == "dock.discrepancy")
        rows = conn.execute(query.order_by(a.seq))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_watch_raises_once_and_clears_when_qa_has_decided(engine: Engine) -> None:
    dock = pass_at_the_door(engine, missing=1)
    steps = check_dock(engine, dock.now)
    assert [(s.action, s.counts) for s in steps] == [(AlertAction.RAISED, "missing=1, unexpected=1")]
    assert check_dock(engine, dock.now) == []  # nothing changed: nothing written
    assert _alerts(engine) == [
        ("gw01", "raised", "warning", "receiving ASN-7 at door D1: discrepancies for QA to decide on: "
         "missing=1, unexpected=1"),
    ]  # fmt: skip
    with engine.begin() as conn:
        accept_open(conn, dock.document, dock.now)
    assert [s.action for s in check_dock(engine, dock.now)] == [AlertAction.CLEARED]
    assert [row[1] for row in _alerts(engine)] == ["raised", "cleared"]
    with engine.begin() as conn:
        move_document(conn, dock.document, "in_progress", reason="worked", by=DOCK, now=dock.now)
        move_document(conn, dock.document, "completed", reason="received", by=DOCK, now=dock.now)
    assert check_dock(engine, dock.now) == []


def test_a_shortfall_waits_for_the_door_to_be_quiet(engine: Engine) -> None:
    dock = pass_at_the_door(engine, missing=1, foreign=False)
    just_after = datetime.datetime.fromtimestamp((dock.released + 90_000) / 1000, datetime.UTC)
    assert check_dock(engine, just_after) == []
    [step] = check_dock(engine, just_after + datetime.timedelta(milliseconds=SETTLE_MS))
    assert (step.action, step.counts) == (AlertAction.RAISED, "missing=1")


def test_the_watch_with_its_cache_decides_the_same_and_reconciles_only_what_changed(engine: Engine) -> None:
    from coldgate.cloud.alerts.dock_discrepancies_watch import DockWatchCache

    cache = DockWatchCache()
    dock = pass_at_the_door(engine, missing=1)
    steps = check_dock(engine, dock.now, cache=cache)
    assert [(s.action, s.counts) for s in steps] == [(AlertAction.RAISED, "missing=1, unexpected=1")]
    assert cache.computed == 1
    assert check_dock(engine, dock.now, cache=cache) == []
    assert cache.computed == 1  # nothing changed: the standing was kept, not reconciled again
    tomorrow = dock.now + datetime.timedelta(days=1)
    assert check_dock(engine, tomorrow, cache=cache) == []
    assert cache.computed == 2  # a new day at the site: expiry judgements may turn
    with engine.begin() as conn:
        accept_open(conn, dock.document, tomorrow)  # audited: the next run reconciles again
    assert [s.action for s in check_dock(engine, tomorrow, cache=cache)] == [AlertAction.CLEARED]
    assert cache.computed == 3
