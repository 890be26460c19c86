"""How many dead letters one source may leave per window, and counting the rest.

Every refusal is kept (capped in size by ``dead_letter_payload``) until its
source has spent the window's rows or bytes; after that it is only counted
in ``dead_letter_budgets``, so a client that floods the broker with garbage
costs a row of counters, not the database.  A repeat of a dead letter
already kept costs nothing: it only bumps that letter's ``repeats``.

The first refusal dropped in a window is the one to tell a person about; the
caller does that (a log line here, an alert for an enrolled gateway there).
Several workers share a source's row, so it is read ``FOR UPDATE``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from coldgate.cloud.alerts.cloud_stream import utc
from coldgate.cloud.db.models import DeadLetterBudget

__all__ = ["Budget", "Spent", "spend"]


@dataclass(frozen=True, slots=True)
class Budget:
    """What one source may keep per window (``[ingest]`` of the cloud config)."""

    window_s: float = 3600.0
    rows: int = 1000
    bytes: int = 1 << 24


class Spent(Enum):
    KEPT = "kept"
    #: The first refusal dropped in this window: say so, once.
    FIRST_DROPPED = "first dropped"
    DROPPED = "dropped"


def spend(conn: Connection, source: str, size: int, now: datetime.datetime, budget: Budget) -> Spent:
    """Charge one dead letter of ``size`` bytes to ``source``; whether it may be kept."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(DeadLetterBudget)
        .values(
            source=source, window_start=now, kept=0, kept_bytes=0, dropped=0, dropped_bytes=0, dropped_total=0
        )
        .on_conflict_do_nothing()
    )
    row = conn.execute(
        select(
            DeadLetterBudget.window_start,
            DeadLetterBudget.kept,
            DeadLetterBudget.kept_bytes,
            DeadLetterBudget.dropped,
        )
        .where(DeadLetterBudget.source == source)
        .with_for_update()
    ).one()
    key = DeadLetterBudget.source == source
    kept, kept_bytes, dropped = row.kept, row.kept_bytes, row.dropped
    if (utc(now) - utc(row.window_start)).total_seconds() >= budget.window_s:
        conn.execute(
            update(DeadLetterBudget)
            .where(key)
            .values(window_start=now, kept=0, kept_bytes=0, dropped=0, dropped_bytes=0)
        )
        kept = kept_bytes = dropped = 0
    if kept < budget.rows and kept_bytes + size <= budget.bytes:
        conn.execute(update(DeadLetterBudget).where(key).values(kept=kept + 1, kept_bytes=kept_bytes + size))
        return Spent.KEPT
    conn.execute(
        update(DeadLetterBudget)
        .where(key)
        .values(
            dropped=DeadLetterBudget.dropped + 1,
            dropped_bytes=DeadLetterBudget.dropped_bytes + size,
            dropped_total=DeadLetterBudget.dropped_total + 1,
        )
    )
    return Spent.FIRST_DROPPED if dropped == 0 else Spent.DROPPED
