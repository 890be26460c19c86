"""The periodic GSP reports through the API: generated, stored with their hash, listed, fetched byte for
byte, audited; refused precisely (422 naming the field, 404 naming what was asked, 403 for a viewer)
and never with a 500; the excursion log carries the case; the calibration status judges due dates; the
scheduler's job stores each location's previous month once.

Both dialects.  Every PDF is rasterised with poppler into ``build/screenshots/`` for a person to look
at (never committed)."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.catalog.placements import place, record_calibration
from coldgate.cloud.catalog.temperature_classes import put_class
from coldgate.cloud.config import CloudConfig
from coldgate.cloud.db.models import AuditEntry, StoredReport
from coldgate.cloud.db.writes import insert_new
from coldgate.cloud.reports.monthly_record import HOUR_MS, month_window
from coldgate.cloud.reports.periodic_store import store_monthly_due
from coldgate.cloud.scheduler import MONTHLY_REPORTS_JOB, CloudScheduler
from coldgate.contract import examples
from coldgate.contract.evidence import Evidence
from tests.rig import items
from tests.rig.people import bearer, person

QA = Actor("Marta QA", "u-marta")
NOW = datetime.datetime(2026, 12, 7, 9, tzinfo=datetime.UTC)
START, END = month_window("2026-11")
DAY = 24 * HOUR_MS
SHOTS = Path(__file__).resolve().parents[1] / "build" / "screenshots"
#: The excursion: 9 to 10:40 on 10 November, peak 11.2 °C; the sensor's gap: 20 November 02:00-07:30.
EXC_START, EXC_END = START + 9 * DAY + 9 * HOUR_MS, START + 9 * DAY + 10 * HOUR_MS + 40 * 60_000
GAP_START, GAP_END = START + 19 * DAY + 2 * HOUR_MS, START + 19 * DAY + 7 * HOUR_MS + 30 * 60_000


def _world(engine: Engine) -> None:
    """Cold room CR1 (2-8 °C, humidity at most 65 %) watched by t1 all month and t2 from the 15th; a
    reading every ten minutes, an excursion (with its case) and a gap; t1 calibrated, t2 overdue; CR2
    empty."""
    with engine.begin() as conn:
        put_class(conn, "2-8C", {"low": 2, "high": 8, "humidity_high": 65}, reason="SOP-12", by=QA, now=NOW)
        for room, name in (("CR1", "Cold room 1"), ("CR2", "Cold room 2")):
            put_location(
                conn,
                "site1",
                room,
                {"name": name, "kind": "cold_room", "temperature_class": "2-8C"},
                reason="layout",
                by=QA,
                now=NOW,
            )
        place(conn, "gw01", "sensor", "t1", "CR1", START - DAY, reason="install", by=QA, now=NOW)
        place(conn, "gw01", "sensor", "t2", "CR1", START + 14 * DAY, reason="install", by=QA, now=NOW)
        record_calibration(
            conn,
            "gw01",
            "t1",
            {
                "certificate": "CAL-0101",
                "calibrated_on": "2026-06-01",
                "accuracy": "±0.3 °C",
                "next_due": "2027-06-01",
            },
            reason="lab",
            by=QA,
            now=NOW,
        )
        record_calibration(
            conn,
            "gw01",
            "t2",
            {
                "certificate": "CAL-0077",
                "calibrated_on": "2025-11-01",
                "accuracy": "±0.5 °C",
                "next_due": "2026-11-30",
            },
            reason="lab",
            by=QA,
            now=NOW,
        )
    sent: list[msgspec.Struct] = []
    seq = 0
    for ts in range(START, END, 10 * 60_000):
        if GAP_START <= ts < GAP_END:
            continue
        n = (ts - START) // 600_000
        value = 4.5 + (n % 36) / 12 + (6.0 if EXC_START <= ts < EXC_END else 0)
        for sensor, quantity, v in (
            ("t1", "temperature", value),
            ("t1", "humidity", 45 + (n % 20)),
            ("t2", "temperature", value - 0.3),
        ):
            if sensor == "t2" and ts < START + 14 * DAY:
                continue
            seq += 1
            sent.append(items.reading(round(v, 2), sensor=sensor, quantity=quantity, ts=ts, seq=seq))
    evidence = Evidence(start=EXC_START, peak=11.2, max=11.2, unit="CEL")
    raised = items.alert(
        7, ts=EXC_START + 15 * 60_000, subject="t1", rule="temperature.high", evidence=evidence
    )
    cleared = msgspec.structs.replace(
        raised,
        ts=EXC_END,
        action="cleared",
        evidence=Evidence(start=EXC_START, end=EXC_END, peak=11.2, unit="CEL"),
    )
    gap = msgspec.structs.replace(examples.GAP, subject="t1", start=GAP_START, end=GAP_END, ts=GAP_END)
    for item in (raised, cleared, gap):
        seq += 1
        sent.append(msgspec.structs.replace(item, seq=seq))
    stream = uuid.uuid4().hex
    for first in range(0, len(sent), 4000):
        with engine.begin() as conn:
            insert_new(conn, "gw01", stream, sent[first : first + 4000])
    with engine.begin() as conn:
        assert open_cases(conn, NOW, new_id=lambda: "case-00000000exc1") == 1


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    """The app over the world; Marta (qa) and Vera (viewer)."""
    _world(engine)
    _, qa = person(engine, "marta", ("qa",))
    _, viewer = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(qa), bearer(viewer)


def _pngs(pdf: bytes, name: str, tmp_path: Path) -> list[Path]:
    """Every page of ``pdf`` as PNG (60 dpi) under build/screenshots/."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("poppler's pdftoppm is not installed")
    source = tmp_path / f"{name}.pdf"
    source.write_bytes(pdf)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "60", source, SHOTS / name], check=True)
    pages = sorted(SHOTS.glob(f"{name}-*.png"))
    assert pages, f"no page of {name}"
    return pages


def _text(pdf: bytes, tmp_path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler's pdftotext is not installed")
    source = tmp_path / "text.pdf"
    source.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", source, "-"], check=True, capture_output=True, text=True
    ).stdout


def test_the_monthly_record_is_stored_listed_and_fetched_as_generated(
    api: tuple[TestClient, dict[str, str], dict[str, str]], engine: Engine, tmp_path: Path
) -> None:
    client, qa, viewer = api
    asked = {"site": "site1", "location": "CR1", "month": "2026-11"}
    made = client.post("/reports/monthly", json=asked, headers=qa)
    assert made.status_code == 201, made.text
    meta = made.json()
    assert meta["kind"] == "monthly_record" and meta["content_type"] == "application/pdf"
    assert meta["parameters"] == {**asked, "format": "pdf"} and meta["generated_by"] == "Marta Tester"
    got = client.get(meta["download"], headers=viewer)
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(got.content).hexdigest() == meta["sha256"] == got.headers["x-content-sha256"]
    text = _text(got.content, tmp_path)
    for words in (
        "Cold room 1",
        "2026-11",
        "site1",
        "t1",
        "temperature.high",
        "case-00000000exc1",
        "sensor offline",
        "content SHA-256",
        "page 1 of",
        "corrected",
    ):
        assert words in text, words
    pages = _pngs(got.content, "report-monthly", tmp_path)
    assert len(pages) >= 2
    # Regenerating stores another file; both stay listed, newest first.
    again = client.post("/reports/monthly", json=asked, headers=qa).json()
    assert again["id"] != meta["id"]
    listed = client.get("/reports", params={"kind": "monthly_record"}, headers=viewer).json()
    assert [r["id"] for r in listed][:2] == [again["id"], meta["id"]]
    assert client.get(f"/reports/{meta['id']}/meta", headers=viewer).json()["sha256"] == meta["sha256"]
    with engine.connect() as conn:
        audited = conn.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "report.generate")
        ).scalar_one()
    assert audited == 2


def test_the_monthly_csv_has_every_day(api: tuple[TestClient, dict[str, str], dict[str, str]]) -> None:
    client, qa, _ = api
    meta = client.post(
        "/reports/monthly",
        json={"site": "site1", "location": "CR1", "month": "2026-11", "format": "csv"},
        headers=qa,
    ).json()
    got = client.get(meta["download"], headers=qa)
    assert got.headers["content-type"].startswith("text/csv")
    rows = [r for r in csv.reader(io.StringIO(got.text)) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    assert header[:6] == ["day", "quantity", "unit", "min", "max", "mean"]
    assert len(body) == 60
    tenth = next(r for r in body if r[0] == "2026-11-10" and r[1] == "temperature")
    assert float(tenth[4]) >= 10.5 and tenth[-1] == "yes"
    twentieth = next(r for r in body if r[0] == "2026-11-20" and r[1] == "temperature")
    assert int(twentieth[6]) == (24 * 6 - 33) * 2  # two sensors, 33 ten-minute slots missing in the gap


def test_the_excursion_log_holds_the_case(
    api: tuple[TestClient, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    client, qa, _ = api
    period = {"site": "site1", "start": "2026-11-01", "end": "2026-11-30"}
    meta = client.post("/reports/excursions", json={**period, "format": "csv"}, headers=qa).json()
    [row] = list(csv.DictReader(io.StringIO(client.get(meta["download"], headers=qa).text)))
    assert (row["location"], row["sensor"], row["rule"], row["case_id"], row["case_state"]) == (
        "CR1",
        "t1",
        "temperature.high",
        "case-00000000exc1",
        "open",
    )
    assert row["start"] == "2026-11-10T09:00:00Z" and row["end"] == "2026-11-10T10:40:00Z"
    assert (row["duration_s"], row["peak"]) == ("6000", "11.20")
    # Another room, or a period without it: nothing.
    other = client.post(
        "/reports/excursions", json={**period, "location": "CR2", "format": "csv"}, headers=qa
    )
    assert len(list(csv.DictReader(io.StringIO(client.get(other.json()["download"], headers=qa).text)))) == 0
    pdf = client.post("/reports/excursions", json=period, headers=qa).json()
    _pngs(client.get(pdf["download"], headers=qa).content, "report-excursions", tmp_path)


def test_the_calibration_status(
    api: tuple[TestClient, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    client, qa, _ = api
    meta = client.post(
        "/reports/calibration", json={"site": "site1", "as_of": "2026-12-07", "format": "csv"}, headers=qa
    ).json()
    rows = list(
        csv.DictReader(io.StringIO(client.get(meta["download"], headers=qa).text.split("\r\n", 1)[1]))
    )
    assert [(r["sensor"], r["location"], r["certificate"], r["status"]) for r in rows] == [
        ("t2", "CR1", "CAL-0077", "overdue"),
        ("t1", "CR1", "CAL-0101", "ok"),
    ]
    soon = client.post("/reports/calibration", json={"as_of": "2027-05-15", "format": "csv"}, headers=qa)
    assert (
        ",t1,CR1,CAL-0101,2026-06-01,±0.3 °C,2027-06-01,17,due"
        in client.get(soon.json()["download"], headers=qa).text
    )
    pdf = client.post("/reports/calibration", json={"site": "site1"}, headers=qa).json()
    _pngs(client.get(pdf["download"], headers=qa).content, "report-calibration", tmp_path)


def test_bad_input_is_refused_precisely(
    api: tuple[TestClient, dict[str, str], dict[str, str]], engine: Engine
) -> None:
    client, qa, viewer = api
    month = {"site": "site1", "location": "CR1", "month": "2026-13"}
    reply = client.post("/reports/monthly", json=month, headers=qa)
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", "month"]
    assert "no month 13" in reply.json()["detail"][0]["msg"]
    reply = client.post("/reports/monthly", json={**month, "month": "2026-11", "location": "CR9"}, headers=qa)
    assert reply.status_code == 404 and "CR9" in reply.json()["detail"]
    reply = client.post("/reports/monthly", json={**month, "month": "2026-11", "site": "nowhere"}, headers=qa)
    assert reply.status_code == 404 and "nowhere" in reply.json()["detail"]
    backwards = {"site": "site1", "start": "2026-11-30", "end": "2026-11-01"}
    reply = client.post("/reports/excursions", json=backwards, headers=qa)
    assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", "end"]
    reply = client.post("/reports/excursions", json={**backwards, "start": "2026-02-30"}, headers=qa)
    assert reply.status_code == 422
    reply = client.post("/reports/monthly", json={**month, "month": "2026-11", "format": "docx"}, headers=qa)
    assert reply.status_code == 422
    assert client.get("/reports/RPT-none", headers=viewer).status_code == 404
    assert client.get("/reports/RPT-none/meta", headers=viewer).status_code == 404
    assert (
        client.post("/reports/monthly", json={**month, "month": "2026-11"}, headers=viewer).status_code == 403
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(StoredReport)).scalar_one() == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(month=st.one_of(st.text(max_size=10), st.from_regex(r"\A[0-9]{4}-[0-9]{2}\Z")))
def test_any_month_is_a_report_or_a_422(
    api: tuple[TestClient, dict[str, str], dict[str, str]], month: str
) -> None:
    client, qa, _ = api
    reply = client.post(
        "/reports/monthly",
        json={"site": "site1", "location": "CR2", "month": month, "format": "csv"},
        headers=qa,
    )
    assert reply.status_code in (201, 422), (month, reply.status_code, reply.text)
    if reply.status_code == 422:
        assert reply.json()["detail"][0]["loc"][-1] == "month"


def test_the_schedule_stores_last_month_once(engine: Engine) -> None:
    _world(engine)
    first = datetime.datetime(2026, 12, 1, 2, 30, tzinfo=datetime.UTC)
    made = store_monthly_due(engine, first)
    assert len(made) == 4  # CR1 and CR2, PDF and CSV
    assert store_monthly_due(engine, first + datetime.timedelta(hours=2)) == []
    with engine.connect() as conn:
        rows = conn.execute(
            select(StoredReport.location, StoredReport.parameters, StoredReport.generated_by).order_by(
                StoredReport.location, StoredReport.parameters
            )
        ).all()
    assert [(r.location, r.generated_by) for r in rows] == [("CR1", "coldgate (system)")] * 2 + [
        ("CR2", "coldgate (system)")
    ] * 2
    assert all('"month":"2026-11"' in r.parameters for r in rows)


def test_a_short_period_lists_only_its_own_excursions(
    api: tuple[TestClient, dict[str, str], dict[str, str]],
) -> None:
    """The day of the excursion (10 November, 09:00-10:40) lists it; the two days after list nothing."""
    client, qa, _ = api
    period = {"site": "site1", "start": "2026-11-10", "end": "2026-11-10", "format": "csv"}
    whole = client.post("/reports/excursions", json=period, headers=qa).json()
    assert len(list(csv.DictReader(io.StringIO(client.get(whole["download"], headers=qa).text)))) == 1
    later = client.post("/reports/excursions", json={**period, "start": "2026-11-11", "end": "2026-11-12"},
                        headers=qa).json()  # fmt: skip
    assert list(csv.DictReader(io.StringIO(client.get(later["download"], headers=qa).text))) == []


def test_the_scheduler_runs_the_monthly_reports_early_on_the_first(engine: Engine) -> None:
    """The job is on the calendar (the 1st, 02:15 UTC) and its run stores last month's records once."""
    _world(engine)
    first = datetime.datetime(2026, 12, 1, 2, 15, tzinfo=datetime.UTC)
    scheduler = CloudScheduler(engine, CloudConfig(), clock=lambda: first)
    scheduler.start()
    try:
        job = scheduler._scheduler.get_job(MONTHLY_REPORTS_JOB)
        assert job is not None
        assert (job.next_run_time.day, job.next_run_time.hour, job.next_run_time.minute) == (1, 2, 15)
    finally:
        scheduler.shutdown()
    assert len(scheduler.store_monthly_reports_now()) == 4
    assert scheduler.store_monthly_reports_now() == []
