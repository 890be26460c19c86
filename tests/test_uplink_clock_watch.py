"""Clock evidence: a step of the wall clock is a ``clock_jump`` event with its size, and the moment
NTP synchronises is a ``clock_synced`` event, the anchor the cloud corrects a boot's items from."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from coldgate.contract.codec import validate
from coldgate.contract.items import Event, EventType, Item
from coldgate.gateway.clock import Stamp
from coldgate.gateway.uplink.clock_watch import ClockWatch, clock_changes
from tests.rig.clocks import SteppedClock, stamp
from tests.rig.items import T0

# (previous, current, expected [(event, jump_ms or None)]) -- 5 s between looks unless stated
CASES = {
    "steady": (stamp(T0, 1000), stamp(T0 + 5000, 6000), []),
    "ntp slew, far below the threshold": (stamp(T0, 1000), stamp(T0 + 5003, 6000), []),
    "just below the threshold": (stamp(T0, 1000), stamp(T0 + 6999, 6000), []),
    "at the threshold": (stamp(T0, 1000), stamp(T0 + 7000, 6000), [(EventType.CLOCK_JUMP, 2000)]),
    "forward by a year at NTP sync": (
        stamp(T0 - 365 * 86_400_000, 1000, synced=False),
        stamp(T0 + 5000, 6000),
        [(EventType.CLOCK_JUMP, 365 * 86_400_000), (EventType.CLOCK_SYNCED, None)],
    ),
    "back by an hour (date -s)": (
        stamp(T0, 1000),
        stamp(T0 + 5000 - 3_600_000, 6000),
        [(EventType.CLOCK_JUMP, -3_600_000)],
    ),
    "synchronised by slewing, no step": (
        stamp(T0, 1000, synced=False),
        stamp(T0 + 5000, 6000, synced=True),
        [(EventType.CLOCK_SYNCED, None)],
    ),
    "losing sync is not an event (items say synced: false)": (
        stamp(T0, 1000),
        stamp(T0 + 5000, 6000, synced=False),
        [],
    ),
    "another boot cannot be compared": (stamp(T0, 1000), stamp(T0, 5, boot="0" * 32), []),
}


@pytest.mark.parametrize(("previous", "current", "expected"), list(CASES.values()), ids=list(CASES))
def test_clock_changes(previous: Stamp, current: Stamp, expected: list[tuple[EventType, int | None]]):
    changes = clock_changes(previous, current)
    assert [(c.event, c.data.get("jump_ms")) for c in changes] == expected


def test_jump_detail_says_how_far_for_people():
    (change,) = clock_changes(stamp(T0, 0), stamp(T0 - 3_723_500, 0))
    assert change.detail == "wall clock jumped back by 1 h 2 min 3.500 s"


def test_watch_puts_valid_events_stamped_after_the_change():
    put: list[Item] = []
    clock = SteppedClock(
        [stamp(T0 - 86_400_000, 1000, synced=False), stamp(T0, 6000), stamp(T0 + 5000, 11_000)]
    )
    watch = ClockWatch(clock, put.append)
    assert watch.check() == [] and watch.synced is False
    jump, synced = watch.check()
    assert watch.check() == []
    assert put == [jump, synced]
    for event in put:
        assert isinstance(event, Event) and event.seq == 0
        validate(msgspec.structs.replace(event, seq=1))
    assert synced.synced and (synced.ts, synced.mono) == (T0, 6000)  # the anchor
    assert jump.data == {"jump_ms": 86_395_000, "expected_ms": T0 - 86_400_000 + 5000, "synced": True}


def test_watch_runs_until_stopped():
    put: list[Item] = []
    stamps = [stamp(T0 + i * 10, 1000 + i * 10) for i in range(1000)]
    watch = ClockWatch(SteppedClock(stamps), put.append, interval_s=0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watch.run(stop))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 2)

    asyncio.run(scenario())
    assert put == [] and watch.synced is True
