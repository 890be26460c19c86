"""Serials of a lot, on both dialects: single serials and numeric ranges tied to one lot, overlaps refused
naming the serial and the lot that holds it, a unit's lot found from its serial, nothing ever edited."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from coldgate.cloud.api import ApiTokens, create_app
from coldgate.cloud.audit.log import verify
from coldgate.cloud.catalog.serials import Span, check_span, clashes
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.identity.users import UserInputError
from tests.rig.catalog import URL, VX, make_catalog
from tests.rig.people import bearer, person


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    make_catalog(engine)
    with TestClient(create_app(engine, ApiTokens(())), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def people(engine: Engine) -> dict[str, dict[str, str]]:
    return {role: bearer(person(engine, login, (role,))[1])
            for role, login in (("qa_manager", "marta"), ("viewer", "vera"))}  # fmt: skip


def test_ranges_and_serials_tie_units_to_their_lot(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    manager, viewer = people["qa_manager"], people["viewer"]
    body = {"serials": ["A7", "000200"], "ranges": [{"first": "000100", "last": "000199"}],
            "reason": "delivery note 4711"}  # fmt: skip
    assert client.post(f"{URL}/L1/serials", json=body, headers=viewer).status_code == 403
    added = client.post(f"{URL}/L1/serials", json=body, headers=manager)
    assert added.status_code == 200, added.text
    assert added.json() == {"product": VX, "lot": "L1", "spans": 3, "serials": 102}
    listed = client.get(f"{URL}/L1/serials", headers=viewer).json()
    assert listed == [{"first": "000100", "last": "000200", "serials": 101},  # collapsed with 000200
                      {"first": "A7", "last": "A7", "serials": 1}]  # fmt: skip
    for serial, lot in (("000150", "L1"), ("000100", "L1"), ("000200", "L1"), ("A7", "L1")):
        found = client.get(f"/catalog/products/{VX}/serials/{serial}", headers=viewer)
        assert found.status_code == 200 and found.json()["lot"] == lot, (serial, found.text)
    for serial in ("000201", "000099", "150", "0000150", "A8", "1:"):  # the width is part of the serial
        assert client.get(f"/catalog/products/{VX}/serials/{serial}", headers=viewer).status_code == 404
    again = client.post(f"{URL}/L1/serials", json=body, headers=manager)  # exactly what is stored: no-op
    assert again.status_code == 200 and again.json()["spans"] == 0
    [entry, _] = [e for e in _audit(engine) if e.action == "lot.serials"]
    assert entry.entity_id == f"{VX}/L1" and entry.reason == "delivery note 4711"
    assert entry.actor_name == "Marta Tester"
    with engine.connect() as conn:
        assert verify(conn)[1] is None


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"ranges": [{"first": "000150", "last": "000250"}]}, "000150..000250 overlaps 000100..000199"),
        ({"serials": ["000120"]}, "serial 000120 already belongs to lot 'L1' (000100..000199)"),
        ({"ranges": [{"first": "000000", "last": "000100"}]}, "overlaps 000100..000199 of lot 'L1'"),
        ({"ranges": [{"first": "0", "last": "9"}], "serials": ["A7"]}, "serial A7 already belongs to lot"),
        ({"ranges": [{"first": "5", "last": "15"}]}, "'15' is not as wide as '5'"),
        ({"ranges": [{"first": "9", "last": "1"}]}, "1 is below the range's first serial 9"),
        ({"ranges": [{"first": "A1", "last": "A9"}]}, "needs numeric serials at both ends"),
        ({"serials": [" A1"]}, "spaces at its ends"),
        ({"serials": ["x" * 65]}, "longer than 64 characters"),
        ({"serials": []}, "at least one serial or range"),
        ({"serials": ["B1", "B1"]}, "serial B1 already belongs to lot 'L2' (B1) (this request)"),
    ],
)
def test_overlaps_and_bad_serials_are_refused_precisely(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]], body: dict[str, object], says: str
) -> None:
    manager = people["qa_manager"]
    first = {"serials": ["A7"], "ranges": [{"first": "000100", "last": "000199"}], "reason": "delivery"}
    assert client.post(f"{URL}/L1/serials", json=first, headers=manager).status_code == 200
    refused = client.post(f"{URL}/L2/serials", json={**body, "reason": "second delivery"}, headers=manager)
    assert refused.status_code == 422, refused.text
    assert says in refused.json()["detail"][0]["msg"], refused.text
    assert client.get(f"{URL}/L2/serials", headers=manager).json() == []


def test_no_serials_for_an_unserialised_product_or_a_missing_lot(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    manager = people["qa_manager"]
    body = {"serials": ["1"], "reason": "delivery"}
    plain = client.post("/catalog/products/PLAIN/lots/G1/serials", json=body, headers=manager)
    assert plain.status_code == 422 and "not serialised" in plain.text
    assert client.post(f"{URL}/L9/serials", json=body, headers=manager).status_code == 404
    assert client.get(f"{URL}/L9/serials", headers=manager).status_code == 404


def test_serials_are_never_edited(
    engine: Engine, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    body = {"serials": ["A7"], "reason": "delivery"}
    assert client.post(f"{URL}/L1/serials", json=body, headers=people["qa_manager"]).status_code == 200
    for statement in ("UPDATE lot_serials SET lot = 'L2'", "DELETE FROM lot_serials"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT lot FROM lot_serials")).scalar_one() == "L1"


def test_the_sweep_finds_every_overlap_and_only_those() -> None:
    spans = [
        Span("P", "0100", "0199", "L1", None), Span("P", "0150", "0160", "L2", 3),
        Span("P", "0200", "0299", "L2", 4),
        Span("P", "0299", "0299", "L3", 5), Span("P", "1:", "1:", "L3", 6), Span("P", "10", "29", "L3", 7),
        Span("Q", "0150", "0150", "L9", 8), Span("P", "0100", "0199", "L1", 9),
    ]  # fmt: skip
    found = {(refused.origin, holder.origin) for refused, holder, _ in clashes(spans)}
    assert found == {(3, None), (5, 4)}  # "1:" is no number; line 9 is stored already for the same lot
    with pytest.raises(UserInputError, match="not as wide"):
        check_span("01", "100")


def _audit(engine: Engine) -> list[AuditEntry]:
    with engine.connect() as conn:
        return list(conn.execute(select(AuditEntry).order_by(AuditEntry.seq)))
