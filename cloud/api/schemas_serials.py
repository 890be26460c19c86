"""Bodies and answers of the serial and import routes (``catalog_serials.py``, ``catalog_import.py``).

Bodies only fix the shape; the values are checked by ``cloud/catalog/serials.py`` and the import, which
name the field (or the file's line and column) and say why.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ImportOut", "LotOfSerialOut", "SerialRange", "SerialsBody", "SerialsOut", "SpanOut"]


class SerialRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first: Any = Field(description="First serial of the range: digits only.", examples=["000100"])
    last: Any = Field(description="Last serial (inclusive): as many digits as first.", examples=["000199"])


class SerialsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    serials: list[Any] = Field(
        default=[], max_length=100_000, description="Single serials (1-64 characters)."
    )
    ranges: list[SerialRange] = Field(
        default=[], max_length=100_000, description="Ranges of numeric serials."
    )
    reason: str = Field(max_length=2000, description="Why they are added (kept in the audit trail).")


class SerialsOut(BaseModel):
    product: str
    lot: str
    spans: int = Field(description="Serials and ranges added (those already stored so are not counted).")
    serials: int = Field(description="Serials they hold.")


class SpanOut(BaseModel):
    first: str
    last: str
    serials: int


class LotOfSerialOut(BaseModel):
    product: str
    serial: str
    lot: str


class ImportOut(BaseModel):
    kind: str
    sha256: str = Field(description="SHA-256 of the file as received (also in the audit entry).")
    rows: int
    created: int
    updated: int = Field(description="Products given a next version (lots and serials: always 0).")
    unchanged: int = Field(description="Rows equal to what is stored: nothing written for them.")
