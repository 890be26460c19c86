"""What a reading measures and in which unit, as UN/CEFACT Recommendation 20 codes.

Rules compare readings against limits, so a reading must say its unit and the
unit must fit the quantity: a temperature in percent is refused at the edge of
the system, not discovered in a report.  Codes are UN/CEFACT rec 20 common
codes, which is what EPCIS 2.0 sensor reports use too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Quantity(StrEnum):
    """What is measured."""

    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"  # relative humidity
    DEW_POINT = "dew_point"
    PRESSURE = "pressure"  # absolute air pressure
    DOOR = "door"  # cold-room door contact: 1 open, 0 closed


class Unit(StrEnum):
    """UN/CEFACT rec 20 unit code."""

    CEL = "CEL"  # degree Celsius
    FAH = "FAH"  # degree Fahrenheit
    KEL = "KEL"  # kelvin
    P1 = "P1"  # percent
    A97 = "A97"  # hectopascal
    PAL = "PAL"  # pascal
    C62 = "C62"  # "one": a dimensionless count or state


TEMPERATURE_UNITS: Final = frozenset({Unit.CEL, Unit.FAH, Unit.KEL})

#: The units each quantity may be reported in.
UNITS_FOR: Final[dict[Quantity, frozenset[Unit]]] = {
    Quantity.TEMPERATURE: TEMPERATURE_UNITS,
    Quantity.DEW_POINT: TEMPERATURE_UNITS,
    Quantity.HUMIDITY: frozenset({Unit.P1}),
    Quantity.PRESSURE: frozenset({Unit.A97, Unit.PAL}),
    Quantity.DOOR: frozenset({Unit.C62}),
}
