"""The escalation policy and the acknowledge links, pure (``cloud/alerts/notify_policy.py``,
``notify_links.py``): what is due when, for whom, and which links are taken; properties by hypothesis."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.cloud.alerts.notify_links import LinkRefusal, ack_link, check_link, make_token
from coldgate.cloud.alerts.notify_policy import (
    CaseFacts,
    Person,
    compose,
    due_rounds,
    notice_id,
    notices,
    policy_for,
    short_of_people,
)
from coldgate.cloud.config import (
    NotifyConfig,
    NotifyLevel,
    NotifyPolicy,
    SitePolicies,
    cloud_config_from_document,
)
from coldgate.configfile import ConfigError

OPENED = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
MIN = datetime.timedelta(minutes=1)
SECRET = b"k" * 32
CRITICAL = NotifyConfig().policy.critical
QA = [Person("u-qa1", "Q One", "q1@example.org"), Person("u-qa2", "Q Two", "q2@example.org")]
MGR = [Person("u-mgr", "M Gr", "m@example.org"), Person("u-adm", "A Dm", "a@example.org")]


def _due(minutes: float, state: str = "open", webhooks: int = 0) -> list[tuple[int, int, str, str]]:
    now = OPENED + datetime.timedelta(minutes=minutes)
    found = notices("case-1", "critical", state, OPENED, now, CRITICAL, [QA, MGR], webhooks)
    return sorted((n.level, n.round, n.channel, n.recipient) for n in found)


def test_defaults_meet_gsp_for_critical_and_are_milder_for_warnings() -> None:
    config = NotifyConfig()
    critical, warning = config.policy.critical, config.policy.warning
    levels = [(lv.after_min, lv.roles) for lv in critical.levels]
    assert levels == [(0, ["qa", "qa_manager"]), (30, ["qa_manager", "admin"])]
    assert critical.reminder_every_min == 15 and set(critical.channels) == {"email", "webhook"}
    assert warning.reminder_every_min > critical.reminder_every_min
    assert warning.levels[1].after_min > critical.levels[1].after_min
    assert policy_for(config, "site1", "info") is None


def test_first_notice_reminders_and_the_second_level_after_thirty_minutes() -> None:
    assert _due(0) == [(1, 0, "email", "u-qa1"), (1, 0, "email", "u-qa2")]
    assert _due(14.9) == _due(0)  # nothing new before the first reminder
    assert _due(15) == [(1, 1, "email", "u-qa1"), (1, 1, "email", "u-qa2")]
    assert _due(30) == [(1, 2, "email", "u-qa1"), (1, 2, "email", "u-qa2"),
                        (2, 0, "email", "u-adm"), (2, 0, "email", "u-mgr")]  # fmt: skip
    # After an outage only each level's newest round is due, not every missed reminder.
    assert {(lv, rnd) for lv, rnd, *_ in _due(200)} == {(1, 13), (2, 11)}


def test_nothing_is_due_once_the_case_leaves_open() -> None:
    for state in ("acknowledged", "investigating", "pending_disposition", "closed", "cancelled"):
        assert _due(45, state, webhooks=2) == []


def test_webhooks_are_told_once_per_level_and_round_not_per_person() -> None:
    hooks = [x for x in _due(0, webhooks=2) if x[2] == "webhook"]
    assert hooks == [(1, 0, "webhook", "webhook-0"), (1, 0, "webhook", "webhook-1")]


def test_people_without_an_address_are_skipped_and_counted_short() -> None:
    nobody = Person("u-x", "No Mail", None)
    found = notices("c", "critical", "open", OPENED, OPENED, CRITICAL, [[*QA, nobody, QA[0]], []], 0)
    assert sorted(n.recipient for n in found) == ["u-qa1", "u-qa2"]  # once each, none without mail
    assert short_of_people([[*QA, nobody], []], 3) == 2
    assert short_of_people([QA, MGR], 3) is None


def test_a_site_has_its_own_policies() -> None:
    own = SitePolicies(critical=NotifyPolicy(levels=[NotifyLevel(roles=["admin"])]))
    config = NotifyConfig(sites={"site2": own})
    assert policy_for(config, "site2", "critical") == own.critical
    assert policy_for(config, "site1", "critical") == config.policy.critical
    assert policy_for(config, None, "warning") == config.policy.warning


def test_the_message_names_case_site_subject_severity_what_and_link() -> None:
    (notice,) = [n for n in notices("case-7", "critical", "open", OPENED, OPENED + 31 * MIN, CRITICAL,
                                    [QA, MGR], 0) if n.recipient == "u-mgr"]  # fmt: skip
    what = "8.4 C above 8.0 C"
    facts = CaseFacts("case-7", "site1", "sensor", "cr1-t01", "critical", what, OPENED, 3, "open")
    subject, body = compose(facts, notice, "http://x/dashboard/cases/case-7?ack=t", 30)
    assert subject == "[Coldgate CRITICAL] site1: 8.4 C above 8.0 C - case case-7"
    for part in ("case-7", "site1", "sensor cr1-t01", "critical", "8.4 C above 8.0 C", "level 2",
                 "within 30 minutes", "http://x/dashboard/cases/case-7?ack=t"):  # fmt: skip
        assert part in body


def test_notice_ids_are_stable_and_distinct() -> None:
    found = notices("case-1", "critical", "open", OPENED, OPENED + 31 * MIN, CRITICAL, [QA, MGR], 1)
    ids = [notice_id(n) for n in found]
    assert len(set(ids)) == len(ids) == 6
    again = notices("case-1", "critical", "open", OPENED, OPENED + 31 * MIN, CRITICAL, [QA, MGR], 1)
    assert [notice_id(n) for n in again] == ids


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=30),
    reminder=st.integers(min_value=0, max_value=60),
    second=st.integers(min_value=1, max_value=240),
    ack_at=st.one_of(st.none(), st.integers(min_value=0, max_value=500)),
)
def test_planning_at_any_times_follows_the_policy(
    steps: list[int], reminder: int, second: int, ack_at: int | None
) -> None:
    """Planned at any sequence of times, queued once by id: every level starts at its time (not before),
    rounds count up without gaps beyond what an interval skipped, and nothing after acknowledgement."""
    policy = NotifyPolicy(
        channels=["email"], reminder_every_min=reminder,
        levels=[NotifyLevel(after_min=0, roles=["qa"]), NotifyLevel(after_min=second, roles=["admin"])],
    )  # fmt: skip
    queued: dict[str, tuple[int, int, datetime.datetime, datetime.datetime]] = {}
    for minute in sorted(steps):
        now = OPENED + minute * MIN
        state = "open" if ack_at is None or minute < ack_at else "acknowledged"
        for n in notices("c", "critical", state, OPENED, now, policy, [QA[:1], MGR[:1]], 0):
            queued.setdefault(notice_id(n), (n.level, n.round, n.due_at, now))
    for level, rnd, due_at, planned in queued.values():
        start = OPENED + (0 if level == 1 else second) * MIN
        assert due_at >= start and due_at <= planned
        assert due_at == start + rnd * reminder * MIN
        assert ack_at is None or planned < OPENED + ack_at * MIN
        if reminder == 0:
            assert rnd == 0
    if ack_at is None or min(steps) < ack_at:
        assert any(level == 1 and rnd >= 0 for level, rnd, *_ in queued.values())
    levels = {level for level, *_ in queued.values()}
    assert (2 in levels) == any(s >= second and (ack_at is None or s < ack_at) for s in steps)


@settings(max_examples=100, deadline=None)
@given(now_min=st.integers(min_value=0, max_value=1000), reminder=st.integers(min_value=1, max_value=90))
def test_due_rounds_are_the_newest_round_of_each_level(now_min: int, reminder: int) -> None:
    policy = NotifyPolicy(reminder_every_min=reminder, levels=CRITICAL.levels)
    now = OPENED + now_min * MIN
    for due in due_rounds(policy, OPENED, now):
        assert due.due_at <= now < due.due_at + reminder * MIN


# --- acknowledge links ---


def test_a_link_names_its_recipient_and_only_for_its_case() -> None:
    expires = OPENED + datetime.timedelta(hours=72)
    token = make_token(SECRET, "case-1", "u-qa1", 2, expires)
    assert check_link(token, "case-1", OPENED, SECRET) == "u-qa1"
    assert ack_link("https://c.example/", "case-1", token) == f"https://c.example/dashboard/cases/case-1?ack={token}"
    assert ack_link("https://c.example", "case-1", None) == "https://c.example/dashboard/cases/case-1"
    refused = check_link(token, "case-2", OPENED, SECRET)
    assert isinstance(refused, LinkRefusal) and refused.kind == "forged"
    assert check_link(token, "case-1", OPENED, b"o" * 32) == LinkRefusal(
        "forged", "the link was not made for this case by this cloud"
    )
    expired = check_link(token, "case-1", expires, SECRET)
    assert isinstance(expired, LinkRefusal) and expired.kind == "expired"


@pytest.mark.parametrize("token", ["", "v1", "v2.u-1.1.99.x", "v1.u 1.1.9.aaaa", "v1.u-1.x.9.a", "a" * 500])
def test_malformed_links_are_refused(token: str) -> None:
    refused = check_link(token, "case-1", OPENED, SECRET)
    assert isinstance(refused, LinkRefusal) and refused.kind == "malformed"


@settings(max_examples=200, deadline=None)
@given(position=st.integers(min_value=0), char=st.sampled_from("ABCxyz019-_."))
def test_any_altered_link_is_refused(position: int, char: str) -> None:
    token = make_token(SECRET, "case-1", "u-qa1", 1, OPENED + datetime.timedelta(hours=1))
    i = position % len(token)
    altered = token[:i] + char + token[i + 1 :]
    if altered != token:
        assert isinstance(check_link(altered, "case-1", OPENED, SECRET), LinkRefusal)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        make_token(b"short", "case-1", "u-1", 1, OPENED)


# --- config ---


@pytest.mark.parametrize(
    ("doc", "key", "why"),
    [
        ({"policy": {"critical": {"levels": []}}}, "notify.policy.critical.levels", "needs a level"),
        ({"policy": {"critical": {"levels": [{"after_min": 5, "roles": ["qa"]}]}}},
         "notify.policy.critical.levels[0].after_min", "told at once"),
        ({"policy": {"warning": {"levels": [{"roles": ["qa"]}, {"after_min": 0, "roles": ["admin"]}]}}},
         "notify.policy.warning.levels[1].after_min", "later than the level before"),
        ({"sites": {"site2": {"critical": {"levels": [{"after_min": 0}]}}}},
         "notify.sites.site2.critical.levels[0]", "tells nobody"),
        ({"policy": {"critical": {"levels": [{"roles": ["boss"]}]}}},
         "notify.policy.critical.levels[0].roles[0]", '"boss"'),
        ({"policy": {"critical": {"channels": ["pager"], "levels": [{"roles": ["qa"]}]}}},
         "notify.policy.critical.channels[0]", '"pager"'),
        ({"retry_first_s": 60, "retry_max_s": 10}, "notify.retry_max_s", "at least retry_first_s"),
        ({"smtp_password_file": "/etc/pw"}, "notify.smtp_password_file", "smtp_login"),
        ({"webhook_urls": ["example.com/hook"]}, "notify.webhook_urls[0]", "not an Apprise URL"),
        ({"mail_from": "nobody"}, "notify.mail_from", "coldgate@example.com"),
    ],
)  # fmt: skip
def test_bad_notify_config_names_the_key_and_why(doc: dict[str, object], key: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        cloud_config_from_document({"notify": doc}, "cloud.toml")
    assert f"{key}:" in str(info.value) and why in str(info.value)
