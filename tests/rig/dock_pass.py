"""A pass at dock door D1 of site1, stored through the real ingest path and bound by the binding store:
what the reconciliation API and the dock pages are tested against.

The world (``tests/rig/documents.py``'s dock, plus a product the note does not name): a receiving note
of one line, three serialised cases of VX10 lot L1 (serials 1000-1002), released to D1 half an hour
ago; then the three cases and one foreign case (SALINE, a product of the catalog on no line) pass in,
and one VX10 case passed the door before the note was released, so it bound to nothing.  Times are
relative to the wall clock because the door page shows the last 24 hours of unbound items.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from coldgate.cloud.catalog.products import put_product
from coldgate.cloud.catalog.serials import add_serials
from coldgate.cloud.documents.binding_store import bind_pending
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.moves import move_document
from coldgate.contract import examples
from coldgate.contract.items import Direction, Movement
from coldgate.simulator.rfid_scenarios import sgtin96_hex
from tests.rig.cloud_db import ingest
from tests.rig.documents import DOCK, NOW, QA, SITE, stock_the_dock
from tests.rig.ingest import batch_message

__all__ = ["DockPass", "case", "gtin_of", "pass_at_the_door"]

VX10_ITEM = "033393"  # GTIN 04006381333931 (tests/rig/catalog.py)
SALINE_ITEM = "044444"


def gtin_of(company: str, item: str) -> str:
    """The GTIN-14 an SGTIN of ``company`` and ``item`` (indicator digit first) names."""
    body = item[0] + company + item[1:]
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


@dataclass(frozen=True, slots=True)
class DockPass:
    document: str
    released: int  # epoch ms
    now: datetime.datetime  # when binding ran


def case(seq: int, at: int, serial: int, item: str = VX10_ITEM, door: str = "D1") -> Movement:
    """A serialised case read entering at ``door`` at ``at`` (epoch ms)."""
    epc = sgtin96_hex("4006381", item, serial).lower()
    stamp = {"seq": seq, "ts": at, "boot": examples.BOOT, "mono": 1000 + seq, "synced": True}
    return Movement(**stamp, reader="r1", door=door, direction=Direction.IN, epc=epc, first_seen=at,
                    last_seen=at + 500, read_count=4)  # fmt: skip


def pass_at_the_door(engine: Engine, *, missing: int = 0, foreign: bool = True) -> DockPass:
    """The world above, bound; ``missing`` of the three expected cases left out of the pass."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    released = now - datetime.timedelta(minutes=30)
    at = int(released.timestamp() * 1000)
    stock_the_dock(engine)
    with engine.begin() as conn:
        gtin = gtin_of("4006381", SALINE_ITEM)
        saline = {"name": "Saline 0.9 %", "gtin": gtin, "temperature_class": "2-8C", "serialised": True}
        put_product(conn, "SALINE", saline, reason="new product", by=QA, now=NOW)
        add_serials(conn, "VX10", "L1", [], [("1000", "1019")], reason="ASN", by=QA, now=NOW)
        line: dict[str, Any] = {
            "product": "VX10",
            "lot": "L1",
            "quantity": 3,
            "serials": ["1000", "1001", "1002"],
        }
        note = {"kind": "receiving", "site": SITE, "reference": "ASN-7", "party": "Acme", "lines": [line]}
        made = create_document(conn, note, reason="ASN received", by=DOCK, now=released)
        move_document(
            conn, made["id"], "released", door="D1", reason="truck at door 1", by=DOCK, now=released
        )
    items = [case(1, at - 600_000, 1010)]  # before the release: unbound at D1
    items += [case(2 + n, at + 60_000 + n, 1000 + n) for n in range(3 - missing)]
    if foreign:
        items.append(case(9, at + 90_000, 7, item=SALINE_ITEM))
    assert ingest(engine, *batch_message("gw01", items), now=now).kind == "batch"
    with engine.begin() as conn:
        assert bind_pending(conn, now) == len(items)
    return DockPass(str(made["id"]), at, now)
