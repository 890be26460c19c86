"""What one poll becomes: one Reading per channel, ok with a value or error with a reason.

Every poll yields a reading for every channel even when the device said
nothing, so a hole in the data is visible, and explained, at the poll that
has it.  A *channel* is one value a sensor reports: its reading's sensor id,
quantity and unit.  A profile point with a ``name`` (two probes of one logger)
reports as ``<sensor id>.<point name>`` because the contract's Reading has no
other place to tell the probes apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coldgate.contract.items import Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import UNSEQUENCED
from coldgate.gateway.sensors.config import Point

#: Reading.reason is ShortText (200 characters); longer reasons are cut with an ellipsis.
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Channel:
    sensor: str
    quantity: Quantity
    unit: Unit


def channel_of(sensor_id: str, point: Point) -> Channel:
    sensor = sensor_id if point.name is None else f"{sensor_id}.{point.name}"
    return Channel(sensor, point.quantity, point.unit)


def short(reason: str, limit: int = MAX_REASON) -> str:
    return reason if len(reason) <= limit else reason[: limit - 1] + "…"


def ok_reading(channel: Channel, value: float, stamp: Stamp) -> Reading:
    """The common fields are spelled out rather than unpacked from ``stamp_fields``: a Reading is made
    for every channel of every poll, and ``**fields`` made each one cost 2.5 times as much."""
    return Reading(
        seq=UNSEQUENCED,
        ts=stamp.wall_ms,
        boot=stamp.boot,
        mono=stamp.mono_ms,
        synced=stamp.synced,
        sensor=channel.sensor,
        quantity=channel.quantity,
        value=value,
        unit=channel.unit,
    )


def error_reading(channel: Channel, reason: str, stamp: Stamp) -> Reading:
    return Reading(
        seq=UNSEQUENCED,
        ts=stamp.wall_ms,
        boot=stamp.boot,
        mono=stamp.mono_ms,
        synced=stamp.synced,
        sensor=channel.sensor,
        quantity=channel.quantity,
        value=None,
        unit=channel.unit,
        quality=Quality.ERROR,
        reason=short(reason),
    )


def error_readings(channels: Iterable[Channel], reason: str, stamp: Stamp) -> list[Reading]:
    return [error_reading(channel, reason, stamp) for channel in channels]
