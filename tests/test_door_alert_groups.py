"""One door alert per pallet: item alerts of one lot at one door folded into a group alert."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coldgate.contract.items import Alert, AlertAction, Severity
from coldgate.gateway.alarm import AlarmState, OperatorAction, on_alert, silence
from coldgate.gateway.rules.dock_alert_groups import DoorAlertGroups
from coldgate.gateway.rules.dock_checks import RECALLED, DoorChecks, Observation
from tests.rig.dock import EVENTS, RECALLS, at, check_valid, checks, obs, recall, recalls

HOLD_S = 600


def pallet(
    judge: DoorChecks, groups: DoorAlertGroups, start_s: float, *, cases: int = 200, **where: str
) -> list[Alert]:
    """``cases`` cases of lot LOT42 read one every 20 ms (a pallet through a portal)."""
    out: list[Alert] = []
    for n in range(cases):
        out += groups.fold(
            judge.observe(obs(key=f"epc{start_s:g}-{n}", serial=str(n), **where), at(start_s + n * 0.02))
        )
    return out


def recalled_lot() -> DoorChecks:
    return checks(recalls(recall(lot="LOT42", reference="FSN-2026-007")), hold_s=HOLD_S)


def test_a_recalled_pallet_is_one_alert_with_its_count() -> None:
    door, groups = recalled_lot(), DoorAlertGroups()
    raised = pallet(door, groups, 0, direction="out")
    assert [(a.action, a.rule, a.severity) for a in raised] == [
        (AlertAction.RAISED, RECALLED, Severity.CRITICAL)
    ]
    assert groups.folded == 199 and groups.open_alerts() == [(raised[0].alert_id, RECALLED, "D1", 200)]
    assert groups.fold(door.tick(at(HOLD_S - 1))) == []
    (cleared,) = groups.fold(door.tick(at(HOLD_S + 5)))
    check_valid(raised[0])
    check_valid(cleared)
    assert (cleared.action, cleared.alert_id, cleared.severity) == (
        AlertAction.CLEARED,
        raised[0].alert_id,
        Severity.CRITICAL,
    )
    assert cleared.message.endswith("(200 items at door D1)") and "FSN-2026-007" in cleared.message
    details = cleared.evidence.details
    assert (
        details["items"] == 200 and details["keys"] == "epc0-0, epc0-1, epc0-2, epc0-3, epc0-4 and 195 more"
    )
    assert cleared.evidence.start == raised[0].evidence.start and cleared.evidence.duration_s == HOLD_S + 5
    assert groups.open_alerts() == []


def test_the_same_lot_leaving_after_it_came_in_escalates_the_group_once() -> None:
    door, groups = recalled_lot(), DoorAlertGroups()
    inbound = pallet(door, groups, 0, cases=10, direction="in")
    assert [(a.action, a.severity) for a in inbound] == [(AlertAction.RAISED, Severity.WARNING)]
    outbound = pallet(door, groups, 5, cases=10, direction="out")
    assert [(a.action, a.severity) for a in outbound] == [(AlertAction.UPDATED, Severity.CRITICAL)]
    assert outbound[0].alert_id == inbound[0].alert_id
    assert outbound[0].message.endswith("(11 items at door D1)")
    alarm = AlarmState()
    for alert in inbound + outbound:
        alarm = on_alert(alarm, alert)
    assert alarm.sounding, "the escalation drives the stack light"


def test_the_next_pallet_is_a_new_alert_and_re_arms_a_silenced_light() -> None:
    door, groups = recalled_lot(), DoorAlertGroups(window_ms=30_000)
    first = pallet(door, groups, 0, cases=50, direction="out")
    alarm = on_alert(AlarmState(), first[0])
    alarm = silence(alarm, OperatorAction(by="dock lead", reason="pallet held back", via="cli", at_ms=0))
    assert not alarm.sounding
    second = pallet(door, groups, 300, cases=50, direction="out")  # five minutes later
    assert [a.action for a in second] == [AlertAction.RAISED] and second[0].alert_id != first[0].alert_id
    assert on_alert(alarm, second[0]).sounding
    cleared = groups.fold(door.tick(at(300 + HOLD_S + 5)))
    assert sorted(a.evidence.details["items"] for a in cleared) == [50, 50]


def test_a_steady_flow_of_one_lot_still_re_arms_every_few_windows() -> None:
    """A conveyor of recalled cases, one every 10 s for 12 min: never a 30 s gap, yet new alerts."""
    door, groups = recalled_lot(), DoorAlertGroups(window_ms=30_000)
    raised: list[Alert] = []
    for n in range(72):
        steps = groups.fold(door.observe(obs(key=f"c{n}", serial=str(n), direction="out"), at(n * 10)))
        raised += [a for a in steps if a.action is AlertAction.RAISED]
    assert [a.mono // 1000 for a in raised] == [0, 310, 620], "a new alert every 5 minutes (10 windows)"


def test_lots_doors_and_rules_are_separate_groups() -> None:
    door = checks(recalls(recall(lot="LOT42"), recall(lot="LOT17")), hold_s=HOLD_S)
    groups = DoorAlertGroups()
    got = pallet(door, groups, 0, cases=3, direction="out")
    got += pallet(door, groups, 1, cases=3, direction="out", lot="LOT17")
    got += pallet(door, groups, 2, cases=3, direction="out", door="D2")
    assert [a.action for a in got] == [AlertAction.RAISED] * 3
    assert len({a.alert_id for a in got}) == 3


def test_a_lone_item_looks_exactly_as_without_grouping() -> None:
    plain, grouped, groups = recalled_lot(), recalled_lot(), DoorAlertGroups()
    for t, observation in (
        (0, obs(direction="in")),
        (10, obs(direction="out")),
        (20, obs(direction="out", door="D2")),
    ):
        assert groups.fold(grouped.observe(observation, at(t))) == plain.observe(observation, at(t))
    assert groups.fold(grouped.tick(at(HOLD_S + 30))) == plain.tick(at(HOLD_S + 30))


def test_window_zero_keeps_one_alert_per_item() -> None:
    door, groups = recalled_lot(), DoorAlertGroups(window_ms=0)
    assert len(pallet(door, groups, 0, cases=20, direction="out")) == 20


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.integers(1, 20), st.sampled_from([0, 1_000, 30_000, 10**9]))
def test_properties_every_group_raised_once_cleared_once_and_counts_add_up(
    events: list[tuple[int, Observation | str]], cap: int, window_ms: int
) -> None:
    hold_s = 120
    door = checks(RECALLS, tor_budget_s=200, hold_s=hold_s, max_tracked=cap)
    groups = DoorAlertGroups(window_ms=window_ms)
    t = 0.0
    items: list[Alert] = []
    got: list[Alert] = []

    def run(steps: list[Alert]) -> None:
        items.extend(steps)
        got.extend(groups.fold(steps))

    for dt, event in events:
        t += dt
        if event == "tick":
            run(door.tick(at(t)))
        elif event == "update":
            door.update(door.knowledge)
        else:
            assert isinstance(event, Observation)
            run(door.observe(event, at(t)))
    run(door.tick(at(t + 200)))
    run(door.tick(at(t + 200 + hold_s)))
    assert groups.open_alerts() == []

    state: dict[str, Severity] = {}
    for alert in got:
        check_valid(alert)
        if alert.action is AlertAction.RAISED:
            assert alert.alert_id not in state, "a group is raised once"
            state[alert.alert_id] = alert.severity
        else:
            assert alert.alert_id in state, "updated or cleared after its raise"
            if alert.action is AlertAction.UPDATED:
                assert alert.severity.value != state[alert.alert_id].value, "an update changes the severity"
                state[alert.alert_id] = alert.severity
            else:
                del state[alert.alert_id]
    assert state == {}, "every group cleared"
    item_raises = sum(1 for a in items if a.action is AlertAction.RAISED)
    group_raises = [a for a in got if a.action is AlertAction.RAISED]
    clears = [a for a in got if a.action is AlertAction.CLEARED]
    assert sum(int(a.evidence.details.get("items", 1)) for a in clears) == item_raises
    assert len(group_raises) + groups.folded == item_raises
    assert len(got) <= len(items)
    if window_ms == 0:
        assert got == items
