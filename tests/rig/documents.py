"""Documents for tests: a catalog (``make_catalog``: VX10 with lots L1 and L2, PLAIN with lot G1), the
locations of site1's dock (cold room CR1, yard YARD, dock door D1 between them) written through the
catalog's own audited functions, SSCCs with a right check digit, and a receiving note's fields."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from coldgate.cloud.audit.log import Actor
from coldgate.cloud.catalog.locations import put_location
from coldgate.cloud.documents.dock_decisions import accept_discrepancy, judged_discrepancies
from coldgate.cloud.identity.signatures import SignedBy
from tests.rig.catalog import NOW, QA, make_catalog

__all__ = ["DOCK", "NOW", "QA", "QA_SIGNS", "SITE", "accept_open", "note", "sscc", "stock_the_dock"]

SITE = "site1"
#: A dock operator making and moving documents.
DOCK = Actor("Dora Dock", "u-dora")
#: QA's e-signature, as the routes give it once the password is checked (an acceptance is signed).
QA_SIGNS = SignedBy(QA.id, "marta", QA.name)


def sscc(n: int) -> str:
    """The ``n``-th SSCC of extension 0, company 4006381: 17 digits and the GS1 check digit."""
    body = f"04006381{n:09d}"
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def stock_the_dock(engine: Engine, now: datetime.datetime = NOW) -> None:
    """The catalog, and site1's CR1 (2-8C), YARD and dock door D1 between them."""
    make_catalog(engine)
    with engine.begin() as conn:
        for key, name, kind in (("CR1", "Cold room 1", "cold_room"), ("YARD", "Yard", "ambient_store")):
            room = {"name": name, "kind": kind, "temperature_class": "2-8C"}
            put_location(conn, SITE, key, room, reason="survey", by=QA, now=now)
        door = {"name": "Dock door 1", "kind": "dock_door", "inside": "CR1", "outside": "YARD"}
        put_location(conn, SITE, "D1", door, reason="survey", by=QA, now=now)


def note(reference: str = "ASN-1001", **changes: Any) -> dict[str, Any]:
    """A receiving note of two lines: 20 cases of VX10 lot L1 on one pallet, 5 of PLAIN without a lot."""
    fields: dict[str, Any] = {
        "kind": "receiving", "site": SITE, "reference": reference, "party": "Acme Pharma GmbH",
        "lines": [
            {"product": "VX10", "lot": "L1", "quantity": 20, "ssccs": [sscc(1)],
             "serials": ["000100", "000101"]},
            {"product": "PLAIN", "quantity": 5, "unit": "each"},
        ],
    }  # fmt: skip
    fields.update(changes)
    return fields


def accept_open(
    conn: Connection, document_id: str, now: datetime.datetime = NOW, reason: str = "short shipment agreed"
) -> list[str]:
    """QA accepts every open discrepancy of the document (what a completion waits for); their keys."""
    keys = [j.key for j in judged_discrepancies(conn, document_id, now.date()) if j.blocking]
    for key in keys:
        accept_discrepancy(
            conn, document_id, key, reason=reason, by=QA, signer=QA_SIGNS, now=now, today=now.date()
        )
    return keys
