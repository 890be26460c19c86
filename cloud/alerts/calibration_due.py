"""Calibration due and overdue: an alert per sensor, from its certificates' due date.

A reading from an instrument past its calibration is not evidence an
inspector accepts, so the cloud tells QA ahead of time: ``info`` once the
due date is within ``warn_days`` (``[gateways] calibration_warn_days``), a
``warning`` once it has passed, cleared when a new certificate moves the due
date on (``cloud/catalog/placements.record_calibration``).  One alert per
sensor (``alert_id``), raised once, updated when it becomes overdue, cleared
once: the contract's steps.

Pure: the watch (``calibration_due_watch``) reads sensors and open alerts and
appends the rows in stream ``cloud``.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from coldgate.cloud.alerts.cloud_stream import cloud_item_fields
from coldgate.contract.evidence import Evidence
from coldgate.contract.items import Alert, AlertAction, Severity, SubjectType

__all__ = ["RULE", "CalibrationStep", "alert_id", "calibration_alert", "judge"]

RULE = "calibration.due"


@dataclass(frozen=True, slots=True)
class CalibrationStep:
    gateway: str
    sensor: str
    action: AlertAction
    severity: Severity
    due: datetime.date | None


def alert_id(sensor: str) -> str:
    """``calibration.due.<sensor>``, or with a digest when that would pass the contract's 64 characters."""
    plain = f"{RULE}.{sensor}"
    return plain if len(plain) <= 64 else f"{RULE}.{hashlib.sha256(sensor.encode()).hexdigest()[:32]}"


def _wanted(due: datetime.date | None, today: datetime.date, warn_days: int) -> Severity | None:
    if due is None:
        return None
    if due < today:
        return Severity.WARNING
    if (due - today).days <= warn_days:
        return Severity.INFO
    return None


def judge(
    sensors: Iterable[tuple[str, str, datetime.date | None]],
    open_alerts: Mapping[tuple[str, str], Severity],
    today: datetime.date,
    warn_days: int,
) -> list[CalibrationStep]:
    """``sensors``: (gateway, sensor, due date); ``open_alerts``: (gateway, sensor) -> the severity open."""
    steps = []
    for gateway, sensor, due in sensors:
        wanted = _wanted(due, today, warn_days)
        held = open_alerts.get((gateway, sensor))
        if wanted is not None and held is None:
            steps.append(CalibrationStep(gateway, sensor, AlertAction.RAISED, wanted, due))
        elif wanted is not None and held != wanted:
            steps.append(CalibrationStep(gateway, sensor, AlertAction.UPDATED, wanted, due))
        elif wanted is None and held is not None:
            steps.append(CalibrationStep(gateway, sensor, AlertAction.CLEARED, held, due))
    return steps


def calibration_alert(step: CalibrationStep, seq: int, now: datetime.datetime, today: datetime.date) -> Alert:
    if step.action is AlertAction.CLEARED:
        message = f"{step.sensor}: calibrated, next due {step.due.isoformat() if step.due else 'not set'}"
    elif step.severity is Severity.WARNING:
        days = (today - step.due).days if step.due else 0
        message = (
            f"{step.sensor}: calibration overdue since {step.due} ({days} d): its readings need a certificate"
        )
    else:
        days = (step.due - today).days if step.due else 0
        message = f"{step.sensor}: calibration due on {step.due} (in {days} d)"
    return Alert(
        **cloud_item_fields(seq, now), alert_id=alert_id(step.sensor), action=step.action, rule=RULE,
        subject_type=SubjectType.SENSOR, subject=step.sensor, severity=step.severity, message=message,
        evidence=Evidence(details={"due": step.due.isoformat() if step.due else ""}),
    )  # fmt: skip
