"""Calibration due and overdue alerts: info within the warning window, a warning once overdue (the same
alert updated), cleared by a new certificate; pure cases, then through the catalog's calibration
records and the watch on both dialects."""

from __future__ import annotations

import datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from coldgate.cloud.alerts.calibration_due import alert_id, judge
from coldgate.cloud.alerts.calibration_due_watch import check_calibrations
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.models import Alert
from coldgate.contract.items import AlertAction, Severity
from tests.rig.cloud_db import ingest
from tests.rig.ingest import batch_message, reading
from tests.rig.people import bearer, person

TODAY = datetime.date(2026, 12, 6)


def test_info_ahead_warning_when_overdue_cleared_when_calibrated() -> None:
    soon = [("gw", "s1", TODAY + datetime.timedelta(days=30))]
    assert judge([("gw", "s1", TODAY + datetime.timedelta(days=31))], {}, TODAY, 30) == []
    [raised] = judge(soon, {}, TODAY, 30)
    assert (raised.action, raised.severity) == (AlertAction.RAISED, Severity.INFO)
    assert judge(soon, {("gw", "s1"): Severity.INFO}, TODAY, 30) == []  # one alert, not one per run
    [updated] = judge(
        [("gw", "s1", TODAY - datetime.timedelta(days=1))], {("gw", "s1"): Severity.INFO}, TODAY, 30
    )
    assert (updated.action, updated.severity) == (AlertAction.UPDATED, Severity.WARNING)
    [cleared] = judge(
        [("gw", "s1", TODAY + datetime.timedelta(days=365))], {("gw", "s1"): Severity.WARNING}, TODAY, 30
    )
    assert cleared.action is AlertAction.CLEARED
    assert judge([("gw", "s2", None)], {}, TODAY, 30) == []  # never calibrated: nothing to count from
    assert len(alert_id("x" * 64)) <= 64


def test_an_overdue_sensor_raises_and_a_new_certificate_clears(engine: Engine) -> None:
    ingest(engine, *batch_message("gw01", [reading(1, sensor="cr1-t01")]))
    _, qa = person(engine, "marta", ("qa_manager",))
    body = {
        "gateway": "gw01",
        "sensor": "cr1-t01",
        "certificate": "CAL-2025-01",
        "calibrated_on": "2025-12-01",
        "accuracy": "±0.3 °C",
        "next_due": "2026-12-01",
        "reason": "annual",
    }
    now = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.UTC)
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        assert client.post("/catalog/calibrations", json=body, headers=bearer(qa)).status_code == 200
        [raised] = check_calibrations(engine, now, 30)
        assert (raised.action, raised.severity) == (AlertAction.RAISED, Severity.WARNING)
        assert check_calibrations(engine, now, 30) == []
        renewed = {
            **body,
            "certificate": "CAL-2026-01",
            "calibrated_on": "2026-12-05",
            "next_due": "2027-12-05",
        }
        assert client.post("/catalog/calibrations", json=renewed, headers=bearer(qa)).status_code == 200
    [cleared] = check_calibrations(engine, now, 30)
    assert cleared.action is AlertAction.CLEARED
    with engine.connect() as conn:
        rows = conn.execute(
            select(Alert.action, Alert.severity, Alert.message)
            .where(Alert.rule == "calibration.due")
            .order_by(Alert.seq)
        ).all()
    assert [(r.action, r.severity) for r in rows] == [("raised", "warning"), ("cleared", "warning")]
    assert "calibration overdue since 2026-12-01 (5 d)" in rows[0].message
