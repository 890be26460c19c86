"""Contract items for tests, built one way: from the contract's own types and examples.

``reading()`` serves every caller through keyword defaults: a 4.5 °C reading of
``cr1-t01`` at the examples' ``T0`` from the examples' boot, not yet numbered.
Give ``stamp=`` (a ``gateway.clock.Stamp``) for an item stamped by a clock the way
a source stamps it.  The other kinds start from ``contract.examples`` and replace
only what a test varies.
"""

from __future__ import annotations

from typing import Any

import msgspec

from coldgate.contract import examples
from coldgate.contract.items import Alert, Item, Quality, Reading
from coldgate.contract.units import Quantity, Unit
from coldgate.gateway.clock import Stamp
from coldgate.gateway.observations import UNSEQUENCED, stamp_fields

T0 = examples.T0
BOOT = examples.BOOT
MONO0 = 2_000_000  # the monotonic clock at T0
UNITS = {Quantity.TEMPERATURE: Unit.CEL, Quantity.HUMIDITY: Unit.P1}


def reading(
    value: float | None = 4.5,
    *,
    sensor: str = "cr1-t01",
    ts: int = T0,
    stamp: Stamp | None = None,
    seq: int = UNSEQUENCED,
    boot: str = BOOT,
    mono: int | None = None,
    synced: bool = True,
    quantity: str = Quantity.TEMPERATURE,
    unit: str | None = None,
    quality: Quality | None = None,
    reason: str | None = None,
) -> Reading:
    """A reading; no ``value`` is an error reading ("no answer") unless ``quality`` says otherwise.

    ``mono`` follows ``ts`` (``MONO0`` at ``T0``) unless given; ``unit`` follows the
    quantity (°C, % RH, or the plain number ``C62`` for anything else).
    """
    if quality is None:
        quality = Quality.OK if value is not None else Quality.ERROR
    if reason is None and quality is not Quality.OK:
        reason = "no answer"
    if stamp is None:
        fields: dict[str, Any] = {
            "seq": seq,
            "ts": ts,
            "boot": boot,
            "mono": max(0, ts - T0 + MONO0) if mono is None else mono,
            "synced": synced,
        }
    else:
        fields = {**stamp_fields(stamp), "seq": seq}
    return Reading(
        **fields,
        sensor=sensor,
        quantity=quantity,  # type: ignore[arg-type]
        value=value,
        unit=UNITS.get(quantity, Unit.C62) if unit is None else unit,  # type: ignore[arg-type]
        quality=quality,
        reason=reason,
    )


def alert(n: int = 1, *, ts: int = T0, stamp: Stamp | None = None, **fields: Any) -> Alert:
    """The examples' raised excursion alert as alert number ``n`` (``gw01-a-00000n``), not yet numbered.

    ``stamp=`` stamps it by a clock; any other field of ``Alert`` may be replaced by keyword.
    """
    when: dict[str, Any] = {"seq": UNSEQUENCED, "ts": ts} if stamp is None else stamp_fields(stamp)
    fields.setdefault("alert_id", f"gw01-a-{n:06d}")
    return msgspec.structs.replace(examples.ALERT, **when, **fields)


def priority_items(ts: int = T0) -> list[Item]:
    """One of every lane-0 kind: alert, gap, event, movement, scan."""
    kinds = (examples.ALERT, examples.GAP, examples.EVENT, examples.MOVEMENT, examples.SCAN)
    return [msgspec.structs.replace(item, seq=UNSEQUENCED, ts=ts) for item in kinds]  # type: ignore[misc]
