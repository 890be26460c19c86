"""The status the heartbeat carries: built from the outbox, the clock and the app's parts; a
broken status provider degrades to the uplink's own status instead of silencing the heartbeat."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from coldgate.contract.codec import validate
from coldgate.contract.uplink import AlarmState, DocumentVersions, SensorState, State, Status
from coldgate.gateway.status import AppStatus, StatusErrors, build_status, will_status
from tests.rig.clocks import SteppedClock, stamp
from tests.rig.fake_cloud import FakeCloud
from tests.rig.items import BOOT, T0, reading
from tests.rig.mosquitto import MosquittoBroker
from tests.rig.uplink import CLOCK, GATEWAY, SITE, make_uplink, running, uplink_outbox


class Figures:
    committed_seq = 1047
    acked_seq = 1040

    def depth(self) -> int:
        return 7

    def oldest_unacked_ts(self) -> int | None:
        return T0 - 6_000


def test_build_status_fills_outbox_clock_and_the_apps_parts():
    errors = StatusErrors()
    errors.add("config_rejected", "config version 11: $.sensors[2].unit: unknown unit id 300", T0 - 1)
    status = build_status(
        site=SITE,
        gateway=GATEWAY,
        clock=SteppedClock([stamp(T0, 2_722_000, synced=False)]),
        outbox=Figures(),
        heartbeat_s=60,
        app=AppStatus(
            sensors=[SensorState(id="cr1-t01", online=True, last_poll=T0 - 10_000)],
            alarm=AlarmState(active=True, sounding=True, alerts=["gw01-a-000311"]),
        ),
        versions=DocumentVersions(config=12),
        errors=errors.recent(),
    )
    assert validate(status) == status
    assert (status.boot, status.ts, status.state) == (BOOT, T0, State.ONLINE)
    assert (status.outbox_depth, status.oldest_unacked, status.last_seq, status.last_acked_seq) == (
        7,
        T0 - 6_000,
        1047,
        1040,
    )
    assert status.clock is not None and (status.clock.synced, status.clock.mono) == (False, 2_722_000)
    assert status.alarm is not None and status.alarm.sounding
    assert [e.kind for e in status.errors] == ["config_rejected"]


def test_a_fresh_outbox_reports_no_sequence_numbers_rather_than_zero():
    class Empty(Figures):
        committed_seq = 0
        acked_seq = 0

    status = build_status(site=SITE, gateway=GATEWAY, clock=SteppedClock([stamp(T0, 0)]), outbox=Empty())
    assert (status.last_seq, status.last_acked_seq) == (None, None)
    validate(status)


def test_status_errors_keep_the_newest_and_refresh_repeats():
    errors = StatusErrors(keep=3)
    for i in range(5):
        errors.add("ack_ahead", f"ack {i}", T0 + i)
    errors.add("ack_ahead", "ack 3", T0 + 9)
    assert [(e.message, e.ts) for e in errors.recent()] == [
        ("ack 2", T0 + 2),
        ("ack 4", T0 + 4),
        ("ack 3", T0 + 9),
    ]
    long = errors.add("x", "y" * 5000, T0)
    assert len(long.message) == 1000


def test_the_will_holds_only_the_required_fields():
    will = will_status(SITE, GATEWAY, SteppedClock([stamp(T0, 0)]))
    assert will == Status(v=1, site=SITE, gateway=GATEWAY, boot=BOOT, ts=T0, state=State.OFFLINE, will=True)


@pytest.mark.timeout(60)
def test_a_failing_status_provider_degrades_to_the_uplinks_own_status(
    mosquitto_own: MosquittoBroker, tmp_path: Path
):
    def broken() -> Status:
        raise KeyError("sensor cr9-t01")

    async def scenario() -> None:
        with FakeCloud(mosquitto_own.host, mosquitto_own.port) as cloud, uplink_outbox(tmp_path) as outbox:
            outbox.put(reading(stamp=CLOCK.stamp()))
            async with running(make_uplink(outbox, mosquitto_own, status_provider=broken)):
                await cloud.until(lambda: bool(cloud.snapshot()["statuses"]), what="a birth status")
                await cloud.until(lambda: outbox.acked_seq == 1)
            birth = cloud.snapshot()["statuses"][0]
            assert birth.state == State.ONLINE and birth.outbox_depth is not None
            assert [e.kind for e in birth.errors] == ["status_invalid"]
            assert "cr9-t01" in birth.errors[0].message

    asyncio.run(scenario())


@pytest.mark.parametrize(("username", "reported"), [("gw01", False), (None, False), ("dock-pi", True)])
def test_a_login_that_is_not_the_gateway_id_is_in_every_status(
    tmp_path: Path, username: str | None, reported: bool
) -> None:
    # Not refused at start (the local alarm must run), but the broker will refuse its publishes.
    assert GATEWAY == "gw01"
    with uplink_outbox(tmp_path) as outbox:
        uplink = make_uplink(outbox, "mqtt://127.0.0.1:1", username=username)
        kinds = [error.kind for error in uplink.default_status().errors]
    assert ("login_not_gateway_id" in kinds) is reported
    if reported:
        assert '"dock-pi" is not the gateway id "gw01"' in uplink.errors.recent()[0].message
