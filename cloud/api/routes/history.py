"""Batch history: where every unit of a lot (or one pallet, or one case) was and what it experienced
there, as JSON, CSV, a signed-off PDF and EPCIS 2.0 (``documents.read``, as the custody it is made of).

Computed when asked, from recorded items only (``cloud/reports/history_store.py``), up to ``as_of``
(default: now).  The JSON carries ``report_sha256``, the hash the PDF's footer prints: anyone holding
the JSON can recompute it.  Paths take the product and unit as the custody routes do; a malformed GTIN
is a 422 naming the check digit, an unknown product, lot or unit a 404 saying which, and a lot nobody
received a 200 with no segments and a note saying so.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from coldgate.cloud.api.routes import parse_time
from coldgate.cloud.api.routes.custody import ANSWERS, GTIN_HELP, LOT_HELP, UNIT_HELP
from coldgate.cloud.api.routes.windows import TIME_HELP
from coldgate.cloud.reports import history_store
from coldgate.cloud.reports.batch_history import History
from coldgate.cloud.reports.epcis_export import epcis_json, lot_epcis
from coldgate.cloud.reports.history_epcis import epcis_segments
from coldgate.cloud.reports.history_json import history_content, history_csv
from coldgate.cloud.reports.history_pdf import history_pdf

__all__ = ["router"]

router = APIRouter(tags=["reports"])
_AS_OF = f"The history up to this moment instead of now. {TIME_HELP}"


class FiguresOut(BaseModel):
    readings: int = Field(description="Readings of quality ok the figures are over.")
    min: float | None
    max: float | None
    mean: float | None
    mkt: float | None = Field(description="Mean kinetic temperature, °C (USP <1079.2>, ΔH/R 10,000 K).")
    above_s: float = Field(description="Seconds above the class's high limit.")
    below_s: float = Field(description="Seconds below the class's low limit.")


class SpanOut(BaseModel):
    start: str | None
    start_ms: int
    end: str | None
    end_ms: int


class SensorOut(BaseModel):
    gateway: str
    sensor: str
    watched: SpanOut = Field(description="The part of the segment the sensor was placed at the location.")
    temperature: FiguresOut
    humidity: FiguresOut | None
    gaps: list[SpanOut] = Field(description="Its own and its gateway's gaps within what it watched.")
    clock_corrected_readings: int


class ExcursionOut(BaseModel):
    gateway: str
    alert_id: str
    sensor: str
    rule: str
    severity: str
    start: str | None
    start_ms: int
    end: str | None
    end_ms: int | None
    peak: float | None
    message: str
    case_id: str | None = Field(description="The QA case the excursion was folded into.")
    case_state: str | None
    disposition: str | None
    signatures: list[str] = Field(description="The case's e-signatures: name, meaning, time.")


class SegmentOut(BaseModel):
    custody: str = Field(description="supplier (before receipt), ours, customer (after dispatch) or "
                         "transferred (to another party).")  # fmt: skip
    site: str | None
    location: str | None
    party: str | None = Field(description="The supplier, customer or other party (outside our custody).")
    start: str | None
    start_ms: int | None = Field(description="None: before anything we know (the supplier's).")
    end: str | None
    end_ms: int | None = Field(description="None: still there.")
    pallets: int
    cases: int
    quantity: int = Field(description="Counted from unserialised labels: the most held at once.")
    documents: list[str] = Field(description="The documents that brought it there or took it away.")
    references: list[str] = Field(description="Their references (ship notice, customer order).")
    temperature: FiguresOut | None = None
    sensors: list[SensorOut] | None = None
    unmonitored_s: float | None = None
    unmonitored: list[SpanOut] | None = None
    excursions: list[ExcursionOut] | None = None
    purged_s: float | None = Field(None, description="Seconds a placed sensor watched here whose readings "
                                   "retention purged: not unmonitored (see purged_months).")  # fmt: skip
    purged: list[SpanOut] | None = None


class LimitsOut(BaseModel):
    temperature_class: str | None
    low: float | None
    high: float | None
    humidity_low: float | None
    humidity_high: float | None


class TotalsOut(BaseModel):
    readings: int
    mkt: float | None
    min: float | None
    max: float | None
    out_of_range_s: float = Field(description="The worst unit's time outside the class limits.")
    budget_s: float | None = Field(description="The product's time-out-of-range budget (None: none).")
    budget_exceeded: bool
    excursions: int
    unmonitored_s: float
    in_custody_s: float
    first_in: str | None
    first_in_ms: int | None
    last_out: str | None
    last_out_ms: int | None
    purged_s: float = Field(description="Time in our custody whose readings retention purged (apart from "
                            "unmonitored_s, which it never counts in).")  # fmt: skip


class PurgedMonthOut(BaseModel):
    month: str = Field(description="The calendar month (UTC), YYYY-MM.")
    start: str | None
    start_ms: int
    end: str | None
    end_ms: int
    scope: str = Field(description='Whose readings of the month went: "all" (every site\'s).')
    readings: int = Field(description="How many readings went.")
    sha256: str = Field(description="The archive's SHA-256 of those readings, kept on record.")
    rule: str = Field(description="The retention rule that let the month go.")
    purge_from: str = Field(description="The first day that rule allowed the purge.")
    purged_at: str | None
    purged_by: str
    note: str = Field(description="The sentence the page, PDF and CSV print for it.")


class HistoryOut(BaseModel):
    subject: str
    product: str
    gtin: str | None
    lot: str | None
    status: str | None
    expiry: str | None
    limits: LimitsOut
    as_of: str | None
    as_of_ms: int
    custody_recorded: bool
    totals: TotalsOut
    segments: list[SegmentOut]
    purged_months: list[PurgedMonthOut] = Field(
        description="Months whose readings retention purged, overlapping time some of it was watched in "
        "our rooms: their time is purged, not a monitoring gap."
    )
    clock_corrected_readings: int
    notes: list[str]
    report_sha256: str = Field(description="SHA-256 of the canonical JSON (RFC 8785) of all the rest.")


def _as_of(as_of: str | None) -> int:
    if as_of is not None:
        return parse_time(as_of, "as_of")
    return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)


def _lot(request: Request, gtin: str, lot: str, as_of: str | None) -> History:
    with request.app.state.engine.connect() as conn:
        return history_store.lot_history(conn, gtin, lot, as_of=_as_of(as_of))


def _unit(request: Request, unit_id: str, as_of: str | None) -> History:
    with request.app.state.engine.connect() as conn:
        return history_store.unit_history(conn, unit_id, as_of=_as_of(as_of))


def _file_name(history: History, suffix: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{history.gtin or history.product}"
                   f"_{history.subject.split(' ')[0]}_{history.lot or ''}")  # fmt: skip
    return f"history_{safe}.{suffix}"


def _download(body: bytes | str, media: str, name: str) -> Response:
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


GtinPath = Annotated[str, Path(max_length=64, description=GTIN_HELP)]
LotPath = Annotated[str, Path(max_length=64, description=LOT_HELP)]
UnitPath = Annotated[str, Path(max_length=200, description=UNIT_HELP)]
AsOf = Annotated[str | None, Query(description=_AS_OF)]


@router.get("/lots/{gtin}/{lot}/history", response_model=HistoryOut, responses=ANSWERS)
def lot_history(gtin: GtinPath, lot: LotPath, request: Request, as_of: AsOf = None) -> Any:
    """Every custody segment of the lot (the supplier's before receipt, our rooms, the customers' after
    dispatch), with the sensors that watched each room then, their figures against the product's class
    limits, excursions with their QA cases, unmonitored minutes, and the totals over our custody."""
    return history_content(_lot(request, gtin, lot, as_of))


@router.get("/lots/{gtin}/{lot}/history.csv", response_class=Response, responses=ANSWERS)
def lot_history_csv(gtin: GtinPath, lot: LotPath, request: Request, as_of: AsOf = None) -> Response:
    """The lot's history as CSV: a row per segment and sensor, then the totals."""
    history = _lot(request, gtin, lot, as_of)
    return _download(history_csv(history), "text/csv; charset=utf-8", _file_name(history, "csv"))


@router.get("/lots/{gtin}/{lot}/history.pdf", response_class=Response, responses=ANSWERS)
def lot_history_pdf(gtin: GtinPath, lot: LotPath, request: Request, as_of: AsOf = None) -> Response:
    """The lot's history as a PDF report: summary, a chart per room with the limit band, the tables, the
    excursions with their cases and signatures, and a footer with the content hash and time printed."""
    history = _lot(request, gtin, lot, as_of)
    return _download(history_pdf(history), "application/pdf", _file_name(history, "pdf"))


@router.get(
    "/lots/{gtin}/{lot}/history.epcis.json", response_class=Response, responses={
        **ANSWERS, 200: {"content": {"application/ld+json": {}},
                         "description": "An EPCIS 2.0 document (JSON-LD), valid against GS1's JSON Schema."}},
)  # fmt: skip
def lot_history_epcis(gtin: GtinPath, lot: LotPath, request: Request, as_of: AsOf = None) -> Response:
    """The lot's history as EPCIS 2.0: ObjectEvents for receiving, put-away and shipping with the
    documents as business transactions, AggregationEvents for pallets, and a sensor-reporting event per
    room with its sensors' min, max and mean (and a link to each one's raw readings); event ids are
    GS1's event hashes, so the same history gives the same ids."""
    when = _as_of(as_of)
    with request.app.state.engine.connect() as conn:
        custody, history = history_store.lot_history_with_custody(conn, gtin, lot, as_of=when)
    base = str(request.base_url).rstrip("/")

    def raw_url(device: str, start: int, end: int) -> str:
        gateway, _, sensor = device.partition("/")
        return f"{base}/gateways/{quote(gateway, safe='')}/sensors/{quote(sensor, safe='')}/readings.csv" \
            f"?from={start}&to={end}"

    document = lot_epcis(custody, epcis_segments(history), created_ms=when, base_uri=base, raw_url=raw_url)
    return _download(epcis_json(document), "application/ld+json", _file_name(history, "epcis.json"))


@router.get("/units/{unit_id}/history", response_model=HistoryOut, responses=ANSWERS)
def unit_history(unit_id: UnitPath, request: Request, as_of: AsOf = None) -> Any:
    """One pallet's or serialised case's history, as the lot's."""
    return history_content(_unit(request, unit_id, as_of))


@router.get("/units/{unit_id}/history.csv", response_class=Response, responses=ANSWERS)
def unit_history_csv(unit_id: UnitPath, request: Request, as_of: AsOf = None) -> Response:
    history = _unit(request, unit_id, as_of)
    return _download(history_csv(history), "text/csv; charset=utf-8", _file_name(history, "csv"))


@router.get("/units/{unit_id}/history.pdf", response_class=Response, responses=ANSWERS)
def unit_history_pdf(unit_id: UnitPath, request: Request, as_of: AsOf = None) -> Response:
    history = _unit(request, unit_id, as_of)
    return _download(history_pdf(history), "application/pdf", _file_name(history, "pdf"))
