"""What the audit trail costs: a write with its entry against the same write alone, and ``audit verify``.

Per dialect (PostgreSQL, SQLite), in one run:

- **plain**: ``--writes`` changes, each its own transaction (a gateway
  enrolled: one row), as the application writes without an audit trail;
- **audited**: the same changes, each with its audit entry appended in the
  same transaction (``cloud.audit.log.append``), and the ratio of the two;
  plain and audited batches take turns (``--rounds`` pairs, the order
  swapped each round) and the ratio is the median of the pairs': a commit
  waits for the disk, whose speed drifts by tens of per cent over seconds on
  a shared machine, and three plain batches followed by three audited ones
  measured that drift as much as the entry (x0.54 to x2.0 for the same code);
- **verify**: ``--entries`` entries (1,000,000 by default) chained and loaded
  in bulk, then ``verify`` over them: entries per second.

Goals (issue 12): the entry costs at most 20 % of the plain write
(``audited/plain <= 1.20``); verify >= 200,000 entries/s.

``python -m bench.audit [--entries N] [--writes N] [--rounds N] [--dialects postgresql,sqlite]``
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time

import msgspec
from sqlalchemy import Engine, insert

from bench.dialects import on_each_dialect
from coldgate.cloud.audit.chain import Entry, canonical_json, entry_hash, iso_utc
from coldgate.cloud.audit.log import Actor, append, head, verify
from coldgate.cloud.db import migrate
from coldgate.cloud.db.engine import make_engine
from coldgate.cloud.db.models import AuditEntry
from coldgate.cloud.identity.enrolment import enrol_gateway

T0 = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)
ACTOR = Actor("Dr. Anna Berg", "u-anna")


def writes(engine: Engine, n: int, audited: bool, tag: str) -> float:
    """Seconds for ``n`` enrolments, one transaction each, with or without their audit entries."""
    started = time.perf_counter()
    for i in range(n):
        now = T0 + datetime.timedelta(seconds=i)
        gateway = f"{tag}-{i:06d}"
        with engine.begin() as conn:
            enrol_gateway(conn, gateway, "site1", "password", now)
            if audited:
                after = {"site": "site1", "credential": "password"}
                append(conn, actor=ACTOR, action="gateway.enrol", entity_type="gateway",
                       entity_id=gateway, now=now, after=after, reason="bench")  # fmt: skip
    return time.perf_counter() - started


def load_chain(engine: Engine, n: int) -> None:
    """``n`` valid entries after whatever is there, inserted in bulk (as years of use would leave)."""
    before = canonical_json({"status": "released", "temp": 4.5})
    after = canonical_json({"status": "quarantined", "temp": 9.25, "case": "C-1"})
    with engine.connect() as conn:
        seq, previous = head(conn)
    rows = []
    for i in range(seq + 1, seq + n + 1):
        moment = T0 + datetime.timedelta(milliseconds=i)
        entry = Entry(seq=i, at=iso_utc(moment), actor_id="u-anna", actor_name="Dr. Anna Berg",
                      action="lot.status", entity_type="lot", entity_id=f"L{i % 5000}", before=before,
                      after=after, reason="excursion", request_id=f"r{i}", client="10.0.0.7",
                      prev_hash=previous)  # fmt: skip
        entry = msgspec.structs.replace(entry, hash=entry_hash(entry))
        previous = entry.hash
        row = msgspec.structs.asdict(entry)
        row["at"] = moment
        rows.append(row)
        if len(rows) == 20_000:
            with engine.begin() as conn:
                conn.execute(insert(AuditEntry), rows)
            rows = []
    if rows:
        with engine.begin() as conn:
            conn.execute(insert(AuditEntry), rows)


def run(dialect: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    migrate(url)
    engine = make_engine(url, writer=True)
    try:
        writes(engine, 50, audited=True, tag="warm")  # connections, caches, the first entries
        pairs = []
        for k in range(args.rounds):
            first_plain = k % 2 == 0
            first = writes(engine, args.writes, audited=not first_plain, tag=f"{k}f")
            second = writes(engine, args.writes, audited=first_plain, tag=f"{k}s")
            pairs.append((first, second) if first_plain else (second, first))
        plain = statistics.median(p for p, _ in pairs)
        audited = statistics.median(a for _, a in pairs)
        ratio = statistics.median(a / p for p, a in pairs)
        load_chain(engine, args.entries)
        started = time.perf_counter()
        with engine.connect() as conn:
            checked, broken = verify(conn)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    if broken is not None:
        raise SystemExit(f"{dialect}: the chain does not verify: {broken}")
    figures = {
        "plain_per_s": args.writes / plain,
        "audited_per_s": args.writes / audited,
        "ratio": ratio,
        "verify_per_s": checked / seconds,
        "entries": checked,
    }
    print(
        f"{dialect}: plain {figures['plain_per_s']:,.0f} writes/s, "
        f"with the entry {figures['audited_per_s']:,.0f}/s "
        f"(x{figures['ratio']:.2f}); verify {checked:,} entries in {seconds:.1f} s = "
        f"{figures['verify_per_s']:,.0f}/s"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=1000, help="writes per batch")
    parser.add_argument("--rounds", type=int, default=5, help="pairs of batches, plain and audited")
    parser.add_argument("--dialects", default="postgresql,sqlite")
    args = parser.parse_args()
    results = on_each_dialect(args.dialects, "audit", lambda dialect, url: run(dialect, url, args))
    keys = " ".join(
        f"{d[:2]}_write_ratio={r['ratio']:.2f} {d[:2]}_verify_per_s={r['verify_per_s']:.0f}"
        for d, r in results.items()
    )
    print(f"RESULT entries={args.entries} writes={args.writes} {keys}")


if __name__ == "__main__":
    main()
