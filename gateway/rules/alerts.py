"""From what a rule found to the contract's ``Alert``: ids, messages, time stamps.

A rule reports a ``Finding`` (raised / updated / cleared, with evidence) and
knows nothing of sensors or outboxes; the engine turns it into an ``Alert``
stamped with the reading that caused it (``seq`` = UNSEQUENCED until the
outbox numbers it; ``ts``/``boot``/``mono``/``synced`` are the reading's).

The alert id ties the raised, updated and cleared steps together.  It is
``<sensor>.<rule>.<10 hex>``: readable in a log, and unique for the life of
the gateway because the hash covers the sensor, quantity, rule and the
*boot id and monotonic time* of the reading that started the episode (a wall
time may repeat after a clock step; a boot id never does).  The cloud,
re-evaluating the same readings, computes the same ids.
"""

from __future__ import annotations

import hashlib

from msgspec import Struct

from coldgate.contract.evidence import Evidence
from coldgate.contract.ids import is_id
from coldgate.contract.items import Alert, AlertAction, Reading, Severity, SubjectType
from coldgate.gateway.observations import UNSEQUENCED
from coldgate.gateway.rules.timebase import Mark

ID_MAX = 64


class Finding(Struct, frozen=True):
    """One step in an alert's life as a rule sees it; ``key`` marks the start of its episode."""

    action: AlertAction
    rule: str
    severity: Severity
    key: Mark
    text: str
    evidence: Evidence


def alert_id(sensor: str, quantity: str, rule: str, key: Mark) -> str:
    """``<sensor>.<rule>.<hash>``, the sensor part shortened when the whole would pass 64 characters."""
    digest = hashlib.blake2b(
        "\x1f".join((sensor, quantity, rule, key.boot, str(key.mono))).encode(), digest_size=5
    ).hexdigest()
    tail = f".{rule}.{digest}"
    ident = sensor[: ID_MAX - len(tail)] + tail
    if not is_id(ident):  # cannot happen with a valid sensor id; never emit an invalid item
        ident = f"a{digest}{tail[: ID_MAX - 11]}"
    return ident


def to_alert(finding: Finding, reading: Reading) -> Alert:
    """The outbox item for ``finding``, stamped with ``reading``'s time evidence."""
    return Alert(
        seq=UNSEQUENCED,
        ts=reading.ts,
        boot=reading.boot,
        mono=reading.mono,
        synced=reading.synced,
        alert_id=alert_id(reading.sensor, str(reading.quantity), finding.rule, finding.key),
        action=finding.action,
        rule=finding.rule,
        subject_type=SubjectType.SENSOR,
        subject=reading.sensor,
        severity=finding.severity,
        message=f"{reading.sensor} {finding.text}"[:1000],
        evidence=finding.evidence,
    )


def fmt_duration(ms: int) -> str:
    """45 s, 31 min, 2 h 03 min, 24 h, 3 d 04 h: what a person on call reads."""
    s = max(0, round(ms / 1000))
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if hours == 0 else f"{days} d {hours:02d} h"


def fmt_value(value: float | None, label: str) -> str:
    return "no value" if value is None else f"{value:.1f} {label}"
