"""What ingest may acknowledge: the highest seq up to which every number is committed.

A batch declares the range ``first_seq..last_seq`` it covers (thinned items
inside it were dropped on purpose).  Express batches carry alerts ahead of a
reading backlog, so their ranges stand apart from what is covered so far;
they wait in ``batch_ranges`` until the stream catches up (docs/contract.md,
"Express batches").  Acknowledging one on its own would let the gateway
delete the backlog before it is stored.

A cloud that first sees a stream above seq 1 (its database was restored or
replaced, and the gateway already deleted what the old one acknowledged)
would wait for ever for seqs the gateway no longer has.  The gateway says in
its status how far it was acknowledged (``last_acked_seq``, for its current
boot's outbox); when nothing of the stream is covered yet and the batch comes
from that same boot, coverage starts there.  That is safe: the gateway has
deleted those items already, acknowledging them again changes nothing.  The
adopted seq is kept in ``stream_coverage.adopted`` as the evidence.

Several workers share a stream's row, so it is read ``FOR UPDATE`` on
PostgreSQL: two batches of one stream committing at once cannot both miss the
other's range.  SQLite serialises writers anyway.
"""

from __future__ import annotations

import datetime
import logging

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.db.models import BatchRange, Gateway, StreamCoverage

__all__ = ["advance_coverage"]

log = logging.getLogger(__name__)


def _acknowledged_by_gateway(conn: Connection, gateway: str, boot: str) -> int:
    """``last_acked_seq`` of the gateway's newest status, if that status is from ``boot``; else 0."""
    status = conn.execute(select(Gateway.last_status).where(Gateway.id == gateway)).scalar()
    if not isinstance(status, dict) or status.get("boot") != boot:
        return 0
    acked = status.get("last_acked_seq")
    return acked if isinstance(acked, int) and acked > 0 else 0


def advance_coverage(
    conn: Connection,
    *,
    site: str,
    gateway: str,
    stream: str,
    first_seq: int,
    last_seq: int,
    now: datetime.datetime,
    boot: str | None = None,
) -> int:
    """Record a committed batch's range; return the stream's covered seq (0: nothing yet)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    key = (StreamCoverage.gateway == gateway) & (StreamCoverage.stream == stream)
    conn.execute(
        insert(StreamCoverage)
        .values(gateway=gateway, stream=stream, site=site, covered=0, updated_at=now)
        .on_conflict_do_nothing()
    )
    covered = conn.execute(select(StreamCoverage.covered).where(key).with_for_update()).scalar_one()
    before = covered
    if covered == 0 and first_seq > 1 and boot is not None:
        adopted = _acknowledged_by_gateway(conn, gateway, boot)
        if adopted:
            log.warning(
                "%s stream %s: starting coverage at %d, acknowledged before (says the gateway's status)",
                gateway,
                stream,
                adopted,
            )
            conn.execute(
                update(StreamCoverage).where(key).values(covered=adopted, adopted=adopted, updated_at=now)
            )
            covered = before = adopted
    if first_seq > covered + 1:
        conn.execute(
            insert(BatchRange)
            .values(gateway=gateway, stream=stream, first_seq=first_seq, last_seq=last_seq)
            .on_conflict_do_nothing()
        )
        return covered
    covered = max(covered, last_seq)
    pending_key = (BatchRange.gateway == gateway) & (BatchRange.stream == stream)
    pending = conn.execute(
        select(BatchRange.first_seq, BatchRange.last_seq).where(pending_key).order_by(BatchRange.first_seq)
    ).all()
    merged = False
    for low, high in pending:
        if low > covered + 1:
            break
        covered = max(covered, high)
        merged = True
    if merged:
        conn.execute(delete(BatchRange).where(pending_key, BatchRange.first_seq <= covered + 1))
    if covered != before:
        conn.execute(update(StreamCoverage).where(key).values(covered=covered, updated_at=now))
    return covered
