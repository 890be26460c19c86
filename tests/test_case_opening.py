"""Which alerts open QA cases and which case each joins (``cloud/alerts/case_opening.py``), pure."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from coldgate.cloud.alerts.case_opening import CaseAlert, cause_of, fold, opens_case


def _alert(
    n: int, *, rule: str = "temperature.high", subject: str = "cr1-t01", severity: str = "critical",
    gateway: str = "gw01", subject_type: str = "sensor", alert_id: str | None = None,
) -> CaseAlert:  # fmt: skip
    ident = alert_id or f"{gateway}-a-{n:06d}"
    return CaseAlert(gateway, ident, rule, subject_type, subject, severity, f"alert {n}", 1_000 * n)


def test_a_flapping_sensor_is_one_case_and_other_causes_their_own() -> None:
    flaps = [_alert(n) for n in (1, 3, 5)]
    other_rule = _alert(2, rule="temperature.low")
    other_sensor = _alert(4, subject="cr2-t01")
    other_gateway = _alert(6, gateway="gw02")
    joining, opening = fold([*flaps, other_rule, other_sensor, other_gateway], {})
    assert joining == {}
    assert [(o.cause, [a.alert_id for a in o.alerts]) for o in opening] == [
        ("gw01|temperature.high|sensor|cr1-t01", ["gw01-a-000001", "gw01-a-000003", "gw01-a-000005"]),
        ("gw01|temperature.low|sensor|cr1-t01", ["gw01-a-000002"]),
        ("gw01|temperature.high|sensor|cr2-t01", ["gw01-a-000004"]),
        ("gw02|temperature.high|sensor|cr1-t01", ["gw02-a-000006"]),
    ]


def test_an_alert_joins_the_case_open_for_its_cause() -> None:
    joining, opening = fold(
        [_alert(7), _alert(8, subject="cr9")], {"gw01|temperature.high|sensor|cr1-t01": "case-1"}
    )
    assert {k: [a.alert_id for a in v] for k, v in joining.items()} == {"case-1": ["gw01-a-000007"]}
    assert [o.cause for o in opening] == ["gw01|temperature.high|sensor|cr9"]


def test_pre_alarms_and_info_stay_alerts() -> None:
    quiet = [_alert(1, rule="temperature.pre_high", severity="warning"), _alert(2, severity="info"),
             _alert(3, rule="humidity.pre_low", severity="warning")]  # fmt: skip
    assert not any(opens_case(a) for a in quiet)
    assert fold(quiet, {}) == ({}, [])
    assert opens_case(_alert(4, severity="warning", rule="stream.stuck"))
    assert opens_case(_alert(5, rule="source.offline"))


def test_a_receiving_discrepancy_is_a_case_per_document_not_per_door() -> None:
    """Two notes worked at door D1: the cloud's alert id names the document, and so does the cause."""
    first = _alert(1, rule="dock.discrepancy", subject_type="door", subject="D1",
                   alert_id="dock.discrepancy.doc-1", severity="warning")  # fmt: skip
    second = first._replace(alert_id="dock.discrepancy.doc-2", ts=2_000)
    assert cause_of(first) != cause_of(second)
    assert len(fold([first, second], {})[1]) == 2


@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=30))
def test_every_alert_that_opens_a_case_is_placed_once_whatever_the_order(rng: random.Random, n: int) -> None:
    """Each alert that opens a case lands in exactly one place; one opening per cause; the same result
    for any order the alerts are read in."""
    rules = ["temperature.high", "temperature.pre_high", "source.offline"]
    severities = ["info", "warning", "critical"]
    alerts = [_alert(k, rule=rng.choice(rules), subject=rng.choice("ab"), severity=rng.choice(severities))
              for k in range(1, n + 1)]  # fmt: skip
    open_cases = {cause_of(a): f"case-{cause_of(a)}" for a in alerts if rng.random() < 0.3}
    joining, opening = fold(alerts, open_cases)
    placed = [a for found in joining.values() for a in found] + [a for o in opening for a in o.alerts]
    assert sorted(placed) == sorted(a for a in alerts if opens_case(a))
    assert len({o.cause for o in opening}) == len(opening)
    assert not {o.cause for o in opening} & set(open_cases)
    shuffled = list(alerts)
    rng.shuffle(shuffled)
    assert fold(shuffled, open_cases) == (joining, opening)
