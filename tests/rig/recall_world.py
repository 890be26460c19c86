"""Issue 15's custody story with one more dispatch, for the recall runs' tests: lot G1 of PLAIN went to two
customers in different quantities with some left in a cold room.

``custody_world`` (``tests/rig/custody_world.py``), then SO-2 done at the door and SO-3 to Pharmacy A
released there at 14:00: 1 of PLAIN lot G1 scanned out at D1 at 14:01.  G1: 8 to Hospital B, 1 to
Pharmacy A, 1 left in CR2.  L1: cases 1001 and 1003 to Pharmacy A, 1002 and 1004 to Hospital B, the
pallet left in CR3.
"""

from __future__ import annotations

import datetime

from sqlalchemy import Engine

from coldgate.cloud.documents.binding_store import bind_pending
from coldgate.cloud.documents.documents import create_document
from coldgate.cloud.documents.moves import move_document
from coldgate.contract.items import Scheme
from tests.rig.cloud_db import ingest
from tests.rig.custody_world import GATEWAY, PLAIN_MA, at, custody_world, scan
from tests.rig.documents import DOCK, SITE
from tests.rig.ingest import batch_message

__all__ = ["dispatch_at_the_door", "recall_world"]


def _when(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def dispatch_at_the_door(engine: Engine, after: str, party: str, reference: str, quantity: int, minute: int,
                         seq: int) -> str:  # fmt: skip
    """Dispatch order ``after`` done at D1, then ``reference`` to ``party`` released there at 14:``minute``
    and ``quantity`` of PLAIN lot G1 scanned out a minute later (item ``seq`` of the rig's stream),
    ingested and bound; the new order's id."""
    with engine.begin() as conn:
        for state in ("in_progress", "completed"):
            move_document(conn, after, state, reason="loaded", by=DOCK, now=_when(at(14, minute - 1)))
        order = {
            "kind": "dispatch", "site": SITE, "reference": reference, "party": party,
            "lines": [{"product": "PLAIN", "lot": "G1", "quantity": quantity, "unit": "each"}],
        }  # fmt: skip
        made = create_document(conn, order, reason="order", by=DOCK, now=_when(at(14, minute)))
        released = {"door": "D1", "reason": "at door 1", "by": DOCK, "now": _when(at(14, minute))}
        move_document(conn, made["id"], "released", **released)
    item = scan(seq, at(14, minute + 1), "s-d1", ma=PLAIN_MA, lot="G1", quantity=quantity, scheme=Scheme.MA)
    done = _when(at(14, minute + 2))
    assert ingest(engine, *batch_message(GATEWAY, [item], first_seq=seq), now=done).kind == "batch"
    with engine.begin() as conn:
        assert bind_pending(conn, done) == 1
    return str(made["id"])


def recall_world(engine: Engine) -> str:
    """The story above, ingested and bound; SO-3's id."""
    world = custody_world(engine)
    return dispatch_at_the_door(engine, world.to_hospital, "Pharmacy A", "SO-3", 1, 0, 18)
