"""Ten loggers on one RS-485 line (RTU on a pty), one of them silent: the other nine keep time.

The silent unit costs a full timeout per attempt.  Its retries and, once it is
offline, its probes must go into the idle part of the interval, so every other
unit is read once per interval, on its slot, the whole time.
"""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest

from coldgate.contract.items import Gap, GapCause, Item, Quality, Reading
from coldgate.gateway.clock import SystemClock
from coldgate.gateway.sensors.config import ModbusSensor, RtuLine, builtin_profiles
from coldgate.gateway.sensors.modbus_poller import ModbusLinePoller
from coldgate.simulator.background import FarmThread
from coldgate.simulator.config import FarmConfig, LoggerSpec

pytestmark = pytest.mark.timeout(40)

SILENT = 4
INTERVAL = 1.0
#: The silent unit's timeout: what each of its attempts costs the line.
SILENT_TIMEOUT_S = 0.2
#: How far a healthy unit's poll may sit off its slot: scheduling jitter on a loaded 2-vCPU
#: machine (the farm answers from a thread of this process).  Less than one silent attempt
#: (0.2 s), which is what a retry or probe put into the regular slots would push polls by.
TOLERANCE = 0.15
#: Healthy units answer; a slow answer on a loaded machine must not count as a failure.
ANSWER_TIMEOUT_S = 1.0
RUN_S = 6.5


def test_one_silent_unit_delays_none_of_the_other_nine():
    loggers = tuple(
        LoggerSpec(
            unit,
            "xy-md02" if unit % 2 else "rs485-th-holding",
            "dropout" if unit == SILENT else "steady",
            seed=unit,
            params={"start_s": 0.0, "duration_s": 1e9} if unit == SILENT else {},
        )
        for unit in range(1, 11)
    )
    profiles = builtin_profiles()
    with FarmThread(FarmConfig(loggers), rtu=1) as farm:
        line = RtuLine(id="bus-a", port=farm.rtu[0].device, baudrate=19200, timeout_s=SILENT_TIMEOUT_S)
        sensors = [
            (
                ModbusSensor(
                    id=f"t{spec.unit}",
                    line="bus-a",
                    unit=spec.unit,
                    profile=spec.register_map,
                    interval_s=INTERVAL,
                    retries=2,
                    offline_after=3,
                    timeout_s=None if spec.unit == SILENT else ANSWER_TIMEOUT_S,
                ),
                profiles[spec.register_map],
            )
            for spec in loggers
        ]
        poller = ModbusLinePoller(line, sensors, SystemClock())
        items: list[Item] = []

        async def run() -> None:
            task = asyncio.create_task(poller.run(items.append))
            await asyncio.sleep(RUN_S)
            assert not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(run())
        served_to_silent = len(farm.farm.served(SILENT))

    statuses = {s.sensor: s for s in poller.status()}
    # The grid itself, free of timing noise: all ten units' slots (the silent one's backed-off
    # probe included) are one phase, whole intervals apart; any per-unit drift breaks this.
    first_due = poller.units[0].slots.due
    for unit in poller.units:
        periods = (unit.slots.due - first_due) / INTERVAL
        assert math.isclose(periods, round(periods), abs_tol=1e-6), (unit.sensor.id, periods)
    for unit in range(1, 11):
        if unit == SILENT:
            continue
        sensor = f"t{unit}"
        temperature = [
            r for r in items if isinstance(r, Reading) and r.sensor == sensor and r.quantity == "temperature"
        ]
        assert all(r.quality is Quality.OK for r in temperature), sensor
        assert len(temperature) >= int(RUN_S / INTERVAL), sensor
        spacing = [(b.mono - a.mono) / 1000 for a, b in itertools.pairwise(temperature)]
        assert max(spacing) <= INTERVAL + TOLERANCE, (sensor, spacing)
        # After the first round (where nobody yet knew unit 4 was silent) polls sit on their
        # slots: poll k at a fixed phase + k * INTERVAL.  Checked against that grid rather than
        # poll to poll, so a drift adding up over the run fails like one poll pushed aside.
        offsets = [r.mono / 1000 - k * INTERVAL for k, r in enumerate(temperature)][1:]
        assert max(offsets) - min(offsets) <= TOLERANCE, (sensor, spacing)
        status = statuses[sensor]
        assert status.online and status.missed == 0 and status.late == 0, status
        assert status.served == status.scheduled >= int(RUN_S / INTERVAL)

    silent = [r for r in items if isinstance(r, Reading) and r.sensor == f"t{SILENT}"]
    assert silent and all(r.quality is Quality.ERROR and r.value is None for r in silent)
    assert silent[0].reason == f"timeout after {SILENT_TIMEOUT_S:g} s x3"
    (gap,) = [i for i in items if isinstance(i, Gap)]
    assert (gap.subject, gap.end, gap.cause) == (f"t{SILENT}", None, GapCause.SENSOR_OFFLINE)
    assert gap.start == silent[0].ts
    assert not statuses[f"t{SILENT}"].online
    # 3 polls of 3 attempts, then single-attempt probes every 2, 4, 8 slots: the bus is spared.
    assert 9 < served_to_silent <= 13


#: A long gap and interval, so that "waited the gap" and "waited an extra gap" stay apart
#: by more than a loaded machine's jitter: 4 requests take ~1 s, the line is quiet ~1 s.
GAP_S = 0.25
GAP_INTERVAL = 2.0
#: How much later than its earliest possible moment a request may reach the farm.
SLACK = 0.15


def test_requests_on_a_bus_keep_the_inter_frame_gap():
    """All units share one slot, so requests go back to back: each waits the line's silence first."""
    loggers = tuple(LoggerSpec(unit, "xy-md02", seed=unit) for unit in range(1, 5))
    profiles = builtin_profiles()
    with FarmThread(FarmConfig(loggers), rtu=1) as farm:
        line = RtuLine(id="slow", port=farm.rtu[0].device, baudrate=1200, inter_frame_gap_s=GAP_S)
        sensors = [
            (
                ModbusSensor(
                    id=f"t{s.unit}", line="slow", unit=s.unit, profile="xy-md02", interval_s=GAP_INTERVAL
                ),
                profiles["xy-md02"],
            )
            for s in loggers
        ]
        poller = ModbusLinePoller(line, sensors, SystemClock())

        async def run() -> float:
            started = farm.farm.clock.now()  # scenario seconds at speed 1: real seconds
            task = asyncio.create_task(poller.run(lambda _item: None))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10.0
            while len(farm.farm.served()) < 8 and loop.time() < deadline:
                await asyncio.sleep(0.02)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return started

        started = asyncio.run(run())
        served = sorted(r.scenario_s - started for r in farm.farm.served())
    assert len(served) == 8, "two rounds of four, and the third not before its slot"
    first_round, second_round = served[:4], served[4:]
    for burst in (first_round, second_round):
        gaps = [b - a for a, b in itertools.pairwise(burst)]
        # Each request waited the gap after the previous answer (a hard lower bound), and
        # only that: one gap too many, or units spread over the interval, is >= 0.5 s.
        assert all(GAP_S <= g < GAP_S + SLACK for g in gaps), gaps
    # Round 1 waited one gap after opening the port; round 2 starts on its slot, the line
    # being quiet for a second already (waiting a gap there would put it at slot + 0.25 s).
    assert GAP_S <= first_round[0] < GAP_S + SLACK, first_round
    assert GAP_INTERVAL <= second_round[0] < GAP_INTERVAL + SLACK, second_round
