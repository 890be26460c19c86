"""The offline-sources rule (``gateway.rules.offline_sources``): gaps in, one alert per outage out.

Unit cases pin the timing, the ids and the policies per location class;
hypothesis drives arbitrary gap sequences of several sources and checks that
an outage never has two alerts and that every raised alert is cleared when its
source's gap closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.items import Alert, AlertAction, Gap, GapCause, Severity, SubjectType
from coldgate.gateway.config_load import gateway_config_from_document
from coldgate.gateway.observations import UNSEQUENCED
from coldgate.gateway.rules.offline_sources import (
    RULE,
    OfflineParams,
    OfflinePolicy,
    OfflineSources,
    offline_params_from_config,
)

BOOT = "b" * 32
T0 = 1_780_000_000_000  # wall ms
M0 = 50_000  # mono ms


@dataclass(frozen=True)
class At:
    wall_ms: int
    mono_ms: int
    boot: str = BOOT
    synced: bool = True


def at(offset_ms: int, boot: str = BOOT) -> At:
    return At(T0 + offset_ms, M0 + offset_ms, boot)


def gap(
    subject: str,
    start_ms: int,
    stamped_ms: int,
    end_ms: int | None = None,
    subject_type: SubjectType = SubjectType.SENSOR,
    boot: str = BOOT,
) -> Gap:
    """A gap of ``subject`` starting at T0+start_ms, stamped at T0+stamped_ms (M0+ on the mono line)."""
    cause = {
        SubjectType.SENSOR: GapCause.SENSOR_OFFLINE,
        SubjectType.READER: GapCause.READER_OFFLINE,
        SubjectType.SCANNER: GapCause.SCANNER_OFFLINE,
    }.get(subject_type, GapCause.GATEWAY_OFFLINE)
    return Gap(
        seq=UNSEQUENCED,
        ts=T0 + stamped_ms,
        boot=boot,
        mono=M0 + stamped_ms,
        synced=True,
        subject_type=subject_type,
        subject=subject,
        start=T0 + start_ms,
        end=None if end_ms is None else T0 + end_ms,
        cause=cause,
        detail="unit 1 on line bus-a: 3 polls failed in a row; last: timeout",
    )


PARAMS = OfflineParams(
    default=OfflinePolicy(after_ms=900_000, severity=Severity.WARNING),
    per_source={"sensor:cr1": OfflinePolicy(after_ms=300_000, severity=Severity.CRITICAL)},
)


def test_a_cold_sensor_offline_past_its_delay_raises_one_critical_alert_cleared_when_back() -> None:
    rule = OfflineSources(PARAMS)
    # Polls failed from 0 on; the gap was opened at the third failed poll, 120 s later.
    assert rule.observe(gap("cr1", 0, 120_000)) == []
    assert rule.tick(at(299_000)) == []
    assert rule.due_in_ms(at(299_000)) == 1_000
    [raised] = rule.tick(at(300_000))
    assert isinstance(raised, Alert)
    assert (raised.action, raised.rule, raised.severity) == (AlertAction.RAISED, RULE, Severity.CRITICAL)
    assert (raised.subject_type, raised.subject) == (SubjectType.SENSOR, "cr1")
    assert raised.alert_id.startswith("cr1.source.offline.")
    assert (raised.ts, raised.mono) == (T0 + 300_000, M0 + 300_000)
    assert raised.evidence.start == T0 and raised.evidence.end is None
    assert raised.evidence.duration_s == 300 and raised.evidence.details == {"cause": "sensor_offline"}
    assert "offline for 5 min" in raised.message
    # Nothing more while it stays offline, also when the open gap is sent again.
    assert rule.tick(at(400_000)) == []
    assert rule.observe(gap("cr1", 0, 401_000)) == []
    assert rule.due_in_ms(at(401_000)) is None
    [cleared] = rule.observe(gap("cr1", 0, 500_000, end_ms=500_000))
    assert (cleared.action, cleared.alert_id, cleared.severity) == (
        AlertAction.CLEARED,
        raised.alert_id,
        Severity.CRITICAL,
    )
    assert cleared.evidence.start == T0 and cleared.evidence.end == T0 + 500_000
    assert cleared.ts == T0 + 500_000 and "answered again after" in cleared.message
    assert rule.outages() == [] and rule.tick(at(900_000)) == []


def test_a_short_outage_stays_a_gap_record_only() -> None:
    rule = OfflineSources(PARAMS)
    assert rule.observe(gap("cr1", 0, 60_000)) == []
    assert rule.observe(gap("cr1", 0, 200_000, end_ms=200_000)) == []
    assert rule.tick(at(10_000_000)) == []


def test_a_gap_opened_after_the_delay_raises_at_once_stamped_with_the_gap() -> None:
    rule = OfflineSources(OfflineParams(default=OfflinePolicy(0, Severity.WARNING)))
    [raised] = rule.observe(gap("door-1", 0, 4_000, subject_type=SubjectType.READER))
    assert (raised.subject_type, raised.severity, raised.ts) == (SubjectType.READER, "warning", T0 + 4_000)


def test_each_source_has_its_own_outage_and_id_and_other_subjects_are_ignored() -> None:
    rule = OfflineSources(PARAMS)
    rule.observe(gap("cr1", 0, 1_000))
    rule.observe(gap("scan-1", 0, 1_000, subject_type=SubjectType.SCANNER))
    assert rule.observe(gap("gw-1", 0, 1_000, subject_type=SubjectType.GATEWAY)) == []
    assert rule.observe(gap("outbox", 0, 1_000, subject_type=SubjectType.OUTBOX)) == []
    [cold] = rule.tick(at(300_000))
    assert cold.subject == "cr1"
    [scanner] = rule.tick(at(900_000))
    assert (scanner.subject_type, scanner.severity) == (SubjectType.SCANNER, Severity.WARNING)
    assert [o.subject for o in rule.outages()] == ["cr1", "scan-1"]
    # The next outage of the same source is a new alert with a new id.
    rule.observe(gap("cr1", 0, 950_000, end_ms=950_000))
    rule.observe(gap("cr1", 1_000_000, 1_001_000))
    [again] = rule.tick(at(1_300_000))
    assert again.alert_id != cold.alert_id


def test_the_delay_runs_on_the_monotonic_clock_not_on_a_stepped_wall_clock() -> None:
    rule = OfflineSources(PARAMS)
    rule.observe(gap("cr1", 0, 1_000))
    # NTP steps the wall clock forward by an hour 10 s later: no alert from that.
    stepped = At(T0 + 3_600_000 + 10_000, M0 + 10_000)
    assert rule.tick(stepped) == []
    assert rule.due_in_ms(stepped) == 290_000


def test_disabled_alerts_raise_nothing_but_still_track_the_outage() -> None:
    rule = OfflineSources(OfflineParams(default=OfflinePolicy(0, Severity.CRITICAL), enabled=False))
    assert rule.observe(gap("cr1", 0, 1_000)) == []
    assert rule.due_in_ms(at(2_000)) is None and len(rule.outages()) == 1


def test_back_ends_an_outage_without_a_closed_gap_and_a_reloaded_rule_keeps_the_alert() -> None:
    rule = OfflineSources(PARAMS)
    rule.observe(gap("cr1", 0, 1_000))
    [raised] = rule.tick(at(300_000))
    reloaded = OfflineSources(PARAMS, rule.snapshot())
    assert reloaded.tick(at(400_000)) == []
    [cleared] = reloaded.back(SubjectType.SENSOR, "cr1", at(500_000), "answered again")
    assert cleared.alert_id == raised.alert_id and cleared.action is AlertAction.CLEARED
    assert reloaded.back(SubjectType.SENSOR, "cr1", at(500_000), "answered again") == []


def test_an_outage_starting_at_the_last_raised_ones_mark_gets_its_own_id_also_after_a_reload() -> None:
    """Hypothesis found it: open, close, open at one millisecond gave the second outage the first's id."""
    rule = OfflineSources(OfflineParams(default=OfflinePolicy(0, Severity.WARNING)))
    ids = []
    for _ in range(2):
        [raised] = rule.observe(gap("cr1", 0, 0))
        [cleared] = rule.observe(gap("cr1", 0, 0, end_ms=0))
        assert cleared.alert_id == raised.alert_id
        ids.append(raised.alert_id)
        rule = OfflineSources(rule.params, rule.snapshot())  # and a pushed configuration between
    [third] = rule.observe(gap("cr1", 0, 0))
    ids.append(third.alert_id)
    assert len(set(ids)) == 3, ids
    # Deterministic: the same gaps give the same ids in a fresh rule.
    again = OfflineSources(rule.params)
    [first] = again.observe(gap("cr1", 0, 0))
    [first_cleared] = again.observe(gap("cr1", 0, 0, end_ms=0))
    assert first.alert_id == first_cleared.alert_id == ids[0]
    # A later outage of the source is numbered afresh: its id is the plain hash of its own start.
    [later] = again.observe(gap("cr1", 5_000, 5_000))
    assert later.alert_id not in ids and later.alert_id.startswith("cr1.source.offline.")


def _site(**offline: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "gateway": {"id": "gw-1", "site": "s-1", "data_dir": str(Path("/tmp/coldgate-offline-test"))},
        "modbus_lines": [{"id": "bus", "transport": "tcp", "host": "127.0.0.1", "port": 5020}],
        "temperature_classes": [
            {"name": "2-8C", "low": 2.0, "high": 8.0},
            {"name": "frozen", "low": -25.0, "high": -15.0},
            {"name": "15-25C", "low": 15.0, "high": 25.0},
        ],
        "zones": [
            {"id": "cold", "temperature_class": "2-8C"},
            {"id": "freezer", "temperature_class": "frozen"},
            {"id": "ambient", "temperature_class": "15-25C"},
        ],
        "sensors": [
            {"source": "modbus", "id": f"s{i}", "line": "bus", "unit": i, "profile": "xy-md02", "zone": z}
            for i, z in enumerate(("cold", "freezer", "ambient"), start=1)
        ]
        + [{"source": "modbus", "id": "s4", "line": "bus", "unit": 4, "profile": "xy-md02"}],
    }
    if offline:
        doc["offline_alerts"] = offline
    return doc


def test_policies_per_location_class_from_the_config() -> None:
    params = offline_params_from_config(gateway_config_from_document(_site(), "gateway.toml"))
    policy = params.policy
    assert policy(SubjectType.SENSOR, "s1") == OfflinePolicy(300_000, Severity.CRITICAL)  # 2-8 °C
    assert policy(SubjectType.SENSOR, "s2") == OfflinePolicy(300_000, Severity.CRITICAL)  # frozen
    assert policy(SubjectType.SENSOR, "s3") == OfflinePolicy(900_000, Severity.WARNING)  # ambient
    assert policy(SubjectType.SENSOR, "s4") == OfflinePolicy(900_000, Severity.WARNING)  # no zone
    assert policy(SubjectType.READER, "door-1") == OfflinePolicy(900_000, Severity.WARNING)
    custom = _site(
        after_s=600,
        severity="info",
        cold_after_s=60,
        cold_severity="warning",
        zones=[{"zone": "freezer", "after_s": 30, "severity": "critical"}],
    )
    params = offline_params_from_config(gateway_config_from_document(custom, "gateway.toml"))
    assert params.policy(SubjectType.SENSOR, "s1") == OfflinePolicy(60_000, Severity.WARNING)
    assert params.policy(SubjectType.SENSOR, "s2") == OfflinePolicy(30_000, Severity.CRITICAL)
    assert params.policy(SubjectType.SENSOR, "s3") == OfflinePolicy(600_000, Severity.INFO)
    assert params.policy(SubjectType.SCANNER, "x") == OfflinePolicy(600_000, Severity.INFO)


def test_offline_alerts_config_errors_name_the_key() -> None:
    import pytest

    from coldgate.configfile import ConfigError

    with pytest.raises(ConfigError, match=r"offline_alerts\.zones\[1\]\.zone: zone \"cold\" already"):
        gateway_config_from_document(
            _site(
                zones=[
                    {"zone": "cold", "after_s": 30, "severity": "critical"},
                    {"zone": "cold", "after_s": 60, "severity": "warning"},
                ]
            ),
            "gateway.toml",
        )
    with pytest.raises(ConfigError, match=r"offline_alerts\.cold_severity"):
        gateway_config_from_document(_site(cold_severity="loud"), "gateway.toml")
    with pytest.raises(ConfigError, match=r"offline_alerts\.after_s"):
        gateway_config_from_document(_site(after_s=-1), "gateway.toml")


# ---------------------------------------------------------------- properties

SOURCES = [("cr1", SubjectType.SENSOR), ("door-1", SubjectType.READER), ("scan-1", SubjectType.SCANNER)]

steps = st.lists(
    st.tuples(
        st.sampled_from(["open", "close", "tick", "resend"]),
        st.integers(min_value=0, max_value=len(SOURCES) - 1),
        st.integers(min_value=0, max_value=400_000),  # ms to advance before the step
        st.integers(min_value=0, max_value=200_000),  # how late the gap was opened after its start
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, cold_after=st.integers(min_value=0, max_value=600_000))
def test_never_two_alerts_for_one_outage_and_every_raise_is_cleared_when_the_gap_closes(
    steps: list[tuple[str, int, int, int]], cold_after: int
) -> None:
    params = OfflineParams(
        default=OfflinePolicy(after_ms=250_000, severity=Severity.WARNING),
        per_source={"sensor:cr1": OfflinePolicy(after_ms=cold_after, severity=Severity.CRITICAL)},
    )
    rule = OfflineSources(params)
    now = 0
    open_since: dict[str, int] = {}  # what the sources say: subject -> gap start
    raised: dict[str, str] = {}  # subject -> open alert id
    seen_ids: set[str] = set()
    alerts: list[Alert] = []

    def check(produced: list[Alert], closing: str | None = None) -> None:
        for alert in produced:
            assert alert.rule == RULE
            if alert.action is AlertAction.RAISED:
                assert alert.subject not in raised, "two alerts for one outage"
                assert alert.alert_id not in seen_ids, "an alert id raised twice"
                assert alert.subject in open_since, "an alert for a source that is online"
                policy = params.policy(alert.subject_type, alert.subject)
                assert now - open_since[alert.subject] >= policy.after_ms, "raised before its delay"
                raised[alert.subject] = alert.alert_id
                seen_ids.add(alert.alert_id)
            else:
                assert alert.action is AlertAction.CLEARED
                assert raised.pop(alert.subject) == alert.alert_id
                assert alert.subject == closing
        alerts.extend(produced)

    for action, index, advance, late in steps:
        now += advance
        subject, kind = SOURCES[index]
        if action == "open" and subject not in open_since:
            start = max(0, now - late)
            open_since[subject] = start
            check(rule.observe(gap(subject, start, now, subject_type=kind)))
        elif action == "resend" and subject in open_since:
            check(rule.observe(gap(subject, open_since[subject], now, subject_type=kind)))
        elif action == "close" and subject in open_since:
            start = open_since.pop(subject)
            check(rule.observe(gap(subject, start, now, end_ms=now, subject_type=kind)), closing=subject)
            assert subject not in raised, "the alert outlived its gap"
        else:
            check(rule.tick(at(now)))
        # Every outage past its delay has its alert once the rule was asked.
        check(rule.tick(at(now)))
        for subject_, start in open_since.items():
            kind_ = dict(SOURCES)[subject_]
            if now - start >= params.policy(kind_, subject_).after_ms:
                assert subject_ in raised
        due = rule.due_in_ms(at(now))
        waiting = [s for s in open_since if s not in raised]
        assert (due is None) == (not waiting)

    # The sources come back: nothing is left open, on the rule's side or the alarm's.
    for subject, start in list(open_since.items()):
        now += 1_000
        check(
            rule.observe(gap(subject, start, now, end_ms=now, subject_type=dict(SOURCES)[subject])), subject
        )
        del open_since[subject]
    assert raised == {} and rule.outages() == []
    by_id: dict[str, list[AlertAction]] = {}
    for alert in alerts:
        by_id.setdefault(alert.alert_id, []).append(alert.action)
    assert all(actions == [AlertAction.RAISED, AlertAction.CLEARED] for actions in by_id.values())
