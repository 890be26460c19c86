"""Batch validity at the door: recalls, quarantine, expiry, unknown GTINs, time out of refrigeration.

Three kinds of tests: case folders, focused unit tests per rule, and
hypothesis properties over random observation/tick streams.

Case folders live in ``tests/testcases/door_checks/<what_it_reproduces>/``:

``input.json``
    ``about`` (one sentence); optional ``policy`` (``DoorPolicy`` fields);
    optional ``master`` (``temperature_classes``, ``products``, ``batches``
    of ``MasterData``; absent: no master data) and ``recalls`` (a list of
    ``RecallEntry``; absent: no recall list); ``steps``, each with ``t_s``
    (seconds since the case's start: wall and monotonic time) and one of
    ``observe`` (``Observation`` fields; ``zone_class`` as ``[low, high]``,
    dates as ``YYYY-MM-DD``; ``today`` defaults to the case's ``today``;
    a scan's ``hibc``, ``hibc_uom``, ``ma``, ``expiry_hour``, ``best_before``
    and the site's ``hour`` only where the case needs them),
    ``tick: true``, or ``update`` (``{master?, recalls?}``, replacing the
    documents in force).
``expected.json``
    ``events``: every alert step in order, with ``t_s``, ``action``,
    ``rule``, ``severity`` and optionally ``subject``, ``id`` (events with one
    label share an alert id, different labels differ), ``message`` (a
    substring) and ``details`` (a subset of ``evidence.details``).

A bug report becomes a new folder, not a new test function.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.downlink import (
    MasterData,
    Product,
    RecallList,
    TemperatureClass,
)
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType
from coldgate.contract.units import Unit
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import stamp_fields
from coldgate.gateway.rules.dock_checks import (
    EXPIRED,
    NEAR_EXPIRY,
    QUARANTINED,
    RECALL_UNRESOLVED,
    RECALLED,
    TOR,
    UNKNOWN_GTIN,
    DoorChecks,
    DoorPolicy,
    Observation,
)
from coldgate.gateway.rules.dock_knowledge import Knowledge
from tests.rig.cases import case_dirs, each_case, read_expected, read_input
from tests.rig.dock import (
    AMBIENT,
    COLD,
    EVENTS,
    GAUZE,
    INSULIN,
    RECALLS,
    STRANGER,
    T0_MS,
    TODAY,
    at,
    check_valid,
    checks,
    master,
    obs,
    recall,
    recalls,
    steps,
)

CASES = case_dirs("door_checks")
# -- case folders ------------------------------------------------------------------------------------


def _date(value: str | None) -> datetime.date | None:
    return None if value is None else datetime.date.fromisoformat(value)


def _documents(given: dict[str, Any]) -> tuple[MasterData | None, RecallList | None]:
    m = given.get("master")
    r = given.get("recalls")
    master_data = (
        None
        if m is None
        else msgspec.convert({"v": 1, "gateway": "gw01", "version": 1, "issued": T0_MS, **m}, MasterData)
    )
    recall_list = (
        None
        if r is None
        else msgspec.convert(
            {"v": 1, "gateway": "gw01", "version": 1, "issued": T0_MS, "entries": r}, RecallList
        )
    )
    return master_data, recall_list


def run_case(case: Path) -> list[tuple[float, Alert]]:
    given = read_input(case)
    door = DoorChecks(DoorPolicy(**given.get("policy", {})), Knowledge.from_documents(*_documents(given)))
    today = given.get("today", TODAY.isoformat())
    got: list[tuple[float, Alert]] = []
    for step in given["steps"]:
        stamp = at(step["t_s"])
        if "observe" in step:
            o = dict(step["observe"])
            o["zone_class"] = tuple(o["zone_class"]) if o.get("zone_class") is not None else None
            o["expiry"] = _date(o.get("expiry"))
            if "best_before" in o:
                o["best_before"] = _date(o["best_before"])
            o["today"] = _date(o.get("today", today))
            for name in ("direction", "gtin", "lot", "serial"):
                o.setdefault(name, None)
            alerts = door.observe(Observation(**o), stamp)
        elif "update" in step:
            door.update(Knowledge.from_documents(*_documents(step["update"])))
            alerts = []
        else:
            alerts = door.tick(stamp)
        got.extend((step["t_s"], a) for a in alerts)
    return got


@each_case("door_checks")
def test_case(case: Path) -> None:
    expected = read_expected(case)["events"]
    got = run_case(case)
    text = "\n".join(f"{t}: {a.action} {a.rule} {a.severity} {a.subject} {a.message}" for t, a in got)
    assert [(t, a.action.value, a.rule, a.severity.value) for t, a in got] == [
        (e["t_s"], e["action"], e["rule"], e["severity"]) for e in expected
    ], text
    ids: dict[str, str] = {}
    for event, (_, alert) in zip(expected, got, strict=True):
        check_valid(alert)
        if "subject" in event:
            assert alert.subject == event["subject"], text
        if "id" in event:
            assert ids.setdefault(event["id"], alert.alert_id) == alert.alert_id, event
        if "message" in event:
            assert event["message"] in alert.message, alert.message
        for key, value in event.get("details", {}).items():
            assert alert.evidence.details.get(key) == value, (key, alert.evidence.details)
    assert len(set(ids.values())) == len(ids), "different labels, one alert id"


def test_there_are_cases() -> None:
    assert len(CASES) >= 4


# -- rules and severities ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "severity"),
    [("out", "critical"), ("in", "warning"), ("unknown", "warning"), (None, "warning")],
)
@pytest.mark.parametrize(("status", "rule"), [("recalled", RECALLED), ("quarantined", QUARANTINED)])
def test_recall_and_quarantine_severity_by_direction(
    direction: str | None, severity: str, status: str, rule: str
) -> None:
    door = checks(recalls(recall(status=status, lot="LOT42", reason="particulates")))
    alerts = door.observe(obs(direction), at(0))
    assert steps(alerts) == [("raised", rule, severity)]
    alert = alerts[0]
    assert alert.subject_type is SubjectType.DOOR and alert.subject == "D1"
    assert alert.evidence.details["reference"] == "FSN-1"
    assert alert.evidence.details["lot"] == "LOT42"
    assert alert.evidence.details["direction"] == (direction or "scan")
    assert "particulates" in alert.message
    check_valid(alert)


def test_recall_matches_lot_and_serial_only_when_given() -> None:
    door = checks(recalls(recall(lot="LOT17"), recall(gtin=GAUZE, serial="9")))
    assert door.observe(obs("out", lot="LOT42"), at(0)) == []
    assert door.observe(obs("out", gtin=GAUZE, lot="X", serial="8", key="g8", zone=AMBIENT), at(0)) == []
    assert steps(
        door.observe(obs("out", gtin=GAUZE, lot="X", serial="9", key="g9", zone=AMBIENT), at(0))
    ) == [("raised", RECALLED, "critical")]


@pytest.mark.parametrize("direction", ["out", "in", None])
def test_lot_unknown_is_a_warning_never_a_pass(direction: str | None) -> None:
    door = checks(recalls(recall(lot="LOT17"), recall(lot="LOT9", reference="FSN-2")))
    alerts = door.observe(obs(direction, lot=None), at(0))
    assert steps(alerts) == [("raised", RECALL_UNRESOLVED, "warning")]
    assert "lot unknown; lots LOT17, LOT9 of this GTIN are recalled" in alerts[0].message
    assert "scan the case" in alerts[0].message
    assert alerts[0].evidence.details["recalled_lots"] == "LOT17, LOT9"
    # the scan of the case settles it: a recalled lot is definite
    assert steps(door.observe(obs("out", lot="LOT9", key="scan-1"), at(1))) == [
        ("raised", RECALLED, "critical")
    ]


def test_serial_unknown_is_unresolved_too() -> None:
    door = checks(recalls(recall(serial="77")))
    alerts = door.observe(obs("out", serial=None), at(0))
    assert steps(alerts) == [("raised", RECALL_UNRESOLVED, "warning")]
    assert "serial unknown" in alerts[0].message


def test_a_whole_gtin_recall_needs_no_lot() -> None:
    door = checks(recalls(recall()))
    assert steps(door.observe(obs("out", lot=None), at(0))) == [("raised", RECALLED, "critical")]


@pytest.mark.parametrize(
    ("direction", "severity"), [("out", "critical"), ("in", "warning"), (None, "warning")]
)
def test_expired_from_master_data(direction: str | None, severity: str) -> None:
    alerts = checks().observe(obs(direction, lot="OLD1"), at(0))
    assert steps(alerts) == [("raised", EXPIRED, severity)]
    assert alerts[0].evidence.details["expiry"] == "2025-03-01"


def test_expiry_from_the_barcode_and_the_earlier_date_counts() -> None:
    door = checks()
    # master data says LOT42 is good to 2026; the printed date is yesterday
    assert steps(door.observe(obs("out", expiry=TODAY - datetime.timedelta(days=1)), at(0))) == [
        ("raised", EXPIRED, "critical")
    ]


def test_good_through_the_expiry_date_then_near() -> None:
    assert steps(checks().observe(obs("out", expiry=TODAY), at(0))) == [("raised", NEAR_EXPIRY, "warning")]
    assert steps(checks(near_expiry_days=0).observe(obs("out", expiry=TODAY), at(0))) == [
        ("raised", NEAR_EXPIRY, "warning")
    ]
    far = TODAY + datetime.timedelta(days=31)
    assert checks().observe(obs("out", expiry=far, lot=None), at(0)) == []


def test_near_expiry_is_a_warning_even_outbound() -> None:
    alerts = checks().observe(obs("out", lot="SOON"), at(0))
    assert steps(alerts) == [("raised", NEAR_EXPIRY, "warning")]
    assert "16 days" in alerts[0].message
    assert checks(near_expiry_days=10).observe(obs("out", lot="SOON"), at(0)) == []


def test_unknown_gtin_warns_only_with_master_data() -> None:
    assert steps(checks().observe(obs("out", gtin=STRANGER, lot=None), at(0))) == [
        ("raised", UNKNOWN_GTIN, "warning")
    ]
    bare = DoorChecks(DoorPolicy(), Knowledge.from_documents(None, None))
    assert bare.observe(obs("out", gtin=STRANGER, lot=None), at(0)) == []
    assert Knowledge.from_documents(None, None).missing == ("master_data", "recall_list")
    assert Knowledge.from_documents(master(), recalls()).missing == ()


def test_sscc_only_gets_no_product_checks() -> None:
    door = checks(recalls(recall()))
    assert door.observe(obs("out", gtin=None, lot=None, serial=None, key="sscc-3"), at(0)) == []
    assert door.observe(obs("in", gtin=None, lot=None, serial=None, key="sscc-3", zone=AMBIENT), at(0)) == []
    assert door.tick(at(10_000)) == []


def test_one_alert_per_item_then_escalation_and_moves() -> None:
    door = checks(recalls(recall(lot="LOT42")))
    first = door.observe(obs("in"), at(0))
    assert steps(first) == [("raised", RECALLED, "warning")]
    assert door.observe(obs("in"), at(1)) == []  # a re-read
    assert door.observe(obs(None), at(2)) == []
    up = door.observe(obs("out"), at(3))  # now it is leaving: the alarm goes at once
    assert steps(up) == [("updated", RECALLED, "critical")]
    assert up[0].alert_id == first[0].alert_id
    assert door.observe(obs("out"), at(4)) == []
    moved = door.observe(obs("out", door="D2"), at(5))
    assert steps(moved) == [("cleared", RECALLED, "critical"), ("raised", RECALLED, "critical")]
    assert [a.subject for a in moved] == ["D1", "D2"]
    assert moved[0].alert_id == first[0].alert_id != moved[1].alert_id


def test_holds_clear_after_hold_s_and_a_new_pass_raises_again() -> None:
    door = checks(recalls(recall(lot="LOT42")), hold_s=600)
    raised = door.observe(obs("out"), at(0))
    assert door.tick(at(599)) == []
    cleared = door.tick(at(600))
    assert steps(cleared) == [("cleared", RECALLED, "critical")]
    assert cleared[0].alert_id == raised[0].alert_id
    assert cleared[0].evidence.start == T0_MS and cleared[0].evidence.end == T0_MS + 600_000
    assert door.tick(at(2000)) == []
    again = door.observe(obs("out"), at(2001))
    assert steps(again) == [("raised", RECALLED, "critical")]
    assert again[0].alert_id != raised[0].alert_id


def test_escalation_restarts_the_hold() -> None:
    door = checks(recalls(recall(lot="LOT42")), hold_s=100)
    door.observe(obs("in"), at(0))
    door.observe(obs("out"), at(90))
    assert door.tick(at(150)) == []
    assert steps(door.tick(at(190))) == [("cleared", RECALLED, "critical")]


def test_alert_fields_are_stamp_fields() -> None:
    stamp = at(12.5, synced=False)
    raised = checks(recalls(recall())).observe(obs("out"), stamp)[0]
    assert {k: getattr(raised, k) for k in ("seq", "ts", "boot", "mono", "synced")} == stamp_fields(stamp)


# -- knowledge updates -------------------------------------------------------------------------------


def test_a_recall_pushed_while_the_item_is_on_the_dock() -> None:
    door = checks()
    assert door.observe(obs("in", lot="LOT42"), at(0)) == []
    assert door.observe(obs("out", lot="LOT42", key="gone"), at(0)) == []  # already left
    door.update(Knowledge.from_documents(master(), recalls(recall(lot="LOT42", reference="FSN-9"))))
    alerts = door.tick(at(5))
    assert steps(alerts) == [("raised", RECALLED, "warning")]
    assert alerts[0].evidence.details["key"] == "epc1"
    assert alerts[0].evidence.details["reference"] == "FSN-9"
    assert door.tick(at(6)) == []
    # the same list pushed again finds nothing new
    door.update(Knowledge.from_documents(master(), recalls(recall(lot="LOT42", reference="FSN-9"))))
    assert door.tick(at(7)) == []
    # and leaving now is critical
    assert steps(door.observe(obs("out"), at(8))) == [("updated", RECALLED, "critical")]


def test_old_findings_are_not_re_raised_by_an_update() -> None:
    door = checks(hold_s=10)
    door.observe(obs("in", lot="SOON"), at(0))
    assert steps(door.tick(at(10))) == [("cleared", NEAR_EXPIRY, "warning")]
    door.update(Knowledge.from_documents(master(), recalls()))
    assert door.tick(at(11)) == []


# -- time out of refrigeration -----------------------------------------------------------------------


def test_tor_clock_warns_then_goes_critical_then_holds() -> None:
    door = checks(tor_budget_s=1800, hold_s=600)
    assert door.observe(obs("in", zone=AMBIENT), at(0)) == []
    assert door.tick(at(899)) == []
    warn = door.tick(at(900))
    assert steps(warn) == [("raised", TOR, "warning")]
    assert door.tick(at(1600)) == []  # no hold-clear between warning and critical
    crit = door.tick(at(1800))
    assert steps(crit) == [("updated", TOR, "critical")]
    assert crit[0].alert_id == warn[0].alert_id
    assert crit[0].evidence.duration_s == 1800 and crit[0].evidence.start == T0_MS
    assert crit[0].evidence.details["product_class"] == "2..8"
    assert crit[0].evidence.details["zone_class"] == "15..25"
    assert steps(door.tick(at(2400))) == [("cleared", TOR, "critical")]
    assert door.tick(at(9000)) == []  # one alert per pass
    assert door.observe(obs("in", zone=AMBIENT), at(9001)) == []  # still the same pass


def test_tor_stops_when_the_item_leaves_or_reaches_a_fitting_zone() -> None:
    door = checks(tor_budget_s=100)
    door.observe(obs("in", zone=AMBIENT), at(0))
    door.observe(obs("in", zone=AMBIENT, key="e2"), at(0))
    door.observe(obs(None, zone=AMBIENT, key="e3"), at(0))
    assert steps(door.tick(at(60))) == [("raised", TOR, "warning")] * 3
    out = door.observe(obs("out", zone=AMBIENT), at(70))  # onto the truck
    assert steps(out) == [("cleared", TOR, "warning")]
    assert out[0].evidence.duration_s == 70 and out[0].evidence.end == T0_MS + 70_000
    into_cold = door.observe(obs(None, zone=COLD, key="e2", door="D2"), at(80))
    assert steps(into_cold) == [("cleared", TOR, "warning")]
    assert steps(door.tick(at(100))) == [("updated", TOR, "critical")]
    assert set(door.clocks()) == {"e3"}


def test_tor_never_starts_on_outbound_fitting_unknown_zone_or_unknown_class() -> None:
    door = checks(tor_budget_s=10)
    door.observe(obs("out", zone=AMBIENT), at(0))
    door.observe(obs("in", zone=COLD, key="k2"), at(0))
    door.observe(obs("in", zone=None, key="k3"), at(0))
    door.observe(obs("in", gtin=STRANGER, zone=AMBIENT, key="k4", lot=None), at(0))  # unknown GTIN only
    door.observe(obs("in", gtin=GAUZE, zone=AMBIENT, key="k5", lot=None), at(0))  # ambient product
    assert [a.rule for a in door.tick(at(1000))] == [UNKNOWN_GTIN]
    assert door.clocks() == {}


def test_tor_class_in_fahrenheit_is_converted() -> None:
    md = master(
        temperature_classes=[TemperatureClass(name="cold", low=35.6, high=46.4, unit=Unit.FAH)],
        products=[Product(gtin=INSULIN, name="Insulin pen", temperature_class="cold")],
        batches=[],
    )
    door = checks(master_data=md, tor_budget_s=10)
    door.observe(obs("in", zone=(2.0, 8.0)), at(0))
    assert door.clocks() == {}
    door.observe(obs("in", zone=AMBIENT, key="k2"), at(0))
    assert set(door.clocks()) == {"k2"}


def test_tor_across_a_reboot_uses_wall_time() -> None:
    door = checks(tor_budget_s=100, tor_warn_at=1.0)
    door.observe(obs("in", zone=AMBIENT), at(0))
    assert door.tick(Stamp(wall_ms=T0_MS + 99_000, mono_ms=5, boot="b0070002", synced=True)) == []
    assert steps(door.tick(Stamp(wall_ms=T0_MS + 100_000, mono_ms=6, boot="b0070002", synced=True))) == [
        ("raised", TOR, "critical")
    ]


# -- bounded memory ----------------------------------------------------------------------------------


def test_tracked_keys_and_open_alerts_are_capped() -> None:
    door = checks(recalls(recall()), max_tracked=3, hold_s=10)
    got: list[Alert] = []
    for i in range(6):
        got += door.observe(obs("in", key=f"k{i}", zone=AMBIENT), at(i))
    assert len(door.clocks()) == 3 and door.evicted == 3
    assert len(door.open_alerts()) == 3
    got += door.tick(at(100))
    raised = {a.alert_id for a in got if a.action is AlertAction.RAISED}
    cleared = {a.alert_id for a in got if a.action is AlertAction.CLEARED}
    assert raised == cleared and len(raised) == 6
    assert any("cleared early" in a.message for a in got)


# -- properties --------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(EVENTS, st.integers(1, 20))
def test_properties_one_open_alert_per_rule_and_key_all_cleared_all_valid(
    events: list[tuple[int, Observation | str]], cap: int
) -> None:
    hold_s = 120
    door = checks(RECALLS, tor_budget_s=200, hold_s=hold_s, max_tracked=cap)
    t = 0.0
    got: list[Alert] = []
    for dt, event in events:
        t += dt
        if event == "tick":
            got += door.tick(at(t))
        elif event == "update":
            door.update(Knowledge.from_documents(master(), recalls(recall(lot="LOT42"), recall(gtin=GAUZE))))
        else:
            assert isinstance(event, Observation)
            got += door.observe(event, at(t))
    # every raised alert is cleared by tick within hold_s of its last step (TOR: after its critical step)
    got += door.tick(at(t + 200))  # every TOR clock has spent its budget: its alert is critical now
    got += door.tick(at(t + 200 + hold_s))
    assert door.open_alerts() == []

    open_by: dict[tuple[str, str], str] = {}
    key_of: dict[str, tuple[str, str]] = {}
    seen_ids: set[str] = set()
    for alert in got:
        check_valid(alert)
        ident = alert.alert_id
        if alert.action is AlertAction.RAISED:
            assert ident not in seen_ids, "alert ids are unique"
            seen_ids.add(ident)
            pair = (alert.rule, alert.evidence.details["key"])
            assert pair not in open_by, f"second open alert for {pair}"
            open_by[pair] = ident
            key_of[ident] = pair
        else:
            assert ident in key_of and open_by.get(key_of[ident]) == ident, alert
            if alert.action is AlertAction.CLEARED:
                del open_by[key_of[ident]]
    assert open_by == {}
    assert all(a.severity is not Severity.INFO for a in got)
