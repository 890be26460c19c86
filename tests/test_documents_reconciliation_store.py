"""Reconciliation's database edge and its API on both dialects: a pass stored through ingest and bound by
the binding store is judged by the pure ``reconcile`` from the stored bindings alone (the line complete
with ``completeness_verified``, the foreign case ``unexpected``/``mismatch_class``; cases left out
``missing``); what bound to nothing is listed at its door; bad input is a precise 422, an unknown
document or door a 404."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy", reason="the cloud database needs the [cloud] extra")

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.documents import reconciliation_store
from coldgate.cloud.documents.binding_store import rebind
from coldgate.cloud.identity.users import NotFound
from tests.rig.dock_pass import pass_at_the_door
from tests.rig.documents import SITE
from tests.rig.people import bearer, person


@pytest.fixture
def api(engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    _, token = person(engine, "vera", ("viewer",))
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client, bearer(token)


def test_a_full_pass_with_a_foreign_case_read_back_from_the_stored_bindings(engine: Engine) -> None:
    done = pass_at_the_door(engine)
    with engine.connect() as conn:
        check = reconciliation_store.check_document(conn, done.document, done.now.date())
    found = check.reconciliation
    [line] = found.lines
    assert (line.expected, line.seen, line.complete, line.completeness) == (
        3,
        3,
        True,
        "completeness_verified",
    )
    assert reconciliation_store.line_state(line, found.discrepancies) == "complete"
    assert [(d.kind, d.cbv, d.product, d.units) for d in found.discrepancies] == [
        ("unexpected", "mismatch_class", "SALINE", ("serial:SALINE/7",))
    ]
    assert found.complete is False and found.units_seen == 4
    assert check.document.door == "D1" and check.document.site == SITE


def test_cases_left_out_are_missing_and_binding_again_judges_the_same(engine: Engine) -> None:
    done = pass_at_the_door(engine, missing=2, foreign=False)
    with engine.connect() as conn:
        first = reconciliation_store.check_document(conn, done.document, done.now.date()).reconciliation
    [line] = first.lines
    assert (line.seen, line.complete) == (1, False)
    assert reconciliation_store.line_state(line, first.discrepancies) == "short"
    assert reconciliation_store.line_word(line, first.discrepancies) == "mismatch_instance"
    [gap] = first.discrepancies
    assert (gap.kind, gap.expected, gap.seen, gap.units) == (
        "missing", 3, 1, ("serial:VX10/1001", "serial:VX10/1002")
    )  # fmt: skip
    with engine.begin() as conn:
        rebind(conn, done.now + datetime.timedelta(minutes=5))
    with engine.connect() as conn:
        again = reconciliation_store.check_document(conn, done.document, done.now.date()).reconciliation
    assert again == first


def test_unbound_items_at_the_door_newest_first_and_unknown_doors_refused(engine: Engine) -> None:
    done = pass_at_the_door(engine)
    end = int(done.now.timestamp() * 1000)
    with engine.connect() as conn:
        [early] = reconciliation_store.unbound_at_door(conn, SITE, "D1", end - 86_400_000, end)
        assert (early["seq"], early["product"], early["serial"], early["how"]) == (
            1,
            "VX10",
            "1010",
            "unbound",
        )
        assert "no open document at door D1" in early["reason"]
        assert reconciliation_store.unbound_at_door(conn, SITE, "D1", done.released, end) == []
        for site, door in ((SITE, "D9"), (SITE, "CR1"), ("site9", "D1")):
            with pytest.raises(NotFound):
                reconciliation_store.unbound_at_door(conn, site, door, 0, end)
        with pytest.raises(NotFound):
            reconciliation_store.check_document(conn, "doc-none", done.now.date())
        [worked] = reconciliation_store.door_checks(conn, SITE, "D1", done.now.date())
        assert worked.document.id == done.document


def test_the_api(engine: Engine, api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    done = pass_at_the_door(engine)
    reply = client.get(f"/documents/{done.document}/reconciliation", headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (
        body["complete"] is False
        and body["door"] == "D1"
        and body["judged_on"] == done.now.date().isoformat()
    )
    assert body["lines"] == [
        {"number": 1, "product": "VX10", "lot": "L1", "unit": "case", "expected": 3, "seen": 3,
         "complete": True, "state": "complete", "cbv": "completeness_verified"}
    ]  # fmt: skip
    [gap] = body["discrepancies"]
    assert (gap["kind"], gap["cbv"], gap["blocking"], gap["units"]) == (
        "unexpected", "mismatch_class", True, ["serial:SALINE/7"]
    )  # fmt: skip

    unbound = client.get(f"/doors/{SITE}/D1/unbound", headers=headers)
    assert unbound.status_code == 200, unbound.text
    listed = unbound.json()
    assert [x["seq"] for x in listed["items"]] == [1] and listed["more"] is False
    assert listed["to"] - listed["from"] == 86_400_000
    window = {"from": str(done.released), "to": str(int(done.now.timestamp() * 1000))}
    assert client.get(f"/doors/{SITE}/D1/unbound", params=window, headers=headers).json()["items"] == []
    iso = {"from": "2026-01-01T00:00:00Z", "to": (done.now + datetime.timedelta(hours=1)).isoformat()}
    assert len(client.get(f"/doors/{SITE}/D1/unbound", params=iso, headers=headers).json()["items"]) == 1

    for path, status, field in (
        ("/documents/doc-none/reconciliation", 404, "document_id"),
        (f"/doors/{SITE}/D9/unbound", 404, "door"),
        (f"/doors/{SITE}/CR1/unbound", 404, "door"),
        (f"/doors/{SITE}/D1/unbound?from=yesterday", 422, "from"),
        (f"/doors/{SITE}/D1/unbound?from=2000&to=1000", 422, "to"),
        (f"/doors/{SITE}/D1/unbound?to=2026-12-06T10:00:00", 422, "to"),
        (f"/doors/{SITE}/D1/unbound?limit=0", 422, "limit"),
        (f"/doors/{SITE}/{'x' * 65}/unbound", 422, "door"),
    ):
        reply = client.get(path, headers=headers)
        assert reply.status_code == status, (path, reply.text)
        assert field in reply.text, (path, reply.text)
    assert client.get(f"/documents/{done.document}/reconciliation").status_code == 401


def test_a_moment_is_judged_on_the_date_at_the_documents_site(engine: Engine) -> None:
    """Expiry is judged on the site's date: 23:30 UTC on the 6th is already the 7th in Tokyo, still the
    6th in UTC, and the 6th in Los Angeles."""
    from coldgate.cloud.catalog.sites import set_time_zone
    from tests.rig.documents import QA

    done = pass_at_the_door(engine)
    late = datetime.datetime(2026, 12, 6, 23, 30, tzinfo=datetime.UTC)
    with engine.connect() as conn:
        assert reconciliation_store.site_date(conn, SITE, late) == datetime.date(2026, 12, 6)  # no zone: UTC
        assert reconciliation_store.site_date(conn, "no-such-site", late) == datetime.date(2026, 12, 6)
    for zone, day in (("Asia/Tokyo", 7), ("America/Los_Angeles", 6)):
        with engine.begin() as conn:
            set_time_zone(conn, SITE, zone, by=QA, now=done.now)
        with engine.connect() as conn:
            assert reconciliation_store.site_date(conn, SITE, late) == datetime.date(2026, 12, day)
            assert reconciliation_store.check_document(conn, done.document, late).today.day == day
