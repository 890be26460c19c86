"""Scripted temperature/humidity curves for simulated loggers.

A curve maps *scenario time* (seconds since the scenario started, see
``simulator.clock``) to a :class:`Sample`: what the logger measures then and how
it behaves on the wire.  Everything here is pure: no clock, no I/O, no hidden
state, so the Modbus server, the tests and the benchmarks can ask "what should
unit 3 read at minute 27?" and all get the same answer.

Noise is *value noise*: pseudo-random knots every ``noise_period_s`` derived from
``(seed, knot index)`` by hashing, linearly interpolated.  That makes every curve
continuous and deterministic for any evaluation order, which is what lets a test
compare a value read over Modbus with the curve evaluated at the bracketing
scenario times.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Protocol


class Behaviour(StrEnum):
    """How the logger answers on the wire at a given moment."""

    NORMAL = "normal"
    DROPOUT = "dropout"  # no answer at all: powered off, cable cut, bus fault
    STUCK = "stuck"  # answers, but the sensing element froze on one value
    GARBAGE = "garbage"  # answers with corrupted frames (noise, bad termination)
    FAULT = "fault"  # answers with Modbus exception 4 (device failure): a broken probe


@dataclass(frozen=True)
class Sample:
    """What a logger reports at one scenario time."""

    temperature_c: float
    humidity_rh: float
    behaviour: Behaviour = Behaviour.NORMAL


@dataclass(frozen=True)
class Room:
    """The controlled space a logger hangs in: where the curve sits when nothing goes wrong."""

    setpoint_c: float = 5.0
    humidity_rh: float = 45.0
    noise_c: float = 0.1  # peak deviation of the deterministic noise
    noise_rh: float = 0.5
    noise_period_s: float = 60.0  # one noise knot per scenario minute


COLD_ROOM = Room()  # a 2-8 °C pharmaceutical cold room
FREEZER = Room(setpoint_c=-20.0, humidity_rh=65.0, noise_c=0.3)
AMBIENT = Room(setpoint_c=20.0, humidity_rh=50.0, noise_c=0.2, noise_rh=1.0)
ROOMS: dict[str, Room] = {"cold_room": COLD_ROOM, "freezer": FREEZER, "ambient": AMBIENT}


def _knot(seed: int, stream: str, index: int) -> float:
    """A reproducible number in [-1, 1] for one noise knot (stable across processes)."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**63 - 1.0


def noise(seed: int, stream: str, t: float, period_s: float) -> float:
    """Continuous deterministic noise in [-1, 1] at scenario time ``t``."""
    position = t / period_s
    index = math.floor(position)
    fraction = position - index
    return (1 - fraction) * _knot(seed, stream, index) + fraction * _knot(seed, stream, index + 1)


def _clamp_rh(value: float) -> float:
    return min(100.0, max(0.0, value))


class Curve(Protocol):
    """Anything that can say what a logger reports at a scenario time."""

    def sample(self, t: float) -> Sample: ...


@dataclass(frozen=True)
class Steady:
    """A healthy room: setpoint plus small noise.  The base of every other scenario."""

    room: Room = COLD_ROOM
    seed: int = 0

    def baseline(self, t: float) -> tuple[float, float]:
        t = max(0.0, t)
        period = self.room.noise_period_s
        temperature = self.room.setpoint_c + self.room.noise_c * noise(self.seed, "t", t, period)
        humidity = self.room.humidity_rh + self.room.noise_rh * noise(self.seed, "h", t, period)
        return temperature, _clamp_rh(humidity)

    def sample(self, t: float) -> Sample:
        return Sample(*self.baseline(t))


@dataclass(frozen=True)
class Drift(Steady):
    """A sensor or a controller slowly walking away from the setpoint (calibration drift)."""

    rate_c_per_h: float = 0.5
    start_s: float = 0.0

    def sample(self, t: float) -> Sample:
        temperature, humidity = self.baseline(t)
        drift = self.rate_c_per_h * max(0.0, t - self.start_s) / 3600.0
        return Sample(temperature + drift, humidity)


@dataclass(frozen=True)
class DoorOpen(Steady):
    """Dock or room door opened periodically: warm, humid air for a few minutes, then recovery.

    The default spike briefly passes 8 °C in a 2-8 °C room but for far less than a
    typical alarm delay (10-30 min), so a correct rule must *not* raise an excursion.
    """

    first_s: float = 600.0
    every_s: float = 1800.0
    open_s: float = 180.0
    rise_c: float = 4.0  # how far the room would warm if the door stayed open
    rise_rh: float = 15.0
    tau_s: float = 90.0  # time constant of warming while open and recovery after closing

    def __post_init__(self) -> None:
        if not 0 < self.open_s < self.every_s:
            raise ValueError("door_open: open_s must be positive and shorter than every_s")

    def door_factor(self, t: float) -> float:
        """0 when the room is undisturbed, rising toward 1 while the door stands open."""
        if t < self.first_s:
            return 0.0
        since_open = (t - self.first_s) % self.every_s
        if since_open < self.open_s:
            return 1.0 - math.exp(-since_open / self.tau_s)
        peak = 1.0 - math.exp(-self.open_s / self.tau_s)
        return peak * math.exp(-(since_open - self.open_s) / self.tau_s)

    def sample(self, t: float) -> Sample:
        temperature, humidity = self.baseline(t)
        factor = self.door_factor(t)
        return Sample(temperature + self.rise_c * factor, _clamp_rh(humidity + self.rise_rh * factor))


@dataclass(frozen=True)
class CompressorFailure(Steady):
    """The refrigeration stops at ``failure_s``; the room warms exponentially toward ambient.

    Newton's law of cooling, so the curve is strictly monotonic after the failure
    and the time it crosses any threshold has a closed form (:meth:`crossing_time`).
    """

    failure_s: float = 900.0
    ambient_c: float = 20.0
    tau_s: float = 7200.0

    def _at_failure(self) -> float:
        return self.baseline(self.failure_s)[0]

    def sample(self, t: float) -> Sample:
        temperature, humidity = self.baseline(t)
        if t >= self.failure_s:
            start = self._at_failure()
            decay = math.exp(-(t - self.failure_s) / self.tau_s)
            temperature = self.ambient_c - (self.ambient_c - start) * decay
        return Sample(temperature, humidity)

    def crossing_time(self, threshold_c: float) -> float | None:
        """Scenario time the warming room first reaches ``threshold_c`` (None: never)."""
        start = self._at_failure()
        if not min(start, self.ambient_c) < threshold_c < max(start, self.ambient_c):
            return None
        ratio = (self.ambient_c - start) / (self.ambient_c - threshold_c)
        return self.failure_s + self.tau_s * math.log(ratio)


@dataclass(frozen=True)
class _Fault(Steady):
    """A fault laid over another curve (``inner``; a steady room when not given)."""

    inner: Curve | None = None

    def underlying(self, t: float) -> Sample:
        curve = self.inner if self.inner is not None else Steady(self.room, self.seed)
        return curve.sample(t)


@dataclass(frozen=True)
class Dropout(_Fault):
    """Answers, goes silent for ``duration_s``, then answers again."""

    start_s: float = 600.0
    duration_s: float = 300.0

    def sample(self, t: float) -> Sample:
        value = self.underlying(t)
        if self.start_s <= t < self.start_s + self.duration_s:
            return Sample(value.temperature_c, value.humidity_rh, Behaviour.DROPOUT)
        return value


@dataclass(frozen=True)
class Stuck(_Fault):
    """The reading freezes at ``at_s`` and stays there while the room carries on."""

    at_s: float = 600.0

    def sample(self, t: float) -> Sample:
        if t < self.at_s:
            return self.underlying(t)
        frozen = self.underlying(self.at_s)
        return Sample(frozen.temperature_c, frozen.humidity_rh, Behaviour.STUCK)


@dataclass(frozen=True)
class Garbage(_Fault):
    """Corrupted frames on the wire for ``duration_s`` (the values underneath carry on)."""

    start_s: float = 600.0
    duration_s: float = 300.0

    def sample(self, t: float) -> Sample:
        value = self.underlying(t)
        if self.start_s <= t < self.start_s + self.duration_s:
            return Sample(value.temperature_c, value.humidity_rh, Behaviour.GARBAGE)
        return value


@dataclass(frozen=True)
class ProbeFailure(_Fault):
    """The logger's probe fails for ``duration_s``: the logger still answers, but with
    Modbus exception 4 (server device failure), as SHT-based transmitters do when the
    sensing element stops responding to the logger's own microcontroller."""

    start_s: float = 600.0
    duration_s: float = 300.0

    def sample(self, t: float) -> Sample:
        value = self.underlying(t)
        if self.start_s <= t < self.start_s + self.duration_s:
            return Sample(value.temperature_c, value.humidity_rh, Behaviour.FAULT)
        return value


SCENARIOS: dict[str, Callable[..., Curve]] = {
    "steady": Steady,
    "drift": Drift,
    "door_open": DoorOpen,
    "compressor_failure": CompressorFailure,
    "dropout": Dropout,
    "stuck": Stuck,
    "garbage": Garbage,
    "probe_failure": ProbeFailure,
}


def scenario_parameters(name: str) -> list[str]:
    """The tunable parameters of a scenario (everything but room and seed)."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    cls = SCENARIOS[name]
    return [f.name for f in fields(cls) if f.name not in {"room", "seed"}]  # type: ignore[arg-type]


def make_curve(name: str, *, room: Room = COLD_ROOM, seed: int = 0, **params: Any) -> Curve:
    """Build a scenario by name, rejecting unknown parameters with the list of known ones.

    A fault's ``inner`` may be given as a mapping ``{"scenario": NAME, **params}`` so a
    config file can say "stuck sensor while the compressor fails".
    """
    known = scenario_parameters(name)
    inner = params.get("inner")
    if isinstance(inner, dict):
        inner_params = dict(inner)
        inner_name = inner_params.pop("scenario", "steady")
        params["inner"] = make_curve(inner_name, room=room, seed=seed, **inner_params)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"scenario {name!r} has no parameter {', '.join(unknown)}; known: {', '.join(known)}"
        )
    for key, value in params.items():
        # A farm file's "600" instead of 600 must fail here, not in the first Modbus request.
        if key == "inner":
            if value is not None and not hasattr(value, "sample"):
                raise ValueError(f"inner: expected a table with a scenario, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{key}: expected a number, got {value!r}")
    return SCENARIOS[name](room=room, seed=seed, **params)
