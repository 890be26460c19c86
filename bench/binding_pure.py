"""What pure binding costs: movements bound per second against a few hundred open documents, and
reconciliation of every document, with no database.

The database side of binding (issue 15, a later session) runs after ingest's commit and must not slow
it; this measures the part it will call, so a regression in the pure code shows here, apart from
PostgreSQL.  The workload: ``--documents`` open receiving notes, dispatch orders and transfers over
``--doors`` doors, each with a few lines listing serials (and a pallet's SSCC); ``--movements`` items
spread over the doors: cases the documents list, foreign cases, pallets, unknown directions, items at
doors with no open document.  Items are identified once before timing (``identify_movement`` decodes
the EPC with epcpy; its rate is printed separately since the database side pays it per item too).

Figures are set against a reference measured in the same run, so they compare across machines: the
cost of merely iterating the items and looking each door up in a dict (``reference_items_per_s``).
The goal: well under a second for 20,000 movements (``bind_s``).
"""

from __future__ import annotations

import argparse
import datetime
import random
import time
from collections.abc import Callable

import msgspec

from coldgate.cloud.documents.binding import ItemKey, Observed, bind_all
from coldgate.cloud.documents.identifiers import CatalogIndex, Identified, identify_movement
from coldgate.cloud.documents.model import Document, DocumentKind, DocumentState, Line
from coldgate.cloud.documents.reconciliation import reconcile
from coldgate.contract import examples
from coldgate.simulator.rfid_scenarios import sgtin96_hex

T0 = examples.T0
PRODUCTS = [f"P{i:03d}" for i in range(50)]


def documents(count: int, doors: int, rng: random.Random) -> list[Document]:
    out = []
    for i in range(count):
        lines = []
        for number in range(1, rng.randint(1, 3) + 1):
            product = rng.choice(PRODUCTS)
            cases = rng.randint(5, 60)
            serials = tuple(f"{i:04d}{number}{k:04d}" for k in range(cases))
            sscc = f"{i:08d}{number:010d}"
            lines.append(
                Line(number, product, cases, lot=rng.choice([None, "L1"]), ssccs=(sscc,), serials=serials)
            )
        kind = rng.choice(list(DocumentKind))
        state = rng.choice([DocumentState.RELEASED, DocumentState.IN_PROGRESS, DocumentState.COMPLETED])
        out.append(
            Document(f"D{i:05d}", kind, "site1", state, f"REF-{i}", tuple(lines), door=f"door{i % doors}",
                     opened_at=T0 + rng.randint(0, 1000), closed_at=rng.choice([None, T0 + 3_600_000]))
        )  # fmt: skip
    return out


def items(count: int, docs: list[Document], doors: int, rng: random.Random) -> list[Observed]:
    out = []
    for seq in range(1, count + 1):
        doc = rng.choice(docs)
        line = rng.choice(doc.lines)
        roll = rng.random()
        if roll < 0.85:
            found = Identified(label="x", product=line.product, lot="L1", serial=rng.choice(line.serials))
        elif roll < 0.9:
            found = Identified(label="x", sscc=line.ssccs[0])
        else:
            found = Identified(label="x", product=rng.choice(PRODUCTS), serial=str(seq))
        door = doc.door if rng.random() < 0.97 else f"door{doors + 1}"
        direction = rng.choice(["in", "in", "out", "unknown"])
        out.append(
            Observed(ItemKey("gw01", "items", seq), "movement", door or "", direction, T0 + 2000 + seq, found)
        )  # type: ignore[arg-type]
    return out


def reference(observed: list[Observed], docs: list[Document]) -> float:
    by_door = {d.door: d for d in docs}
    start = time.perf_counter()
    hits = 0
    for item in observed:
        if by_door.get(item.door) is not None:
            hits += 1
    return time.perf_counter() - start


def identify_rate(n: int) -> float:
    catalog = CatalogIndex(gtins={})
    movements = [
        msgspec.structs.replace(examples.MOVEMENT, epc=sgtin96_hex("0614141", "812345", 1000 + k).lower())
        for k in range(n)
    ]
    start = time.perf_counter()
    for movement in movements:
        identify_movement(movement, catalog)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movements", type=int, default=20_000)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--doors", type=int, default=40)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    docs = documents(args.documents, args.doors, rng)
    observed = items(args.movements, docs, args.doors, rng)

    ref_s = min(reference(observed, docs) for _ in range(5))
    bind_s = min(_timed(lambda: bind_all(observed, docs)) for _ in range(3))
    bindings = bind_all(observed, docs)
    bound = sum(1 for b in bindings if b.document is not None)
    today = datetime.date(2026, 12, 6)
    catalog = CatalogIndex()
    start = time.perf_counter()
    for doc in docs:
        reconcile(doc, bindings, catalog, today)
    reconcile_s = time.perf_counter() - start
    ident = identify_rate(2000)

    rate = args.movements / bind_s
    print(f"documents={args.documents} doors={args.doors} movements={args.movements} bound={bound}")
    print(f"bind_all: {bind_s * 1000:.1f} ms ({rate:,.0f} movements/s); reference loop {ref_s * 1000:.2f} ms")
    print(f"reconcile all documents (every binding passed to each): {reconcile_s * 1000:.1f} ms")
    print(f"identify_movement (EPC decode by epcpy): {ident:,.0f} movements/s")
    print(
        f"RESULT movements_per_s={rate:.0f} bind_s={bind_s:.3f} "
        f"reference_items_per_s={args.movements / ref_s:.0f} cost_vs_reference={bind_s / ref_s:.1f} "
        f"reconcile_all_s={reconcile_s:.3f} identify_per_s={ident:.0f}"
    )


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
