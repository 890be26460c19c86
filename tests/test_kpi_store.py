"""The KPIs read from the records, both dialects (``cloud/reports/kpi_store.py``), on the history story
(``tests/rig/history_world.py``): three cold rooms watched once a minute on 1 December 2026, CR2 with
an excursion (its case acknowledged and closed), CR3's sensor offline 11:00-11:30 with a gap on record.

Monitoring completeness is checked against a direct computation from every reading (no hourly
summaries), so the fast path's shortcut is held to the exact answer."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from coldgate.cloud.alerts.case_store import open_cases
from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.db.models import QaCase, QaCaseStep, Reading
from coldgate.cloud.identity.users import NotFound, UserInputError
from coldgate.cloud.reports import recall_store
from coldgate.cloud.reports.batch_history import Series, readings_cover
from coldgate.cloud.reports.kpi_store import kpi_report
from coldgate.cloud.reports.spans import Span, subtract, total
from tests.rig.custody_world import at
from tests.rig.documents import DOCK
from tests.rig.history_world import SENSORS, history_world
from tests.rig.people import bearer, person
from tests.rig.recall_world import recall_world

NOW = datetime.datetime.fromtimestamp(at(15, 0) / 1000, datetime.UTC)
DEC_1 = int(datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC).timestamp() * 1000)


def _when(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


@pytest.fixture
def world(engine: Engine) -> Engine:
    history_world(engine)
    with engine.begin() as conn:
        assert open_cases(conn, _when(at(10, 12))) == 1
        case_id = conn.execute(select(QaCase.id)).scalar_one()
        for seq, state, ms in ((2, "acknowledged", at(10, 17)), (3, "closed", at(12, 12))):
            conn.execute(insert(QaCaseStep).values(
                case_id=case_id, seq=seq, state=state, at=_when(ms), by_name="Marta QA", by_id="u-marta",
                reason="checked", disposition="released" if state == "closed" else None,
            ))  # fmt: skip
    return engine


def _direct(engine: Engine, sensor: str, gaps: list[Span]) -> int:
    """Seconds monitored by the sensor from every ok reading (no summaries), less its gaps, to NOW."""
    with engine.connect() as conn:
        times = sorted(
            int(t) for t in conn.execute(
                select(Reading.ts).where(Reading.sensor == sensor, Reading.quality == "ok")
            ).scalars()
        )  # fmt: skip
    span = Span(at(7, 0), at(15, 0))
    return total(subtract(readings_cover(Series(times, [0.0] * len(times)), span), gaps)) // 1000


def test_monitoring_completeness_matches_a_direct_computation(world: Engine) -> None:
    with world.connect() as conn:
        report = kpi_report(conn, "site1", "2026-11", "2026-12", now=NOW, trace=False)
    november, december = report["months"]
    assert [r["month"] for r in report["months"]] == ["2026-11", "2026-12"]
    rooms = {p["location"]: p for p in december["locations"]}
    window = (at(15, 0) - DEC_1) // 1000
    expected = {
        "CR1": _direct(world, SENSORS["CR1"], []),
        "CR2": _direct(world, SENSORS["CR2"], []),
        "CR3": _direct(world, SENSORS["CR3"], [Span(at(11, 0), at(11, 30))]),
    }
    assert expected["CR3"] == (4 * 60 + 2 * 60 + 40) * 60  # 07:00-11:00 and 11:30-14:10
    # CR2 and CR3 were entered on 30 November; CR1's sensor was placed at 07:00 on 1 December, before
    # the rig enters CR1 itself (6 December): CR1 exists from its placement, its earliest record.
    windows = {"CR1": window - 7 * 3600, "CR2": window, "CR3": window}
    for room, seconds in expected.items():
        figures = rooms[room]["monitoring"]
        assert figures["window_s"] == windows[room], room
        assert figures["monitored_s"] == seconds, room
        assert figures["percent"] == round(100 * seconds / windows[room], 2)
    assert all(p["monitoring"]["monitored_s"] == 0 for p in november["locations"])
    # November counts CR2's and CR3's last 16 hours (entered at 08:00 on the 30th), none of CR1's.
    entered = {p["location"]: p["monitoring"] for p in november["locations"]}
    found = {room: (m["window_s"], m["percent"]) for room, m in entered.items()}
    assert found == {"CR1": (0, None), "CR2": (16 * 3600, 0), "CR3": (16 * 3600, 0), "YARD": (0, None)}


def test_excursions_and_case_times_per_month(world: Engine) -> None:
    with world.connect() as conn:
        report = kpi_report(conn, "site1", "2026-12", "2026-12", now=NOW, trace=False)
    (december,) = report["months"]
    rooms = {p["location"]: p for p in december["locations"]}
    assert rooms["CR2"]["excursions"] == 1
    assert rooms["CR2"]["excursion_alerts"] == ["gw01/gw01-a-cr2-high"]
    assert rooms["CR1"]["excursions"] == rooms["CR3"]["excursions"] == 0
    assert december["excursions"] == 1
    cases = december["cases"]
    assert cases["opened"] == 1
    opened = world.connect().execute(select(QaCase.opened_at)).scalar_one()
    opened_ms = int(opened.replace(tzinfo=opened.tzinfo or datetime.UTC).timestamp() * 1000)
    assert cases["acknowledgement"] == {
        "count": 1,
        "median_s": (at(10, 17) - opened_ms) // 1000,
        "p90_s": (at(10, 17) - opened_ms) // 1000,
    }
    assert cases["disposition"]["count"] == 1
    assert cases["disposition"]["median_s"] == (at(12, 12) - opened_ms) // 1000


def test_the_trace_time_is_measured_on_the_sites_lots(world: Engine) -> None:
    with world.connect() as conn:
        report = kpi_report(conn, "site1", "2026-12", "2026-12", now=NOW)
    trace = report["trace"]
    assert 1 <= len(trace["lots"]) <= 5
    assert trace["median_ms"] is not None and trace["median_ms"] >= 0
    assert trace["measured_at"] == NOW.isoformat()


def test_inbound_accuracy_counts_the_completed_receipt(world: Engine) -> None:
    with world.connect() as conn:
        report = kpi_report(conn, "site1", "2026-12", "2026-12", now=NOW, trace=False)
    inbound = report["months"][0]["inbound"]
    assert inbound["completed"] >= 1
    assert inbound["without_discrepancy"] + 0 <= inbound["completed"]


@pytest.mark.parametrize(
    ("first", "last", "field"),
    [("2026-13", "2026-12", "from"), ("2026-12", "2026-11", "to"), ("2026-01", "nope", "to"),
     ("2020-01", "2026-12", "to")],
)  # fmt: skip
def test_a_bad_period_is_refused_naming_the_field(engine: Engine, first: str, last: str, field: str) -> None:
    with engine.connect() as conn, pytest.raises(UserInputError) as refused:
        kpi_report(conn, "site1", first, last, now=NOW)
    assert refused.value.field == field


def test_an_unknown_site_is_not_found(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(NotFound):
        kpi_report(conn, "nowhere", "2026-12", "2026-12", now=NOW)


def test_the_api_answers_json_and_csv_and_refuses_precisely(world: Engine) -> None:
    _, token = person(world, "vera", ("viewer",))
    with TestClient(create_app(world, ApiTokens(())), raise_server_exceptions=False) as client:
        auth = bearer(token)
        reply = client.get("/kpis?site=site1&from=2026-11&to=2026-12", headers=auth)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert [m["month"] for m in body["months"]] == ["2026-11", "2026-12"]
        assert body["months"][1]["excursions"] == 1
        reply = client.get("/kpis.csv?site=site1&from=2026-12&to=2026-12", headers=auth)
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(reply.text)))
        assert {"2026-12"} <= {r["month"] for r in rows}
        assert any(r["kpi"] == "excursions" and r["subject"] == "CR2" and r["value"] == "1" for r in rows)
        for query, status, field in (
            ("site=site1&from=2026-13&to=2026-12", 422, "from"),
            ("site=site1&from=2026-12&to=2026-11", 422, "to"),
            ("site=site1&from=2026-01&to=nope", 422, "to"),
            ("site=nowhere&from=2026-12&to=2026-12", 404, "site"),
        ):
            for path in ("/kpis", "/kpis.csv"):
                reply = client.get(f"{path}?{query}", headers=auth)
                assert reply.status_code == status, (path, query, reply.text)
                assert field in reply.text, reply.text
        assert client.get("/kpis?from=2026-12", headers=auth).status_code == 422  # no site
        assert client.get("/kpis?site=site1").status_code == 401


def test_recall_response_times_are_read_from_the_recall_runs(engine: Engine) -> None:
    """G1 of PLAIN went to Hospital B and Pharmacy A (``tests/rig/recall_world.py``): decided at 15:00,
    opened (stock blocked) at 15:05, the customers told at 15:20 and 15:50."""
    recall_world(engine)
    held = frozenset({"recall.run"})
    with engine.begin() as conn:
        recall = recall_store.open_recall(
            conn, recall_class="II", reason="FSN-7", lots=[("PLAIN", "G1")], initiated_at=_when(at(15, 0)),
            by=DOCK, held=held, now=_when(at(15, 5)),
        )  # fmt: skip
        for customer, minute in (("Hospital B", 20), ("Pharmacy A", 50)):
            recall_store.record_customer_event(
                conn, recall["id"], customer, "notified", channel="phone", at=_when(at(15, minute)),
                by=DOCK, held=held, now=_when(at(15, minute)),
            )  # fmt: skip
    with engine.connect() as conn:
        report = kpi_report(conn, "site1", "2026-12", "2026-12", now=_when(at(16, 0)), trace=False)
    recalls = report["months"][0]["recalls"]
    assert recalls["opened"] == 1
    assert recalls["to_blocked"] == {"count": 1, "median_s": 300, "p90_s": 300}
    assert recalls["to_notified"] == {"count": 1, "median_s": 50 * 60, "p90_s": 50 * 60}
