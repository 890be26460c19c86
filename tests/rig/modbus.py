"""Modbus peers for tests: the simulator's logger farm on a free TCP port or on a pty line.

Fixtures (defined here only; tests/conftest.py registers them for every test):

- ``modbus_farm_config``: the farm the two fixtures below serve.  Override it in a
  test module to serve another farm.
- ``modbus_tcp_farm``: the farm on a free loopback port (``.endpoint.host``/``.port``).
- ``modbus_rtu_farm``: the farm on a fresh pseudo-terminal line with RTU framing
  (``.endpoint.device`` is what ``ModbusSerialClient`` opens).

Both run the farm in a background thread with its own event loop and, on
teardown, check that the port was let go and no descriptor leaked.  The farm
needs pymodbus (the [gateway] extra): it is imported inside the fixtures, which
skip without it, so that conftest.py can register them on any machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from coldgate.simulator.config import FarmConfig, LoggerSpec
from coldgate.simulator.curves import Sample
from tests.rig.ports import wait_port_closed

if TYPE_CHECKING:
    from coldgate.simulator.farm import Endpoint, ModbusFarm

__all__ = [
    "RunningFarm",
    "failed_compressor_farm",
    "modbus_farm_config",
    "modbus_rtu_farm",
    "modbus_tcp_farm",
    "reading_window",
    "rig_farm",
]

LONG = 10 * 24 * 3600.0  # a fault window longer than any test


def failed_compressor_farm() -> FarmConfig:
    """One xy-md02 logger in a 2-8 °C room whose compressor already failed: at speed 60 the
    room crosses 8 °C about 1.5 s of real time after the farm starts."""
    return FarmConfig(
        (LoggerSpec(unit=1, register_map="xy-md02", scenario="compressor_failure"),),
        speed=60,
        start_at_s=2400,
    )


def rig_farm(speed: float = 1.0) -> FarmConfig:
    """Both register maps, three rooms and every wire behaviour at once, from the first poll.

    unit 1 xy-md02 cold room steady      unit 4 rs485-th-holding garbage
    unit 2 rs485-th-holding freezer      unit 5 xy-md02 ambient, stuck
    unit 3 xy-md02 dropout               unit 6 rs485-th-holding compressor failure
    """
    window = {"start_s": 0.0, "duration_s": LONG}
    return FarmConfig(
        (
            LoggerSpec(1, "xy-md02", "steady", seed=1),
            LoggerSpec(2, "rs485-th-holding", "steady", room="freezer", seed=2),
            LoggerSpec(3, "xy-md02", "dropout", seed=3, params=window),
            LoggerSpec(4, "rs485-th-holding", "garbage", seed=4, params=window),
            LoggerSpec(5, "xy-md02", "stuck", room="ambient", seed=5, params={"at_s": 0.0}),
            LoggerSpec(6, "rs485-th-holding", "compressor_failure", seed=6),
        ),
        speed=speed,
    )


@dataclass(frozen=True)
class RunningFarm:
    """What a test gets from a farm fixture."""

    endpoint: Endpoint
    farm: ModbusFarm

    @property
    def loggers(self) -> tuple[LoggerSpec, ...]:
        return self.farm.loggers


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _run(config: FarmConfig, *, tcp: bool) -> Iterator[RunningFarm]:
    from coldgate.simulator.background import FarmThread
    from coldgate.simulator.farm import TcpEndpoint

    fds_before = _open_fds()
    thread = FarmThread(config, tcp=[("127.0.0.1", 0)] if tcp else (), rtu=0 if tcp else 1)
    with thread:
        endpoint: Endpoint = thread.tcp[0] if tcp else thread.rtu[0]
        yield RunningFarm(endpoint, thread.farm)
    if isinstance(endpoint, TcpEndpoint):
        wait_port_closed(endpoint.host, endpoint.port, timeout=5.0)
    leaked = _open_fds() - fds_before
    assert not leaked, f"farm left descriptors open: {sorted(leaked)}"


# A test module overrides ``modbus_farm_config`` to change the farm.
@pytest.fixture
def modbus_farm_config() -> FarmConfig:
    pytest.importorskip("pymodbus", reason="Modbus tests need the [gateway] extra")
    return rig_farm()


@pytest.fixture
def modbus_tcp_farm(modbus_farm_config: FarmConfig) -> Iterator[RunningFarm]:
    """The farm on a free loopback TCP port; closed (port free, no fd leaked) after the test."""
    yield from _run(modbus_farm_config, tcp=True)


@pytest.fixture
def modbus_rtu_farm(modbus_farm_config: FarmConfig) -> Iterator[RunningFarm]:
    """The farm on a new pty line with RTU framing; pty closed after the test."""
    yield from _run(modbus_farm_config, tcp=False)


def reading_window(
    farm: ModbusFarm, unit: int, t0: float, t1: float, steps: int = 50
) -> tuple[Sample, Sample]:
    """The lowest and highest values the curve takes over scenario times [t0, t1].

    A client only knows the scenario time of its request to within the round trip;
    a value read over Modbus must fall in this window (widened by the register's
    0.05 rounding) to match the curve.
    """
    samples = [farm.expected(unit, t0 + (t1 - t0) * i / steps) for i in range(steps + 1)]
    low = Sample(min(s.temperature_c for s in samples), min(s.humidity_rh for s in samples))
    high = Sample(max(s.temperature_c for s in samples), max(s.humidity_rh for s in samples))
    return low, high
