"""Bodies and answers of the catalog routes (temperature classes, products, lots).

Bodies only fix the shape (unknown fields refused); the values are checked
by ``cloud/catalog/``, which names the field and says why, as the gateway's
config loader does for the same classes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CalibrationBody",
    "CalibrationOut",
    "ClassBody",
    "ClassOut",
    "DownlinkStateOut",
    "LocationBody",
    "LocationOut",
    "LotBody",
    "LotMoveBody",
    "LotOut",
    "PlacementBody",
    "PlacementOut",
    "ProductBody",
    "ProductOut",
]


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=2000, description="Why the change is made (kept in the audit trail).")
    if_version: int | None = Field(
        default=None, ge=0, description="The version you changed (0: you are making it); 409 if it moved on."
    )


class ClassBody(_Change):
    spec: dict[str, Any] = Field(
        description="The class's fields as the gateway's [[temperature_classes]] takes them (all but name): "
        "low, high, pre_alarm_margin, alarm_delay_s, hysteresis, humidity_low, humidity_high, mkt_window_s, "
        "alarm_on, excursion_budget_s, excursion_budget_window_s, rate_max_c_per_min, rate_window_s, "
        "humidity_hysteresis.",
        examples=[{"low": 2, "high": 8, "pre_alarm_margin": 0.5, "alarm_delay_s": 900}],
    )
    description: str = Field(default="", max_length=2000)
    retired: bool = False


class _Stamp(BaseModel):
    model_config = ConfigDict(frozen=True)
    version: int
    changed_at: str
    changed_by: str
    reason: str
    retired: bool


class ClassOut(_Stamp):
    name: str
    description: str
    spec: dict[str, Any]


class ProductBody(_Change):
    name: Any = Field(description="Name for people.")
    gtin: Any = Field(default=None, description="GTIN-8, -12, -13 or -14 (stored as GTIN-14).")
    hibc_lic: Any = Field(default=None, description="HIBC labeler identification code (4 characters).")
    hibc_pcn: Any = Field(default=None, description="HIBC product or catalogue number.")
    hibc_uom: Any = Field(default=None, description="HIBC unit of measure digit, 0-9.")
    ma_id: Any = Field(default=None, description="MA (IDcode) product id.")
    temperature_class: Any = Field(description="Name of a temperature class in force.")
    tor_budget_s: Any = Field(default=None, description="Time out of refrigeration allowed, seconds.")
    serialised: Any = Field(default=False, description="Units carry serial numbers.")
    retention: Any = Field(
        default=None,
        description='How long the readings of the months its lots were kept are kept: "standard" (5 years), '
        '"device" (2 years past the lot\'s expiry) or "implant" (for ever), as the cloud config\'s '
        "[retention] sets the terms.  Omitted: the category in force; a new product without one is not "
        "categorised yet, and the months its lots were kept in are kept for ever until it is.",
    )
    retired: bool = False


class ProductOut(_Stamp):
    id: str
    name: str
    gtin: str | None
    hibc_lic: str | None
    hibc_pcn: str | None
    hibc_uom: int | None
    ma_id: str | None
    temperature_class: str
    tor_budget_s: int | None
    serialised: bool
    #: null: not categorised yet (kept for ever).
    retention: Literal["standard", "device", "implant"] | None


class LotBody(_Change):
    expiry: Any = Field(default=None, description="YYYY-MM-DD.")
    expiry_hour: Any = Field(default=None, description="Hour of the expiry day, 0-23, if the label has one.")
    manufactured: Any = Field(default=None, description="YYYY-MM-DD.")
    status: Literal["released", "quarantined", "recalled", "rejected"] = Field(
        default="released", description="Only when the lot is made; later moves are their own routes."
    )


class LotMoveBody(_Change):
    pass


class LotOut(_Stamp):
    product: str
    lot: str
    expiry: str | None
    expiry_hour: int | None
    manufactured: str | None
    status: str
    expired: bool = Field(description="The expiry date has passed (computed, never stored).")


class DownlinkStateOut(BaseModel):
    """Where one gateway stands with one down-link document (``cloud/downlink/currency.py``)."""

    model_config = ConfigDict(frozen=True)
    gateway: str
    kind: str = Field(description="master or recall.")
    published: int | None = Field(description="Newest version published to the gateway.")
    issued: int | None = Field(description="When it was issued, epoch ms.")
    applied: int | None = Field(description="The version the gateway's status reports in force.")
    state: str = Field(description="current, behind, rejected, not reported or none published.")
    since: int | None = Field(description="Epoch ms since which the gateway is behind.")
    detail: str


class LocationBody(_Change):
    name: Any = Field(description="Name for people, e.g. 'Cold room 1'.")
    kind: Any = Field(description="cold_room, freezer, ambient_store, dock_door, quarantine_area or vehicle.")
    temperature_class: Any = Field(default=None, description="The class it keeps (not for a dock door).")
    inside: Any = Field(default=None, description="A dock door: the location inside.")
    outside: Any = Field(default=None, description="A dock door: the location outside (yard, truck).")
    retired: bool = False


class LocationOut(_Stamp):
    site: str
    id: str
    name: str
    kind: str
    temperature_class: str | None
    inside: str | None
    outside: str | None


class PlacementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(max_length=64)
    device_kind: Literal["sensor", "reader", "scanner"]
    device: str = Field(max_length=64)
    location: str | None = Field(default=None, max_length=64, description="Null: taken out of service.")
    valid_from: int = Field(ge=0, description="Epoch ms from which the device serves the location.")
    reason: str = Field(max_length=2000)


class PlacementOut(BaseModel):
    gateway: str
    device_kind: str
    device: str
    site: str
    location: str | None
    valid_from: int
    valid_to: int | None = Field(default=None, description="The device's next placement; null: in force.")
    recorded_by: str
    reason: str


class CalibrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gateway: str = Field(max_length=64)
    sensor: str = Field(max_length=64)
    certificate: Any
    calibrated_on: Any = Field(description="YYYY-MM-DD.")
    accuracy: Any = Field(description="As the certificate states it, e.g. '±0.5 °C'.")
    next_due: Any = Field(description="YYYY-MM-DD.")
    reason: str = Field(max_length=2000)


class CalibrationOut(BaseModel):
    gateway: str
    sensor: str
    certificate: str
    calibrated_on: str
    accuracy: str
    next_due: str
    recorded_by: str
    reason: str
